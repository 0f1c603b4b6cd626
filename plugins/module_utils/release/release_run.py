# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release of one revision in one call: the start, the analysis step by step, then the promotion or the rollback.

What the role decided before (the lock, initialize, which ``path`` this run takes) comes in; what the report needs
comes out. Every call to the outside world goes through :class:`ReleasePorts`, so the sequence is tested with fakes
and driven against a cluster by the ``canary_analysis`` action (``stage: run``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import PROMOTE, ROLLBACK, Position
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_loop import (
    GATE_OPEN,
    ROLLBACK_REQUESTED,
    StepOutcome,
    wait_renewing_the_lease,
)
from ansible_collections.progressive.delivery.plugins.module_utils.report.timeline import timeline_event

NEW = "new"
RESTART = "restart"
RESUME = "resume"
CONTINUE = "continue"
PROMOTE_PATH = "promote"
FINALIZE_PATH = "finalize"
ROLLBACK_PATH = "rollback"
# The paths detect can give that this call runs: an analysis, or the end of a release a previous run left.
ANALYSED_PATHS = (NEW, RESTART, RESUME, CONTINUE)
PATHS = ANALYSED_PATHS + (PROMOTE_PATH, FINALIZE_PATH, ROLLBACK_PATH)

SUCCEEDED = "Succeeded"
FAILED = "Failed"
NOTHING_TO_DO = "NothingToDo"
ROLLBACK_HINT = ("The primary still serves every request. Fix the release and change the target, or run "
                 "playbooks/retry.yml to analyse the same revision again.")


class ReleaseRunError(DeliveryError):
    """The release cannot go on; ``touched`` says whether traffic or the workloads were changed before."""


class ReleasePorts(Protocol):
    """What the release needs besides the step loop: the canary's actions, the route, webhooks, output and time."""

    def manage(self, action: str, **params: Any) -> dict[str, Any]:
        """Run a canary_step action; raises with ``result`` (its ``phase``) when it fails."""

    def deciding_analysis(self) -> dict[str, Any]:
        """The metrics and webhooks of the analysis that decided a rollback; empty when none did."""

    def route_to(self, where: str, index: int = -1, weight: int | None = None) -> None:
        """Route to ``primary``, the plan's step ``index`` (``step``) or a ``weight`` of the canary."""

    def notify(self, phase: str, message: str, warning: bool = False) -> None: ...

    def post_rollout(self, phase: str) -> list[dict[str, Any]]:
        """Call the post-rollout webhooks once each; their results, failures included."""

    def confirm_rollout(self) -> tuple[str, float]:
        """Wait on the confirm-rollout gates: the outcome and the seconds waited."""

    def preflight_errors(self) -> list[str]:
        """Ask every metric once before the canary takes traffic: ``name: reason`` of each that errs."""

    def keep_lock(self) -> None: ...

    def say(self, line: str) -> None: ...

    def clock(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Recovery:
    """How long a rollback keeps trying to put traffic back and scale the canary down, and how often."""

    timeout: float = 120.0
    delay: float = 5.0

    @property
    def attempts(self) -> int:
        return max(int(math.ceil(self.timeout / max(self.delay, 0.1))), 0) + 1


@dataclass
class RunOutcome:
    """The run's result as the role's report and AWX stats read it."""

    result: str = ""
    reason: str = ""
    hint: str = ""
    weight: int = 0
    failed_checks: int = 0
    checksum: str = ""
    touched: bool = False
    analyses: int = 0
    gate_asks: int = 0
    timeline: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        return {"result": self.result, "reason": self.reason, "hint": self.hint, "weight": self.weight,
                "failed_checks": self.failed_checks, "checksum": self.checksum, "touched": self.touched,
                "analyses": self.analyses, "gate_asks": self.gate_asks, "timeline": self.timeline,
                "samples": self.samples, "evidence": self.evidence}


def resume_position(path: str, resume: Mapping[str, Any], steps: list[int]) -> Position:
    """Where the analysis starts: before the first step, or where the release a previous run left stands."""
    if path in (NEW, RESTART):
        return Position()
    weight = int(resume.get("weight") or 0)
    index = resume.get("step_index")
    if index is None:
        index = steps.index(weight) if weight in steps else -1
    return Position(index=int(index), failed_checks=int(resume.get("failed_checks") or 0),
                    held_for_promotion=resume.get("phase") == "WaitingPromotion")


class ReleaseRun:  # pylint: disable=too-many-instance-attributes
    """One run of a release along ``path``, as detect decided it."""

    def __init__(self, plan: Mapping[str, Any], ports: ReleasePorts, analyse: Callable[[Position], StepOutcome],
                 path: str, resume: Mapping[str, Any] | None = None, checksum: str = "", rollback_reason: str = "",
                 recovery: Recovery = Recovery(), timestamp: Callable[[], str] | None = None) -> None:
        if path not in PATHS:
            raise ReleaseRunError("path %r is not one of %s" % (path, ", ".join(PATHS)))
        self.plan = plan
        self.ports = ports
        self.analyse = analyse
        self.path = path
        self.resume = dict(resume or {})
        self.rollback_reason = rollback_reason
        self.recovery = recovery
        self.timestamp = timestamp
        self.outcome = RunOutcome(checksum=checksum, weight=int(self.resume.get("weight") or 0)
                                  if path not in (NEW, RESTART) else 0)
        self.who = "%s.%s" % (plan["name"], plan["namespace"])

    def run(self) -> RunOutcome:
        try:
            if self.path in ANALYSED_PATHS:
                self._analysed_release()
            elif self.path == ROLLBACK_PATH:
                self.outcome.touched = True
                self._rollback(self.rollback_reason or "rolled back on resume (canary_on_resume=rollback)")
            else:
                self.outcome.touched = True
                self._promote()
        except DeliveryError as exc:
            raise ReleaseRunError(exc.message, result=dict(dict(exc.result or {}), **self.outcome.as_result())) from None
        return self.outcome

    # -- the start -------------------------------------------------------------------------

    def _analysed_release(self) -> None:
        plan, outcome = self.plan, self.outcome
        skip_analysis = bool(plan.get("skip_analysis"))
        if self.path == NEW and plan.get("metrics") and not skip_analysis:
            errors = self.ports.preflight_errors()
            if errors:
                raise ReleaseRunError(
                    "Prometheus cannot answer the analysis queries, so the canary was not started: %s. Check "
                    "canary_prometheus_url (or the MetricTemplate's provider address) and its credentials."
                    % "; ".join(errors))
        if self.path != NEW:
            outcome.touched = True
        if self.path == RESTART:
            # The target changed while a dead run analysed it: the route still gives the canary, which now runs an
            # unanalysed revision, the dead run's weight.
            self.ports.route_to("primary")
        if self.path in (NEW, RESTART) and (plan.get("webhooks") or {}).get("confirm-rollout"):
            gate, waited = self.ports.confirm_rollout()
            if gate != GATE_OPEN:
                outcome.result = NOTHING_TO_DO
                outcome.reason = ("a rollback webhook asked to stop before the release started" if gate == ROLLBACK_REQUESTED
                                  else "the confirm-rollout gate stayed closed for %d s (canary_webhook_gate_timeout); "
                                       "nothing was started" % waited)
                return
        outcome.touched = True
        started = self._start()
        if started is None:
            return
        if skip_analysis:
            self._promote()
            return
        step = self.analyse(resume_position(self.path, self.resume, list(plan["steps"])))
        outcome.analyses, outcome.gate_asks = step.analyses, step.gate_asks
        outcome.weight, outcome.failed_checks = step.move.weight, step.move.position.failed_checks
        outcome.timeline.extend(step.timeline)
        outcome.samples.extend(step.samples)
        outcome.evidence.extend(step.evidence)
        if step.move.action == PROMOTE:
            self._promote()
        elif step.move.action == ROLLBACK:
            self._rollback(step.move.reason)

    def _start(self) -> dict[str, Any] | None:
        """Scale the canary up and wait for it; None when it never became ready (the start marked it Failed)."""
        plan, outcome = self.plan, self.outcome
        fresh = self.path in (NEW, RESTART)
        try:
            started = self.ports.manage("start")
        except DeliveryError as exc:
            if (exc.result or {}).get("phase") != FAILED:
                raise
            outcome.result, outcome.reason, outcome.weight = FAILED, exc.message, 0
            outcome.timeline.append(self._event("start", exc.message, weight=0))
            self.ports.say("canary never became ready: %s" % exc.message)
            self.ports.route_to("primary")
            self.ports.notify(FAILED, exc.message, warning=True)
            return None
        outcome.checksum = started.get("checksum") or outcome.checksum
        outcome.timeline.append(self._event("start", started.get("message") or "canary started", weight=outcome.weight))
        self.ports.say(started.get("message") or "canary started")
        if not fresh:
            # Traffic goes back where the state says the release stands, before its analysis goes on.
            position = resume_position(self.path, self.resume, list(plan["steps"]))
            self.ports.route_to("step", index=position.index)
        if fresh:
            verb = "Scaling up" if self.path == NEW else "Restarting Canary analysis for"
            message = "New revision detected! %s %s.%s" % (verb, plan["target"], plan["namespace"])
        else:
            message = started.get("message") or ""
        self.ports.notify("Progressing", message)
        return started

    # -- the end ---------------------------------------------------------------------------

    def _promote(self) -> None:
        plan, outcome, ports = self.plan, self.outcome, self.ports
        if self.path != FINALIZE_PATH:
            ports.notify("Promoting", "Copying %s.%s template spec to %s.%s" % (
                plan["target"], plan["namespace"], plan["primary"], plan["namespace"]))
            ports.say("promoting: copying %s's template into %s" % (plan["target"], plan["primary"]))
            ports.manage("promote")
        ports.notify("Finalising", "Routing all traffic to primary %s.%s" % (plan["primary"], plan["namespace"]))
        # stepWeightPromotion: the canary's share shrinks one interval at a time before all traffic is on the primary.
        for weight in list(plan.get("promotion_steps") or [])[:-1]:
            ports.route_to("weight", weight=int(weight))
            ports.say("promotion: canary weight %d%%" % int(weight))
            self._wait(float(plan["interval_seconds"]))
        ports.route_to("primary")
        finalized = ports.manage("finalize")
        outcome.result, outcome.weight = SUCCEEDED, 0
        outcome.reason = ("promoted without analysis (spec.skipAnalysis)" if plan.get("skip_analysis") else
                          "analysis passed at every step up to %s%%; %s" % (plan["steps"][-1], finalized.get("message") or ""))
        outcome.timeline.append(self._event("promotion", "Copied %s into %s; all traffic on the primary" % (
            plan["target"], plan["primary"]), weight=0))
        ports.say("promoted: all traffic on %s" % plan["primary"])
        self._post_rollout(SUCCEEDED)
        ports.notify(SUCCEEDED, "Promotion completed! %s" % self.who)

    def _rollback(self, reason: str) -> None:
        outcome, ports = self.outcome, self.ports
        # The canary is scaled down only once no request goes to it: scaled down while it still has a share, it
        # would answer its users 503.
        self._patiently(lambda: ports.route_to("primary"), only_retryable=True)
        analysis = dict(ports.deciding_analysis(), failed_checks=outcome.failed_checks)
        self._patiently(lambda: ports.manage("rollback", reason=reason, analysis=analysis))
        outcome.result, outcome.reason, outcome.weight, outcome.hint = FAILED, reason, 0, ROLLBACK_HINT
        outcome.timeline.append(self._event("rollback", reason, weight=0, failed_checks=outcome.failed_checks))
        ports.say("Rolled back %s/%s: %s" % (self.plan["namespace"], self.plan["name"], reason))
        self._post_rollout(FAILED)
        ports.notify(FAILED, "Canary failed! %s" % reason, warning=True)

    def _post_rollout(self, phase: str) -> None:
        for hook in self.ports.post_rollout(phase):
            name = (hook.get("item") or {}).get("name", "?")
            if hook.get("failed"):
                self.ports.say("post-rollout webhook %s failed (the release is %s all the same): %s" % (
                    name, phase, hook.get("msg") or hook.get("reason") or ""))
            else:
                self.ports.say("post-rollout webhook %s: ok" % name)

    def _patiently(self, call: Callable[[], Any], only_retryable: bool = False) -> Any:
        """Try ``call`` for the recovery timeout: the API may be failing for a while, often why the release fails."""
        attempts = self.recovery.attempts
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except DeliveryError as exc:
                # A refusal (403, 404) stays a refusal; only failures the API server may get over are tried again.
                if attempt == attempts or (only_retryable and not (exc.result or {}).get("retryable")):
                    raise
                self.ports.say("%s; trying again in %g s (%d/%d)" % (exc.message, self.recovery.delay, attempt, attempts - 1))
            self._wait(self.recovery.delay)
        return None

    # -- helpers ---------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        wait_renewing_the_lease(self.ports, seconds, 1.0)

    def _event(self, kind: str, message: str, weight: int, failed_checks: int | None = None) -> dict[str, Any]:
        return timeline_event(kind, message, weight=weight, failed_checks=failed_checks,
                              time=self.timestamp() if self.timestamp else None)
