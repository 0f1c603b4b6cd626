"""The sequential judge of a release: which polls roll back, which intervals pass, and what carries over between tasks."""

from __future__ import annotations

import math
import random

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.release_counts import (
    CANARY,
    PRIMARY,
    ReleaseCounts,
    VersionCounts,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential import RateRatioTest
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_judge import (
    DURATION,
    SUCCESS_RATE,
    SequentialConfigError,
    SequentialJudge,
    SequentialSettings,
    sequential_specs,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import MetricSpec, ThresholdRange
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import FAIL, INCONCLUSIVE, PASS

SUCCESS = MetricSpec("request-success-rate", "", "builtin:request-success-rate", "1m", ThresholdRange(min=99))
LATENCY = MetricSpec("request-duration", "", "builtin:request-duration", "1m", ThresholdRange(max=500))
CUSTOM = MetricSpec("error-rate", "sum(x)", "template:error-rate", "1m", ThresholdRange(max=1))
BOUNDS = (100.0, 250.0, 500.0, 1000.0, math.inf)


class Stream:
    """Poisson-free, seeded binomial traffic: per poll, each version's requests and 5xx, and latency buckets."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.time = 0.0
        self.totals = {CANARY: VersionCounts(), PRIMARY: VersionCounts()}

    def _version(self, requests: int, error_share: float, slow_share: float) -> VersionCounts:
        errors = sum(self.rng.random() < error_share for _ in range(requests))
        slow = sum(self.rng.random() < slow_share for _ in range(requests))
        # Slow requests land between 500 and 1000 ms, the others under 100 ms.
        buckets = {100.0: requests - slow, 250.0: requests - slow, 500.0: requests - slow, 1000.0: requests,
                   math.inf: requests}
        return VersionCounts(float(requests), float(errors), {le: float(n) for le, n in buckets.items()})

    def poll(self, canary: int, primary: int, canary_errors: float = 0.005, primary_errors: float = 0.005,
             canary_slow: float = 0.0, primary_slow: float = 0.0, seconds: float = 1.0) -> ReleaseCounts:
        self.time += seconds
        increments = {CANARY: self._version(canary, canary_errors, canary_slow),
                      PRIMARY: self._version(primary, primary_errors, primary_slow)}
        for version, step in increments.items():
            total = self.totals[version]
            total.requests += step.requests
            total.errors += step.errors
            for le, n in step.buckets.items():
                total.buckets[le] = total.buckets.get(le, 0.0) + n
        totals = {v: VersionCounts(t.requests, t.errors, dict(t.buckets)) for v, t in self.totals.items()}
        return ReleaseCounts(self.time, 0.0, totals, increments)


def judge(*specs: MetricSpec, **settings) -> SequentialJudge:
    return SequentialJudge(list(specs) or [SUCCESS], SequentialSettings(**settings), interval=10.0)


def first_failure(judged: SequentialJudge, stream: Stream, polls: int, **traffic) -> int | None:
    for poll in range(1, polls + 1):
        if any(j.result == FAIL for j in judged.observe(stream.poll(**traffic))):
            return poll
    return None


def test_only_flaggers_builtins_with_their_bound_are_tested_sequentially():
    no_bound = MetricSpec("request-duration", "", "builtin:request-duration", "1m", ThresholdRange(min=1))
    assert [s.name for s in sequential_specs([SUCCESS, LATENCY, CUSTOM, no_bound])] == [SUCCESS_RATE, DURATION]
    assert judge(SUCCESS, LATENCY).tests == 4
    assert judge(SUCCESS, LATENCY, alpha=0.02).test_alpha == pytest.approx(0.005)


@pytest.mark.parametrize("settings, word", [
    ({"alpha": 0}, "alpha"), ({"alpha": 0.6}, "alpha"), ({"tolerance": -0.1}, "tolerance"),
    ({"min_effect": -1}, "min_effect"), ({"min_requests": -1}, "min_requests"),
])
def test_settings_out_of_range_are_refused_by_name(settings, word):
    with pytest.raises(SequentialConfigError, match=word):
        SequentialSettings(**settings)


def test_a_30_percent_error_canary_is_rolled_back_after_a_handful_of_requests():
    judged = judge()
    poll = first_failure(judged, Stream(), 30, canary=2, primary=18, canary_errors=0.3)
    assert poll is not None and poll <= 10
    failed = [j for j in judged.observe(Stream(2).poll(canary=2, primary=18, canary_errors=1.0)) if j.result == FAIL]
    assert failed and "crossed its boundary" in failed[0].reason


def test_a_5_percent_error_canary_is_rolled_back_within_the_release():
    assert first_failure(judge(), Stream(3), 250, canary=5, primary=45, canary_errors=0.05) is not None


def test_a_canary_as_good_as_the_primary_passes_every_interval():
    judged = judge(SUCCESS, LATENCY)
    stream = Stream()
    for interval in range(1, 6):
        judged.begin_interval()
        for _poll in range(10):
            judgements = judged.observe(stream.poll(canary=5, primary=45))
        assert [judged.conclude(j).result for j in judgements] == [PASS, PASS]
        assert "no regression found after %d canary requests (50 this interval)" % (50 * interval) in \
            judged.conclude(judgements[1]).reason


def test_an_interval_with_too_few_canary_requests_is_inconclusive():
    judged = judge(min_requests=10)
    judged.begin_interval()
    judgements = judged.observe(Stream().poll(canary=3, primary=40))
    concluded = judged.conclude(judgements[0])
    assert concluded.result == INCONCLUSIVE
    assert "3 canary requests this interval, 10 needed" in concluded.reason


def test_a_service_wide_incident_does_not_roll_back_a_canary_no_worse_than_the_primary():
    judged = judge()
    stream = Stream(5)
    for _ in range(20):
        judged.observe(stream.poll(canary=5, primary=45))
    # Both versions fail 30 % of their requests for 60 s: far beyond the 1 % limit, equal to each other.
    assert first_failure(judged, stream, 60, canary=5, primary=45, canary_errors=0.3, primary_errors=0.3) is None
    assert first_failure(judged, stream, 60, canary=5, primary=45) is None


def test_the_same_errors_without_the_primary_failing_roll_back():
    judged = judge()
    stream = Stream(5)
    assert first_failure(judged, stream, 60, canary=5, primary=45, canary_errors=0.3) is not None


def test_a_canary_slower_than_max_fails_the_latency_limit_and_the_order_test():
    judged = judge(LATENCY)
    stream = Stream(7)
    for _ in range(30):
        judgements = judged.observe(stream.poll(canary=5, primary=45, canary_slow=0.2))
        if judgements[0].result == FAIL:
            break
    assert judgements[0].result == FAIL
    assert {v.test for v in judgements[0].verdicts} == {"latency-limit", "latency-order"}
    assert judgements[0].value is not None and judgements[0].value > 500


def test_when_the_primary_is_as_slow_only_the_order_test_speaks_and_it_finds_no_regression():
    judged = judge(LATENCY)
    stream = Stream(8)
    assert first_failure(judged, stream, 40, canary=5, primary=45, canary_slow=0.2, primary_slow=0.2) is None


def test_state_carries_the_evidence_to_the_next_task():
    stream, twin = Stream(9), Stream(9)
    first, uninterrupted = judge(SUCCESS, LATENCY), judge(SUCCESS, LATENCY)
    for _ in range(15):
        first.observe(stream.poll(canary=5, primary=45, canary_errors=0.02, canary_slow=0.01))
        uninterrupted.observe(twin.poll(canary=5, primary=45, canary_errors=0.02, canary_slow=0.01))
    resumed = judge(SUCCESS, LATENCY)
    resumed.restore(first.to_state())
    after = resumed.observe(stream.poll(canary=5, primary=45, canary_errors=0.02, canary_slow=0.01))
    expected = uninterrupted.observe(twin.poll(canary=5, primary=45, canary_errors=0.02, canary_slow=0.01))
    assert [p["log_e_value"] for j in after for p in j.evidence()] == \
        [p["log_e_value"] for j in expected for p in j.evidence()]


def test_evidence_names_every_test_with_its_boundary():
    judged = judge(SUCCESS, LATENCY, alpha=0.01)
    points = [p for j in judged.observe(Stream().poll(canary=5, primary=45)) for p in j.evidence()]
    assert [(p["metric"], p["test"]) for p in points] == [
        (SUCCESS_RATE, "rate"), (SUCCESS_RATE, "ratio"), (DURATION, "latency-limit"), (DURATION, "latency-order")]
    # Four tests share alpha: each crosses at 4 / 0.01 = 400; the order test splits its share again among the
    # histogram's four finite boundaries.
    boundaries = {p["test"]: p["log_boundary"] for p in points}
    assert boundaries == {"rate": round(math.log(400), 4), "ratio": round(math.log(400), 4),
                          "latency-limit": round(math.log(400), 4), "latency-order": round(math.log(1600), 4)}


def test_min_effect_keeps_the_alternatives_at_or_above_it():
    assert RateRatioTest(1.0, 0.0).alternatives == RateRatioTest.ALTERNATIVE_STEPS
    # The grid steps by 2^(1/4): a minimum effect of 100 % keeps the alternatives from 2^(4/4) = 2x up.
    assert RateRatioTest(1.0, 1.0).alternatives[0] == 4
    assert RateRatioTest(1.0, 3.0).alternatives[0] == 8
    assert RateRatioTest(1.0, 1000.0).alternatives == (RateRatioTest.ALTERNATIVE_STEPS[-1],)


def test_a_larger_min_effect_is_slower_on_a_small_regression_against_the_primary():
    # A 10 % limit keeps the threshold test out of it: only the comparison with the primary can see 2 % against 1 %.
    loose = MetricSpec("request-success-rate", "", "builtin:request-success-rate", "1m", ThresholdRange(min=90))

    def polls_to_fail(min_effect: float) -> int:
        found = first_failure(judge(loose, min_effect=min_effect), Stream(11), 3000, canary=10, primary=40,
                              canary_errors=0.02, primary_errors=0.01)
        return found if found is not None else 10**6
    assert polls_to_fail(0.1) < polls_to_fail(3.0)
