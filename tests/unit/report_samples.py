"""Release reports shaped like the ones the canary role writes: a promoted release and a rolled-back one.

Built from a few parameters (interval, steps, the metric values per second) so
the tests can change one aspect at a time.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any, Callable

START = datetime.datetime(2025, 3, 14, 9, 30, 0, tzinfo=datetime.timezone.utc)
THRESHOLDS = [
    {"metric": "request-success-rate", "min": 99, "max": None},
    {"metric": "request-duration", "min": None, "max": 500},
]


def iso(seconds: float) -> str:
    return (START + datetime.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _verdict(name: str, value: float) -> str:
    limits = {item["metric"]: item for item in THRESHOLDS}[name]
    low, high = limits["min"], limits["max"]
    return "fail" if (low is not None and value < low) or (high is not None and value > high) else "pass"


def _check(name: str, value: float) -> dict[str, Any]:
    limits = {item["metric"]: item for item in THRESHOLDS}[name]
    result = _verdict(name, value)
    reason = "" if result == "pass" else "%s %s is outside the range" % (name, value)
    return {"name": name, "value": value, "result": result, "min": limits["min"], "max": limits["max"], "reason": reason}


def build_report(
    *,
    success_rate: Callable[[float, int], float],
    duration_ms: Callable[[float, int], float],
    steps: tuple[int, ...] = (10, 20, 30, 40, 50),
    interval: int = 5,
    threshold: int = 5,
    mode: str = "fast",
) -> dict[str, Any]:
    """Simulate the role's record of one run: one check per second (fast mode), rollback when the budget is spent."""
    timeline: list[dict[str, Any]] = [{"time": iso(0), "kind": "start", "weight": 0, "metrics": [], "webhooks": [
        {"name": "acceptance-test", "type": "pre-rollout", "passed": True, "status": 200}], "failed_checks": 0,
        "message": "canary backend-service started: new revision detected"}]
    samples: list[dict[str, Any]] = []
    failed = 0
    now = 1.0
    result, reason = "Succeeded", ""
    final_weight = 0
    for index, weight in enumerate(steps, start=1):
        timeline.append({"time": iso(now), "kind": "weight", "weight": weight, "metrics": [], "webhooks": [],
                         "failed_checks": failed, "message": "weight shifted to %d%%" % weight})
        for tick in range(1, interval + 1):
            moment = now + tick
            rate, latency = success_rate(moment, weight), duration_ms(moment, weight)
            samples.append({"time": iso(moment), "metric": "request-success-rate", "value": rate, "weight": weight})
            samples.append({"time": iso(moment), "metric": "request-duration", "value": latency, "weight": weight})
            if _verdict("request-success-rate", rate) == "fail" or _verdict("request-duration", latency) == "fail":
                failed += 1
                timeline.append({"time": iso(moment), "kind": "check", "weight": weight,
                                 "metrics": [_check("request-success-rate", rate), _check("request-duration", latency)],
                                 "webhooks": [], "failed_checks": failed,
                                 "message": "failed check %d/%d at weight %d%%" % (failed, threshold, weight)})
                if failed >= threshold:
                    reason = "failed checks reached the threshold (%d) at weight %d%%" % (threshold, weight)
                    timeline.append({"time": iso(moment + 0.5), "kind": "rollback", "weight": 0, "metrics": [], "webhooks": [
                        {"name": "notify", "type": "rollback", "passed": True, "status": 202}], "failed_checks": failed,
                        "message": "rolled back: " + reason})
                    result = "Failed"
                    break
        if result == "Failed":
            now += tick + 1
            break
        now += interval
        rate, latency = success_rate(now, weight), duration_ms(now, weight)
        timeline.append({"time": iso(now), "kind": "check", "weight": weight,
                         "metrics": [_check("request-success-rate", rate), _check("request-duration", latency)],
                         "webhooks": [{"name": "load-test", "type": "rollout", "passed": True, "status": 200}],
                         "failed_checks": failed,
                         "message": "step %d/%d weight %d%%: request-success-rate %s (min 99) ok, request-duration %s ms (max 500) ok" % (
                             index, len(steps), weight, rate, latency)})
    if result == "Succeeded":
        timeline.append({"time": iso(now + 0.5), "kind": "promotion", "weight": steps[-1], "metrics": [], "webhooks": [
            {"name": "confirm", "type": "confirm-promotion", "passed": True, "status": 200}], "failed_checks": failed,
            "message": "promoting: primary updated to the canary's spec"})
        now += 2
        reason = "all %d steps passed; primary runs the new revision" % len(steps)
    timeline.append({"time": iso(now), "kind": "finished", "weight": final_weight, "metrics": [], "webhooks": [],
                     "failed_checks": failed, "message": "traffic 100% on primary, canary scaled to 0"})
    return copy.deepcopy({
        "canary": {"name": "backend-service", "namespace": "prod"},
        "run_id": "20250314T093000-4f2a",
        "mode": mode,
        "result": result,
        "reason": reason,
        "started_at": iso(0),
        "finished_at": iso(now),
        "duration_seconds": now,
        "final_weight": final_weight,
        "failed_checks": failed,
        "threshold": threshold,
        "steps": list(steps),
        "thresholds": THRESHOLDS,
        "timeline": timeline,
        "samples": samples,
    })


def _wobble(moment: float, amplitude: float) -> float:
    # Deterministic jitter so the charts look like real traffic without a random seed.
    return amplitude * ((int(moment * 7919) % 13) - 6) / 6


def succeeded_report() -> dict[str, Any]:
    return build_report(
        success_rate=lambda moment, weight: round(99.85 + _wobble(moment, 0.12), 2),
        duration_ms=lambda moment, weight: round(212 + _wobble(moment, 35), 1),
    )


def failed_report() -> dict[str, Any]:
    return build_report(
        success_rate=lambda moment, weight: round((99.8 if weight < 30 else 71.5) + _wobble(moment, 0.15 if weight < 30 else 2.5), 2),
        duration_ms=lambda moment, weight: round(230 + _wobble(moment, 40), 1),
    )
