# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``spec.analysis.alerts`` of a Canary manifest, validated into the plan's ``alerting`` entry.

The entry holds no secret: alert names, severities and provider references, the facts Flagger attaches to its
new-revision alert, and the gates whose webhooks mute their waiting alerts. Providers are resolved when an alert is
sent (``providers.py``), since their addresses and Secrets must never travel through the plan.
"""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.severity import INFO, SEVERITIES
from ansible_collections.progressive.delivery.plugins.module_utils.plan.checker import Checker, show

# The gates whose closed state Flagger announces with a warning, unless their webhook sets muteAlert.
GATES = ("confirm-rollout", "confirm-promotion", "confirm-traffic-increase")


def parse_alerts(check: Checker, analysis: Mapping[str, Any], path: str, namespace: str | None) -> list[dict[str, Any]]:
    """Each alert as ``{name, severity, provider: {name, namespace}}``; a reference without namespace means the
    Canary's own, as in Flagger."""
    raw_alerts = analysis.get("alerts")
    if raw_alerts is None:
        return []
    if not isinstance(raw_alerts, list):
        check.error(path + ".alerts", "must be a list, got %s" % show(raw_alerts))
        return []
    alerts: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_alerts):
        alert_path = "%s.alerts[%d]" % (path, index)
        if not isinstance(raw, Mapping):
            check.error(alert_path, "must be a mapping, got %s" % show(raw))
            continue
        name = check.string(raw.get("name"), alert_path + ".name", required=True)
        if name and name in names:
            check.error(alert_path + ".name", "%s is used by another alert" % show(name))
        names.add(name or "")
        severity = raw.get("severity") or INFO
        if severity not in SEVERITIES:
            check.error(alert_path + ".severity", "must be one of %s, got %s" % (", ".join(SEVERITIES), show(severity)))
            continue
        ref = check.mapping(raw.get("providerRef"), alert_path + ".providerRef", required=True)
        provider = check.string(ref.get("name"), alert_path + ".providerRef.name", required=bool(ref))
        provider_namespace = check.string(ref.get("namespace"), alert_path + ".providerRef.namespace") or namespace
        if name and provider and provider_namespace:
            alerts.append({"name": name, "severity": severity,
                           "provider": {"name": provider, "namespace": provider_namespace}})
    return alerts


def alert_fields(target: str, namespace: str, threshold: int, deadline: int, strategy: str,
                 weights: Mapping[str, Any]) -> list[dict[str, str]]:
    """The facts Flagger attaches to its new-revision alert: target, failed-checks threshold, deadline, routing."""
    fields = [
        {"name": "Target", "value": "Deployment/%s.%s" % (target, namespace)},
        {"name": "Failed checks threshold", "value": str(threshold)},
        {"name": "Progress deadline", "value": "%ss" % deadline},
    ]
    if strategy == "canary" and weights.get("step_weight"):
        routing = "Weight step: %s max: %s" % (weights["step_weight"], weights.get("max_weight"))
    elif strategy == "canary" and weights.get("step_weights"):
        steps = ",".join(str(w) for w in weights["step_weights"])
        routing = "Weight steps: %s max: %s" % (steps, weights.get("max_weight"))
    elif strategy == "ab-testing":
        routing = "A/B Testing"
    elif strategy != "canary":
        routing = "Blue/Green"
    else:
        routing = ""
    if routing:
        fields.append({"name": "Traffic routing", "value": routing})
    return fields


def muted_gates(webhooks: Mapping[str, list[Mapping[str, Any]]]) -> list[str]:
    """Gates whose every webhook sets muteAlert: the plan does not know which one stays closed, so one that speaks
    is enough for the waiting alert."""
    return [gate for gate in GATES if webhooks.get(gate) and all(hook.get("mute_alert") for hook in webhooks[gate])]


def alerting_plan(check: Checker, analysis: Mapping[str, Any], path: str, namespace: str | None,
                  facts: Mapping[str, Any], webhooks: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, Any]:
    """The plan's ``alerting`` entry; ``facts`` holds target, threshold, progress_deadline_seconds, strategy and the
    weights (step_weight, step_weights, max_weight)."""
    alerts = parse_alerts(check, analysis, path, namespace)
    if not alerts:
        return {"alerts": [], "fields": [], "muted": [], "threshold": facts.get("threshold")}
    fields = alert_fields(str(facts.get("target")), str(namespace), int(facts.get("threshold") or 0),
                          int(facts.get("progress_deadline_seconds") or 0), str(facts.get("strategy") or "canary"),
                          facts)
    return {"alerts": alerts, "fields": fields, "muted": muted_gates(webhooks), "threshold": facts.get("threshold")}
