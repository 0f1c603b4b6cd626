# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts of the sequential judge: fail when the evidence crosses 1/alpha, pass when the confidence sequence
shows no worse than the tolerance, inconclusive until the requests say either."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential import (
    RateRatioTest,
    log_rate_e_value,
    rate_below,
    rate_upper_bound,
    safe_exp,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Verdict,
    format_number,
)

# Flagger's request-duration is a p99: at most 1 % of the canary's requests may be slower than the maximum.
DURATION_QUANTILE_SHARE = 0.01


@dataclass(frozen=True)
class SequentialVerdict:
    """What a report needs from one sequential test at one poll."""

    result: str
    test: str
    reason: str
    log_e_value: float
    alpha: float
    log_boundary: float
    null_value: float
    upper_bound: float | None
    counts: dict[str, float] = field(default_factory=dict)
    histogram_boundary: float | None = None

    @property
    def e_value(self) -> float:
        return safe_exp(self.log_e_value)

    @property
    def boundary(self) -> float:
        return safe_exp(self.log_boundary)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(e_value=self.e_value, boundary=self.boundary)
        return data

    def to_verdict(self) -> Verdict:
        return Verdict(self.result, self.reason, self.e_value, self.as_dict())


def judge_rate(requests: float, errors: float, p0: float, alpha: float, tolerance: float = 0.0,
               min_requests: float = 0) -> SequentialVerdict:
    """The canary's error share against its threshold p0 (p0 = (100 - min) / 100 for request-success-rate)."""
    log_e = log_rate_e_value(requests, errors, p0)
    log_boundary = -math.log(alpha)
    counts = {"requests": requests, "errors": errors}
    bound = rate_upper_bound(requests, errors, alpha) if requests else 1.0
    limit = p0 * (1.0 + tolerance)
    if log_e >= log_boundary:
        result = FAIL
        reason = "error share %s of %s requests is above %s: e-value %s >= %s" % (
            _share(errors, requests), format_number(requests), _percent(p0), format_e_value(log_e), format_e_value(log_boundary))
    elif requests >= min_requests and requests and rate_below(requests, errors, limit, alpha):
        result = PASS
        reason = "error share is below %s with confidence %s: upper bound %s after %s requests" % (
            _percent(limit), _percent(1.0 - alpha), _percent(bound), format_number(requests))
    else:
        result = INCONCLUSIVE
        reason = "%s requests, %s errors: e-value %s below %s, upper bound %s not below %s" % (
            format_number(requests), format_number(errors), format_e_value(log_e), format_e_value(log_boundary), _percent(bound),
            _percent(limit))
    return SequentialVerdict(result, "rate", reason, log_e, alpha, log_boundary, p0, bound, counts)


def judge_ratio(test: RateRatioTest, alpha: float, min_requests: float = 0, tests: int = 1,
                name: str = "ratio") -> SequentialVerdict:
    """The canary's error rate against the primary's: fails when it is shown above r0 times the primary's,
    passes when it is shown below. `tests` > 1 splits alpha among that many (Bonferroni)."""
    log_boundary = math.log(tests / alpha)
    log_e = test.log_e_value
    bound = test.upper_bound(alpha / tests)
    counts = {"canary_requests": test.canary_requests, "primary_requests": test.primary_requests,
              "canary_errors": test.canary_errors, "primary_errors": test.primary_errors}
    observed = test.observed_ratio
    seen = "canary/primary rate ratio %s" % ("undefined" if observed is None else format_number(observed))
    if log_e >= log_boundary:
        result = FAIL
        reason = "%s: above %s x primary, e-value %s >= %s" % (
            seen, format_number(test.null_ratio), format_e_value(log_e), format_e_value(log_boundary))
    elif test.canary_requests >= min_requests and bound <= test.null_ratio:
        result = PASS
        reason = "%s: below %s x primary with confidence %s" % (seen, format_number(bound), _percent(1.0 - alpha))
    else:
        result = INCONCLUSIVE
        reason = "%s after %s canary requests: e-value %s below %s, upper bound %s above %s" % (
            seen, format_number(test.canary_requests), format_e_value(log_e), format_e_value(log_boundary), format_number(bound),
            format_number(test.null_ratio))
    return SequentialVerdict(result, name, reason, log_e, alpha, log_boundary, test.null_ratio, bound, counts)


