"""Anytime-valid statistics: calibrated against closed forms derived here, and simulated under continuous monitoring."""

from __future__ import annotations

import math
import random

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential import (
    UNIFORM_PRIOR,
    BetaPrior,
    RateRatioTest,
    incomplete_beta,
    log_beta,
    log_incomplete_beta,
    log_rate_e_value,
    rate_below,
    rate_upper_bound,
    slow_counts,
    threshold_prior,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_verdict import (
    SlowRequestTest,
    judge_latency_limit,
    judge_latency_order,
    judge_rate,
    judge_ratio,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import FAIL, INCONCLUSIVE, PASS


def simpson(function, low: float, high: float, intervals: int = 20000) -> float:
    width = (high - low) / intervals
    total = function(low) + function(high)
    for i in range(1, intervals):
        total += (4 if i % 2 else 2) * function(low + i * width)
    return total * width / 3


# --- the incomplete beta ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("a", [0.5, 1.0, 3.0, 40.0, 2500.0])
def test_incomplete_beta_is_one_half_at_the_centre_of_a_symmetric_beta(a):
    # ln B(a, a) is a difference of log-gammas of size ~a: its rounding, ~a x 1e-16, is the attainable accuracy
    assert incomplete_beta(0.5, a, a) == pytest.approx(0.5, abs=1e-15 * max(a, 1000.0))


@pytest.mark.parametrize("x", [0.001, 0.2, 0.5, 0.93])
@pytest.mark.parametrize("shape", [0.3, 1.0, 7.0, 120.0])
def test_incomplete_beta_with_one_unit_parameter_has_a_power_law(x, shape):
    assert incomplete_beta(x, 1.0, shape) == pytest.approx(1.0 - (1.0 - x) ** shape, rel=1e-10, abs=1e-300)
    assert incomplete_beta(x, shape, 1.0) == pytest.approx(x ** shape, rel=1e-10)


def test_incomplete_beta_matches_a_binomial_tail():
    # P(Bin(n, p) >= k) = I_p(k, n - k + 1), summed term by term here.
    n, p = 30, 0.17
    for k in (1, 5, 12, 29):
        tail = sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))
        assert incomplete_beta(p, k, n - k + 1) == pytest.approx(tail, rel=1e-10)


def test_log_incomplete_beta_keeps_tails_far_below_the_smallest_double():
    log_lower, log_upper = log_incomplete_beta(0.5, 2.0, 5000.0)
    # I_x(2, b) = 1 - (1-x)^b (1 + b x) for integer b: the upper tail is (1-x)^b (1 + b x) exactly.
    assert log_upper == pytest.approx(5000 * math.log(0.5) + math.log(1 + 2500), rel=1e-12)
    assert log_lower == pytest.approx(0.0, abs=1e-300)
    assert log_beta(3.0, 4.0) == pytest.approx(math.log(2 * 6 / 720))


def test_incomplete_beta_rejects_nonpositive_parameters():
    with pytest.raises(ValueError):
        incomplete_beta(0.5, 0.0, 1.0)


# --- canary against its threshold ------------------------------------------------------------------------------

@pytest.mark.parametrize("n,x", [(0, 0), (10, 0), (10, 3), (200, 9), (57, 57)])
def test_uniform_prior_on_the_whole_interval_is_the_beta_function_over_the_null(n, x):
    p0 = 0.04
    expected = math.exp(log_beta(x + 1, n - x + 1)) / (p0 ** x * (1 - p0) ** (n - x))
    assert math.exp(log_rate_e_value(n, x, p0, UNIFORM_PRIOR, "both")) == pytest.approx(expected, rel=1e-10)


