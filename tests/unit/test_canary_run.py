"""Judging checks, counting failed checks, the step line, timeline and report of a canary run."""

from __future__ import annotations

import copy
import json
import pathlib

import pytest
import yaml

from ansible_collections.progressive.delivery.plugins.filter.canary_plan import FilterModule
from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import (
    build_report,
    format_value,
    is_hard_breach,
    judge,
    timeline_event,
)
from ansible_collections.progressive.delivery.plugins.module_utils.plan.manifest import build_plan

SEED_PATH = pathlib.Path(__file__).resolve().parents[2] / "examples" / "backend-service-canary.yaml"
PLAN = build_plan(yaml.safe_load(SEED_PATH.read_text()))


def gate(success: float | None, duration: float | None, success_result: str = "pass", duration_result: str = "pass",
         samples: list | None = None) -> dict:
    """The shape prometheus_gate returns."""
    metrics = [
        {"name": "request-success-rate", "value": success, "result": success_result, "ok": success_result == "pass",
         "reason": "r1", "threshold_range": {"min": 99}},
        {"name": "request-duration", "value": duration, "result": duration_result, "ok": duration_result == "pass",
         "reason": "r2", "threshold_range": {"max": 500}},
    ]
    result = {"passed": all(m["ok"] for m in metrics), "metrics": metrics, "evaluated_at": "2025-01-01T00:00:10Z"}
    if samples is not None:
        result["samples"] = samples
    return result


def test_passing_check_advances_with_one_line():
    verdict = judge(PLAN, 30, 2, 0, gate=gate(99.6, 212))
    assert verdict["decision"] == "advance" and verdict["failed_checks"] == 0 and not verdict["failed"]
    assert verdict["line"] == "step 3/5 weight 30%: request-success-rate 99.6 (min 99) ok, request-duration 212 ms (max 500) ok"


def test_failed_check_counts_and_holds_until_threshold():
    verdict = judge(PLAN, 10, 0, 3, gate=gate(98.5, 100, success_result="fail"), mode="flagger")
    assert verdict["decision"] == "hold" and verdict["failed_checks"] == 4
    assert verdict["line"].endswith("; failed checks 4/5")
    final = judge(PLAN, 10, 0, 4, gate=gate(98.5, 100, success_result="fail"), mode="flagger")
    assert final["decision"] == "rollback"
    assert final["reason"].startswith("failed checks threshold reached 5/5 at weight 10%: request-success-rate 98.5 (min 99) FAILED")


def test_flagger_mode_never_rolls_back_early_even_far_out_of_range():
    verdict = judge(PLAN, 10, 0, 0, gate=gate(40.0, 100, success_result="fail"), mode="flagger")
    assert verdict["decision"] == "hold" and not verdict["hard_breach"]


def test_fast_mode_rolls_back_at_once_on_hard_breach():
    verdict = judge(PLAN, 10, 0, 0, gate=gate(70.0, 100, success_result="fail"), mode="fast")
    assert verdict["decision"] == "rollback" and verdict["hard_breach"]
    assert "request-success-rate is far outside its range" in verdict["reason"]
    near = judge(PLAN, 10, 0, 0, gate=gate(98.0, 100, success_result="fail"), mode="fast")
    assert near["decision"] == "hold"


def test_fast_mode_critical_metric_rolls_back_at_once():
    plan = build_plan(yaml.safe_load(SEED_PATH.read_text()), critical_metrics=["request-duration"])
    verdict = judge(plan, 20, 1, 0, gate=gate(100, 510, duration_result="fail"), mode="fast")
    assert verdict["decision"] == "rollback" and "request-duration is critical" in verdict["reason"]


@pytest.mark.parametrize("value, bounds, margin, expected", [
    (79.0, {"min": 99}, 0.2, True),
    (80.0, {"min": 99}, 0.2, False),
    (601, {"max": 500}, 0.2, True),
    (600, {"max": 500}, 0.2, False),
    (10, {"min": 99}, -1, False),
    (None, {"min": 99}, 0.2, False),
])
def test_hard_breach(value, bounds, margin, expected):
    assert is_hard_breach(value, bounds, margin) is expected


def test_no_data_and_errors_fail_the_check_with_their_reason():
    unreachable = gate(None, None, success_result="error", duration_result="error")
    verdict = judge(PLAN, 10, 0, 4, gate=unreachable, mode="fast")
    assert verdict["decision"] == "rollback" and not verdict["hard_breach"]
    assert "request-success-rate no value (min 99) error: r1" in verdict["reason"]


