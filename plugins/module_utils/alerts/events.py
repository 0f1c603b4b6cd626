# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which phase change is an alert, with which message and severity: Flagger's scheduler, read as phase changes.

Flagger alerts when a new revision starts (info, with the canary's facts), when a gate holds the release (warn,
unless the gate's webhooks set muteAlert), when the release is rolled back (error) and when the promotion finished
(info). A run writes its state at each of those moments, so the state write is the one place that sends them, and a
phase written twice (a resumed run, a repeated analysis) is announced once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.severity import ERROR, INFO, WARN
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st

NEW_REVISION = "New revision detected, progressing canary analysis."
WAITING_APPROVAL = "Canary is waiting for approval."
WAITING_PROMOTION_APPROVAL = "Canary promotion is waiting for approval."
PROMOTED = "Canary analysis completed successfully, promotion finished."


@dataclass(frozen=True)
class AlertEvent:
    message: str
    severity: str
    phase: str
    # Flagger attaches the canary's facts (target, threshold, deadline, routing) to the new-revision alert only.
    with_fields: bool = False

    @property
    def event_type(self) -> str:
        """The Kubernetes event type Flagger records alongside: Normal for info, Warning otherwise."""
        return "Normal" if self.severity == INFO else "Warning"


def failure_message(state: st.CanaryState, threshold: int | None) -> str:
    if threshold and state.failed_checks >= threshold:
        return "Failed checks threshold reached %d" % state.failed_checks
    cause = (state.reason or state.message or "").strip()
    return "Canary failed, rolled back: %s" % cause if cause else "Canary failed, rolled back."


def transition_event(before: str, state: st.CanaryState, threshold: int | None = None,
                     muted: Iterable[str] = ()) -> AlertEvent | None:
    """The alert for the phase change from ``before`` to ``state.phase``; None when it is not one Flagger announces."""
    after = state.phase
    if after == before:
        return None
    muted = set(muted)
    if after == st.PROGRESSING and before not in st.ANALYSING:
        return AlertEvent(NEW_REVISION, INFO, after, with_fields=True)
    if after == st.WAITING and "confirm-rollout" not in muted:
        return AlertEvent(WAITING_APPROVAL, WARN, after)
    if after == st.WAITING_PROMOTION and "confirm-promotion" not in muted:
        return AlertEvent(WAITING_PROMOTION_APPROVAL, WARN, after)
    if after == st.SUCCEEDED:
        return AlertEvent(PROMOTED, INFO, after)
    if after == st.FAILED:
        return AlertEvent(failure_message(state, threshold), ERROR, after)
    return None


def describe(event: AlertEvent) -> dict[str, Any]:
    return {"message": event.message, "severity": event.severity, "phase": event.phase}
