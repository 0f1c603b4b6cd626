# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``release_run.ReleasePorts`` against the real world: the step loop's ports, plus the canary's start and end."""

from __future__ import annotations

from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_loop import wait_for_confirm_rollout
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_ports import ClusterPorts
from ansible_collections.progressive.delivery.plugins.module_utils.routing.route_router import is_transient


class ClusterReleasePorts:
    """The release's calls, each through the same code the ``canary_step`` and ``canary_analysis`` stages run."""

    def __init__(self, ports: ClusterPorts, gate_poll: float, gate_timeout: float,
                 preflight: Callable[[], list[str]]) -> None:
        self.ports = ports
        self.gate_poll = gate_poll
        self.gate_timeout = gate_timeout
        self._preflight = preflight

    def manage(self, action: str, **params: Any) -> dict[str, Any]:
        plan = self.ports.plan
        # What the role's canary_step tasks get from module_defaults: the readiness thresholds and the autoscaler.
        options = {"primary_ready_threshold": int(plan.get("primary_ready_threshold") or 100),
                   "canary_ready_threshold": int(plan.get("canary_ready_threshold") or 100)}
        if plan.get("autoscaler"):
            options["autoscaler"] = plan["autoscaler"]
        try:
            return self.ports.manage(action, **dict(options, **params))
        except KubeApiError as exc:
            raise DeliveryError(exc.explain(action, "the canary's objects", None, plan["namespace"]),
                                result={"retryable": is_transient(exc)}) from None

    def deciding_analysis(self) -> dict[str, Any]:
        return dict(self.ports.deciding_analysis)

    def route_to(self, where: str, index: int = -1, weight: int | None = None) -> None:
        strategy = self.ports.strategy
        if where == "primary":
            routing = strategy.primary_only()
        elif where == "weight":
            routing = dict(strategy.primary_only(), weight=weight)
        else:
            routing = strategy.route(index)
        try:
            self.ports.route(routing)
        except KubeApiError as exc:
            raise DeliveryError(exc.explain("update", "route", self.ports.router.ref.label, self.ports.plan["namespace"]),
                                result={"retryable": is_transient(exc)}) from None

    def notify(self, phase: str, message: str, warning: bool = False) -> None:
        self.ports.notify(phase, message, warning)

    def post_rollout(self, phase: str) -> list[dict[str, Any]]:
        return self.ports.call_hooks("post-rollout", phase)

    def confirm_rollout(self) -> tuple[str, float]:
        outcome, waited, _asks = wait_for_confirm_rollout(self.ports, self.gate_poll, self.gate_timeout)
        return outcome, waited

    def preflight_errors(self) -> list[str]:
        return self._preflight()

    def keep_lock(self) -> None:
        self.ports.keep_lock()

    def say(self, line: str) -> None:
        self.ports.say(line)

    def clock(self) -> float:
        return self.ports.clock()

    def sleep(self, seconds: float) -> None:
        self.ports.sleep(seconds)
