# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 3339 timestamps as Kubernetes writes them (``...Z``, with or without fractions)."""

from __future__ import annotations

import datetime


def parse_rfc3339(text: str | None) -> datetime.datetime | None:
    """An aware datetime (UTC when no offset is given), or None when absent or unreadable."""
    if not text:
        return None
    value = str(text).strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed
