# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The assessment of one analysis: which metrics and webhooks failed, and how that reads in the step line.

Inputs are the plan from ``plan.manifest.build_plan`` and the results of the
metric gate and the webhooks; what happens next is ``release.decision``'s call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_verdict import format_e_value
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339
from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import CANARY, Strategy

_RESULT_WORDS = {"pass": "ok", "fail": "FAILED", "no_data": "no data", "error": "error",
                 "inconclusive": "inconclusive", "skipped": "skipped"}


def is_hard_breach(value: Any, bounds: Mapping[str, Any] | None, margin: float) -> bool:
    """Whether ``value`` misses its range by more than ``margin`` (a share of the bound).

    ``margin`` 0.2 means below 80 % of ``min`` or above 120 % of ``max``: a
    success rate under 79.2 for ``min: 99``, a p99 over 600 ms for ``max: 500``.
    A negative margin turns hard breaches off.
    """
    if margin < 0 or value is None or not bounds:
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and number < float(low) - abs(float(low)) * margin:
        return True
    if high is not None and number > float(high) + abs(float(high)) * margin:
        return True
    return False


def format_value(name: str, value: Any) -> str:
    if value is None:
        return "no value"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = "%d" % round(number) if abs(number) >= 1000 else "%g" % round(number, 2)
    if name == "request-duration":
        return "%s ms" % text
    return text


def format_bounds(bounds: Mapping[str, Any] | None, name: str = "") -> str:
    if not bounds:
        return "no threshold"
    parts = []
    if bounds.get("min") is not None:
        parts.append("min %s" % _plain(bounds["min"]))
    if bounds.get("max") is not None:
        parts.append("max %s" % _plain(bounds["max"]))
    return " ".join(parts)