def test_one_sided_uniform_prior_matches_hand_derived_ends():
    # Uniform on (p0, 1]: with no errors the integral of (1-p)^n is (1-p0)^(n+1)/(n+1), so E = 1/(n+1);
    # with only errors the integral of p^n is (1 - p0^(n+1))/(n+1), so E = (1 - p0^(n+1)) / ((n+1)(1-p0) p0^n).
    p0, n = 0.05, 40
    assert math.exp(log_rate_e_value(n, 0, p0, UNIFORM_PRIOR)) == pytest.approx(1 / (n + 1), rel=1e-10)
    assert math.exp(log_rate_e_value(6, 6, p0, UNIFORM_PRIOR)) == pytest.approx(
        (1 - p0 ** 7) / (7 * (1 - p0) * p0 ** 6), rel=1e-10)


@pytest.mark.parametrize("n,x", [(100, 1), (100, 6), (400, 30)])
def test_threshold_prior_e_value_matches_numerical_integration(n, x):
    p0 = 0.02
    prior = threshold_prior(p0)

    def density(p: float) -> float:
        return p ** (prior.a - 1) * (1 - p) ** (prior.b - 1)

    def weighted_ratio(p: float) -> float:
        return density(p) * (p / p0) ** x * ((1 - p) / (1 - p0)) ** (n - x)

    expected = simpson(weighted_ratio, p0, 1.0) / simpson(density, p0, 1.0)
    assert math.exp(log_rate_e_value(n, x, p0)) == pytest.approx(expected, rel=1e-6)
    assert prior.a / (prior.a + prior.b) == pytest.approx(p0)


def test_e_value_is_monotone_in_the_evidence():
    p0, n = 0.01, 2000
    values = [log_rate_e_value(n, x, p0) for x in range(0, 80)]
    assert all(b > a for a, b in zip(values, values[1:]))
    # more requests at the same errors is evidence of a lower share
    assert log_rate_e_value(3000, 40, p0) < log_rate_e_value(2000, 40, p0)


def test_zero_counts_carry_no_evidence():
    assert log_rate_e_value(0, 0, 0.01) == pytest.approx(0.0, abs=1e-12)
    assert rate_upper_bound(0, 0, 0.01) == 1.0
    assert judge_rate(0, 0, 0.01, 0.01).result == INCONCLUSIVE
    test = RateRatioTest(1.2)
    test.update(0, 0, 0, 0)
    test.update(100, 900, 0, 0)
    test.update(100, 0, 4, 0)
    assert test.log_e_value == pytest.approx(0.0, abs=1e-12)
    assert test.upper_bound(0.01) == math.inf


def test_ten_million_requests_do_not_overflow():
    n = 10 ** 7
    clearly_bad = log_rate_e_value(n, 2 * 10 ** 5, 0.01)
    assert math.isfinite(clearly_bad) and clearly_bad > 10000
    clearly_good = log_rate_e_value(n, 5 * 10 ** 4, 0.01)
    assert math.isfinite(clearly_good) and clearly_good < 0
    bound = rate_upper_bound(n, 5 * 10 ** 4, 0.01)
    assert 0.005 < bound < 0.0053
    verdict = judge_rate(n, 2 * 10 ** 5, 0.01, 0.01)
    assert verdict.result == FAIL and verdict.e_value == math.inf and math.isfinite(verdict.log_e_value)


def test_upper_bound_is_where_the_less_test_crosses_the_boundary():
    n, x, alpha = 3000, 12, 0.05
    bound = rate_upper_bound(n, x, alpha)
    # hand form of the uniform [0, q) mixture: B(x+1, n-x+1) I_q(x+1, n-x+1) / (q^(x+1) (1-q)^(n-x))

    def e_at(q: float) -> float:
        return math.exp(log_beta(x + 1, n - x + 1)) * incomplete_beta(q, x + 1, n - x + 1) / (
            q ** (x + 1) * (1 - q) ** (n - x))

    assert e_at(bound) == pytest.approx(1 / alpha, rel=1e-6)
    assert x / n < bound < 0.01
    assert rate_below(n, x, bound * 1.01, alpha) and not rate_below(n, x, bound * 0.99, alpha)


