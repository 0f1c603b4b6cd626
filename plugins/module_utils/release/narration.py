# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How one analysis and its decision read: the step line the play prints and the report's timeline entry."""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import (
    ADVANCE,
    PROMOTE,
    ROLLBACK,
    Move,
    Settings,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import Assessment


def step_line(assessment: Assessment, move: Move, settings: Settings, rollback_requested_by: tuple[str, ...] = ()) -> str:
    line = assessment.summary
    if assessment.failed:
        line += "; failed checks %d/%d" % (move.position.failed_checks, settings.threshold)
    if rollback_requested_by:
        line += "; rollback requested by %s" % ", ".join(rollback_requested_by)
    if move.waiting_for:
        line += "; waiting for %s" % move.waiting_for
    if move.action == ADVANCE:
        line += " -> weight %d%%" % move.weight
    elif move.action == PROMOTE:
        line += " -> promoting"
    elif move.action == ROLLBACK:
        line += " -> rolling back"
    return line


def gate_opened_line(gate: str, move: Move) -> str:
    then = "promoting" if move.action == PROMOTE else "weight %d%%" % move.weight
    return "%s gate open -> %s" % (gate, then)


def check_entry(assessment: Assessment, move: Move, line: str, weight: int) -> dict[str, Any]:
    """The timeline entry of one analysis, in the report's shape."""
    return {
        "time": assessment.time,
        "kind": "check",
        "weight": weight,
        "metrics": [dict(m) for m in assessment.metrics],
        "webhooks": [dict(w) for w in assessment.webhooks],
        "failed_checks": move.position.failed_checks,
        "message": line,
    }