def _plain(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _metric_entries(gate: Mapping[str, Any] | None, plan: Mapping[str, Any], compare: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    bounds_by_name = {m["name"]: m.get("thresholdRange") or {} for m in plan.get("metrics", [])}
    compared = {m.get("name"): m for m in (compare or {}).get("metrics", []) or []}
    entries = []
    for metric in (gate or {}).get("metrics", []) or []:
        name = metric.get("name")
        bounds = bounds_by_name.get(name) or metric.get("threshold_range") or {}
        result = metric.get("result") or "error"
        ok = bool(metric.get("ok", result in ("pass", "skipped")))
        reason = metric.get("reason") or ""
        other = compared.get(name)
        if other is not None and other.get("result") in ("pass", "fail"):
            # The comparison over the same window decides: a service-wide incident is not the canary's fault,
            # and a regression inside the absolute range still is.
            result = other["result"]
            ok = result == "pass"
            reason = "compared with primary: %s" % (other.get("reason") or result)
        entries.append({
            "name": name,
            "value": metric.get("value"),
            "result": result,
            "ok": ok,
            "min": bounds.get("min"),
            "max": bounds.get("max"),
            "critical": bool(metric.get("critical")) or any(m.get("critical") for m in plan.get("metrics", []) if m["name"] == name),
            "sequential": bool(metric.get("sequential")),
            "evidence": strongest_evidence(metric.get("sequential")),
            "reason": reason,
        })
    return entries


def webhook_entries(webhook_results: list[Any] | None) -> list[dict[str, Any]]:
    entries = []
    for raw in webhook_results or []:
        if not isinstance(raw, Mapping) or raw.get("skipped") and "outcome" not in raw:
            continue
        hook = raw.get("item") if isinstance(raw.get("item"), Mapping) else {}
        passed = raw.get("passed")
        if raw.get("outcome") == "skipped":
            passed = True
        entries.append({
            "name": hook.get("name") or raw.get("name") or "webhook",
            "type": hook.get("type") or raw.get("type") or "rollout",
            "passed": bool(passed),
            "status": raw.get("status"),
            "outcome": raw.get("outcome"),
            "reason": _webhook_reason(raw),
        })
    return entries


def _webhook_reason(raw: Mapping[str, Any]) -> str:
    if raw.get("error"):
        return str(raw["error"])
    if raw.get("msg") and raw.get("failed"):
        return str(raw["msg"])
    body = str(raw.get("body") or "").strip()
    status = raw.get("status")
    if status is None:
        return body or str(raw.get("outcome") or "")
    return ("HTTP %s %s" % (status, body)).strip()


def describe_metric(entry: Mapping[str, Any]) -> str:
    word = _RESULT_WORDS.get(str(entry.get("result")), str(entry.get("result")))
    bounds = {"min": entry.get("min"), "max": entry.get("max")}
    text = "%s %s (%s) %s" % (entry.get("name"), format_value(str(entry.get("name")), entry.get("value")),
                              format_bounds(bounds), word)
    return "%s [%s]" % (text, entry["evidence"]) if entry.get("evidence") else text


def strongest_evidence(verdicts: Any) -> str:
    """The sequential test closest to its boundary, for the step line: "ratio e-value 3.2 of 400"."""
    tests = [v for v in verdicts or [] if isinstance(v, Mapping) and v.get("log_boundary")]
    if not tests:
        return ""
    closest = max(tests, key=lambda v: float(v["log_e_value"]) / float(v["log_boundary"]))
    shown = format_e_value(float(closest["log_e_value"]))
    return "%s e-value %s of %s" % (closest.get("test"), shown, format_e_value(float(closest["log_boundary"])))


@dataclass(frozen=True)
class Assessment:
    """What one analysis found, before any decision: which checks failed and why, in words and as report entries."""

    failed: bool
    causes: tuple[str, ...]
    hard_breaches: tuple[str, ...]
    summary: str
    metrics: tuple[dict[str, Any], ...]
    webhooks: tuple[dict[str, Any], ...]
    samples: tuple[dict[str, Any], ...]
    time: str


def assess(plan: Mapping[str, Any], weight: int, step_index: int, gate: Mapping[str, Any] | None = None,
           webhooks: list[Any] | None = None, compare: Mapping[str, Any] | None = None,
           hard_breach_margin: float = 0.2, time: str | None = None) -> Assessment:
    """Judge the metrics and webhooks of one analysis at ``weight``.

    A check fails when a metric is not ok (a breach, no data, an error) or a
    webhook did not pass. A failed metric marked critical, or one beyond its
    bound by more than ``hard_breach_margin`` of the bound, is a hard breach;
    whether that rolls back at once is the decision's business (fast mode).
    """
    metrics = _metric_entries(gate, plan, compare)
    hooks = webhook_entries(webhooks)
    failed_metrics = [m for m in metrics if not m["ok"]]
    failed_hooks = [h for h in hooks if not h["passed"]]
    hard = []
    for metric in failed_metrics:
        if metric["result"] != "fail":
            continue
        if metric["sequential"]:
            hard.append("%s: a sequential test crossed its boundary" % metric["name"])
        elif metric["critical"]:
            hard.append("%s is critical" % metric["name"])
        elif is_hard_breach(metric["value"], {"min": metric["min"], "max": metric["max"]}, hard_breach_margin):
            hard.append("%s is far outside its range" % metric["name"])
    causes = [describe_metric(m) + (": " + m["reason"] if m["result"] != "fail" and m["reason"] else "") for m in failed_metrics]
    causes += ["webhook %s failed: %s" % (h["name"], h["reason"]) for h in failed_hooks]
    details = [describe_metric(m) for m in metrics]
    details += ["webhook %s %s" % (h["name"], "ok" if h["passed"] else "FAILED (%s)" % h["reason"]) for h in hooks]
    return Assessment(
        failed=bool(failed_metrics or failed_hooks),
        causes=tuple(causes),
        hard_breaches=tuple(hard),
        summary="%s: %s" % (step_prefix(plan, weight, step_index), ", ".join(details) if details else "nothing to check"),
        metrics=tuple({k: m[k] for k in ("name", "value", "result", "min", "max", "reason")} for m in metrics),
        webhooks=tuple({k: h[k] for k in ("name", "type", "passed", "status", "reason")} for h in hooks),
        samples=tuple(gate_samples(gate, weight)),
        time=time or (gate or {}).get("evaluated_at") or utc_now(),
    )


def step_prefix(plan: Mapping[str, Any], weight: int, step_index: int) -> str:
    steps = list(plan.get("steps") or [])
    if step_index < 0:
        return "pre-rollout checks"
    if steps and (plan.get("strategy") or CANARY) != CANARY:
        return "step %d/%d %s" % (step_index + 1, len(steps), Strategy.from_plan(plan).label(step_index))
    if steps:
        return "step %d/%d weight %d%%" % (step_index + 1, len(steps), weight)
    return "weight %d%%" % weight


def gate_samples(gate: Mapping[str, Any] | None, weight: int) -> list[dict[str, Any]]:
    """Every value the gate saw, flattened for the report's chart."""
    samples = []
    gate = gate or {}
    for sample in gate.get("samples") or []:
        for metric in sample.get("metrics") or []:
            if metric.get("value") is not None:
                samples.append({"time": sample.get("at"), "metric": metric.get("name"), "value": metric.get("value"),
                                "weight": weight})
    if not samples:
        for metric in gate.get("metrics") or []:
            if metric.get("value") is not None:
                samples.append({"time": gate.get("evaluated_at"), "metric": metric.get("name"),
                                "value": metric.get("value"), "weight": weight})
    return samples


def utc_now() -> str:
    return format_rfc3339(time.time())