class SlowRequestTest:
    """A sequential test of stochastic order: per histogram boundary, canary requests slower than it against the
    primary's, each as a rate-ratio test; Bonferroni over the boundaries keeps the family at alpha."""

    def __init__(self, boundaries: Sequence[float], null_ratio: float = 1.0, min_effect: float = 0.0) -> None:
        self.tests = {le: RateRatioTest(null_ratio, min_effect) for le in sorted(boundaries) if not math.isinf(le)}
        if not self.tests:
            raise ValueError("a latency comparison needs at least one finite histogram boundary")

    def to_state(self) -> dict[str, Any]:
        return {repr(le): test.to_state() for le, test in self.tests.items()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "SlowRequestTest":
        tests = {float(le): RateRatioTest.from_state(one) for le, one in state.items()}
        if not tests:
            raise ValueError("a stored latency comparison has no histogram boundary")
        restored = cls(list(tests))
        restored.tests = dict(sorted(tests.items()))
        return restored

    def update(self, canary_requests: float, primary_requests: float, canary_slow: Mapping[float, float],
               primary_slow: Mapping[float, float]) -> None:
        """One poll increment; `*_slow` map each boundary to the requests slower than it (see slow_counts)."""
        for le, test in self.tests.items():
            test.update(canary_requests, primary_requests, canary_slow.get(le, 0.0), primary_slow.get(le, 0.0))


def judge_latency_order(test: SlowRequestTest, alpha: float, min_requests: float = 0) -> SequentialVerdict:
    """Fails if the canary is slower than the primary above any boundary; passes when no boundary is worse."""
    verdicts = {le: judge_ratio(one, alpha, min_requests, len(test.tests), "latency-order")
                for le, one in test.tests.items()}
    failed = [le for le, verdict in verdicts.items() if verdict.result == FAIL]
    strongest = max(verdicts, key=lambda le: verdicts[le].log_e_value)
    if failed:
        chosen, result = max(failed, key=lambda le: verdicts[le].log_e_value), FAIL
    elif all(verdict.result == PASS for verdict in verdicts.values()):
        chosen, result = strongest, PASS
    else:
        chosen, result = strongest, INCONCLUSIVE
    verdict = verdicts[chosen]
    reason = "requests slower than %s ms: %s" % (format_number(chosen), verdict.reason)
    return replace(verdict, result=result, reason=reason, histogram_boundary=chosen)


def judge_latency_limit(requests: float, slow: Mapping[float, float], max_ms: float, alpha: float,
                        tolerance: float = 0.0, min_requests: float = 0) -> SequentialVerdict:
    """Flagger's request-duration (p99 <= max ms) as a share: at most 1 % of the canary's requests above max.

    Histograms only know their boundaries, so each side uses the boundary that keeps it honest: fail when more than
    1 % are slower than the smallest boundary >= max (their p99 is then surely above max), pass when under 1 % are
    slower than the largest boundary <= max (their p99 is surely within it).
    """
    finite = sorted(le for le in slow if not math.isinf(le))
    above = [le for le in finite if le >= max_ms]
    within = [le for le in finite if le <= max_ms]
    fail_check = None
    if above:
        fail_check = judge_rate(requests, slow[above[0]], DURATION_QUANTILE_SHARE, alpha, tolerance, math.inf)
        if fail_check.result == FAIL:
            return _latency_limit(fail_check, above[0], max_ms)
    if within:
        pass_check = judge_rate(requests, slow[within[-1]], DURATION_QUANTILE_SHARE, alpha, tolerance, min_requests)
        if pass_check.result == PASS:
            return _latency_limit(pass_check, within[-1], max_ms)
        if fail_check is None:
            # many requests slower than a boundary under max say nothing about max itself
            unsure = replace(pass_check, result=INCONCLUSIVE, reason="%s of %s requests slower, no boundary above" % (
                _share(slow[within[-1]], requests), format_number(requests)))
            return _latency_limit(unsure, within[-1], max_ms)
    if fail_check is None:
        return SequentialVerdict(INCONCLUSIVE, "latency-limit", "the histogram has no finite boundary", 0.0, alpha,
                                 -math.log(alpha), DURATION_QUANTILE_SHARE, None, {"requests": requests})
    return _latency_limit(fail_check, above[0], max_ms)


def _latency_limit(verdict: SequentialVerdict, boundary: float, max_ms: float) -> SequentialVerdict:
    reason = "p99 against %s ms, requests slower than %s ms: %s" % (
        format_number(max_ms), format_number(boundary), verdict.reason)
    return replace(verdict, test="latency-limit", reason=reason, histogram_boundary=boundary)


def format_e_value(log_value: float) -> str:
    """An e-value for people: plain when moderate, as a power of ten when huge."""
    if log_value > 20.0:
        return "1e%d" % int(log_value / math.log(10.0))
    return "%.3g" % math.exp(log_value)


def _percent(share: float) -> str:
    return "%s%%" % format_number(round(100.0 * share, 4))


def _share(errors: float, requests: float) -> str:
    return _percent(errors / requests) if requests else "none"
