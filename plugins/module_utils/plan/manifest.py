# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn a Flagger ``Canary`` manifest into the validated plan the ``canary`` role runs.

Pure data in, pure data out: no Ansible, no network, no YAML parser (the
caller hands over already-parsed objects). Every problem is reported with the
manifest field path it comes from, all of them at once, before anything in the
cluster changes.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.plan import alerting_plan
from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.durations import is_prometheus_duration
from ansible_collections.progressive.delivery.plugins.module_utils.plan import fields, strategy
from ansible_collections.progressive.delivery.plugins.module_utils.plan.checker import Checker, parse_go_duration, show
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import canary_name, primary_name
from ansible_collections.progressive.delivery.plugins.module_utils.routing import gateway_api
from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import (
    AB_TESTING,
    ITERATION_STRATEGIES,
    TOTAL_WEIGHT,
)

# parse_go_duration lives with the checker; it stays importable from here, where callers have always found it.
__all__ = ["BUILTIN_METRICS", "CanarySpecError", "WEBHOOK_TYPES", "build_plan", "canary_steps", "format_seconds",
           "parse_go_duration", "promotion_steps"]

BUILTIN_METRICS = ("request-success-rate", "request-duration")
WEBHOOK_TYPES = ("confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion",
                 "post-rollout", "rollback", "event")
DEFAULT_INTERVAL = "1m"
DEFAULT_METRIC_INTERVAL = "1m"
DEFAULT_THRESHOLD = 1
DEFAULT_PROGRESS_DEADLINE = 600
# Flagger's spec.provider values the role drives -> (router, API version of the route); "" is Flagger's default, Istio.
PROVIDERS: dict[str, tuple[str, str | None]] = {
    "": ("istio", None),
    "istio": ("istio", None),
    "gatewayapi:v1": ("gatewayapi", gateway_api.group_version("v1")),
    "gatewayapi:v1beta1": ("gatewayapi", gateway_api.group_version("v1beta1")),
}
SUPPORTED_PROVIDERS = tuple(PROVIDERS)
# spec.service fields only an Istio VirtualService or DestinationRule can carry: an HTTPRoute has no place for them.
ISTIO_ONLY_SERVICE_FIELDS = ("gateways", "delegation", "retries", "corsPolicy", "trafficPolicy")
# Istio match conditions an HTTPRouteMatch cannot express (it has path, method, headers and queryParams).
GATEWAY_MATCH_KEYS = ("uri", "method", "headers", "queryParams")
_GATEWAY_REF_KEYS = ("name", "namespace", "sectionName", "port", "group", "kind")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HTTP_URL = re.compile(r"^https?://[^\s/]+")


