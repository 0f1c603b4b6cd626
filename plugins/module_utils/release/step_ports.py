# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The step loop's ports against the real world: webhooks, Prometheus, the cluster.

Each call goes through the same module_utils the modules use (``webhooks``,
``metrics.gate``, ``release.manager``, ``routing``), in the controller's
process: one client per step instead of one module process per call.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.delivery import AlertOptions
from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import Gate
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.pushgateway import PushOptions
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_gate import SequentialGate
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_judge import SequentialSettings
from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import (
    PROGRESSING,
    ROLLBACK,
    WAITING_PROMOTION,
    Move,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import Assessment
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import LeaseLock, LockHeld
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.release.manager import CanaryManager, CanaryParams
from ansible_collections.progressive.delivery.plugins.module_utils.release.narration import flagger_event
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_loop import Checks
from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import Strategy
from ansible_collections.progressive.delivery.plugins.module_utils.routing.release_router import ReleaseRouter
from ansible_collections.progressive.delivery.plugins.module_utils.routing.virtual_service import RouterResult
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.runner import run_webhook
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import spec_from_params

FAST = "fast"
SEQUENTIAL = "sequential"


class StepError(DeliveryError):
    """The step cannot go on (the lock was taken, a write failed); the role's rescue puts traffic back."""


@dataclass(frozen=True)
class Run:
    """Who runs the release and how: identity, lock, analysis mode and webhook TLS settings."""

    run_id: str
    holder: str
    lease_ttl: int
    checksum: str
    mode: str = FAST
    poll: float = 5.0
    compare: Mapping[str, Any] | None = None
    webhook_validate_certs: bool = True
    webhook_ca_cert: str | None = None
    history_limit: int = 50
    # Sequential mode: the tests' settings, and where the previous step's task left their counts.
    sequential: SequentialSettings | None = None
    sequential_state: Mapping[str, Any] | None = None
    # The ansible-playbook process that runs the task; when it dies, the task must not hold the canary on.
    parent_pid: int | None = None
    # Where the state writes push Flagger's flagger_canary_* series; None: not pushed.
    pushgateway: PushOptions | None = None
    # The Canary's alerts, sent by the state writes at phase changes; None: the Canary has none.
    alerts: AlertOptions | None = None


class ClusterPorts:
    """``step_loop.Ports`` for one canary: its webhooks, its metrics in Prometheus, its objects in the cluster."""

    def __init__(self, plan: Mapping[str, Any], run: Run, kube: Any, prometheus: Any, gate_builder: Callable[..., Gate],
                 router: ReleaseRouter, say: Callable[[str], None],
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.plan = plan
        self.run = run
        self.kube = kube
        self.prometheus = prometheus
        self.gate_builder = gate_builder
        self._say = say
        self._clock = clock
        self._sleep = sleep
        self.lock = LeaseLock(kube, plan["namespace"], plan["name"], run.run_id, run.holder, run.lease_ttl, clock)
        self.router = router
        self.strategy = Strategy.from_plan(plan, run.checksum)
        self.last_renewal = clock()
        self.phase = ""
        self.last_event = ""
        self.sequential_state: dict[str, Any] = dict(run.sequential_state or {})
        self._sequential_gate: SequentialGate | None = None
        # Warnings of the state writes (a failed metrics push), each once, for the task's result.
        self.warnings: list[str] = []
        # The analysis that decided a rollback, for the rollback to store: record() does not store it.
        self.deciding_analysis: dict[str, Any] = {}

    # -- webhooks --------------------------------------------------------------------------

    def _hooks(self, hook_type: str) -> list[Mapping[str, Any]]:
        return list((self.plan.get("webhooks") or {}).get(hook_type) or [])

    def _call(self, hook: Mapping[str, Any], phase: str, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        params = {
            "url": hook["url"], "type": hook["type"], "name": self.plan["name"], "namespace": self.plan["namespace"],
            "phase": phase, "checksum": self.run.checksum, "metadata": dict(metadata if metadata is not None else hook.get("metadata") or {}),
            "validate_certs": self.run.webhook_validate_certs, "ca_cert": self.run.webhook_ca_cert,
        }
        for option in ("timeout", "retries"):
            if hook.get(option) is not None:
                params[option] = hook[option]
        run = run_webhook(spec_from_params(params))
        return dict(run.result, item={"name": hook["name"], "type": hook["type"]}, msg=run.msg, failed=run.failed)

    def call_hooks(self, hook_type: str, phase: str) -> list[dict[str, Any]]:
        """Call every webhook of ``hook_type`` once: their results, failures included."""
        return [self._call(hook, phase) for hook in self._hooks(hook_type)]

    def rollback_requested(self) -> tuple[str, ...]:
        phase = self.phase or PROGRESSING
        return tuple(hook["name"] for hook in self._hooks("rollback") if self._call(hook, phase).get("rollback_requested"))

    def gate_open(self, gate: str) -> bool | None:
        hooks = self._hooks(gate)
        if not hooks:
            return None
        phase = self.phase or PROGRESSING
        return all(self._call(hook, phase).get("passed") for hook in hooks)

    def notify(self, phase: str, message: str, warning: bool = False) -> None:
        """Event webhooks only inform: one that is down never changes the release."""
        for hook in self._hooks("event"):
            metadata = dict(hook.get("metadata") or {}, eventMessage=message, eventType="Warning" if warning else "Normal")
            self._call(hook, phase, metadata)

    # -- checks ----------------------------------------------------------------------------

    def run_checks(self, index: int, weight: int) -> Checks:
        phase = self.phase or PROGRESSING
        hooks = tuple(self._call(hook, phase) for hook in self._hooks("pre-rollout" if index < 0 else "rollout"))
        metrics = self.plan.get("metrics") or []
        if index < 0 or not metrics:
            return Checks(webhooks=hooks)
        gate = self.gate_builder()
        if self.run.mode == SEQUENTIAL:
            # The tests compare with the primary themselves; the compare option has nothing to add.
            return Checks(gate=self.sequential_gate(gate).watch(self.run.poll, float(self.plan["interval_seconds"])),
                          webhooks=hooks)
        if self.run.mode == FAST:
            result = gate.watch(self.run.poll, float(self.plan["interval_seconds"]))
        else:
            result = gate.once()
        compare = None
        if self.run.compare:
            compared = gate.compare(self.plan["primary"], float(self.run.compare["confidence"]),
                                    int(self.run.compare["min_requests"]), float(self.run.compare["latency_tolerance"]))
            compare = compared.get("comparison")
        return Checks(gate=result, compare=compare, webhooks=hooks)

    def sequential_gate(self, gate: Gate) -> SequentialGate:
        if self._sequential_gate is None:
            self._sequential_gate = SequentialGate(gate, self.plan["primary"], self.run.sequential or SequentialSettings(),
                                                   float(self.plan["interval_seconds"]), self.sequential_state)
        return self._sequential_gate

    def sequential_progress(self) -> dict[str, Any]:
        """What the next step's task needs to go on counting from where this one stopped."""
        if self._sequential_gate is not None:
            return self._sequential_gate.to_state()
        return dict(self.sequential_state)

    # -- cluster ---------------------------------------------------------------------------

    def shift(self, index: int) -> None:
        self.route(self.strategy.route(index))
        if self.run.mode == SEQUENTIAL and index >= 0:
            # The counts start when the canary first takes traffic, not when its first analysis begins.
            now = self._clock()
            if self._sequential_gate is not None and self._sequential_gate.traffic_since is None:
                self._sequential_gate.traffic_since = now
            self.sequential_state.setdefault("traffic_since", now)

    def route(self, routing: Mapping[str, Any], check_mode: bool = False) -> RouterResult:
        """Apply a strategy's routing (weight, match route, mirror, sticky routes) to the release's route."""
        return self.router.apply(routing, check_mode=check_mode)

    def record(self, move: Move, index: int, summary: str, assessment: Assessment | None) -> None:
        self.check_playbook_alive()
        if move.action == ROLLBACK:
            # The rollback records its own transition, with the final count of failed checks and this analysis.
            self.deciding_analysis = {"metrics": [dict(m) for m in assessment.metrics],
                                      "webhooks": [dict(w) for w in assessment.webhooks]} if assessment else {}
            return
        steps = self.plan["steps"]
        phase = WAITING_PROMOTION if move.position.held_for_promotion else PROGRESSING
        analysis: dict[str, Any] = {
            "weight": steps[index] if index >= 0 else 0,
            "step_index": index,
            "failed_checks": move.position.failed_checks,
            "phase": phase,
            "message": summary,
        }
        if assessment is not None:
            analysis["metrics"] = [dict(m) for m in assessment.metrics]
            analysis["webhooks"] = [dict(w) for w in assessment.webhooks]
        self._manage("record", analysis=analysis)
        self.last_renewal = self._clock()
        self.phase = phase
        gate_hooks = tuple(hook["name"] for hook in self._hooks(move.waiting_for)) if move.waiting_for else ()
        event = flagger_event(self.plan["name"], self.plan["target"], self.plan["namespace"], self.strategy, move,
                              index, assessment, gate_hooks)
        # A hold repeats its analysis; the event webhooks hear of it once, as Flagger tells them of a phase change.
        if event is not None and event[0] != self.last_event:
            self.last_event = event[0]
            self.notify(phase, event[0], warning=event[1])

    def check_playbook_alive(self) -> None:
        """Stop when the play that started this task is gone (killed, cancelled in AWX).

        The task runs in a process the play forked; killed alone, the play would leave it analysing and renewing
        the lock with nobody to promote or roll back, and the next run could never take over.
        """
        if self.run.parent_pid is not None and os.getppid() != self.run.parent_pid:
            raise StepError("the ansible-playbook process that ran this analysis (pid %d) is gone; stopping so that the "
                            "lock expires and the next run takes the release over" % self.run.parent_pid)

    def keep_lock(self) -> None:
        self.check_playbook_alive()
        now = self._clock()
        if now - self.last_renewal < self.run.lease_ttl / 3.0:
            return
        try:
            self.lock.renew_if_held()
        except LockHeld as exc:
            raise StepError(str(exc)) from None
        except KubeApiError as exc:
            raise StepError(exc.explain("update", "Lease", self.lock.name, self.plan["namespace"])) from None
        self.last_renewal = now

    def _manage(self, action: str, **params: Any) -> dict[str, Any]:
        try:
            return self.manage(action, **params)
        except CanaryFailure as exc:
            raise StepError(str(exc)) from None

    def manage(self, action: str, **params: Any) -> dict[str, Any]:
        """Run a canary_step action on this canary; a failure raises ``CanaryFailure`` with what the action returned."""
        manager = CanaryManager(self.kube, CanaryParams(
            action=action, name=self.plan["name"], namespace=self.plan["namespace"], run_id=self.run.run_id,
            holder=self.run.holder, target=self.plan["target"], lease_ttl=self.run.lease_ttl,
            progress_deadline_seconds=int(self.plan.get("progress_deadline_seconds") or 600),
            history_limit=self.run.history_limit, pushgateway=self.run.pushgateway, alerts=self.run.alerts, **params),
            clock=self._clock, sleep=self._sleep)
        result = manager.run()
        for warning in result.get("warnings_list") or ():
            if warning not in self.warnings:
                self.warnings.append(warning)
        return result

    # -- output and time -------------------------------------------------------------------

    def say(self, line: str) -> None:
        self._say(line)

    def clock(self) -> float:
        return self._clock()

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)