def test_rate_verdicts():
    assert judge_rate(2000, 60, 0.01, 0.01).result == FAIL
    passed = judge_rate(20000, 60, 0.01, 0.01, tolerance=0.2)
    assert passed.result == PASS and passed.upper_bound < 0.012
    waiting = judge_rate(300, 3, 0.01, 0.01)
    assert waiting.result == INCONCLUSIVE
    assert waiting.boundary == pytest.approx(100) and waiting.counts == {"requests": 300, "errors": 3}
    assert judge_rate(20000, 60, 0.01, 0.01, 0.2, min_requests=50000).result == INCONCLUSIVE
    assert judge_rate(2000, 60, 0.01, 0.01).to_verdict().details["e_value"] > 100


def binomial(rng: random.Random, trials: int, share: float) -> int:
    return sum(rng.random() < share for _ in range(trials))


def poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def test_rate_test_keeps_false_alarms_under_alpha_with_continuous_monitoring_and_catches_a_5x_canary():
    rng = random.Random(15)
    p0, alpha, polls, per_poll = 0.02, 0.1, 20, 50

    def run(share: float) -> tuple[int, list[int]]:
        alarms, requests_at_alarm = 0, []
        for _ in range(600):
            requests = errors = 0
            for _ in range(polls):
                requests += per_poll
                errors += binomial(rng, per_poll, share)
                if log_rate_e_value(requests, errors, p0) >= -math.log(alpha):
                    alarms += 1
                    requests_at_alarm.append(requests)
                    break
        return alarms, requests_at_alarm

    null_alarms, _ = run(p0)
    assert null_alarms / 600 <= alpha
    bad_alarms, served = run(5 * p0)
    assert bad_alarms / 600 >= 0.95
    assert sorted(served)[len(served) // 2] <= 100


def test_ratio_log_likelihood_ratio_matches_a_direct_binomial_computation():
    increments = [(100, 900, 3, 20), (400, 600, 9, 11), (50, 950, 2, 30)]
    test = RateRatioTest(1.0)
    for increment in increments:
        test.update(*increment)

    def log_likelihood(ratio: float) -> float:
        total = 0.0
        for canary, primary, e, f in increments:
            w = canary / (canary + primary)
            theta = w * ratio / (w * ratio + 1 - w)
            total += math.log(math.comb(e + f, e)) + e * math.log(theta) + f * math.log(1 - theta)
        return total

    alternatives = [2 ** (step / 4) for step in RateRatioTest.ALTERNATIVE_STEPS]
    expected = sum(math.exp(log_likelihood(r) - log_likelihood(1.0)) for r in alternatives) / len(alternatives)
    assert test.e_value == pytest.approx(expected, rel=1e-10)
    below = sum(math.exp(log_likelihood(1 / r) - log_likelihood(1.0)) for r in alternatives) / len(alternatives)
    assert math.exp(test.log_e_value_below(0)) == pytest.approx(below, rel=1e-10)
    assert test.observed_ratio == pytest.approx((14 / 550) / (61 / 2450))


def simulate_ratio(rng: random.Random, canary_factor: float, incident: bool) -> tuple[RateRatioTest, int | None]:
    """Diurnal traffic, a canary weight that steps up, and optionally a service-wide incident mid-release."""
    test, alpha = RateRatioTest(1.0), 0.05
    for poll in range(30):
        traffic = 400 * (1.0 + 0.8 * math.sin(poll / 4.0))
        weight = min(0.1 + 0.05 * (poll // 5), 0.5)
        base = 0.3 if incident and 10 <= poll < 20 else 0.01
        canary, primary = int(traffic * weight), int(traffic * (1 - weight))
        test.update(canary, primary, min(poisson(rng, canary * base * canary_factor), canary),
                    min(poisson(rng, primary * base), primary))
        if test.log_e_value >= -math.log(alpha):
            return test, poll
    return test, None


@pytest.mark.parametrize("incident", [False, True])
def test_ratio_test_stays_under_alpha_with_varying_traffic_and_incidents(incident):
    rng = random.Random(42 if incident else 7)
    alarms = sum(simulate_ratio(rng, 1.0, incident)[1] is not None for _ in range(500))
    assert alarms / 500 <= 0.05


def test_ratio_test_catches_a_5x_canary():
    rng = random.Random(3)
    caught = [simulate_ratio(rng, 5.0, False)[1] for _ in range(200)]
    assert sum(poll is not None for poll in caught) / 200 >= 0.95
    assert sorted(poll for poll in caught if poll is not None)[len(caught) // 2] <= 6


def test_ratio_verdicts_and_bounds():
    bad = RateRatioTest(1.2)
    for _ in range(5):
        bad.update(100, 900, 10, 20)
    assert judge_ratio(bad, 0.01).result == FAIL
    good = RateRatioTest(1.2)
    for _ in range(40):
        good.update(500, 500, 10, 11)
    verdict = judge_ratio(good, 0.01)
    assert verdict.result == PASS and 1.0 < verdict.upper_bound <= 1.2
    assert verdict.counts["canary_errors"] == 400
    # a service-wide incident: both versions at 30 % errors is no evidence against the canary
    incident = RateRatioTest(1.2)
    for _ in range(10):
        incident.update(100, 900, 30, 270)
    assert judge_ratio(incident, 0.01).result != FAIL
    assert incident.log_e_value < 0


def test_latency_order_fails_a_slower_canary_and_passes_an_equal_one():
    boundaries = [100.0, 250.0, 500.0, math.inf]
    slower, equal = SlowRequestTest(boundaries), SlowRequestTest(boundaries, 1.2)
    for _ in range(60):
        slower.update(200, 800, slow_counts(200, {100.0: 150, 250.0: 170, 500.0: 196, math.inf: 200}),
                      slow_counts(800, {100.0: 600, 250.0: 760, 500.0: 796, math.inf: 800}))
        equal.update(500, 500, {100.0: 100, 250.0: 60, 500.0: 30}, {100.0: 100, 250.0: 60, 500.0: 30})
    failed = judge_latency_order(slower, 0.01)
    assert failed.result == FAIL and failed.histogram_boundary == 250.0
    assert failed.boundary == pytest.approx(300)
    assert judge_latency_order(equal, 0.01).result == PASS


def test_latency_limit_uses_the_boundaries_that_keep_each_side_honest():
    # 3 % slower than 250 ms but 0.5 % slower than 500 ms: the p99 may or may not exceed 300 ms
    slow = {100.0: 900, 250.0: 60, 500.0: 10}
    assert judge_latency_limit(2000, slow, 300, 0.01).result == INCONCLUSIVE
    assert judge_latency_limit(2000, slow, 250, 0.01).result == FAIL
    assert judge_latency_limit(2000, slow, 50, 0.01).result == FAIL
    beyond = judge_latency_limit(2000, slow, 600, 0.01)
    assert beyond.result == INCONCLUSIVE and beyond.histogram_boundary == 500.0 and "no boundary above" in beyond.reason
    too_slow = judge_latency_limit(2000, {100.0: 900, 250.0: 300, 500.0: 80}, 300, 0.01)
    assert too_slow.result == FAIL and too_slow.histogram_boundary == 500.0
    fast = judge_latency_limit(50000, {100.0: 900, 250.0: 100, 500.0: 10}, 300, 0.01, tolerance=0.2)
    assert fast.result == PASS and fast.histogram_boundary == 250.0


def test_counts_must_make_sense():
    with pytest.raises(ValueError):
        log_rate_e_value(10, 11, 0.01)
    with pytest.raises(ValueError):
        log_rate_e_value(10, 1, 1.0)
    with pytest.raises(ValueError):
        RateRatioTest().update(10, 10, -1, 0)
    assert BetaPrior(1.0, 1.0) == UNIFORM_PRIOR
