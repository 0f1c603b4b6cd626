# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The durable state of one canary: its model, the phase x action table, resume decisions.

The state lives as JSON in the ConfigMap ``<canary>-canary-state``; this file
only knows the data, never the cluster.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339

STATE_KEY = "state.json"
STATE_VERSION = 1
HISTORY_LIMIT = 50

# Flagger's phase names, so dashboards and people reading events see familiar words.
NONE = ""
INITIALIZING = "Initializing"
INITIALIZED = "Initialized"
WAITING = "Waiting"
PROGRESSING = "Progressing"
WAITING_PROMOTION = "WaitingPromotion"
PROMOTING = "Promoting"
FINALISING = "Finalising"
SUCCEEDED = "Succeeded"
FAILED = "Failed"

PHASES = (NONE, INITIALIZING, INITIALIZED, WAITING, PROGRESSING, WAITING_PROMOTION, PROMOTING, FINALISING,
          SUCCEEDED, FAILED)
# A release is running: the canary is scaled up or the primary is being changed.
IN_PROGRESS = frozenset([WAITING, PROGRESSING, WAITING_PROMOTION, PROMOTING, FINALISING])
ANALYSING = frozenset([WAITING, PROGRESSING, WAITING_PROMOTION])
RECORDABLE_PHASES = (WAITING, PROGRESSING, WAITING_PROMOTION)

ACTIONS = ("initialize", "detect", "start", "record", "promote", "finalize", "rollback", "retry", "status",
           "lock", "unlock", "update_target", "store_report")
READ_ONLY_ACTIONS = frozenset(["detect", "status"])

NEW_REVISION = "new_revision"
NOTHING_TO_DO = "nothing_to_do"
IN_PROGRESS_REVISION = "in_progress"


@dataclass(frozen=True)
class Rule:
    """What an action does in a phase: ``apply`` (to a phase, or keeping it when None), ``noop`` or ``refuse``."""

    kind: str
    to: str | None = None
    reason: str = ""


def _rule_for(action: str, phase: str) -> Rule:  # pylint: disable=too-many-return-statements,too-many-branches
    if action in ("status", "lock", "unlock", "store_report"):
        return Rule("apply")
    if action == "detect":
        if phase in (NONE, INITIALIZING):
            return Rule("refuse", reason="the canary is not initialized yet: run action=initialize first (playbooks/canary.yml does)")
        return Rule("apply")
    if action == "update_target":
        if phase in (PROMOTING, FINALISING):
            return Rule("refuse", reason="the release is being promoted (phase %s): change the target after it "
                                         "finished (promote/finalize) or was rolled back" % phase)
        return Rule("apply")
    if action == "initialize":
        if phase in (NONE, INITIALIZING):
            return Rule("apply", INITIALIZED)
        # Later phases only reconcile the generated objects; the primary and the
        # target's replicas belong to the running release.
        return Rule("apply")
    if phase in (NONE, INITIALIZING):
        if action == "rollback":
            return Rule("noop", reason="no release was started, there is nothing to roll back")
        return Rule("refuse", reason="the canary is not initialized yet: run action=initialize first (playbooks/canary.yml does)")
    if action == "start":
        if phase in (INITIALIZED, SUCCEEDED, FAILED):
            return Rule("apply", PROGRESSING)
        if phase in ANALYSING:
            return Rule("apply")
        return Rule("refuse", reason="the release is being promoted (phase %s): run action=promote or finalize to "
                                     "finish it, or action=rollback" % phase)
    if action == "record":
        if phase in ANALYSING:
            return Rule("apply")
        return Rule("refuse", reason="no analysis is running (phase %s): run action=start first (playbooks/canary.yml with a new revision)" % phase)
    if action == "promote":
        if phase in ANALYSING or phase == PROMOTING:
            return Rule("apply", FINALISING)
        if phase in (FINALISING, SUCCEEDED):
            return Rule("noop", reason="the primary already runs this revision (phase %s)" % phase)
        return Rule("refuse", reason="there is no release to promote (phase %s): run action=start first (playbooks/canary.yml with a new revision)" % phase)
    if action == "finalize":
        if phase == FINALISING:
            return Rule("apply", SUCCEEDED)
        if phase == SUCCEEDED:
            return Rule("noop", reason="the release already succeeded")
        if phase == PROMOTING:
            return Rule("refuse", reason="the primary has not finished its rollout: run action=promote again")
        return Rule("refuse", reason="nothing was promoted (phase %s): run action=promote first" % phase)
    if action == "rollback":
        if phase in IN_PROGRESS:
            return Rule("apply", FAILED)
        if phase in (INITIALIZED, SUCCEEDED, FAILED):
            # The phase stays; a canary left with replicas by a run that failed half way is scaled to 0.
            return Rule("apply")
        return Rule("noop", reason="no release is in progress (phase %s)" % phase)
    if action == "retry":
        if phase == FAILED:
            return Rule("apply", INITIALIZED)
        if phase in IN_PROGRESS:
            return Rule("refuse", reason="a release is in progress (phase %s): retry only re-arms a Failed one" % phase)
        return Rule("noop", reason="nothing failed (phase %s)" % phase)
    raise ValueError("unknown action %r" % action)


