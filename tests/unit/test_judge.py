"""Assessing one analysis (failed checks, hard breaches, the step line), timeline entries and the report."""

from __future__ import annotations

import copy
import json
import pathlib

import pytest
import yaml

from ansible_collections.progressive.delivery.plugins.filter.canary_plan import FilterModule
from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import assess, format_value, is_hard_breach
from ansible_collections.progressive.delivery.plugins.module_utils.report.timeline import build_report, timeline_event
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


def test_passing_check_is_one_line_and_not_failed():
    seen = assess(PLAN, 30, 2, gate=gate(99.6, 212))
    assert not seen.failed and seen.causes == () and seen.hard_breaches == ()
    assert seen.summary == "step 3/5 weight 30%: request-success-rate 99.6 (min 99) ok, request-duration 212 ms (max 500) ok"


def test_failed_metric_is_a_cause():
    seen = assess(PLAN, 10, 0, gate=gate(98.5, 100, success_result="fail"))
    assert seen.failed and seen.hard_breaches == ()
    assert seen.causes == ("request-success-rate 98.5 (min 99) FAILED",)


def test_far_out_of_range_is_a_hard_breach():
    assert assess(PLAN, 10, 0, gate=gate(70.0, 100, success_result="fail")).hard_breaches == (
        "request-success-rate is far outside its range",)
    assert assess(PLAN, 10, 0, gate=gate(98.0, 100, success_result="fail")).hard_breaches == ()
    assert assess(PLAN, 10, 0, gate=gate(70.0, 100, success_result="fail"), hard_breach_margin=-1).hard_breaches == ()


def test_critical_metric_failure_is_a_hard_breach():
    plan = build_plan(yaml.safe_load(SEED_PATH.read_text()), critical_metrics=["request-duration"])
    seen = assess(plan, 20, 1, gate=gate(100, 510, duration_result="fail"))
    assert seen.hard_breaches == ("request-duration is critical",)


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
    seen = assess(PLAN, 10, 0, gate=unreachable)
    assert seen.failed and seen.hard_breaches == ()
    assert "request-success-rate no value (min 99) error: r1" in seen.causes
    no_data = gate(None, 100, success_result="no_data")
    assert assess(PLAN, 10, 0, gate=no_data).failed


def test_failing_rollout_webhook_counts_as_failed_check():
    hooks = [{"item": {"name": "load", "type": "rollout"}, "passed": False, "status": 500, "body": "boom", "outcome": "failed"}]
    seen = assess(PLAN, 10, 0, gate=gate(100, 50), webhooks=hooks)
    assert seen.failed and seen.causes == ("webhook load failed: HTTP 500 boom",)
    assert "webhook load FAILED (HTTP 500 boom)" in seen.summary
    assert seen.webhooks == ({"name": "load", "type": "rollout", "passed": False, "status": 500, "reason": "HTTP 500 boom"},)


def test_failing_pre_rollout_webhook_fails_the_checks_before_the_first_step():
    hooks = [{"item": {"name": "smoke", "type": "pre-rollout"}, "passed": False, "status": 503, "body": "", "outcome": "failed"}]
    seen = assess(PLAN, 0, -1, webhooks=hooks)
    assert seen.failed and seen.summary.startswith("pre-rollout checks: webhook smoke FAILED")


def test_comparison_with_primary_decides_when_conclusive():
    incident = gate(97.0, 100, success_result="fail")
    compare = {"metrics": [{"name": "request-success-rate", "result": "pass", "reason": "primary is as bad"}]}
    assert not assess(PLAN, 10, 0, gate=incident, compare=compare).failed
    regression = {"metrics": [{"name": "request-success-rate", "result": "fail", "reason": "3x the primary's errors"}]}
    assert assess(PLAN, 10, 0, gate=gate(99.5, 100), compare=regression).failed
    inconclusive = {"metrics": [{"name": "request-success-rate", "result": "inconclusive", "reason": "few requests"}]}
    assert assess(PLAN, 10, 0, gate=incident, compare=inconclusive).failed


def test_pre_rollout_tick_line():
    seen = assess(PLAN, 0, -1)
    assert seen.summary == "pre-rollout checks: nothing to check" and not seen.failed


def test_samples_from_watch():
    samples = [{"at": "t1", "metrics": [{"name": "request-success-rate", "value": 100.0}, {"name": "request-duration", "value": None}]},
               {"at": "t2", "metrics": [{"name": "request-success-rate", "value": 90.0}]}]
    seen = assess(PLAN, 20, 1, gate=gate(90.0, 50, success_result="fail", samples=samples))
    assert list(seen.samples) == [{"time": "t1", "metric": "request-success-rate", "value": 100.0, "weight": 20},
                                  {"time": "t2", "metric": "request-success-rate", "value": 90.0, "weight": 20}]


def test_format_value():
    assert format_value("request-duration", 212.4) == "212.4 ms"
    assert format_value("request-success-rate", 99.957) == "99.96"
    assert format_value("x", 12345.6) == "12346"
    assert format_value("x", None) == "no value"


def test_report_shape_and_duration():
    entry = {"time": "2025-01-01T00:00:05Z", "kind": "check", "weight": 10, "metrics": [], "webhooks": [], "message": "m"}
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
    assert set(filters) == {"canary_plan", "canary_event", "canary_report"}
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
    assess(plan, 10, 0, gate=gate(100, 50))
    assert plan == original


def test_a_sequential_metric_shows_the_test_closest_to_its_boundary_in_the_step_line():
    plan = {"name": "app", "namespace": "test", "steps": [10, 20], "metrics": [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}}]}
    gate = {"metrics": [{"name": "request-success-rate", "value": 99.5, "result": "pass", "ok": True, "reason": "",
                         "sequential": [{"test": "rate", "log_e_value": -1.0, "log_boundary": 5.3},
                                        {"test": "ratio", "log_e_value": 1.1632, "log_boundary": 5.3}]}]}
    assessment = assess(plan, 10, 0, gate=gate)
    assert "request-success-rate 99.5 (min 99) ok [ratio e-value 3.2 of 200]" in assessment.summary
    crossed = {"metrics": [dict(gate["metrics"][0], result="fail", ok=False)]}
    assert assess(plan, 10, 0, gate=crossed).hard_breaches == ("request-success-rate: a sequential test crossed its boundary",)
