"""canary_analysis refuses bad input with a message naming the option, before any request is made."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release.analysis_task import (
    AnalysisTaskError,
    run_analysis_task,
    seconds,
)

PLAN = {"name": "app", "namespace": "prod", "target": "app", "steps": [10, 20], "threshold": 2, "interval_seconds": 60}
ARGS = {"plan": PLAN, "stage": "step", "run_id": "r", "holder": "h", "lease_ttl": 120, "checksum": "", "mode": "fast",
        "poll": 5, "gate_poll": 5, "gate_timeout": 0, "hard_breach_margin": 0.2, "compare": None,
        "virtual_service": {"name": "app"}, "webhook_validate_certs": True, "webhook_ca_cert": None, "position": {}}


@pytest.mark.parametrize("value, allow_zero, expected", [(5, False, 5.0), ("500ms", False, 0.5), ("0", True, 0.0),
                                                         (0.01, False, 0.01)])
def test_seconds_accepts_numbers_and_durations(value, allow_zero, expected):
    assert seconds(value, "poll", allow_zero) == expected


@pytest.mark.parametrize("value, allow_zero, message", [
    ("soon", False, "poll 'soon' is not a number of seconds or a duration like 500ms or 5s"),
    (0, False, "poll must be positive, got 0"),
    (-1, True, "poll must be 0 or more, got -1"),
])
def test_seconds_refuses_bad_values(value, allow_zero, message):
    with pytest.raises(AnalysisTaskError, match=message):
        seconds(value, "poll", allow_zero)


def test_a_plan_not_built_by_canary_plan_is_refused():
    args = dict(ARGS, plan={k: v for k, v in PLAN.items() if k != "steps"})
    with pytest.raises(AnalysisTaskError, match="plan has no 'steps': pass the plan the progressive.delivery.canary_plan"):
        run_analysis_task(args, say=print)


def test_a_bad_gate_poll_is_refused_before_any_request():
    with pytest.raises(AnalysisTaskError, match="gate_poll 'often' is not a number of seconds"):
        run_analysis_task(dict(ARGS, gate_poll="often"), say=print)
