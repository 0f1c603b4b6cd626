# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One ``canary_step`` task, wherever it runs: its options, their checks, and the call to the manager.

The module runs it in its own process on the target host; the action plugin runs it in the controller's process
when the task runs there anyway (``connection: local``), which spares a Python process start and the import of the
Kubernetes client per task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.delivery import ALERT_ARG_SPEC, ALERTING_ARG_SPEC, AlertOptions
from ansible_collections.progressive.delivery.plugins.module_utils.durations import PROMETHEUS, DurationError, to_seconds
from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.options import K8S_AUTH_ARG_SPEC
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.pushgateway import PUSHGATEWAY_ARG_SPEC, PushOptions
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import run_identity
from ansible_collections.progressive.delivery.plugins.module_utils.release.manager import ACTIONS, CanaryManager, CanaryParams
from ansible_collections.progressive.delivery.plugins.module_utils.release.state import ON_RESUME_CHOICES
from ansible_collections.progressive.delivery.plugins.module_utils.release.status_watch import WatchOptions


def argument_spec() -> dict:
    return dict(
        K8S_AUTH_ARG_SPEC,
        **PUSHGATEWAY_ARG_SPEC,
        **ALERT_ARG_SPEC,
        **ALERTING_ARG_SPEC,
        action=dict(type="str", required=True, choices=list(ACTIONS)),
        name=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        target=dict(type="str"),
        target_kind=dict(type="str", default="Deployment"),
        service=dict(type="dict"),
        provider=dict(type="str", choices=["istio", "gatewayapi"], default="istio"),
        route_api_version=dict(type="str", choices=["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"]),
        virtual_service=dict(type="dict", options=dict(adopt=dict(type="str"), route=dict(type="str"))),
        adopt_flagger=dict(type="bool", default=False),
        autoscaler=dict(type="str"),
        progress_deadline_seconds=dict(type="int", default=600),
        primary_ready_threshold=dict(type="int", default=100),
        canary_ready_threshold=dict(type="int", default=100),
        wait_timeout=dict(type="int"),
        run_id=dict(type="str"),
        holder=dict(type="str"),
        lease_ttl=dict(type="int", default=120),
        lock_wait=dict(type="int", default=0),
        suspended=dict(type="bool", default=False),
        analysis=dict(type="dict", options=dict(
            weight=dict(type="int"), iteration=dict(type="int"), metrics=dict(type="list", elements="dict"),
            webhooks=dict(type="list", elements="dict"), failed_checks=dict(type="int"),
            phase=dict(type="str", choices=["Progressing", "Waiting", "WaitingPromotion"]), summary=dict(type="str"))),
        phase=dict(type="str", choices=["Progressing", "Waiting", "WaitingPromotion", "Failed"]),
        reason=dict(type="str"),
        on_resume=dict(type="str", choices=list(ON_RESUME_CHOICES), default="resume"),
        history_limit=dict(type="int", default=50),
        image=dict(type="str"),
        container=dict(type="str"),
        pod_annotations=dict(type="dict"),
        watch=dict(type="bool", default=False),
        watch_interval=dict(type="raw", default="2s"),
        watch_timeout=dict(type="raw", default="1h"),
        report_run=dict(type="str"),
        report=dict(type="dict"),
        reports_kept=dict(type="int", default=10),
    )


class StepOptionError(DeliveryError):
    """An option value the argument spec cannot refuse by itself."""


@dataclass
class StepOutcome:
    """What the task returns: its result, the warnings to show, and the failure message when it failed."""

    result: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None


