# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alert severities and who hears what, as Flagger documents them."""

from __future__ import annotations

INFO = "info"
WARN = "warn"
ERROR = "error"
SEVERITIES = (INFO, WARN, ERROR)


def should_alert(alert_severity: str, event_severity: str) -> bool:
    """Flagger's rule: an ``info`` alert hears every event, ``warn`` hears warnings and errors, ``error`` errors only."""
    if alert_severity == INFO:
        return True
    if alert_severity == WARN:
        return event_severity in (WARN, ERROR)
    return event_severity == ERROR
