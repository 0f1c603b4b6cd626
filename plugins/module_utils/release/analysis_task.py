# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``canary_analysis`` task: its options, and one step (or the confirm-rollout wait) run with real clients."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.delivery import ALERT_ARG_SPEC, AlertOptions
from ansible_collections.progressive.delivery.plugins.module_utils.durations import PROMETHEUS, DurationError, to_seconds
from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_auth, resolve_auth
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.options import K8S_AUTH_ARG_SPEC
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.cluster_templates import fetch_templates
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.options import PROMETHEUS_ARG_SPEC, SEQUENTIAL_ARG_SPEC
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.providers import build_gate
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.pushgateway import PUSHGATEWAY_ARG_SPEC, PushOptions
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_judge import (
    SequentialConfigError,
    SequentialSettings,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import MODES, SEQUENTIAL, Position, Settings
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import run_identity
from ansible_collections.progressive.delivery.plugins.module_utils.release.release_ports import ClusterReleasePorts
from ansible_collections.progressive.delivery.plugins.module_utils.release.release_run import PATHS, Recovery, ReleaseRun
from ansible_collections.progressive.delivery.plugins.module_utils.release.plan_task import plan_release
from ansible_collections.progressive.delivery.plugins.module_utils.release.report_task import report_release
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_loop import StepLoop, wait_for_confirm_rollout
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_ports import ClusterPorts, Run
from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import utc_now
from ansible_collections.progressive.delivery.plugins.module_utils.routing.release_router import ROUTE_KINDS, release_router
from ansible_collections.progressive.delivery.plugins.module_utils.routing.route_router import is_transient

STEP = "step"
RELEASE_STAGE = "release"
RUN_STAGE = "run"
CONFIRM_ROLLOUT_STAGE = "confirm_rollout"
ROUTE_STAGE = "route"
TEMPLATES_STAGE = "templates"
REPORT_STAGE = "report"
PREFLIGHT_STAGE = "preflight"
PLAN_STAGE = "plan"
ROUTE_TO_STEP = "step"
ROUTE_TO_PRIMARY = "primary"
ROUTE_TO_CANARY = "canary"
ROUTE_TO_WEIGHT = "weight"

ANALYSIS_ARG_SPEC: dict[str, dict[str, Any]] = dict(
    K8S_AUTH_ARG_SPEC,
    **PROMETHEUS_ARG_SPEC,
    **PUSHGATEWAY_ARG_SPEC,
    **ALERT_ARG_SPEC,
    stage=dict(type="str", default=STEP, choices=[
        STEP, RELEASE_STAGE, RUN_STAGE, CONFIRM_ROLLOUT_STAGE, ROUTE_STAGE, TEMPLATES_STAGE, REPORT_STAGE, PREFLIGHT_STAGE,
        PLAN_STAGE]),
    manifest=dict(type="raw"),
    metric_templates=dict(type="list", elements="raw", default=[]),
    interval_override=dict(type="str", default=""),
    metric_interval_override=dict(type="str", default=""),
    critical_metrics=dict(type="list", elements="str", default=[]),
    mesh_provider=dict(type="str", default=""),
    adopt_virtual_service=dict(type="dict", default={}),
    adopt_http_route=dict(type="dict", default={}),
    report=dict(type="dict"),
    report_path=dict(type="path"),
    reports_kept=dict(type="int", default=0),
    publish_stats=dict(type="bool", default=False),
    template_refs=dict(type="list", elements="dict", default=[]),
    to=dict(type="str", default=ROUTE_TO_STEP, choices=[ROUTE_TO_STEP, ROUTE_TO_PRIMARY, ROUTE_TO_CANARY, ROUTE_TO_WEIGHT]),
    weight=dict(type="int"),
    plan=dict(type="dict", default={}),
    position=dict(type="dict", default={}, options=dict(
        index=dict(type="int", default=-1),
        failed_checks=dict(type="int", default=0),
        gate_closed_since=dict(type="float"),
        held_for_promotion=dict(type="bool", default=False),
    )),
    run_id=dict(type="str"),
    holder=dict(type="str"),
    lease_ttl=dict(type="int", default=120),
    checksum=dict(type="str", default=""),
    mode=dict(type="str", default="fast", choices=list(MODES)),
    poll=dict(type="raw", default=5),
    gate_poll=dict(type="raw", default=5),
    gate_timeout=dict(type="raw", default=0),
    hard_breach_margin=dict(type="float", default=0.2),
    compare=dict(type="dict", options=dict(
        confidence=dict(type="float", default=0.95),
        min_requests=dict(type="int", default=50),
        latency_tolerance=dict(type="float", default=1.2),
    )),
    sequential=SEQUENTIAL_ARG_SPEC,
    router=dict(type="dict", aliases=["virtual_service"], options=dict(
        kind=dict(type="str", choices=list(ROUTE_KINDS)),
        name=dict(type="str", required=True),
        route=dict(type="str"),
        api_version=dict(type="str"),
    )),
    webhook_validate_certs=dict(type="bool", default=True),
    webhook_ca_cert=dict(type="path"),
    path=dict(type="str", choices=list(PATHS)),
    resume=dict(type="dict", default={}),
    reason=dict(type="str", default=""),
    recovery_timeout=dict(type="raw", default=120),
    recovery_delay=dict(type="raw", default=5),
)


class AnalysisTaskError(DeliveryError):
    """The task cannot run or go on; its message says which canary and why."""


def seconds(value: Any, option: str, allow_zero: bool = False) -> float:
    try:
        number = to_seconds(value, PROMETHEUS)
    except DurationError:
        raise AnalysisTaskError("%s %r is not a number of seconds or a duration like 500ms or 5s" % (option, value)) from None
    if number < 0 or (number == 0 and not allow_zero):
        raise AnalysisTaskError("%s must be %s, got %r" % (option, "0 or more" if allow_zero else "positive", value))
    return number


def run_analysis_task(args: Mapping[str, Any], say: Callable[[str], None], check_mode: bool = False,
                      playbook_dir: str = "") -> dict[str, Any]:
    if args["stage"] == PLAN_STAGE:
        return plan_stage(args, playbook_dir or os.getcwd())
    if args["stage"] == REPORT_STAGE:
        try:
            return report_release(args, say, check_mode)
        except DeliveryError as exc:
            raise AnalysisTaskError(exc.message) from None
    if args["stage"] == TEMPLATES_STAGE:
        try:
            return fetch_templates(args)
        except DeliveryError as exc:
            raise AnalysisTaskError(exc.message) from None
    plan = args["plan"]
    if args["stage"] == PREFLIGHT_STAGE:
        return preflight(plan, args)
    if not args.get("run_id"):
        raise AnalysisTaskError("run_id is required with stage=%s: the run that holds the canary's lock" % args["stage"])
    for key in ("name", "namespace", "target", "steps", "threshold", "interval_seconds"):
        if key not in plan:
            raise AnalysisTaskError("plan has no %r: pass the plan the progressive.delivery.canary_plan filter builds" % key)
    gate_poll = seconds(args["gate_poll"], "gate_poll")
    run_id, holder = run_identity(args["run_id"], args.get("holder"))
    sequential = args.get("sequential") or {}
    try:
        settings_of_tests = SequentialSettings(**{k: v for k, v in sequential.items() if k != "state" and v is not None})
    except SequentialConfigError as exc:
        raise AnalysisTaskError("sequential: %s" % exc) from None
    run = Run(run_id=run_id, holder=holder, lease_ttl=args["lease_ttl"], checksum=args["checksum"], mode=args["mode"],
              poll=seconds(args["poll"], "poll"), compare=args.get("compare"),
              webhook_validate_certs=args["webhook_validate_certs"], webhook_ca_cert=args.get("webhook_ca_cert"),
              parent_pid=os.getppid(), sequential=settings_of_tests, sequential_state=sequential.get("state"),
              pushgateway=PushOptions.from_params(args), alerts=AlertOptions.from_params(args, plan.get("alerting") or {}))
    prefix = "%s/%s: " % (plan["namespace"], plan["name"])
    try:
        kube = client_from_auth(resolve_auth(args))
        # Each metric goes to its own Prometheus (a MetricTemplate's provider, spec.metricsServer, or this task's).
        gate = build_gate(plan, args, kube) if plan.get("metrics") and args["stage"] in (STEP, RELEASE_STAGE, RUN_STAGE) else None
        router = release_router(kube, plan, args.get("router"))
        ports = ClusterPorts(plan, run, kube, gate.client if gate else None, lambda: gate, router,
                             say=lambda line: say(prefix + line))
        if args["stage"] == ROUTE_STAGE:
            return route_release(ports, args, check_mode)
        if args["stage"] == CONFIRM_ROLLOUT_STAGE:
            outcome, waited, asks = wait_for_confirm_rollout(ports, gate_poll, seconds(args["gate_timeout"], "gate_timeout", True))
            return {"changed": False, "outcome": outcome, "waited": round(waited, 3), "gate_asks": asks}
        settings = Settings(steps=tuple(int(s) for s in plan["steps"]), threshold=int(plan["threshold"]),
                            interval=float(plan["interval_seconds"]), mode=args["mode"], poll=run.poll,
                            gate_timeout=seconds(args["gate_timeout"], "gate_timeout", True), strategy=ports.strategy)
        position = Position(**args["position"])
        if not -1 <= position.index < len(settings.steps):
            raise AnalysisTaskError("position.index %d is outside the plan's %d steps" % (position.index, len(settings.steps)))
        loop = StepLoop(plan, settings, ports, gate_poll, args["hard_breach_margin"], timestamp=utc_now)
        if args["stage"] == RUN_STAGE:
            return run_release(plan, args, ports, loop, settings, kube)
        started = time.monotonic()
        outcome = loop.run_release(position) if args["stage"] == RELEASE_STAGE else loop.run(position)
    except AnalysisTaskError:
        raise
    except (DeliveryError, ValueError) as exc:
        raise AnalysisTaskError("canary %s/%s: %s" % (plan["namespace"], plan["name"], exc),
                                result=dict(getattr(exc, "result", None) or {})) from None
    except KubeApiError as exc:
        explained = exc.explain("use", "the canary's objects", None, plan["namespace"])
        raise AnalysisTaskError("canary %s/%s: %s" % (plan["namespace"], plan["name"], explained),
                                result={"retryable": is_transient(exc)}) from None
    move = outcome.move
    warnings = {"warnings": list(ports.warnings)} if ports.warnings else {}
    return {
        **warnings,
        "changed": move.action == "advance",
        "move": move.action,
        "reason": move.reason,
        "weight": move.weight,
        "phase": move.phase,
        "position": {"index": move.position.index, "failed_checks": move.position.failed_checks,
                     "gate_closed_since": move.position.gate_closed_since,
                     "held_for_promotion": move.position.held_for_promotion},
        "analyses": outcome.analyses,
        "gate_asks": outcome.gate_asks,
        "elapsed": round(time.monotonic() - started, 3),
        "timeline": outcome.timeline,
        "samples": outcome.samples,
        "evidence": outcome.evidence,
        # Sequential mode: the counts and tests the next step's task goes on from.
        "sequential": ports.sequential_progress() if run.mode == SEQUENTIAL else {},
    }


def plan_stage(args: Mapping[str, Any], playbook_dir: str) -> dict[str, Any]:
    """``stage: plan``: read, check and plan the Canary manifest; MetricTemplates it misses come from the cluster."""
    def from_cluster(refs: list[dict[str, str]]) -> list[dict[str, Any]]:
        return fetch_templates(dict(args, template_refs=refs))["templates"]

    options = {"manifest": args.get("manifest"), "metric_templates": args.get("metric_templates"),
               "alert_providers": args.get("alert_providers"),
               "interval": args.get("interval_override"), "metric_interval": args.get("metric_interval_override"),
               "critical_metrics": args.get("critical_metrics"), "mesh_provider": args.get("mesh_provider"),
               "virtual_service": args.get("adopt_virtual_service"), "http_route": args.get("adopt_http_route")}
    try:
        return plan_release(options, playbook_dir, from_cluster)
    except DeliveryError as exc:
        raise AnalysisTaskError(exc.message) from None


def run_release(plan: Mapping[str, Any], args: Mapping[str, Any], ports: ClusterPorts, loop: StepLoop,
                settings: Settings, kube: Any) -> dict[str, Any]:
    """``stage: run``: the whole release along the path detect gave, from the start to the promotion or rollback."""
    if not args.get("path"):
        raise AnalysisTaskError("stage=run needs path: what detect decided this run does (%s)" % ", ".join(PATHS))

    def preflight_errors() -> list[str]:
        checked = preflight(plan, args, kube)
        return ["%s: %s" % (metric["name"], metric.get("reason") or "error")
                for metric in checked["metrics"] if metric.get("result") == "error"]

    release_ports = ClusterReleasePorts(ports, loop.gate_poll, settings.gate_timeout, preflight_errors)
    recovery = Recovery(timeout=seconds(args["recovery_timeout"], "recovery_timeout", True),
                        delay=seconds(args["recovery_delay"], "recovery_delay", True))
    run = ReleaseRun(plan, release_ports, loop.run_release, args["path"], resume=args.get("resume"),
                     checksum=args["checksum"], rollback_reason=args.get("reason") or "", recovery=recovery,
                     timestamp=utc_now)
    started = time.monotonic()
    try:
        outcome = run.run()
    except KubeApiError as exc:
        # What the run did so far goes with the failure: the role's rescue puts traffic back only when it was moved.
        explained = exc.explain("use", "the canary's objects", None, plan["namespace"])
        raise AnalysisTaskError("canary %s/%s: %s" % (plan["namespace"], plan["name"], explained),
                                result=dict(run.outcome.as_result(), retryable=is_transient(exc))) from None
    warnings = {"warnings": list(ports.warnings)} if ports.warnings else {}
    return dict(outcome.as_result(), changed=outcome.touched, elapsed=round(time.monotonic() - started, 3),
                sequential=ports.sequential_progress() if ports.run.mode == SEQUENTIAL else {}, **warnings)


def preflight(plan: Mapping[str, Any], args: Mapping[str, Any], kube: Any = None) -> dict[str, Any]:
    """Ask every metric's Prometheus once, before the canary takes traffic: an error (a wrong URL, token or query)
    is reported; no data yet is not, since the canary has not served anything."""
    if not plan.get("metrics"):
        return {"changed": False, "passed": True, "metrics": []}
    quiet = dict(plan, metrics=[dict(metric, on_no_data="pass", critical=False) for metric in plan["metrics"]])
    try:
        kube = kube if kube is not None else client_from_auth(resolve_auth(args))
        result = build_gate(quiet, args, kube).once()
    except DeliveryError as exc:
        raise AnalysisTaskError("canary %s/%s: %s" % (plan.get("namespace"), plan.get("name"), exc.message)) from None
    except KubeApiError as exc:
        explained = exc.explain("read", "the MetricTemplates' Secrets", None, plan.get("namespace"))
        raise AnalysisTaskError("canary %s/%s: %s" % (plan.get("namespace"), plan.get("name"), explained)) from None
    errors = [metric for metric in result["metrics"] if metric.get("result") == "error"]
    return {"changed": False, "passed": not errors, "metrics": result["metrics"]}


def route_release(ports: ClusterPorts, args: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    """Put the route where the release stands (``to: step``), all on the primary, all on the canary, or at a weight.

    Going to the primary (or to a weight) also removes what the strategy added (match route, mirror, sticky routes),
    so a finished or failed release leaves the route as the user knows it.
    """
    strategy = ports.strategy
    index = int((args.get("position") or {}).get("index", -1))
    if args["to"] == ROUTE_TO_PRIMARY:
        params, where = strategy.primary_only(), "all traffic on the primary"
    elif args["to"] == ROUTE_TO_CANARY:
        params, where = strategy.all_to_canary(), "all traffic on the canary"
    elif args["to"] == ROUTE_TO_WEIGHT:
        weight = args.get("weight")
        if weight is None or not 0 <= weight <= 100:
            raise AnalysisTaskError("to=weight needs weight, the canary's share from 0 to 100, got %r" % (weight,))
        params, where = dict(strategy.primary_only(), weight=weight), "weight %d%%" % weight
    else:
        if not -1 <= index < len(strategy.steps):
            raise AnalysisTaskError("position.index %d is outside the plan's %d steps" % (index, len(strategy.steps)))
        params, where = strategy.route(index), strategy.label(index)
    result = ports.route(params, check_mode=check_mode)
    edit = result.edit
    return {"changed": edit.changed, "routed_to": where, "weight": edit.canary_weight, "changes": edit.changes,
            "api_version": result.api_version, "route": ports.router.ref.label}
