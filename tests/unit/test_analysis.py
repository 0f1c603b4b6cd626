"""Thresholds, statistics and verdicts of the metric gate."""

from __future__ import annotations

import math

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    check_threshold,
    compare_error_rates,
    compare_latency,
    compare_values,
    decisive_value,
    histogram_quantile,
    normal_sf,
    overall,
    two_proportion_test,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import ThresholdRange

ISTIO_BOUNDS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]


@pytest.mark.parametrize(
    "value, low, high, expected",
    [
        (98.9, 99, None, FAIL),
        (99.0, 99, None, PASS),  # equal to min passes, as in Flagger (val < min fails)
        (500.0, None, 500, PASS),
        (500.1, None, 500, FAIL),
        (math.inf, None, 500, FAIL),
        (5.0, 1, 10, PASS),
        (0.5, 1, 10, FAIL),
        (-3.0, None, None, PASS),
    ],
)
def test_threshold_range_has_flaggers_meaning(value, low, high, expected):
    threshold = None if low is None and high is None else ThresholdRange(low, high)
    assert check_threshold(value, threshold).result == expected


def test_breach_reason_names_the_value_and_bound():
    verdict = check_threshold(80.5, ThresholdRange(min=99))
    assert "80.5" in verdict.reason and "below the minimum 99" in verdict.reason


def test_decisive_value_is_the_worst_series():
    assert decisive_value([99.9, 97.0, 99.5], ThresholdRange(min=99)) == 97.0
    assert decisive_value([120, 700, 300], ThresholdRange(max=500)) == 700
    assert decisive_value([3, 9.5], ThresholdRange(1, 10)) == 9.5
    assert decisive_value([0.5, 9], ThresholdRange(1, 10)) == 0.5


def test_normal_tail_matches_known_quantiles():
    assert normal_sf(0.0) == pytest.approx(0.5)
    assert normal_sf(1.6448536) == pytest.approx(0.05, abs=1e-6)
    assert normal_sf(2.3263479) == pytest.approx(0.01, abs=1e-6)


def test_two_proportion_test_textbook_case():
    # 30 % vs 10 % of 1000 each: pooled p = 0.2, se = sqrt(0.2*0.8*0.002) = 0.017889, z = 11.18.
    test = two_proportion_test(300, 1000, 100, 1000)
    assert test.z == pytest.approx(11.1803, abs=1e-3)
    assert test.p_value < 1e-20


def test_two_proportion_test_without_any_errors_is_indistinguishable():
    test = two_proportion_test(0, 500, 0, 5000)
    assert (test.z, test.p_value) == (0.0, 1.0)


def test_canary_with_three_times_primary_errors_fails_even_at_low_rates():
    verdict = compare_error_rates(1200, 36, 10800, 108, confidence=0.95, min_requests=50)  # 3 % vs 1 %
    assert verdict.result == FAIL
    assert verdict.details["canary_error_rate"] == 3.0 and verdict.details["primary_error_rate"] == 1.0


def test_incident_degrading_both_alike_passes():
    verdict = compare_error_rates(1200, 250, 10800, 2200, confidence=0.95, min_requests=50)  # ~20.8 % vs ~20.4 %
    assert verdict.result == PASS


def test_canary_better_than_primary_passes():
    assert compare_error_rates(1000, 0, 9000, 900, 0.95, 50).result == PASS


def test_too_few_requests_is_inconclusive():
    verdict = compare_error_rates(20, 10, 5000, 0, 0.95, 50)
    assert verdict.result == INCONCLUSIVE and "canary 20" in verdict.reason


def test_missing_counts_are_inconclusive():
    assert compare_error_rates(None, None, 1000, 0, 0.95, 50).result == INCONCLUSIVE


def _cumulative(per_bucket: dict[float, float]) -> dict[float, float]:
    running = 0.0
    out = {}
    for bound in ISTIO_BOUNDS + [math.inf]:
        running += per_bucket.get(bound, 0.0)
        out[bound] = running
    return out


def test_histogram_quantile_interpolates_like_prometheus():
    buckets = _cumulative({10: 50, 25: 40, 50: 10})  # 100 requests
    # rank 99 falls in (25, 50]: 25 + 25 * (99 - 90) / 10 = 47.5
    assert histogram_quantile(0.99, buckets) == pytest.approx(47.5)
    assert histogram_quantile(0.5, buckets) == pytest.approx(10.0)


def test_histogram_quantile_in_the_inf_bucket_returns_the_highest_finite_bound():
    buckets = _cumulative({10: 90, math.inf: 10})
    assert histogram_quantile(0.99, buckets) == 3600000


def test_histogram_quantile_without_requests_is_none():
    assert histogram_quantile(0.99, _cumulative({})) is None


def test_latency_regression_beyond_tolerance_fails():
    primary = _cumulative({10: 5000, 25: 4800, 50: 200})
    canary = _cumulative({10: 100, 25: 500, 50: 300, 100: 80, 250: 20})
    verdict = compare_latency(canary, primary, tolerance=1.2, confidence=0.95, min_requests=50)
    assert verdict.result == FAIL and verdict.details["ratio"] > 1.2


def test_same_latency_distribution_passes():
    primary = _cumulative({10: 5000, 25: 4800, 50: 200})
    canary = _cumulative({10: 500, 25: 480, 50: 20})
    assert compare_latency(canary, primary, 1.2, 0.95, 50).result == PASS


def test_slow_ratio_from_a_handful_of_requests_is_not_significant():
    # Primary: 1 % of requests above its p99 of 50 ms; canary: 2 of 60 above it (3.3 %, z = 1.8).
    primary = _cumulative({10: 5000, 25: 4800, 50: 100, 100: 100})
    canary = _cumulative({10: 40, 25: 18, 100: 2})
    verdict = compare_latency(canary, primary, 1.2, 0.99, 50)
    assert verdict.details["ratio"] > 1.2
    assert verdict.result == PASS
    assert compare_latency(canary, primary, 1.2, 0.95, 50).result == FAIL


def test_latency_with_too_few_requests_is_inconclusive():
    primary = _cumulative({10: 5000})
    canary = _cumulative({10: 10})
    assert compare_latency(canary, primary, 1.2, 0.95, 50).result == INCONCLUSIVE


def test_custom_metric_comparison():
    threshold = ThresholdRange(max=5)
    assert compare_values(3, 9, threshold).result == PASS
    assert compare_values(8, 9, threshold).result == PASS  # both breach, canary no worse: service-wide
    assert compare_values(8, 2, threshold).result == FAIL
    assert compare_values(12, 9, threshold).result == FAIL  # both breach but canary worse
    assert compare_values(90, 95, ThresholdRange(min=99)).result == FAIL
    assert compare_values(96, 95, ThresholdRange(min=99)).result == PASS


def test_overall_verdict():
    assert overall([{"result": "pass", "ok": True}, {"result": "no_data", "ok": True}]) == (True, "pass")
    assert overall([{"result": "pass", "ok": True}, {"result": "inconclusive", "ok": False}]) == (False, "inconclusive")
    assert overall([{"result": "error", "ok": False}, {"result": "inconclusive", "ok": False}]) == (False, "fail")