def test_failing_rollout_webhook_counts_as_failed_check():
    hooks = [{"item": {"name": "load", "type": "rollout"}, "passed": False, "status": 500, "body": "boom", "outcome": "failed"}]
    verdict = judge(PLAN, 10, 0, 0, gate=gate(100, 50), webhooks=hooks)
    assert verdict["failed"] and verdict["failed_checks"] == 1 and verdict["decision"] == "hold"
    assert "webhook load FAILED (HTTP 500 boom)" in verdict["line"]
    assert verdict["entry"]["webhooks"] == [{"name": "load", "type": "rollout", "passed": False, "status": 500,
                                             "reason": "HTTP 500 boom"}]


def test_comparison_with_primary_decides_when_conclusive():
    incident = gate(97.0, 100, success_result="fail")
    compare = {"metrics": [{"name": "request-success-rate", "result": "pass", "reason": "primary is as bad"}]}
    verdict = judge(PLAN, 10, 0, 0, gate=incident, compare=compare)
    assert verdict["decision"] == "advance"
    regression = {"metrics": [{"name": "request-success-rate", "result": "fail", "reason": "3x the primary's errors"}]}
    verdict = judge(PLAN, 10, 0, 0, gate=gate(99.5, 100), compare=regression)
    assert verdict["decision"] == "hold" and verdict["failed_checks"] == 1
    inconclusive = {"metrics": [{"name": "request-success-rate", "result": "inconclusive", "reason": "few requests"}]}
    assert judge(PLAN, 10, 0, 0, gate=incident, compare=inconclusive)["failed"]


def test_pre_rollout_tick_line():
    verdict = judge(PLAN, 0, -1, 0)
    assert verdict["line"] == "pre-rollout checks: nothing to check" and verdict["decision"] == "advance"


def test_samples_from_watch():
    samples = [{"at": "t1", "metrics": [{"name": "request-success-rate", "value": 100.0}, {"name": "request-duration", "value": None}]},
               {"at": "t2", "metrics": [{"name": "request-success-rate", "value": 90.0}]}]
    verdict = judge(PLAN, 20, 1, 0, gate=gate(90.0, 50, success_result="fail", samples=samples))
    assert verdict["samples"] == [{"time": "t1", "metric": "request-success-rate", "value": 100.0, "weight": 20},
                                  {"time": "t2", "metric": "request-success-rate", "value": 90.0, "weight": 20}]


def test_format_value():
    assert format_value("request-duration", 212.4) == "212.4 ms"
    assert format_value("request-success-rate", 99.957) == "99.96"
    assert format_value("x", 12345.6) == "12346"
    assert format_value("x", None) == "no value"


def test_report_shape_and_duration():
    entry = judge(PLAN, 10, 0, 0, gate=gate(100, 50), time="2025-01-01T00:00:05Z")["entry"]
    start = timeline_event("start", "New revision", weight=0, time="2025-01-01T00:00:00Z")
    report = build_report(PLAN, "run-1", "fast", "Succeeded", "ok", "2025-01-01T00:00:00Z", "2025-01-01T00:01:30.5Z",
                          0, 0, [entry, start], [{"time": "t", "metric": "m", "value": 1, "weight": 10}])
    assert report["duration_seconds"] == 90.5
    assert report["canary"] == {"name": "backend-service", "namespace": "prod", "target": "backend-service"}
    assert [e["kind"] for e in report["timeline"]] == ["start", "check"]
    assert report["steps"] == [10, 20, 30, 40, 50] and report["threshold"] == 5
    assert report["thresholds"][0] == {"metric": "request-success-rate", "min": 99.0, "max": None}
    json.dumps(report)


def test_filters_are_registered_and_reject_bad_manifests():
    from ansible.errors import AnsibleFilterError

    filters = FilterModule().filters()
    assert set(filters) >= {"canary_plan", "canary_judge", "canary_event", "canary_report"}
    text = SEED_PATH.read_text()
    assert filters["canary_plan"](text, interval="5s")["interval_seconds"] == 5
    broken = text.replace("stepWeight: 10", "stepWeight: ten")
    with pytest.raises(AnsibleFilterError, match=r'spec.analysis.stepWeight: must be an integer between 1 and 100, got "ten"'):
        filters["canary_plan"](broken)
    template = "---\napiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: t\nspec:\n  query: up\n"
    indent = next(line for line in text.splitlines() if "- name: request-duration" in line).split("-")[0]
    custom = ("{0}- name: custom\n{0}  templateRef:\n{0}    name: t\n{0}  thresholdRange:\n{0}    min: 1\n"
              "{0}- name: request-duration").format(indent)
    combined = text.replace(indent + "- name: request-duration", custom)
    plan = filters["canary_plan"](combined + template)
    assert plan["metrics"][1]["template"]["spec"]["query"] == "up"
    with pytest.raises(AnsibleFilterError, match="not valid YAML"):
        filters["canary_plan"]("a: [")
    original = copy.deepcopy(plan)
    filters["canary_judge"](plan, 10, 0, 0, gate=gate(100, 50))
    assert plan == original
