# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions and records of one canary run: judge a check, count failed checks, write the step line and report.

The ``canary`` role calls these through controller-side filters, so a weight
step costs no extra module process. Inputs are the plan from
``canary_spec.build_plan`` and the results the collection's modules return.
"""

from __future__ import annotations

import datetime
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import parse_rfc3339

FAST = "fast"
FLAGGER = "flagger"
MODES = (FAST, FLAGGER)

ADVANCE = "advance"
HOLD = "hold"
ROLLBACK = "rollback"

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
            "reason": reason,
        })
    return entries


def _webhook_entries(webhook_results: list[Any] | None) -> list[dict[str, Any]]:
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
    return "%s %s (%s) %s" % (entry.get("name"), format_value(str(entry.get("name")), entry.get("value")),
                              format_bounds(bounds), word)


def judge(plan: Mapping[str, Any], weight: int, step_index: int, failed_checks: int, gate: Mapping[str, Any] | None = None,
          webhooks: list[Any] | None = None, compare: Mapping[str, Any] | None = None, mode: str = FAST,
          hard_breach_margin: float = 0.2, time: str | None = None, kind: str = "check") -> dict[str, Any]:
    """Judge one analysis at ``weight`` and decide what the run does next.

    A check fails when a metric is not ok or a webhook did not pass; each
    failed check adds one to ``failed_checks``. The run rolls back when the
    count reaches the plan's threshold, or at once in fast mode when a metric
    marked critical fails or a value is a hard breach (see ``is_hard_breach``).
    """
    if mode not in MODES:
        raise ValueError("mode must be one of %s, got %r" % (", ".join(MODES), mode))
    threshold = int(plan.get("threshold") or 1)
    metrics = _metric_entries(gate, plan, compare)
    hooks = _webhook_entries(webhooks)
    failed_metrics = [m for m in metrics if not m["ok"]]
    failed_hooks = [h for h in hooks if not h["passed"]]
    failed = bool(failed_metrics or failed_hooks)
    count = failed_checks + (1 if failed else 0)
    hard = []
    if mode == FAST:
        for metric in failed_metrics:
            if metric["result"] != "fail":
                continue
            if metric["critical"]:
                hard.append("%s is critical" % metric["name"])
            elif is_hard_breach(metric["value"], {"min": metric["min"], "max": metric["max"]}, hard_breach_margin):
                hard.append("%s is far outside its range" % metric["name"])
    steps = list(plan.get("steps") or [])
    if step_index < 0:
        prefix = "pre-rollout checks"
    elif steps:
        prefix = "step %d/%d weight %d%%" % (step_index + 1, len(steps), weight)
    else:
        prefix = "weight %d%%" % weight
    details = [describe_metric(m) for m in metrics]
    details += ["webhook %s %s" % (h["name"], "ok" if h["passed"] else "FAILED (%s)" % h["reason"]) for h in hooks]
    line = "%s: %s" % (prefix, ", ".join(details) if details else "nothing to check")
    if failed:
        line += "; failed checks %d/%d" % (count, threshold)
    reason = ""
    if hard:
        decision = ROLLBACK
        reason = "hard breach at weight %d%%: %s (%s)" % (weight, "; ".join(hard), "; ".join(describe_metric(m) for m in failed_metrics))
    elif count >= threshold and failed:
        decision = ROLLBACK
        causes = [describe_metric(m) + (": " + m["reason"] if m["result"] != "fail" and m["reason"] else "") for m in failed_metrics]
        causes += ["webhook %s failed: %s" % (h["name"], h["reason"]) for h in failed_hooks]
        reason = "failed checks threshold reached %d/%d at weight %d%%: %s" % (count, threshold, weight, "; ".join(causes))
    elif failed:
        decision = HOLD
    else:
        decision = ADVANCE
    if decision == ROLLBACK:
        line += " -> rolling back"
    entry = {
        "time": time or (gate or {}).get("evaluated_at") or utc_now(),
        "kind": kind,
        "weight": weight,
        "metrics": [{k: m[k] for k in ("name", "value", "result", "min", "max", "reason")} for m in metrics],
        "webhooks": [{k: h[k] for k in ("name", "type", "passed", "status", "reason")} for h in hooks],
        "failed_checks": count,
        "message": line,
    }
    return {
        "failed": failed,
        "failed_checks": count,
        "hard_breach": bool(hard),
        "decision": decision,
        "reason": reason,
        "line": line,
        "entry": entry,
        "samples": gate_samples(gate, weight),
    }


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
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def timeline_event(kind: str, message: str, weight: int | None = None, time: str | None = None,
                   webhooks: list[Any] | None = None, failed_checks: int | None = None) -> dict[str, Any]:
    """A timeline entry that is not a metric check: start, weight change, webhook, promotion, rollback, finished."""
    entry: dict[str, Any] = {"time": time or utc_now(), "kind": kind, "message": message, "metrics": [],
                             "webhooks": [{k: h[k] for k in ("name", "type", "passed", "status", "reason")}
                                          for h in _webhook_entries(webhooks)]}
    if weight is not None:
        entry["weight"] = weight
    if failed_checks is not None:
        entry["failed_checks"] = failed_checks
    return entry


def build_report(plan: Mapping[str, Any], run_id: str, mode: str, result: str, reason: str, started_at: str,
                 finished_at: str | None, final_weight: int, failed_checks: int, timeline: list[Mapping[str, Any]] | None,
                 samples: list[Mapping[str, Any]] | None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report of one run, the shape ``canary_report_html`` renders."""
    finished_at = finished_at or utc_now()
    start, end = parse_rfc3339(started_at), parse_rfc3339(finished_at)
    duration = round((end - start).total_seconds(), 3) if start and end else None
    report = {
        "canary": {"name": plan.get("name"), "namespace": plan.get("namespace"), "target": plan.get("target")},
        "run_id": run_id,
        "mode": mode,
        "result": result,
        "reason": reason,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_seconds": duration,
        "final_weight": final_weight,
        "failed_checks": failed_checks,
        "threshold": plan.get("threshold"),
        "interval": plan.get("interval"),
        "steps": list(plan.get("steps") or []),
        "thresholds": [dict(t) for t in plan.get("thresholds") or []],
        "timeline": sorted((dict(e) for e in timeline or []), key=lambda e: str(e.get("time") or "")),
        "samples": [dict(s) for s in samples or []],
    }
    if extra:
        report.update(dict(extra))
    return report
