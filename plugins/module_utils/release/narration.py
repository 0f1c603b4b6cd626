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
from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import CONFIRM_TRAFFIC_INCREASE, Strategy


def step_line(assessment: Assessment, move: Move, settings: Settings, rollback_requested_by: tuple[str, ...] = ()) -> str:
    line = assessment.summary
    if assessment.failed:
        line += "; failed checks %d/%d" % (move.position.failed_checks, settings.threshold)
    if rollback_requested_by:
        line += "; rollback requested by %s" % ", ".join(rollback_requested_by)
    if move.waiting_for:
        line += "; waiting for %s" % move.waiting_for
    if move.action == ADVANCE:
        line += " -> " + step_label(settings, move)
    elif move.action == PROMOTE:
        line += " -> promoting"
    elif move.action == ROLLBACK:
        line += " -> rolling back"
    return line


def step_label(settings: Settings, move: Move) -> str:
    """The step a move goes to, as people read it: ``weight 20%``, ``iteration 2/5``."""
    if settings.strategy is not None:
        return settings.strategy.label(move.position.index)
    return "weight %d%%" % move.weight


def gate_opened_line(gate: str, move: Move, settings: Settings) -> str:
    then = "promoting" if move.action == PROMOTE else step_label(settings, move)
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


def flagger_event(canary: str, target: str, namespace: str, strategy: Strategy, move: Move, index: int,
                  assessment: Assessment | None, gate_hooks: tuple[str, ...] = ()) -> tuple[str, bool] | None:
    """The event webhook message Flagger sends for this moment of the release, and whether it is a warning.

    ``assessment`` is None for the record after a traffic shift. Promotion and rollback messages come from the role.
    """
    who = "%s.%s" % (canary, namespace)
    if assessment is None:
        if move.action != ADVANCE:
            return None
        step = move.position.index
        if strategy.switches_to_canary and step == len(strategy.steps) - 1:
            if strategy.mirror_weight is not None:
                return "Stop traffic mirroring and route all traffic to canary", False
            return "Routing all traffic to canary", False
        if strategy.iterations:
            return "Advance %s canary iteration %d/%d" % (who, step + 1, strategy.iteration_count), False
        return "Advance %s canary weight %d" % (who, move.weight), False
    if assessment.failed:
        return "Halt %s advancement %s" % (who, "; ".join(assessment.causes) or "a check failed"), True
    if move.waiting_for:
        hooks = ", ".join(gate_hooks) or move.waiting_for
        if move.waiting_for == CONFIRM_TRAFFIC_INCREASE:
            return "Halt %s advancement waiting for traffic increase approval %s" % (who, hooks), True
        return "Halt %s advancement waiting for approval %s" % (who, hooks), True
    if index < 0 and move.action == ADVANCE:
        return "Starting canary analysis for %s.%s" % (target, namespace), False
    return None
