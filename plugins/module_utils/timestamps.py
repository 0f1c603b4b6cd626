# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 3339 timestamps as Kubernetes and Prometheus write them (``...Z``, with or without fractions).

The one place that turns such text into times and times into such text.
"""

from __future__ import annotations

import datetime


def parse_rfc3339(text: str | None) -> datetime.datetime | None:
    """An aware datetime (UTC when no offset is given), or None when absent or unreadable."""
    if not text:
        return None
    value = str(text).strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def parse_rfc3339_epoch(text: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 text, or None when absent or unreadable."""
    parsed = parse_rfc3339(text)
    return parsed.timestamp() if parsed is not None else None


def format_rfc3339(epoch: float, timespec: str = "microseconds") -> str:
    """Epoch seconds as RFC 3339 in UTC with a ``Z``; microseconds are Kubernetes' MicroTime."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
