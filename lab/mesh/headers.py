"""Istio's response header operations (`headers.response`) on a route and on its chosen destination.

Envoy evaluates the weighted destination's operations first and the route's
after, so a route-level `set` wins over a destination-level one. Within one
level it removes first, then sets (overwrite or add), then adds (append).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

Headers = tuple[tuple[str, str], ...]


def _pairs(values: Any) -> Iterable[tuple[Any, Any]]:
    """Istio spells header values as a map, the Gateway API as a list of {name, value}: read both."""
    if isinstance(values, Mapping):
        return values.items()
    return [(entry.get("name", ""), entry.get("value", "")) for entry in values or [] if isinstance(entry, Mapping)]


def apply_operations(headers: Sequence[tuple[str, str]], operations: Mapping[str, Any] | None) -> Headers:
    """One HeaderOperations ({set, add, remove}) applied to (lower-case name, value) pairs.

    The Gateway API's HTTPHeaderFilter has the same three operations in the same order.
    """
    result = list(headers)
    if not operations:
        return tuple(result)
    removed = {str(name).lower() for name in operations.get("remove") or []}
    if removed:
        result = [(name, value) for name, value in result if name not in removed]
    for name, value in _pairs(operations.get("set")):
        name = str(name).lower()
        result = [(n, v) for n, v in result if n != name]
        result.append((name, str(value)))
    for name, value in _pairs(operations.get("add")):
        result.append((str(name).lower(), str(value)))
    return tuple(result)


def response_operations(holder: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The `headers.response` of an HTTPRoute or an HTTPRouteDestination, if any."""
    return ((holder or {}).get("headers") or {}).get("response")


def response_headers(route: Mapping[str, Any], entry: Mapping[str, Any] | None) -> Headers:
    """The headers the client's proxy adds to a workload's answer for this route and destination."""
    headers = apply_operations((), response_operations(entry))
    return apply_operations(headers, response_operations(route))


def header_values(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    name = name.lower()
    return [value for header, value in headers if header == name]


def issued_set_cookies(vs: Mapping[str, Any]) -> list[str]:
    """Every Set-Cookie value a VirtualService's routes or destinations can hand out (set or add)."""
    values: list[str] = []
    for route in (vs.get("spec") or {}).get("http") or []:
        holders = [route] + list(route.get("route") or [])
        for holder in holders:
            operations = response_operations(holder) or {}
            for kind in ("set", "add"):
                for name, value in (operations.get(kind) or {}).items():
                    if str(name).lower() == "set-cookie":
                        values.append(str(value))
    return values
