# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manifest parser's problem collector: every check records the field path, nothing stops at the first."""

from __future__ import annotations

import math
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.durations import DurationError, go_duration_seconds


def show(value: Any) -> str:
    if isinstance(value, str):
        return '"%s"' % value
    if value is None:
        return "nothing"
    return repr(value)


def parse_go_duration(value: Any) -> float:
    """Seconds in a Go duration string such as ``1m``, ``30s``, ``1m30s`` or ``1.5h``; ValueError otherwise.

    Stricter than Go for manifests: a sign or a bare ``0`` is refused, since no
    analysis field means anything with them.
    """
    problem = "must be a duration string such as 30s, 1m or 1m30s, got %s" % show(value)
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(problem)
    text = value.strip()
    if text in ("0", "") or text[:1] in ("+", "-"):
        raise ValueError(problem)
    try:
        return go_duration_seconds(text)
    except DurationError:
        raise ValueError(problem) from None


class Checker:
    """Collects problems with their field paths instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.notes: list[str] = []

    def error(self, path: str, text: str) -> None:
        self.errors.append("%s: %s" % (path, text))

    def mapping(self, value: Any, path: str, required: bool = False) -> dict[str, Any]:
        if value is None:
            if required:
                self.error(path, "is required")
            return {}
        if not isinstance(value, Mapping):
            self.error(path, "must be a mapping, got %s" % show(value))
            return {}
        return dict(value)

    def integer(self, value: Any, path: str, low: int, high: int | None = None, default: int | None = None) -> int | None:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self.error(path, "must be an integer %s, got %s" % (bounds(low, high), show(value)))
                return default
        if value < low or (high is not None and value > high):
            self.error(path, "must be an integer %s, got %s" % (bounds(low, high), value))
            return default
        return value

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(path, "must be a number, got %s" % show(value))
            return None
        if math.isnan(value) or math.isinf(value):
            self.error(path, "must be a finite number, got %s" % value)
            return None
        return float(value)

    def string(self, value: Any, path: str, required: bool = False) -> str | None:
        if value is None or value == "":
            if required:
                self.error(path, "is required")
            return None
        if not isinstance(value, str):
            self.error(path, "must be a string, got %s" % show(value))
            return None
        return value

    def duration(self, value: Any, path: str) -> float | None:
        try:
            return parse_go_duration(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return None

    def boolean(self, value: Any, path: str, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(path, "must be true or false, got %s" % show(value))
            return default
        return value

    def note(self, path: str, text: str) -> None:
        """A warning shown to the user; the plan still runs. Each note appears once."""
        line = "%s: %s" % (path, text)
        if line not in self.notes:
            self.notes.append(line)

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        """A mapping of strings to strings (labels, annotations, sourceLabels)."""
        mapping = self.mapping(value, path)
        out: dict[str, str] = {}
        for key, item in mapping.items():
            if not isinstance(key, str) or not isinstance(item, str):
                self.error("%s.%s" % (path, key), "must be a string, got %s" % show(item))
                continue
            out[key] = item
        return out

    def string_list(self, value: Any, path: str) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.error(path, "must be a list of strings, got %s" % show(value))
            return None
        return list(value)


def bounds(low: int, high: int | None) -> str:
    if high is None:
        return "of at least %d" % low
    return "between %d and %d" % (low, high)