def check_options(p: Mapping[str, Any]) -> None:
    for option in ("progress_deadline_seconds", "lease_ttl", "history_limit"):
        if p[option] < 1:
            raise StepOptionError("%s must be at least 1, got %s" % (option, p[option]))
    for option in ("primary_ready_threshold", "canary_ready_threshold"):
        if not 0 <= p[option] <= 100:
            raise StepOptionError("%s is a percent of ready replicas, between 0 and 100; got %s" % (option, p[option]))
    if p["suspended"] and p["action"] != "prepare":
        raise StepOptionError("suspended applies to action=prepare only, got action=%s" % p["action"])
    if p["lock_wait"] < 0:
        raise StepOptionError("lock_wait must be 0 or more seconds, got %s" % p["lock_wait"])
    if p["wait_timeout"] is not None and p["wait_timeout"] < 0:
        raise StepOptionError("wait_timeout must be 0 or more, got %s" % p["wait_timeout"])
    if p["reports_kept"] < 1:
        raise StepOptionError("reports_kept must be at least 1, got %s" % p["reports_kept"])
    if p["watch"] and p["action"] != "status":
        raise StepOptionError("watch follows a release with action=status only, got action=%s" % p["action"])
    if p["action"] == "store_report" and not p["report"]:
        raise StepOptionError("action=store_report needs report: the report dictionary the canary role assembles")
    watch_seconds(p)


def _seconds(value: Any, option: str) -> float:
    try:
        number = to_seconds(value, PROMETHEUS)
    except DurationError:
        raise StepOptionError("%s %r is not a number of seconds or a duration like 500ms, 2s or 1h" % (option, value)) from None
    if number <= 0:
        raise StepOptionError("%s must be positive, got %r" % (option, value))
    return number


def watch_seconds(p: Mapping[str, Any]) -> tuple[float, float]:
    """``watch_interval`` and ``watch_timeout`` in seconds."""
    return _seconds(p["watch_interval"], "watch_interval"), _seconds(p["watch_timeout"], "watch_timeout")


def step_params(p: Mapping[str, Any], say: Callable[[str], None] | None = None) -> CanaryParams:
    run_id, holder = run_identity(p["run_id"], p["holder"])
    interval, timeout = watch_seconds(p)
    analysis = {key: value for key, value in (p["analysis"] or {}).items() if value is not None}
    if "summary" in analysis:
        analysis["message"] = analysis.pop("summary")
    return CanaryParams(
        action=p["action"], name=p["name"], namespace=p["namespace"], run_id=run_id, holder=holder, target=p["target"],
        target_kind=p["target_kind"], service=p["service"], virtual_service=p["virtual_service"],
        provider=p["provider"], route_api_version=p["route_api_version"], adopt_flagger=p["adopt_flagger"],
        autoscaler=p["autoscaler"], progress_deadline_seconds=p["progress_deadline_seconds"], lease_ttl=p["lease_ttl"],
        lock_wait=p["lock_wait"], suspended=p["suspended"],
        analysis=analysis or None, phase=p["phase"],
        reason=p["reason"], on_resume=p["on_resume"], wait_timeout=p["wait_timeout"], history_limit=p["history_limit"],
        image=p["image"], container=p["container"], pod_annotations=p["pod_annotations"],
        primary_ready_threshold=p["primary_ready_threshold"], canary_ready_threshold=p["canary_ready_threshold"],
        pushgateway=PushOptions.from_params(p), alerts=AlertOptions.from_params(p),
        watch=WatchOptions(interval, timeout, say) if p["watch"] else None, report_run=p["report_run"],
        report=p["report"], reports_kept=p["reports_kept"])


def run_step(p: Mapping[str, Any], client: Any, check_mode: bool, diff: bool,
             say: Callable[[str], None] | None = None) -> StepOutcome:
    """Run the action the options name with ``client``; options are already checked by ``check_options``.

    ``say`` prints a line while the task runs (a watch's changes), where the caller can print.
    """
    manager = CanaryManager(client, step_params(p, say), check_mode=check_mode)
    failure = None
    try:
        result = manager.run()
    except DeliveryError as error:
        result, failure = dict(error.result), error.message
    warnings = list(result.pop("warnings_list", []))
    if not diff:
        result.pop("diff", None)
    return StepOutcome(result, warnings, failure)