TRANSITIONS: dict[str, dict[str, Rule]] = {action: {phase: _rule_for(action, phase) for phase in PHASES} for action in ACTIONS}


def transition(action: str, phase: str) -> Rule:
    if action not in TRANSITIONS:
        raise ValueError("unknown action %r, expected one of %s" % (action, ", ".join(ACTIONS)))
    if phase not in PHASES:
        raise ValueError("unknown phase %r stored in the state, expected one of %s" % (phase, ", ".join(PHASES[1:])))
    return TRANSITIONS[action][phase]


# JSON field name -> attribute name; the JSON names follow Kubernetes' camelCase.
_FIELDS = {
    "version": "version",
    "phase": "phase",
    "canaryWeight": "canary_weight",
    "failedChecks": "failed_checks",
    "stepIndex": "step_index",
    "iterations": "iterations",
    "lastAppliedSpec": "last_applied_spec",
    "lastPromotedSpec": "last_promoted_spec",
    "failedSpec": "failed_spec",
    "trackedConfigs": "tracked_configs",
    "runId": "run_id",
    "target": "target",
    "service": "service",
    "virtualService": "virtual_service",
    "route": "route",
    "message": "message",
    "reason": "reason",
    "startedAt": "started_at",
    "lastTransitionTime": "last_transition_time",
    "lastUpdateTime": "last_update_time",
    "primaryTemplateBeforePromotion": "primary_template_before_promotion",
    "primaryConfigsBeforePromotion": "primary_configs_before_promotion",
    "history": "history",
}


