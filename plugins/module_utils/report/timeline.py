# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of one run: its timeline entries and the JSON document the HTML page renders."""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import utc_now, webhook_entries
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import parse_rfc3339


def timeline_event(kind: str, message: str, weight: int | None = None, time: str | None = None,
                   webhooks: list[Any] | None = None, failed_checks: int | None = None) -> dict[str, Any]:
    """A timeline entry that is not a metric check: start, weight change, webhook, promotion, rollback, finished."""
    entry: dict[str, Any] = {"time": time or utc_now(), "kind": kind, "message": message, "metrics": [],
                             "webhooks": [{k: h[k] for k in ("name", "type", "passed", "status", "reason")}
                                          for h in webhook_entries(webhooks)]}
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
