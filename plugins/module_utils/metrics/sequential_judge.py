# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sequential judge of a release: Flagger's builtin metrics as anytime-valid tests on exact counts.

``request-success-rate`` runs two tests: the canary's error share against the threshold (``100 - min`` percent)
and the canary's error rate against the primary's. ``request-duration`` runs two as well: Flagger's p99 limit as
"at most 1 % of requests slower than max", and the canary's slow requests against the primary's at every histogram
boundary. Every test may be looked at after every poll; the false-rollback probability of the whole release stays
below ``alpha`` because each test gets ``alpha`` divided by the number of tests (Bonferroni).

The limit tests count only the polls in which the primary met the same limit over the last interval: when both
versions breach together (a service-wide incident, a dependency down) the limit says nothing about the canary, and
the comparison with the primary is the test that speaks. The primary's counts are independent of the canary's, so
choosing polls by them keeps the limit tests valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.builtin_names import DURATION, SUCCESS_RATE
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.release_counts import (
    CANARY,
    PRIMARY,
    ReleaseCounts,
    VersionCounts,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential import RateRatioTest, slow_counts
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_verdict import (
    DURATION_QUANTILE_SHARE,
    SequentialVerdict,
    SlowRequestTest,
    judge_latency_limit,
    judge_latency_order,
    judge_rate,
    judge_ratio,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import MetricSpec
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    format_number,
    histogram_quantile,
)

TESTS_PER_METRIC = 2


class SequentialConfigError(ValueError):
    """A sequential setting outside its range, or a metric the sequential judge cannot test."""


@dataclass(frozen=True)
class SequentialSettings:
    """The role's ``canary_sequential_*`` variables.

    ``alpha`` bounds the probability that a canary as good as the primary (and within its thresholds) is rolled
    back, over the whole release. ``tolerance`` is how much worse than the primary the canary may be before it counts
    as a regression (0.1: up to 1.1 times the primary's error rate). ``min_effect`` is the smallest regression the
    tests look for, beyond the tolerance; smaller ones are let through rather than paid for with slower detection of
    large ones. ``min_requests`` is how many canary requests an interval needs for a verdict.
    """

    alpha: float = 0.01
    tolerance: float = 0.0
    min_effect: float = 0.1
    min_requests: int = 10

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 0.5:
            raise SequentialConfigError("alpha must be above 0 and at most 0.5, got %r" % self.alpha)
        if self.tolerance < 0.0:
            raise SequentialConfigError("tolerance must be 0 or more, got %r" % self.tolerance)
        if self.min_effect < 0.0:
            raise SequentialConfigError("min_effect must be 0 or more, got %r" % self.min_effect)
        if self.min_requests < 0:
            raise SequentialConfigError("min_requests must be 0 or more, got %r" % self.min_requests)


def sequential_specs(specs: Sequence[MetricSpec]) -> list[MetricSpec]:
    """The metrics the sequential judge tests: Flagger's builtin success rate with a min, duration with a max."""
    chosen = []
    for spec in specs:
        bounds = spec.threshold_range
        if spec.builtin == SUCCESS_RATE and bounds is not None and bounds.min is not None:
            chosen.append(spec)
        elif spec.builtin == DURATION and bounds is not None and bounds.max is not None:
            chosen.append(spec)
    return chosen


@dataclass
class Judgement:
    """One metric at one poll: the combined result, a value for people, and every test's verdict."""

    name: str
    result: str
    value: float | None
    reason: str
    verdicts: list[SequentialVerdict] = field(default_factory=list)
    # The canary's requests since the start that the metric saw.
    requests: float = 0.0

    def evidence(self) -> list[dict[str, Any]]:
        return [{"metric": self.name, "test": v.test, "log_e_value": round(v.log_e_value, 4),
                 "log_boundary": round(v.log_boundary, 4)} for v in self.verdicts]


@dataclass
class _LimitCounts:
    """What a limit test counted: the canary's requests of the polls in which the primary met the limit."""

    requests: float = 0.0
    bad: float = 0.0
    slow: dict[float, float] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        return {"requests": self.requests, "bad": self.bad, "slow": {repr(le): n for le, n in self.slow.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "_LimitCounts":
        return cls(float(state.get("requests") or 0.0), float(state.get("bad") or 0.0),
                   {float(le): float(n) for le, n in (state.get("slow") or {}).items()})


class SequentialJudge:
    """Feeds each poll's counts to the tests of the sequential metrics and says where each one stands."""

    def __init__(self, specs: Sequence[MetricSpec], settings: SequentialSettings, interval: float) -> None:
        if interval <= 0:
            raise SequentialConfigError("the metric interval must be positive, got %r" % interval)
        by_name = {spec.builtin: spec for spec in sequential_specs(specs)}
        self.success = by_name.get(SUCCESS_RATE)
        self.duration = by_name.get(DURATION)
        # sequential_specs() only keeps metrics with the bound their test needs.
        self.error_share_limit = _bound(self.success, "min", lambda low: (100.0 - low) / 100.0)
        self.max_ms = _bound(self.duration, "max", float)
        self.settings = settings
        self.interval = interval
        self.tests = TESTS_PER_METRIC * ((self.success is not None) + (self.duration is not None))
        self.ratio = RateRatioTest(1.0 + settings.tolerance, settings.min_effect)
        self.order: SlowRequestTest | None = None
        self.rate_counts = _LimitCounts()
        self.limit_counts = _LimitCounts()
        # The primary's increments of the last interval: (time, counts), to tell an incident from a bad canary.
        self.primary_recent: list[tuple[float, VersionCounts]] = []
        self.interval_requests = 0.0

    @property
    def test_alpha(self) -> float:
        return self.settings.alpha / max(self.tests, 1)

    @property
    def _recent_primary(self) -> list[VersionCounts]:
        return [counts for _when, counts in self.primary_recent]

    def begin_interval(self) -> None:
        """An interval's verdict needs its own requests; the evidence keeps everything since the start."""
        self.interval_requests = 0.0

    def observe(self, counts: ReleaseCounts) -> list[Judgement]:
        canary, primary = counts.increments[CANARY], counts.increments[PRIMARY]
        self.interval_requests += canary.requests
        self.primary_recent = [(when, c) for when, c in self.primary_recent if when > counts.time - self.interval]
        self.primary_recent.append((counts.time, primary))
        judgements = []
        if self.success is not None:
            judgements.append(self._success(counts, canary, primary))
        if self.duration is not None:
            judgements.append(self._duration(counts, canary, primary))
        return judgements

    def conclude(self, judgement: Judgement) -> Judgement:
        """The interval's verdict: a crossing fails; otherwise enough requests pass and too few are inconclusive."""
        if judgement.result == FAIL:
            return judgement
        needed = max(self.settings.min_requests, 1)
        if self.interval_requests >= needed:
            reason = "no regression found after %s canary requests (%s this interval): %s" % (
                format_number(judgement.requests), format_number(self.interval_requests), judgement.reason)
            return replace(judgement, result=PASS, reason=reason)
        reason = "%s canary requests this interval, %d needed for a verdict (canary_sequential_min_requests): %s" % (
            format_number(self.interval_requests), needed, judgement.reason)
        return replace(judgement, result=INCONCLUSIVE, reason=reason)

    # -- request-success-rate ----------------------------------------------------------

    def _success(self, counts: ReleaseCounts, canary: VersionCounts, primary: VersionCounts) -> Judgement:
        limit = self.error_share_limit
        self.ratio.update(canary.requests, primary.requests, canary.errors, primary.errors)
        recent_requests = sum(c.requests for c in self._recent_primary)
        recent_errors = sum(c.errors for c in self._recent_primary)
        if not recent_errors > limit * recent_requests:
            self.rate_counts.requests += canary.requests
            self.rate_counts.bad += canary.errors
        alpha = self.test_alpha
        rate = judge_rate(self.rate_counts.requests, self.rate_counts.bad, min(max(limit, 1e-6), 1 - 1e-6), alpha,
                          self.settings.tolerance)
        ratio = judge_ratio(self.ratio, alpha)
        total = counts.totals[CANARY]
        value = 100.0 * (1.0 - total.errors / total.requests) if total.requests else None
        return _combine(SUCCESS_RATE, value, [rate, ratio], total.requests)

    # -- request-duration --------------------------------------------------------------

    def _duration(self, counts: ReleaseCounts, canary: VersionCounts, primary: VersionCounts) -> Judgement:
        max_ms = self.max_ms
        canary_requests, primary_requests = _histogram_total(canary), _histogram_total(primary)
        canary_slow = slow_counts(canary_requests, canary.buckets)
        primary_slow = slow_counts(primary_requests, primary.buckets)
        if self.order is None and canary_slow:
            self.order = SlowRequestTest(list(canary_slow), 1.0 + self.settings.tolerance, self.settings.min_effect)
        if self.order is not None:
            self.order.update(canary_requests, primary_requests, canary_slow, primary_slow)
        if not self._primary_too_slow(max_ms):
            self.limit_counts.requests += canary_requests
            for le, slow in canary_slow.items():
                self.limit_counts.slow[le] = self.limit_counts.slow.get(le, 0.0) + slow
        alpha = self.test_alpha
        verdicts = [judge_latency_limit(self.limit_counts.requests, self.limit_counts.slow, max_ms, alpha,
                                        self.settings.tolerance)]
        if self.order is not None:
            verdicts.append(judge_latency_order(self.order, alpha))
        total = counts.totals[CANARY]
        return _combine(DURATION, histogram_quantile(0.99, total.buckets) if total.buckets else None, verdicts,
                        _histogram_total(total))

    def _primary_too_slow(self, max_ms: float) -> bool:
        recent = self._recent_primary
        requests = sum(_histogram_total(c) for c in recent)
        if not requests:
            return False
        finite = sorted({le for c in recent for le in c.buckets if not math.isinf(le) and le >= max_ms})
        if not finite:
            return False
        slower = sum(_histogram_total(c) - c.buckets.get(finite[0], 0.0) for c in recent)
        return slower > DURATION_QUANTILE_SHARE * requests

    # -- state between tasks -----------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio.to_state(),
            "order": self.order.to_state() if self.order is not None else None,
            "rate_counts": self.rate_counts.to_state(),
            "limit_counts": self.limit_counts.to_state(),
            "primary_recent": [[when, c.as_dict()] for when, c in self.primary_recent],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        if state.get("ratio"):
            self.ratio = RateRatioTest.from_state(state["ratio"])
        if state.get("order"):
            self.order = SlowRequestTest.from_state(state["order"])
        self.rate_counts = _LimitCounts.from_state(state.get("rate_counts") or {})
        self.limit_counts = _LimitCounts.from_state(state.get("limit_counts") or {})
        self.primary_recent = [(float(when), _version_counts(c)) for when, c in state.get("primary_recent") or []]


def _combine(name: str, value: float | None, verdicts: list[SequentialVerdict], requests: float) -> Judgement:
    """FAIL when any test crossed; otherwise still open (the interval's end decides, see SequentialJudge.conclude)."""
    failed = [v for v in verdicts if v.result == FAIL]
    if failed:
        strongest = max(failed, key=lambda v: v.log_e_value - v.log_boundary)
        return Judgement(name, FAIL, value, "the sequential %s test crossed its boundary: %s" % (
            strongest.test, strongest.reason), verdicts, requests)
    reason = "; ".join("%s test: %s" % (v.test, v.reason) for v in verdicts)
    return Judgement(name, INCONCLUSIVE, value, reason, verdicts, requests)


def _bound(spec: MetricSpec | None, side: str, convert: Callable[[float], float]) -> float:
    if spec is None or spec.threshold_range is None or getattr(spec.threshold_range, side) is None:
        return math.nan
    return convert(float(getattr(spec.threshold_range, side)))


def _histogram_total(counts: VersionCounts) -> float:
    return counts.buckets.get(math.inf, 0.0)


def _version_counts(data: Mapping[str, Any]) -> VersionCounts:
    buckets = {float(le): float(n) for le, n in (data.get("buckets") or {}).items()}
    return VersionCounts(float(data.get("requests") or 0.0), float(data.get("errors") or 0.0), buckets)
