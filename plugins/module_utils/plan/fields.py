# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the role does with every field of Flagger's ``Canary`` (flagger.app/v1beta1).

One table, read by the parser (which notes every field it does not use and
every field it does not know), by the tests (which check each entry against
the plan) and by ``docs/migrating-from-flagger.md``. Paths are dotted; ``[]``
stands for every item of a list.
"""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.plan.checker import Checker

HONOURED = "honoured"
DIFFERENT = "honoured differently"
WARNED = "warned"

_ROUTE = "passed to the VirtualService or the HTTPRoute as Flagger does"
_ISTIO = "passed to the Istio VirtualService or DestinationRules as Flagger does; refused with a Gateway API provider"
_NOT_ISTIO = "it configures the %s provider, and the role drives Istio or the Gateway API"
_ALERTS = "sent at the release's phase changes through the AlertProvider, as Flagger does (docs/alerts.md)"
_COOKIE = "the role's affinity cookie carries the name, value and Max-Age only"

# path -> (treatment, why). A path whose children are not listed is taken as a
# whole: its content is validated (or passed through) where the parser uses it.
FIELDS: dict[str, tuple[str, str]] = {
    "apiVersion": (HONOURED, "must be a flagger.app version"),
    "kind": (HONOURED, "must be Canary"),
    "metadata": (HONOURED, "name and namespace name the release and its state"),
    "spec": (HONOURED, "the release"),
    "spec.provider": (HONOURED, "istio (or empty), gatewayapi:v1 or gatewayapi:v1beta1; other providers are refused"),
    "spec.metricsServer": (HONOURED, "the Prometheus of builtin metrics and of templates without an address, "
                                     "unless canary_prometheus_url is set"),
    "spec.progressDeadlineSeconds": (HONOURED, "how long a rollout may take to become ready"),
    "spec.targetRef": (HONOURED, "the workload released"),
    "spec.targetRef.apiVersion": (HONOURED, "apps/v1"),
    "spec.targetRef.kind": (HONOURED, "Deployment; DaemonSet and Service targets are refused"),
    "spec.targetRef.name": (HONOURED, "the Deployment; its primary is <name>-primary"),
    "spec.autoscalerRef": (HONOURED, "the HorizontalPodAutoscaler copied for the primary"),
    "spec.autoscalerRef.apiVersion": (HONOURED, "the autoscaler's API version"),
    "spec.autoscalerRef.kind": (HONOURED, "HorizontalPodAutoscaler; ScaledObject is refused"),
    "spec.autoscalerRef.name": (HONOURED, "the autoscaler copied as <name>-primary"),
    "spec.autoscalerRef.primaryScalerQueries": (WARNED, "it rewrites KEDA ScaledObject queries, and the role copies "
                                                        "HorizontalPodAutoscalers only"),
    "spec.autoscalerRef.primaryScalerReplicas": (WARNED, "the primary's autoscaler keeps the target's replica bounds"),
    "spec.autoscalerRef.primaryScalerReplicas.minReplicas": (WARNED, "the primary's autoscaler keeps the target's "
                                                                     "replica bounds"),
    "spec.autoscalerRef.primaryScalerReplicas.maxReplicas": (WARNED, "the primary's autoscaler keeps the target's "
                                                                     "replica bounds"),
    "spec.ingressRef": (WARNED, _NOT_ISTIO % "NGINX"),
    "spec.ingressRef.apiVersion": (WARNED, _NOT_ISTIO % "NGINX"),
    "spec.ingressRef.kind": (WARNED, _NOT_ISTIO % "NGINX"),
    "spec.ingressRef.name": (WARNED, _NOT_ISTIO % "NGINX"),
    "spec.routeRef": (WARNED, _NOT_ISTIO % "APISIX"),
    "spec.routeRef.apiVersion": (WARNED, _NOT_ISTIO % "APISIX"),
    "spec.routeRef.kind": (WARNED, _NOT_ISTIO % "APISIX"),
    "spec.routeRef.name": (WARNED, _NOT_ISTIO % "APISIX"),
    "spec.upstreamRef": (WARNED, _NOT_ISTIO % "Gloo"),
    "spec.upstreamRef.apiVersion": (WARNED, _NOT_ISTIO % "Gloo"),
    "spec.upstreamRef.kind": (WARNED, _NOT_ISTIO % "Gloo"),
    "spec.upstreamRef.name": (WARNED, _NOT_ISTIO % "Gloo"),
    "spec.upstreamRef.namespace": (WARNED, _NOT_ISTIO % "Gloo"),
    "spec.service": (HONOURED, "the services and the routing (VirtualService and DestinationRules, or HTTPRoute) "
                               "generated"),
    "spec.service.name": (HONOURED, "the apex service (default: the target's name)"),
    "spec.service.port": (HONOURED, "the services' port"),
    "spec.service.portName": (HONOURED, "the services' port name"),
    "spec.service.appProtocol": (HONOURED, "the services' port appProtocol"),
    "spec.service.targetPort": (HONOURED, "the services' target port"),
    "spec.service.portDiscovery": (HONOURED, "the workload's other container ports are exposed too"),
    "spec.service.timeout": (HONOURED, _ROUTE),
    "spec.service.hosts": (HONOURED, "the VirtualService's hosts, or the HTTPRoute's hostnames"),
    "spec.service.gateways": (HONOURED, _ISTIO),
    "spec.service.delegation": (HONOURED, "the VirtualService is a delegate, without hosts and gateways; refused "
                                          "with a Gateway API provider"),
    "spec.service.match": (HONOURED, _ROUTE),
    "spec.service.retries": (HONOURED, _ISTIO),
    "spec.service.rewrite": (HONOURED, _ROUTE),
    "spec.service.headers": (HONOURED, _ROUTE),
    "spec.service.corsPolicy": (HONOURED, _ISTIO),
    "spec.service.trafficPolicy": (HONOURED, _ISTIO),
    "spec.service.apex": (HONOURED, "labels and annotations of the apex service"),
    "spec.service.apex.labels": (HONOURED, "labels of the apex service"),
    "spec.service.apex.annotations": (HONOURED, "annotations of the apex service"),
    "spec.service.primary": (HONOURED, "labels and annotations of the primary service"),
    "spec.service.primary.labels": (HONOURED, "labels of the primary service"),
    "spec.service.primary.annotations": (HONOURED, "annotations of the primary service"),
    "spec.service.canary": (HONOURED, "labels and annotations of the canary service"),
    "spec.service.canary.labels": (HONOURED, "labels of the canary service"),
    "spec.service.canary.annotations": (HONOURED, "annotations of the canary service"),
    "spec.service.trafficDistribution": (WARNED, "the generated services do not set spec.trafficDistribution yet"),
    "spec.service.headless": (WARNED, "the generated services are never headless"),
    "spec.service.unmanagedMetadata": (WARNED, "the role keeps only the metadata it sets and never strips "
                                               "another controller's keys, so there is nothing to exempt"),
    "spec.service.unmanagedMetadata.labels": (WARNED, "the role never strips another controller's labels"),
    "spec.service.unmanagedMetadata.annotations": (WARNED, "the role never strips another controller's annotations"),
    "spec.service.backendTimeout": (WARNED, "the generated HTTPRoute sets the request timeout (spec.service.timeout) "
                                            "only"),
    "spec.service.gatewayRefs": (HONOURED, "the HTTPRoute's parentRefs with a Gateway API provider (required "
                                           "there); noted as unused with Istio"),
    "spec.service.mirror": (WARNED, "the generated HTTPRoute mirrors only to the canary, as spec.analysis.mirror says"),
    "spec.service.meshName": (WARNED, _NOT_ISTIO % "App Mesh"),
    "spec.service.backends": (WARNED, _NOT_ISTIO % "App Mesh"),
    "spec.skipAnalysis": (HONOURED, "the revision is promoted without analysis"),
    "spec.suspend": (HONOURED, "the run changes nothing while the Canary is suspended"),
    "spec.revertOnDeletion": (DIFFERENT, "there is no Canary object to delete: run playbooks/delete.yml to put the "
                                         "target back and remove the generated objects"),
    "spec.analysis": (HONOURED, "the analysis"),
    "spec.canaryAnalysis": (DIFFERENT, "Flagger's former name of spec.analysis, read when analysis is absent"),
    "spec.analysis.interval": (HONOURED, "time between analyses (canary_interval overrides it)"),
    "spec.analysis.iterations": (HONOURED, "A/B testing (with match) or blue/green: this many analyses"),
    "spec.analysis.threshold": (HONOURED, "failed analyses before rollback"),
    "spec.analysis.maxWeight": (HONOURED, "the canary's last weight with stepWeight"),
    "spec.analysis.stepWeight": (HONOURED, "the canary's weight increment"),
    "spec.analysis.stepWeights": (HONOURED, "the canary's weights, in order"),
    "spec.analysis.stepWeightPromotion": (HONOURED, "the primary's weight increment after promotion"),
    "spec.analysis.mirror": (HONOURED, "blue/green with mirroring, or one mirrored analysis before a canary's weights"),
    "spec.analysis.mirrorWeight": (HONOURED, "the share of requests mirrored"),
    "spec.analysis.primaryReadyThreshold": (HONOURED, "percentage of primary pods that must be available"),
    "spec.analysis.canaryReadyThreshold": (HONOURED, "percentage of canary pods that must be available"),
    "spec.analysis.match": (HONOURED, "A/B testing: requests matching any entry go to the canary"),
    "spec.analysis.match[].headers": (HONOURED, "Istio header conditions (a cookie is a regex on headers.cookie)"),
    "spec.analysis.match[].queryParams": (HONOURED, "Istio query parameter conditions"),
    "spec.analysis.match[].sourceLabels": (HONOURED, "Istio source workload labels (mesh gateway only); refused with a "
                                                     "Gateway API provider"),
    "spec.analysis.metrics": (HONOURED, "the checks of each analysis"),
    "spec.analysis.metrics[].name": (HONOURED, "a builtin metric or the check's name"),
    "spec.analysis.metrics[].interval": (HONOURED, "the query's range"),
    "spec.analysis.metrics[].threshold": (HONOURED, "deprecated: a minimum for request-success-rate, a maximum otherwise"),
    "spec.analysis.metrics[].thresholdRange": (HONOURED, "the accepted range"),
    "spec.analysis.metrics[].thresholdRange.min": (HONOURED, "the lowest value accepted"),
    "spec.analysis.metrics[].thresholdRange.max": (HONOURED, "the highest value accepted"),
    "spec.analysis.metrics[].query": (HONOURED, "an inline PromQL query"),
    "spec.analysis.metrics[].templateRef": (HONOURED, "a MetricTemplate given with the manifest"),
    "spec.analysis.metrics[].templateRef.name": (HONOURED, "the MetricTemplate's name"),
    "spec.analysis.metrics[].templateRef.namespace": (HONOURED, "the MetricTemplate's namespace"),
    "spec.analysis.metrics[].templateVariables": (HONOURED, "variables of the template's query"),
    "spec.analysis.alerts": (HONOURED, _ALERTS),
    "spec.analysis.alerts[].name": (HONOURED, "the alert's name, in warnings about its delivery"),
    "spec.analysis.alerts[].severity": (HONOURED, "info (every alert), warn (waiting and failed) or error (failed)"),
    "spec.analysis.alerts[].providerRef": (HONOURED, "the AlertProvider, given in canary_alert_providers or in the cluster"),
    "spec.analysis.alerts[].providerRef.name": (HONOURED, "the AlertProvider's name"),
    "spec.analysis.alerts[].providerRef.namespace": (HONOURED, "the AlertProvider's namespace (default the Canary's)"),
    "spec.analysis.webhooks": (HONOURED, "called by type, with Flagger's payload"),
    "spec.analysis.webhooks[].name": (HONOURED, "the webhook's name"),
    "spec.analysis.webhooks[].type": (HONOURED, "when it is called (default rollout)"),
    "spec.analysis.webhooks[].url": (HONOURED, "where it is called"),
    "spec.analysis.webhooks[].timeout": (HONOURED, "the request's timeout"),
    "spec.analysis.webhooks[].retries": (HONOURED, "retries of a failed call"),
    "spec.analysis.webhooks[].metadata": (HONOURED, "sent in the payload"),
    "spec.analysis.webhooks[].muteAlert": (DIFFERENT, "a gate whose webhooks all set it sends no waiting alert"),
    "spec.analysis.webhooks[].disableTLS": (DIFFERENT, "kept as disable_tls; the role checks webhook certificates "
                                                       "per run, as canary_webhook_validate_certs says"),
    "spec.analysis.sessionAffinity": (HONOURED, "users who reached the canary stay on it while its weight grows"),
    "spec.analysis.sessionAffinity.cookieName": (HONOURED, "the canary's affinity cookie"),
    "spec.analysis.sessionAffinity.primaryCookieName": (HONOURED, "the primary's affinity cookie"),
    "spec.analysis.sessionAffinity.maxAge": (HONOURED, "the cookies' Max-Age (default 86400)"),
    "spec.analysis.sessionAffinity.domain": (WARNED, _COOKIE),
    "spec.analysis.sessionAffinity.httpOnly": (WARNED, _COOKIE),
    "spec.analysis.sessionAffinity.partitioned": (WARNED, _COOKIE),
    "spec.analysis.sessionAffinity.path": (WARNED, _COOKIE),
    "spec.analysis.sessionAffinity.sameSite": (WARNED, _COOKIE),
    "spec.analysis.sessionAffinity.secure": (WARNED, _COOKIE),
    "status": (WARNED, "the role keeps a release's state in the ConfigMap <name>-canary-state"),
}

# Validated field by field where the parser reads them (strategy.parse_match), so the walk does not enter them.
OPAQUE = ("spec.analysis.match",)

# Fields outside Flagger's CRD that the parser accepts anyway (listed in FIELDS for the docs).
_LEGACY_ANALYSIS = "spec.canaryAnalysis"
NOT_IN_CRD = (_LEGACY_ANALYSIS,)


def _generic(path: str) -> str:
    """``spec.analysis.metrics[3].name`` -> ``spec.analysis.metrics[].name``; the old canaryAnalysis reads as analysis."""
    if path.startswith(_LEGACY_ANALYSIS + "."):
        path = "spec.analysis" + path[len(_LEGACY_ANALYSIS):]
    out = []
    depth = 0
    for char in path:
        if char == "[":
            depth += 1
            out.append("[]")
        elif char == "]":
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def _children(path: str) -> list[str]:
    prefix = _generic(path) + "."
    return [key for key in FIELDS if key.startswith(prefix) or key.startswith(prefix[:-1] + "[].")]


def review(check: Checker, document: Mapping[str, Any]) -> None:
    """Note every field present that the role does not use, and every field Flagger's Canary does not have.

    Walks only into mappings whose children the table lists, so pass-through
    objects (Istio policies, match conditions, metadata) are taken whole.
    """
    _walk(check, document, "")


def _walk(check: Checker, node: Mapping[str, Any], path: str) -> None:
    for key, value in node.items():
        child = "%s.%s" % (path, key) if path else str(key)
        entry = FIELDS.get(_generic(child))
        if entry is None:
            known = sorted({k[len(_generic(path)) + 1:].split(".")[0].split("[")[0] for k in _children(path)}) if path \
                else sorted({k.split(".")[0] for k in FIELDS})
            check.note(child, "unknown field: Flagger's Canary has no such field, so nothing uses it (check the "
                              "spelling; known here: %s)" % ", ".join(known))
            continue
        treatment, why = entry
        if treatment == WARNED:
            check.note(child, "not used by the role: %s" % why)
            continue
        if _generic(child) in OPAQUE or not _children("spec.analysis" if child == _LEGACY_ANALYSIS else child):
            continue
        if isinstance(value, Mapping):
            _walk(check, value, child)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    _walk(check, item, "%s[%d]" % (child, index))