@dataclass
class CanaryState:  # pylint: disable=too-many-instance-attributes
    version: int = STATE_VERSION
    phase: str = NONE
    canary_weight: int = 0
    failed_checks: int = 0
    # Index of the weight step in the plan; -1 before the first step. None in a state written before it was kept.
    step_index: int | None = None
    iterations: int = 0
    last_applied_spec: str | None = None
    last_promoted_spec: str | None = None
    failed_spec: str | None = None
    tracked_configs: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    target: str | None = None
    service: str | None = None
    virtual_service: dict[str, Any] = field(default_factory=dict)
    # What routes the canary, whichever the router: {kind, apiVersion, name, rule, adopted}. virtualService stays
    # beside it for Istio, as states written before it and their readers know only that one.
    route: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    reason: str = ""
    started_at: str | None = None
    last_transition_time: str | None = None
    last_update_time: str | None = None
    primary_template_before_promotion: dict[str, Any] | None = None
    # {"configMaps": {name: {"data": ..., "binaryData": ...}}, "secrets": [name, ...]}: the ``-primary`` configs as
    # they were before the promotion; the Secrets' data is kept in the Secret ``previous_secrets_name``, never here.
    primary_configs_before_promotion: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {key: copy.deepcopy(getattr(self, attr)) for key, attr in _FIELDS.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "CanaryState":
        state = cls()
        for key, attr in _FIELDS.items():
            if data and key in data and data[key] is not None:
                setattr(state, attr, copy.deepcopy(data[key]))
        return state

    def copy(self) -> "CanaryState":
        return CanaryState.from_dict(self.to_dict())

    def set_phase(self, phase: str, now: float, message: str | None = None, reason: str | None = None) -> None:
        if phase != self.phase:
            self.last_transition_time = format_rfc3339(now)
        self.phase = phase
        if message is not None:
            self.message = message
        if reason is not None:
            self.reason = reason


# Plain keys beside state.json with what ``kubectl get canaries`` shows for a Flagger Canary, so that
# ``kubectl get configmap -o custom-columns=...`` or a jsonpath reads them without decoding the JSON.
SUMMARY_KEYS = ("phase", "canaryWeight", "failedChecks", "iterations", "lastTransitionTime")
# The label that tells a canary's state ConfigMap from the other ConfigMaps the collection manages (-primary copies).
KIND_LABEL = "progressive.delivery/kind"
STATE_KIND = "canary-state"


def summary_data(state: CanaryState) -> dict[str, str]:
    """The plain ConfigMap keys of ``SUMMARY_KEYS`` (ConfigMap values are strings); state.json stays the truth."""
    return {
        "phase": state.phase,
        "canaryWeight": str(state.canary_weight),
        "failedChecks": str(state.failed_checks),
        "iterations": str(state.iterations),
        "lastTransitionTime": state.last_transition_time or "",
    }


def parse_state(text: str | None, where: str) -> CanaryState:
    """Decode the stored JSON; a hand-edited, broken state is an error a person must fix, not a fresh start."""
    if not text:
        return CanaryState()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError("the state in %s is not valid JSON (%s): fix or delete that ConfigMap key '%s'"
                         % (where, exc, STATE_KEY)) from None
    if not isinstance(data, dict):
        raise ValueError("the state in %s is not a JSON object: fix or delete that ConfigMap key '%s'" % (where, STATE_KEY))
    state = CanaryState.from_dict(data)
    if state.phase not in PHASES:
        raise ValueError("the state in %s has an unknown phase %r: expected one of %s"
                         % (where, state.phase, ", ".join(PHASES[1:])))
    return state


def dump_state(state: CanaryState) -> str:
    return json.dumps(state.to_dict(), sort_keys=True, separators=(",", ":"))


def append_history(history: list[dict[str, Any]], entry: dict[str, Any], limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The history with ``entry`` added, keeping only the newest ``limit`` entries."""
    if limit <= 0:
        return []
    return (list(history) + [entry])[-limit:]


def revision_status(state: CanaryState, checksum: str) -> tuple[str, str]:
    """``new_revision``, ``nothing_to_do`` or ``in_progress`` for the target's current checksum, with a reason."""
    if state.phase in IN_PROGRESS:
        if checksum != state.last_applied_spec:
            return IN_PROGRESS_REVISION, ("a release of revision %s is in progress (phase %s) and the target changed "
                                          "again to %s: start restarts the analysis with the new revision"
                                          % (state.last_applied_spec, state.phase, checksum))
        return IN_PROGRESS_REVISION, "revision %s is in progress (phase %s)" % (checksum, state.phase)
    if checksum == state.last_promoted_spec:
        return NOTHING_TO_DO, "revision %s is what the primary runs" % checksum
    if state.phase == FAILED and checksum == state.failed_spec:
        # The reason, not the last message: a drift repair after the failure writes its own message.
        return NOTHING_TO_DO, ("revision %s failed its last release (%s): change the target or run action=retry to "
                               "analyse it again" % (checksum, state.reason or state.message or "no reason recorded"))
    return NEW_REVISION, "revision %s differs from the promoted %s" % (checksum, state.last_promoted_spec)


ON_RESUME_CHOICES = ("resume", "rollback")


def resume_plan(state: CanaryState, run_id: str, lock_free: bool, on_resume: str = "resume",
                checksum: str | None = None) -> dict[str, Any]:
    """What this run should do about a release another run left behind.

    ``action`` is ``none`` (nothing in flight), ``continue`` (this run's own
    release), ``wait`` (the other run still holds the lock), ``resume`` (carry on
    analysing at the recorded weight), ``restart`` (the target changed since the
    analysis began: analyse the new revision from weight 0), ``promote``/``finalize``
    (finish a promotion: the primary already carries the new revision, so it is
    rolled forward unless a rollback is asked for) or ``rollback``.

    ``checksum`` is the target's current revision, None when the target was not read.
    """
    plan: dict[str, Any] = {
        "needed": False, "action": "none", "phase": state.phase, "weight": state.canary_weight,
        "iterations": state.iterations, "failed_checks": state.failed_checks, "previous_run": state.run_id,
        "step_index": state.step_index,
    }
    if state.phase not in IN_PROGRESS:
        return plan
    if state.run_id != run_id and not lock_free:
        plan["action"] = "wait"
        return plan
    if state.phase in ANALYSING and checksum is not None and checksum != state.last_applied_spec:
        # The recorded weight and failed checks judged a revision that no longer runs: carrying them over would
        # give an unanalysed revision that share of the traffic at once.
        plan.update(needed=True, action="restart", weight=0, iterations=0, failed_checks=0, step_index=-1,
                    message="a new revision %s replaced revision %s, whose analysis was in progress (phase %s at "
                            "weight %s%%): the analysis restarts with all traffic on the primary"
                            % (checksum, state.last_applied_spec, state.phase, state.canary_weight))
        return plan
    if state.run_id == run_id:
        plan["action"] = "continue"
        return plan
    plan["needed"] = True
    if on_resume == "rollback":
        plan["action"] = "rollback"
        # Traffic goes back to the primary: that is the only weight a rollback may leave.
        plan["weight"] = 0
        plan["step_index"] = -1
    elif state.phase == PROMOTING:
        plan["action"] = "promote"
    elif state.phase == FINALISING:
        plan["action"] = "finalize"
    else:
        plan["action"] = "resume"
    return plan


def _int_or(value: Any, default: int) -> int:
    if value is None:
        return default
    return int(value)


def apply_record(state: CanaryState, analysis: dict[str, Any], now: float, limit: int = HISTORY_LIMIT) -> bool:
    """Store one analysis result in ``state``; False when the same iteration was already recorded."""
    phase = analysis.get("phase") or state.phase
    if phase not in RECORDABLE_PHASES:
        raise ValueError("analysis.phase must be one of %s, got %r" % (", ".join(RECORDABLE_PHASES), phase))
    iteration = _int_or(analysis.get("iteration"), state.iterations + 1)
    weight = _int_or(analysis.get("weight"), state.canary_weight)
    if not 0 <= weight <= 100:
        raise ValueError("analysis.weight must be between 0 and 100, got %s" % weight)
    failed_checks = _int_or(analysis.get("failed_checks"), state.failed_checks)
    # A re-run of a task that already stored its result (a resumed run) must not count it twice.
    if (analysis.get("iteration") is not None and iteration == state.iterations and weight == state.canary_weight
            and failed_checks == state.failed_checks and phase == state.phase):
        return False
    entry = {
        "time": format_rfc3339(now),
        "iteration": iteration,
        "weight": weight,
        "phase": phase,
        "failedChecks": failed_checks,
        "metrics": copy.deepcopy(analysis.get("metrics") or []),
        "webhooks": copy.deepcopy(analysis.get("webhooks") or []),
        "runId": state.run_id,
    }
    if analysis.get("message"):
        entry["message"] = analysis["message"]
    state.history = append_history(state.history, entry, limit)
    state.iterations = iteration
    state.canary_weight = weight
    state.failed_checks = failed_checks
    if analysis.get("step_index") is not None:
        state.step_index = int(analysis["step_index"])
    state.set_phase(phase, now, message=analysis.get("message") or state.message)
    return True


def transition_entry(action: str, state: CanaryState, now: float, message: str) -> dict[str, Any]:
    """A history line for a phase change, so the history tells the whole story and not only the checks."""
    return {"time": format_rfc3339(now), "action": action, "phase": state.phase, "weight": state.canary_weight,
            "runId": state.run_id, "message": message}