class CanarySpecError(DeliveryError, ValueError):
    """The manifest (or an override) cannot be run; ``errors`` lists every problem with its field path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__(self.describe())

    def describe(self) -> str:
        if len(self.errors) == 1:
            return "Canary manifest rejected: %s" % self.errors[0]
        return "Canary manifest rejected (%d problems): %s" % (len(self.errors), "; ".join(self.errors))


def format_seconds(seconds: float) -> str:
    """A duration for people and for Prometheus: ``90`` -> ``1m30s``, ``5`` -> ``5s``, ``0.5`` -> ``500ms``."""
    millis = int(round(seconds * 1000))
    if millis % 1000:
        return "%dms" % millis
    whole = millis // 1000
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = ""
    if hours:
        text += "%dh" % hours
    if minutes:
        text += "%dm" % minutes
    if secs or not text:
        text += "%ds" % secs
    return text


def canary_steps(step_weight: int, max_weight: int, step_weights: list[int]) -> list[int]:
    """The canary weights of an analysis, as Flagger walks them.

    With ``stepWeight`` the weight grows by that much while it is below
    ``maxWeight`` (so the last step may pass it, capped at 100: 20/20/50 gives
    20, 40, 60). Otherwise the ``stepWeights`` list, each capped at 100.
    """
    if step_weight > 0:
        steps: list[int] = []
        weight = 0
        while weight < max_weight:
            weight = min(weight + step_weight, TOTAL_WEIGHT)
            steps.append(weight)
            if weight >= TOTAL_WEIGHT:
                break
        return steps
    steps = []
    for weight in step_weights:
        capped = min(weight, TOTAL_WEIGHT)
        if not steps or capped > steps[-1]:
            steps.append(capped)
    return steps


def promotion_steps(last_weight: int, step_weight_promotion: int) -> list[int]:
    """Canary weights while traffic moves back to a promoted primary (``stepWeightPromotion``); ends at 0."""
    if step_weight_promotion <= 0:
        return [0]
    weights = []
    weight = last_weight
    while weight > 0:
        weight = max(0, weight - step_weight_promotion)
        weights.append(weight)
    return weights or [0]


def build_plan(manifest: Any, metric_templates: list[Any] | None = None, interval_override: str | None = None,
               metric_interval_override: str | None = None, critical_metrics: list[str] | None = None,
               mesh_provider: str | None = None) -> dict[str, Any]:
    """Validate a Flagger Canary manifest and return the plan the role executes.

    ``interval_override`` replaces ``analysis.interval`` and every metric
    interval (tests and demos shorten a release without editing the manifest);
    ``metric_interval_override`` replaces the metric intervals only and wins
    over ``interval_override`` for them. ``critical_metrics`` names metrics
    whose breach rolls back at once in the role's fast mode. ``mesh_provider`` is the provider of a Canary
    without ``spec.provider``, as Flagger's ``-mesh-provider`` flag (Istio when not given either).
    """
    check = Checker()
    document = check.mapping(manifest, "manifest", required=True)
    if check.errors:
        raise CanarySpecError(check.errors)
    _check_kind(check, document)
    metadata = check.mapping(document.get("metadata"), "metadata", required=True)
    name = check.string(metadata.get("name"), "metadata.name", required=True)
    namespace = check.string(metadata.get("namespace"), "metadata.namespace", required=True)
    for path, value in (("metadata.name", name), ("metadata.namespace", namespace)):
        if value and not _DNS_LABEL.match(value):
            check.error(path, "must be a DNS label (lowercase letters, digits and '-'), got %s" % show(value))
    spec = check.mapping(document.get("spec"), "spec", required=True)

    given_provider = spec.get("provider") if spec.get("provider") not in (None, "") else mesh_provider
    provider, route_api_version = _provider(check, given_provider, "spec.provider" if spec.get("provider") not in (None, "")
                                            else "the mesh provider (canary_mesh_provider)")
    target = _target(check, spec)
    service = _service(check, spec, target)
    _provider_fields(check, spec, provider, given_provider)
    autoscaler = None
    if spec.get("autoscalerRef") is not None:
        ref = check.mapping(spec.get("autoscalerRef"), "spec.autoscalerRef")
        kind = ref.get("kind", "HorizontalPodAutoscaler")
        if kind != "HorizontalPodAutoscaler":
            check.error("spec.autoscalerRef.kind", "only HorizontalPodAutoscaler is supported, got %s" % show(kind))
        api_version = check.string(ref.get("apiVersion"), "spec.autoscalerRef.apiVersion")
        if api_version and not api_version.startswith("autoscaling/"):
            check.error("spec.autoscalerRef.apiVersion", "must be an autoscaling/ version such as autoscaling/v2, got %s"
                        % show(api_version))
        autoscaler = check.string(ref.get("name"), "spec.autoscalerRef.name", required=True)
    metrics_server = check.string(spec.get("metricsServer"), "spec.metricsServer")
    if metrics_server and not _HTTP_URL.match(metrics_server):
        check.error("spec.metricsServer", "must be an http:// or https:// address of Prometheus, got %s"
                    % show(metrics_server))
        metrics_server = None
    revert_on_deletion = check.boolean(spec.get("revertOnDeletion"), "spec.revertOnDeletion")
    if revert_on_deletion:
        check.note("spec.revertOnDeletion", "there is no Canary object whose deletion the role could watch: run "
                   "playbooks/delete.yml to put the target back and remove the generated objects")
    deadline = check.integer(spec.get("progressDeadlineSeconds"), "spec.progressDeadlineSeconds", 1,
                             default=DEFAULT_PROGRESS_DEADLINE)
    skip_analysis = check.boolean(spec.get("skipAnalysis"), "spec.skipAnalysis")
    suspended = check.boolean(spec.get("suspend"), "spec.suspend")

    analysis_key = "analysis" if "analysis" in spec or "canaryAnalysis" not in spec else "canaryAnalysis"
    analysis_path = "spec.%s" % analysis_key
    analysis = check.mapping(spec.get(analysis_key), analysis_path, required=True)
    chosen = strategy.choose(check, analysis, analysis_path)

    interval_path = analysis_path + ".interval"
    interval_text = analysis.get("interval", DEFAULT_INTERVAL)
    if interval_override:
        # The manifest is still the one Flagger reads: an override used for a test must not hide its mistakes.
        check.duration(interval_text, interval_path)
        interval_text, interval_path = interval_override, "interval override"
    interval_seconds = check.duration(interval_text, interval_path)
    threshold = check.integer(analysis.get("threshold"), analysis_path + ".threshold", 1, default=DEFAULT_THRESHOLD)
    weights = _weights(check, analysis, analysis_path, chosen)
    ready = {which: strategy.ready_threshold(check, analysis, analysis_path, "%sReadyThreshold" % which)
             for which in ("primary", "canary")}
    metric_interval = metric_interval_override or interval_override
    metrics = _metrics(check, analysis, analysis_path, metric_templates or [], namespace, metric_interval,
                       set(critical_metrics or []))
    webhooks = _webhooks(check, analysis, analysis_path)
    alerting = alerting_plan(check, analysis, analysis_path, namespace, {
        "target": target, "threshold": threshold, "progress_deadline_seconds": deadline,
        "strategy": chosen["strategy"], **(weights or {})}, webhooks)
    builtin = [metric["name"] for metric in metrics if metric.get("name") in BUILTIN_METRICS and not metric.get("query")
               and not metric.get("templateRef")]
    if provider == "gatewayapi" and builtin:
        check.note(analysis_path + ".metrics", "%s query Istio's telemetry (istio_requests_total): right when Istio "
                   "implements the Gateway API; with another implementation, give MetricTemplates over its metrics "
                   "(docs/gateway-api.md)" % " and ".join(builtin))
    fields.review(check, document)
    if not check.errors and not (name and namespace and target and interval_seconds is not None and weights):
        # Every missing piece records its own error above; this only guards against a path that forgot to.
        check.error("spec", "incomplete: metadata.name, metadata.namespace, spec.targetRef and the analysis weights are required")
    if check.errors or not (name and namespace and target and interval_seconds is not None and weights):
        raise CanarySpecError(check.errors)
    return {
        "name": name,
        "namespace": namespace,
        "target": target,
        "target_kind": "Deployment",
        "primary": primary_name(target),
        "provider": provider,
        "route_api_version": route_api_version,
        "service": service,
        "service_name": service["name"],
        "primary_service": primary_name(service["name"]),
        "canary_service": canary_name(service["name"]),
        "autoscaler": autoscaler,
        "progress_deadline_seconds": deadline,
        "skip_analysis": skip_analysis,
        "suspended": suspended,
        "revert_on_deletion": revert_on_deletion,
        "metrics_server": metrics_server,
        "strategy": chosen["strategy"],
        "iterations": chosen["iterations"],
        "match": chosen["match"],
        "mirror_weight": chosen["mirror_weight"],
        "session_affinity": chosen["session_affinity"],
        "primary_ready_threshold": ready["primary"],
        "canary_ready_threshold": ready["canary"],
        "interval": format_seconds(interval_seconds),
        "interval_seconds": interval_seconds,
        "threshold": threshold,
        "max_weight": weights["max_weight"],
        "step_weight": weights["step_weight"],
        "step_weights": weights["step_weights"],
        "step_weight_promotion": weights["step_weight_promotion"],
        "steps": weights["steps"],
        "promotion_steps": weights["promotion_steps"],
        "metrics": metrics,
        "thresholds": [{"metric": m["name"], "min": (m.get("thresholdRange") or {}).get("min"),
                        "max": (m.get("thresholdRange") or {}).get("max")} for m in metrics],
        "webhooks": webhooks,
        "alerting": alerting,
        "notes": check.notes,
    }


def _check_kind(check: Checker, document: dict[str, Any]) -> None:
    kind = document.get("kind")
    if kind != "Canary":
        check.error("kind", "must be Canary, got %s" % show(kind))
    api_version = document.get("apiVersion")
    if api_version is not None and not str(api_version).startswith("flagger.app/"):
        check.error("apiVersion", "must be a flagger.app version such as flagger.app/v1beta1, got %s" % show(api_version))


def _provider(check: Checker, raw: Any, path: str) -> tuple[str, str | None]:
    """A provider as (router, route API version): ``istio`` or ``gatewayapi`` with its HTTPRoute version."""
    given = "" if raw is None else raw
    if not isinstance(given, str) or given.strip().lower() not in PROVIDERS:
        check.error(path, "%s is not supported; supported: istio (the default), gatewayapi:v1 and "
                    "gatewayapi:v1beta1 (every mesh or ingress that implements the Gateway API HTTPRoute); see the "
                    "Providers table of docs/migrating-from-flagger.md" % show(raw))
        return PROVIDERS[""]
    return PROVIDERS[given.strip().lower()]


def _provider_fields(check: Checker, spec: dict[str, Any], provider: str, given_provider: Any) -> None:
    """The fields of ``spec.service`` and ``analysis.match`` that only one of the two routers can use."""
    service = spec.get("service") if isinstance(spec.get("service"), Mapping) else {}
    path = "spec.service"
    refs = service.get("gatewayRefs")
    if provider != "gatewayapi":
        if refs is not None:
            check.note(path + ".gatewayRefs", "not used by the role: it names the Gateways of an HTTPRoute, and "
                       "spec.provider is istio (set gatewayapi:v1 to route with the Gateway API)")
        return
    for key in ISTIO_ONLY_SERVICE_FIELDS:
        if service.get(key) not in (None, False, [], {}):
            check.error("%s.%s" % (path, key), "configures Istio only, and the provider is %s: an HTTPRoute has no "
                        "such setting (remove it, or use the Gateway implementation's own policy objects)"
                        % show(given_provider))
    _gateway_refs(check, refs, path + ".gatewayRefs")
    _gateway_matches(check, service.get("match"), path + ".match")
    analysis_key = "analysis" if "analysis" in spec or "canaryAnalysis" not in spec else "canaryAnalysis"
    analysis = spec.get(analysis_key) if isinstance(spec.get(analysis_key), Mapping) else {}
    _gateway_matches(check, analysis.get("match"), "spec.%s.match" % analysis_key)


def _gateway_refs(check: Checker, refs: Any, path: str) -> None:
    if refs is None or refs == []:
        check.error(path, "is required with a Gateway API provider: the Gateways (name, namespace, sectionName, "
                    "port) the HTTPRoute attaches to")
        return
    if not isinstance(refs, list):
        check.error(path, "must be a list of {name, namespace, sectionName, port}, got %s" % show(refs))
        return
    for index, raw in enumerate(refs):
        where = "%s[%d]" % (path, index)
        if not isinstance(raw, Mapping):
            check.error(where, "must be a mapping such as {name: public, namespace: gateways}, got %s" % show(raw))
            continue
        for key in sorted(set(raw) - set(_GATEWAY_REF_KEYS)):
            check.error("%s.%s" % (where, key), "unknown field; a gateway reference has %s" % ", ".join(_GATEWAY_REF_KEYS))
        name = check.string(raw.get("name"), where + ".name", required=True)
        if name and not _DNS_SUBDOMAIN.match(name):
            check.error(where + ".name", "must be a Gateway's name, got %s" % show(name))
        for key in ("namespace", "sectionName", "group", "kind"):
            check.string(raw.get(key), "%s.%s" % (where, key))
        check.integer(raw.get("port"), where + ".port", 1, 65535)


def _gateway_matches(check: Checker, matches: Any, path: str) -> None:
    """Refuse the Istio match conditions an HTTPRouteMatch has no equivalent for (the rest is checked as Istio's)."""
    if not isinstance(matches, list):
        return
    for index, raw in enumerate(matches):
        if not isinstance(raw, Mapping):
            continue
        where = "%s[%d]" % (path, index)
        for key in sorted(set(raw) - set(GATEWAY_MATCH_KEYS)):
            check.error("%s.%s" % (where, key), "has no Gateway API equivalent (an HTTPRouteMatch has %s)"
                        % ", ".join(GATEWAY_MATCH_KEYS))
        method = raw.get("method")
        if isinstance(method, Mapping) and set(method) - {"exact"}:
            check.error(where + ".method", "the Gateway API matches a method exactly: give {exact: GET}")
        for key in ("headers", "queryParams"):
            conditions = raw.get(key) if isinstance(raw.get(key), Mapping) else {}
            for name in sorted(conditions):
                condition = conditions[name] if isinstance(conditions[name], Mapping) else {}
                if not set(condition) & {"exact", "regex"}:
                    check.error("%s.%s.%s" % (where, key, name), "the Gateway API matches %s by exact value or regex "
                                "only, got %s" % ("a header" if key == "headers" else "a query parameter",
                                                  show(conditions[name])))


def _target(check: Checker, spec: dict[str, Any]) -> str | None:
    ref = check.mapping(spec.get("targetRef"), "spec.targetRef", required=True)
    kind = ref.get("kind")
    if kind is None:
        check.error("spec.targetRef.kind", "is required (Deployment)")
    elif kind != "Deployment":
        check.error("spec.targetRef.kind", "not supported yet: only Deployment targets can be released, got %s" % show(kind))
    api_version = ref.get("apiVersion")
    if api_version not in (None, "apps/v1"):
        check.error("spec.targetRef.apiVersion", "must be apps/v1, got %s" % show(api_version))
    name = check.string(ref.get("name"), "spec.targetRef.name", required=True)
    if name and not _DNS_LABEL.match(name):
        check.error("spec.targetRef.name", "must be a DNS label, got %s" % show(name))
    return name


def _service(check: Checker, spec: dict[str, Any], target: str | None) -> dict[str, Any]:
    """``spec.service`` as given (the objects code reads Flagger's keys), with its types checked and its name set."""
    service = check.mapping(spec.get("service"), "spec.service", required=True)
    path = "spec.service"
    check.integer(service.get("port"), path + ".port", 1, 65535)
    if "port" not in service:
        check.error(path + ".port", "is required")
    name = check.string(service.get("name"), path + ".name")
    if name and not _DNS_LABEL.match(name):
        check.error(path + ".name", "must be a DNS label (the services are <name>, <name>-primary and <name>-canary), "
                    "got %s" % show(name))
    for key in ("portName", "appProtocol"):
        check.string(service.get(key), "%s.%s" % (path, key))
    target_port = service.get("targetPort")
    if isinstance(target_port, str) and not target_port.isdigit():
        check.string(target_port, path + ".targetPort")
    elif target_port is not None:
        check.integer(int(target_port) if isinstance(target_port, str) else target_port, path + ".targetPort", 1, 65535)
    for key in ("portDiscovery", "delegation"):
        check.boolean(service.get(key), "%s.%s" % (path, key))
    if service.get("timeout") is not None:
        check.duration(service.get("timeout"), path + ".timeout")
    for key in ("hosts", "gateways"):
        check.string_list(service.get(key), "%s.%s" % (path, key))
    if service.get("delegation") is True:
        given = [key for key in ("hosts", "gateways") if service.get(key)]
        if given:
            check.note(path + "." + "/".join(given), "ignored with %s.delegation: true: a delegate VirtualService has "
                       "no hosts or gateways (the VirtualService that delegates to it has them), as in Flagger"
                       % path)
    if service.get("match") is not None:
        strategy.parse_match(check, service.get("match"), path + ".match", flagger_keys=strategy.MATCH_KEYS)
    _retries(check, service.get("retries"), path + ".retries")
    rewrite = check.mapping(service.get("rewrite"), path + ".rewrite")
    for key, value in rewrite.items():
        check.string(value, "%s.rewrite.%s" % (path, key))
    headers = check.mapping(service.get("headers"), path + ".headers")
    for direction in sorted(headers):
        where = "%s.headers.%s" % (path, direction)
        if direction not in ("request", "response"):
            check.error(where, "unknown field; headers has request and response")
            continue
        operations = check.mapping(headers[direction], where)
        for key in sorted(operations):
            if key in ("add", "set"):
                check.string_map(operations[key], "%s.%s" % (where, key))
            elif key == "remove":
                check.string_list(operations[key], where + ".remove")
            else:
                check.error("%s.%s" % (where, key), "unknown field; header operations are add, set and remove")
    for key in ("corsPolicy", "trafficPolicy"):
        check.mapping(service.get(key), "%s.%s" % (path, key))
    for which in ("apex", "primary", "canary"):
        metadata = check.mapping(service.get(which), "%s.%s" % (path, which))
        for key in sorted(metadata):
            if key in ("labels", "annotations"):
                check.string_map(metadata[key], "%s.%s.%s" % (path, which, key))
            else:
                check.error("%s.%s.%s" % (path, which, key), "unknown field; %s has labels and annotations" % which)
    out = dict(service)
    out["name"] = name or target or ""
    return out


def _retries(check: Checker, value: Any, path: str) -> None:
    retries = check.mapping(value, path)
    check.integer(retries.get("attempts"), path + ".attempts", 0)
    if retries.get("perTryTimeout") is not None:
        check.duration(retries.get("perTryTimeout"), path + ".perTryTimeout")
    check.string(retries.get("retryOn"), path + ".retryOn")


def _weights(check: Checker, analysis: dict[str, Any], path: str, chosen: dict[str, Any]) -> dict[str, Any] | None:
    """The weights walked by the strategy: the canary's steps, or one 0 per iteration for the others."""
    step_weight = check.integer(analysis.get("stepWeight"), path + ".stepWeight", 1, TOTAL_WEIGHT, default=0)
    raw_steps = analysis.get("stepWeights")
    step_weights: list[int] = []
    if raw_steps is not None:
        if not isinstance(raw_steps, list) or not raw_steps:
            check.error(path + ".stepWeights", "must be a non-empty list of integers, got %s" % show(raw_steps))
        else:
            for index, item in enumerate(raw_steps):
                value = check.integer(item, "%s.stepWeights[%d]" % (path, index), 1, TOTAL_WEIGHT)
                if value is not None:
                    if step_weights and value <= step_weights[-1]:
                        check.error("%s.stepWeights[%d]" % (path, index),
                                    "must be greater than the previous step (%d), got %d" % (step_weights[-1], value))
                    step_weights.append(value)
    max_weight = check.integer(analysis.get("maxWeight"), path + ".maxWeight", 1, TOTAL_WEIGHT)
    promotion = check.integer(analysis.get("stepWeightPromotion"), path + ".stepWeightPromotion", 1, TOTAL_WEIGHT,
                              default=0)
    if step_weight is None or promotion is None:
        return None
    if chosen["strategy"] in ITERATION_STRATEGIES:
        if not chosen["iterations"]:
            return None
        steps = [0] * chosen["iterations"]
        if chosen["strategy"] != AB_TESTING:
            # Flagger's blue/green routes all traffic to the canary after the iterations and analyses it once
            # more there before promoting.
            steps.append(TOTAL_WEIGHT)
        # The canary holds all of the (matching) traffic when Flagger promotes, so stepWeightPromotion walks
        # back from 100.
        return {
            "step_weight": 0,
            "step_weights": [],
            "max_weight": steps[-1],
            "step_weight_promotion": promotion,
            "steps": steps,
            "promotion_steps": promotion_steps(TOTAL_WEIGHT, promotion),
        }
    if step_weight and step_weights:
        check.note(path + ".stepWeights", "ignored: %s.stepWeight is set too and Flagger walks stepWeight; remove "
                   "one of them" % path)
        step_weights = []
    if not step_weight and not step_weights:
        if "stepWeight" not in analysis and raw_steps is None:
            check.error(path, "needs stepWeight (with maxWeight) or stepWeights for a canary, or iterations for "
                              "A/B testing (with match) or blue/green")
        return None
    if step_weights and not step_weight:
        if max_weight is not None:
            check.note(path + ".maxWeight", "ignored: %s.stepWeights ends at %d, as in Flagger"
                       % (path, step_weights[-1]))
        max_weight = min(TOTAL_WEIGHT, step_weights[-1])
    elif max_weight is None:
        max_weight = TOTAL_WEIGHT
    steps = canary_steps(step_weight, max_weight, step_weights)
    promotion_walk = promotion_steps(steps[-1], promotion)
    if chosen["mirror_weight"] is not None:
        # Flagger's canary with mirroring analyses one mirrored step at weight 0 before the first weight.
        steps = [0] + steps
    return {
        "step_weight": step_weight,
        "step_weights": step_weights,
        "max_weight": max_weight,
        "step_weight_promotion": promotion,
        "steps": steps,
        "promotion_steps": promotion_walk,
    }


def _template_key(manifest: Mapping[str, Any]) -> tuple[str, str | None]:
    metadata = manifest.get("metadata") or {}
    return str(metadata.get("name") or ""), metadata.get("namespace")


def _resolve_template(check: Checker, ref: Any, path: str, templates: list[Any], namespace: str | None) -> dict[str, Any] | None:
    if isinstance(ref, str):
        ref = {"name": ref}
    if not isinstance(ref, Mapping) or not ref.get("name"):
        check.error(path, "must name a MetricTemplate ({name: ..., namespace: ...}), got %s" % show(ref))
        return None
    wanted = str(ref["name"])
    wanted_namespace = ref.get("namespace") or namespace
    usable = [t for t in templates if isinstance(t, Mapping) and t.get("kind", "MetricTemplate") == "MetricTemplate"]
    found = [t for t in usable if _template_key(t)[0] == wanted and _template_key(t)[1] in (None, wanted_namespace)]
    if not found:
        given = ", ".join(sorted("%s/%s" % (_template_key(t)[1] or "-", _template_key(t)[0]) for t in usable)) or "none"
        check.error(path, "MetricTemplate %s/%s was not given (pass it in canary_metric_templates; given: %s)"
                    % (wanted_namespace, wanted, given))
        return None
    template = dict(found[0])
    template_spec = template.get("spec") if isinstance(template.get("spec"), Mapping) else {}
    provider = str((template_spec.get("provider") or {}).get("type") or "prometheus")
    if provider.lower() != "prometheus":
        check.error(path, "MetricTemplate %s uses provider %s; only prometheus is supported" % (wanted, show(provider)))
        return None
    if not isinstance(template_spec.get("query"), str) or not template_spec["query"].strip():
        check.error(path, "MetricTemplate %s has no spec.query" % wanted)
        return None
    return template


def _template_provider(check: Checker, template: Mapping[str, Any], path: str,
                       namespace: str | None) -> dict[str, Any] | None:
    """A MetricTemplate's ``spec.provider`` as the plan's metric ``provider``: where its Prometheus is and how to reach it."""
    name, template_namespace = _template_key(template)
    raw = (template.get("spec") or {}).get("provider") or {}
    where = "%s (MetricTemplate %s spec.provider" % (path, name)
    address = raw.get("address")
    if address is not None and (not isinstance(address, str) or not _HTTP_URL.match(address.strip())):
        check.error(path, "MetricTemplate %s: spec.provider.address must be an http:// or https:// address, got %s"
                    % (name, show(address)))
        address = None
    secret_ref = None
    if raw.get("secretRef") is not None:
        ref = raw.get("secretRef")
        if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str) or not ref.get("name"):
            check.error(path, "MetricTemplate %s: spec.provider.secretRef must be {name: <Secret>}, got %s"
                        % (name, show(ref)))
        else:
            # Flagger reads the Secret from the template's own namespace.
            secret_ref = {"name": ref["name"], "namespace": template_namespace or namespace}
    insecure = raw.get("insecureSkipVerify", False)
    if not isinstance(insecure, bool):
        check.error(path, "MetricTemplate %s: spec.provider.insecureSkipVerify must be true or false, got %s"
                    % (name, show(insecure)))
        insecure = False
    for key in sorted(set(raw) - {"type", "address", "secretRef", "insecureSkipVerify"}):
        check.note(where + ".%s)" % key, "not used by the role: it queries Prometheus with the address, the Secret's "
                   "credentials and the certificate setting only")
    if address is None and secret_ref is None and not insecure:
        return None
    return {"address": address.strip() if address else None, "secret_ref": secret_ref, "insecure_skip_verify": insecure}


