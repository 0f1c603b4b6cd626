"""VirtualService pieces tests build routes from."""

from __future__ import annotations


def dest(host, weight=None, port=None):
    """A route destination entry, as Istio writes it: host, optional port number and weight."""
    entry = {"destination": {"host": host}}
    if port:
        entry["destination"]["port"] = {"number": port}
    if weight is not None:
        entry["weight"] = weight
    return entry
