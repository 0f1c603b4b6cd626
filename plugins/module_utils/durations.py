# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durations as people write them in options and Canary manifests, read as seconds.

Two grammars are in use, and they are not the same:

``go``
    Go's ``time.ParseDuration``, which Flagger uses for ``analysis.interval``, webhook
    ``timeout`` and the like: an optional sign, then one or more decimal numbers each
    followed by a unit, ``ns``, ``us`` (or ``µs``/``μs``), ``ms``, ``s``, ``m`` or ``h``,
    e.g. ``30s``, ``1m30s``, ``1.5h``, ``.5s``, ``-2m``. A bare ``0`` is zero; any other
    number needs a unit. There is no day unit.

``prometheus``
    Prometheus's duration, as in range selectors and the HTTP API: one or more whole
    numbers each followed by ``ms``, ``s``, ``m``, ``h``, ``d``, ``w`` or ``y``, e.g.
    ``1m30s``, ``2d``, ``250ms``. No sign, no fractions, no ``us``.

Surrounding white space is ignored. ``to_seconds`` reads module options: an int or a
float is already seconds, text that is a plain number (``"10"``, ``"2.5"``) is seconds
too, anything else must follow the grammar.

Whether a negative, zero or infinite value makes sense is the caller's decision; this
file only reads. Every refusal is a ``DurationError`` (a ``ValueError``) whose message
quotes the value and shows the accepted forms, so a caller can put the option's name
in front of it.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError

GO = "go"
PROMETHEUS = "prometheus"

GO_UNITS: dict[str, float] = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
PROMETHEUS_UNITS: dict[str, float] = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

# Unanchored, so it can be embedded in larger patterns (such as "now-1h30m").
PROMETHEUS_DURATION_PATTERN = r"(?:\d+(?:ms|s|m|h|d|w|y))+"

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_PROMETHEUS_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_PROMETHEUS_DURATION = re.compile(r"^%s$" % PROMETHEUS_DURATION_PATTERN)


class DurationError(DeliveryError, ValueError):
    """A value that is not a duration in the expected grammar."""


def go_duration_seconds(text: str) -> float:
    """Seconds in a Go duration such as ``1m30s``, ``-1.5h`` or ``0``; DurationError otherwise."""
    stripped = text.strip()
    body = stripped
    sign = 1.0
    if body[:1] in ("+", "-"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    position = 0
    total = 0.0
    for match in _GO_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * GO_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise DurationError("%r is not a Go duration such as 30s, 1m, 1m30s or 500ms" % (text,))
    return sign * total


def is_prometheus_duration(text: str) -> bool:
    """True for a Prometheus duration such as ``30s``, ``1m`` or ``1h30m`` (whole numbers, units ms to y)."""
    return bool(_PROMETHEUS_DURATION.match(text))


def prometheus_duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1m30s`` or ``2d``; DurationError otherwise."""
    stripped = text.strip()
    if not is_prometheus_duration(stripped):
        raise DurationError("%r is not a Prometheus duration such as 30s, 1m, 1h30m or 2d" % (text,))
    return sum(int(number) * PROMETHEUS_UNITS[unit] for number, unit in _PROMETHEUS_PART.findall(stripped))


_GRAMMARS: dict[str, Callable[[str], float]] = {GO: go_duration_seconds, PROMETHEUS: prometheus_duration_seconds}


def to_seconds(value: Any, grammar: str = GO) -> float:
    """Seconds from a number, a number written as text, or a duration in ``grammar`` (``go`` or ``prometheus``).

    Booleans and None are refused rather than read as 1/0 or "None"; other objects are read by their text.
    """
    if isinstance(value, bool) or value is None:
        raise DurationError("%r is not a number of seconds or a duration" % (value,))
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    return _GRAMMARS[grammar](text)