def _threshold_range(check: Checker, metric: dict[str, Any], path: str, name: str) -> dict[str, float] | None:
    raw = metric.get("thresholdRange")
    bounds: dict[str, float] = {}
    if raw is not None:
        mapping = check.mapping(raw, path + ".thresholdRange")
        for key in sorted(set(mapping) - {"min", "max"}):
            check.error("%s.thresholdRange.%s" % (path, key), "unknown field; thresholdRange has min and max")
        for key in ("min", "max"):
            value = check.number(mapping.get(key), "%s.thresholdRange.%s" % (path, key))
            if value is not None:
                bounds[key] = value
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            check.error(path + ".thresholdRange", "min (%g) is greater than max (%g): no value could pass"
                        % (bounds["min"], bounds["max"]))
        if metric.get("threshold") is not None:
            check.note(path + ".threshold", "ignored: %s.thresholdRange is set and wins, as in Flagger" % path)
    elif metric.get("threshold") is not None:
        # Flagger's deprecated single threshold: a floor for the success rate, a ceiling for everything else.
        value = check.number(metric.get("threshold"), path + ".threshold")
        if value is not None:
            bounds["min" if name == "request-success-rate" else "max"] = value
    if not bounds:
        given = raw if isinstance(raw, Mapping) else {}
        if given.get("min") is None and given.get("max") is None and metric.get("threshold") is None:
            check.error(path + ".thresholdRange", "needs min and/or max so the metric can pass or fail")
        return None
    return bounds


def _metrics(check: Checker, analysis: dict[str, Any], path: str, templates: list[Any], namespace: str | None,
             interval_override: str | None, critical: set[str]) -> list[dict[str, Any]]:
    raw_metrics = analysis.get("metrics") or []
    if not isinstance(raw_metrics, list):
        check.error(path + ".metrics", "must be a list, got %s" % show(raw_metrics))
        return []
    metrics: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_metrics):
        metric_path = "%s.metrics[%d]" % (path, index)
        if not isinstance(raw, Mapping):
            check.error(metric_path, "must be a mapping, got %s" % show(raw))
            continue
        name = check.string(raw.get("name"), metric_path + ".name", required=True)
        if not name:
            continue
        if name in seen:
            check.error(metric_path + ".name", "%s is listed twice" % show(name))
        seen.add(name)
        entry: dict[str, Any] = {"name": name}
        if raw.get("templateRef") is not None:
            template = _resolve_template(check, raw.get("templateRef"), metric_path + ".templateRef", templates, namespace)
            if template is not None:
                entry["template"] = template
                entry["templateRef"] = _template_key(template)[0]
                provider = _template_provider(check, template, metric_path + ".templateRef", namespace)
                if provider is not None:
                    entry["provider"] = provider
        elif raw.get("query"):
            entry["query"] = check.string(raw.get("query"), metric_path + ".query")
        elif name not in BUILTIN_METRICS:
            check.error(metric_path, "%s is not a builtin metric (%s): give it a templateRef"
                        % (show(name), ", ".join(BUILTIN_METRICS)))
        variables = check.mapping(raw.get("templateVariables"), metric_path + ".templateVariables")
        if variables:
            for key, value in variables.items():
                if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                    check.error("%s.templateVariables.%s" % (metric_path, key), "must be a string, got %s" % show(value))
            entry["templateVariables"] = {str(k): str(v) for k, v in variables.items()}
        interval_path = metric_path + ".interval"
        interval = raw.get("interval", DEFAULT_METRIC_INTERVAL)
        candidates = [(interval, interval_path)]
        if interval_override:
            interval, interval_path = interval_override, "metric interval override"
            candidates.append((interval, interval_path))
        for candidate, where in candidates:
            if not isinstance(candidate, str) or not is_prometheus_duration(candidate):
                check.error(where, "must be a Prometheus duration such as 30s, 1m or 1m30s, got %s" % show(candidate))
        entry["interval"] = interval
        threshold_range = _threshold_range(check, dict(raw), metric_path, name)
        if threshold_range is not None:
            entry["thresholdRange"] = threshold_range
        entry["critical"] = check.boolean(raw.get("critical"), metric_path + ".critical") or name in critical
        metrics.append(entry)
    unknown = critical - seen
    if unknown:
        check.error("critical metrics", "%s named but not among the manifest's metrics (%s)"
                    % (", ".join(sorted(unknown)), ", ".join(sorted(seen)) or "none"))
    return metrics


def _webhooks(check: Checker, analysis: dict[str, Any], path: str) -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {kind: [] for kind in WEBHOOK_TYPES}
    raw_hooks = analysis.get("webhooks") or []
    if not isinstance(raw_hooks, list):
        check.error(path + ".webhooks", "must be a list, got %s" % show(raw_hooks))
        return by_type
    names: set[str] = set()
    muted: list[str] = []
    for index, raw in enumerate(raw_hooks):
        hook_path = "%s.webhooks[%d]" % (path, index)
        if not isinstance(raw, Mapping):
            check.error(hook_path, "must be a mapping, got %s" % show(raw))
            continue
        name = check.string(raw.get("name"), hook_path + ".name", required=True)
        if name in names:
            check.error(hook_path + ".name", "%s is used by another webhook" % show(name))
        names.add(name or "")
        url = check.string(raw.get("url"), hook_path + ".url", required=True)
        if url and not re.match(r"^https?://", url):
            check.error(hook_path + ".url", "must be an http:// or https:// address, got %s" % show(url))
        kind = raw.get("type") or "rollout"
        if kind not in WEBHOOK_TYPES:
            check.error(hook_path + ".type", "must be one of %s, got %s" % (", ".join(WEBHOOK_TYPES), show(kind)))
            continue
        hook: dict[str, Any] = {"name": name, "type": kind, "url": url}
        if raw.get("timeout") is not None:
            if check.duration(raw.get("timeout"), hook_path + ".timeout") is not None:
                hook["timeout"] = raw["timeout"]
        metadata = check.mapping(raw.get("metadata"), hook_path + ".metadata")
        for key, value in metadata.items():
            if isinstance(value, (dict, list)):
                check.error("%s.metadata.%s" % (hook_path, key), "must be a string, got %s" % show(value))
        hook["metadata"] = {str(k): str(v) for k, v in metadata.items() if not isinstance(v, (dict, list))}
        retries = check.integer(raw.get("retries"), hook_path + ".retries", 0)
        if retries is not None:
            hook["retries"] = retries
        hook["mute_alert"] = check.boolean(raw.get("muteAlert"), hook_path + ".muteAlert")
        if hook["mute_alert"]:
            muted.append(hook_path)
        hook["disable_tls"] = check.boolean(raw.get("disableTLS"), hook_path + ".disableTLS")
        if hook["disable_tls"]:
            check.note(hook_path + ".disableTLS", "the role checks every webhook's certificate as "
                       "canary_webhook_validate_certs and canary_webhook_ca_cert say; set those for this endpoint")
        by_type[kind].append(hook)
    if muted and not analysis.get("alerts"):
        check.note("%s.alerts/muteAlert" % path, "muteAlert (%s) has nothing to mute: the Canary has no alerts"
                   % ", ".join(muted))
    return by_type
