# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decision logic of a metric gate: thresholds, canary-vs-primary statistics, verdicts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import ThresholdRange

PASS = "pass"
FAIL = "fail"
NO_DATA = "no_data"
ERROR = "error"
INCONCLUSIVE = "inconclusive"
SKIPPED = "skipped"


@dataclass
class Verdict:
    result: str
    reason: str
    value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def format_number(value: float | None) -> str:
    if value is None:
        return "none"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return ("%.4f" % value).rstrip("0").rstrip(".") if value != int(value) or abs(value) >= 1e15 else "%d" % value


def check_threshold(value: float, threshold: ThresholdRange | None) -> Verdict:
    """Flagger's rule: below min fails, above max fails, equal to a bound passes, no range always passes."""
    if threshold is None:
        return Verdict(PASS, "value %s (no thresholdRange)" % format_number(value), value)
    if threshold.min is not None and value < threshold.min:
        return Verdict(FAIL, "value %s is below the minimum %s" % (format_number(value), format_number(threshold.min)), value)
    if threshold.max is not None and value > threshold.max:
        return Verdict(FAIL, "value %s is above the maximum %s" % (format_number(value), format_number(threshold.max)), value)
    return Verdict(PASS, "value %s is within %s" % (format_number(value), describe_range(threshold)), value)


def describe_range(threshold: ThresholdRange | None) -> str:
    if threshold is None:
        return "any value"
    parts = []
    if threshold.min is not None:
        parts.append("min %s" % format_number(threshold.min))
    if threshold.max is not None:
        parts.append("max %s" % format_number(threshold.max))
    return "[" + ", ".join(parts) + "]"


def decisive_value(values: Iterable[float], threshold: ThresholdRange | None) -> float:
    """The one value that decides when a query returns several series: the worst against the range.

    Flagger keeps whichever series Prometheus lists last, which depends on label order; judging
    the worst series means a breach in any series is never hidden by a healthy one.
    """
    values = list(values)
    if not values:
        raise ValueError("no values")
    if threshold is None:
        return values[-1]
    breaching = [v for v in values if check_threshold(v, threshold).result == FAIL]
    if breaching:
        if threshold.min is not None and any(v < threshold.min for v in breaching):
            return min(breaching)
        return max(breaching)
    if threshold.min is not None and threshold.max is None:
        return min(values)
    if threshold.max is not None and threshold.min is None:
        return max(values)
    # Both bounds: the value closest to leaving the range.
    return min(values, key=lambda v: min(v - threshold.min, threshold.max - v))


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass
class ProportionTest:
    canary_rate: float
    primary_rate: float
    z: float
    p_value: float


def two_proportion_test(canary_hits: float, canary_total: float, primary_hits: float, primary_total: float) -> ProportionTest:
    """One-sided two-proportion z-test that the canary's share of hits exceeds the primary's.

    Pooled standard error; when neither version has any hit (or all are hits) the shares are
    indistinguishable and the p-value is 1.
    """
    if canary_total <= 0 or primary_total <= 0:
        raise ValueError("both totals must be positive")
    canary_rate = canary_hits / canary_total
    primary_rate = primary_hits / primary_total
    pooled = (canary_hits + primary_hits) / (canary_total + primary_total)
    variance = pooled * (1.0 - pooled) * (1.0 / canary_total + 1.0 / primary_total)
    if variance <= 0:
        return ProportionTest(canary_rate, primary_rate, 0.0, 1.0)
    z = (canary_rate - primary_rate) / math.sqrt(variance)
    return ProportionTest(canary_rate, primary_rate, z, normal_sf(z))


def compare_error_rates(
    canary_requests: float | None,
    canary_errors: float | None,
    primary_requests: float | None,
    primary_errors: float | None,
    confidence: float,
    min_requests: int,
) -> Verdict:
    """Canary fails when its error share is higher than the primary's with the given confidence."""
    counts = {
        "canary_requests": _rounded(canary_requests),
        "canary_errors": _rounded(canary_errors),
        "primary_requests": _rounded(primary_requests),
        "primary_errors": _rounded(primary_errors),
    }
    canary_n, primary_n = counts["canary_requests"] or 0, counts["primary_requests"] or 0
    if canary_n < min_requests or primary_n < min_requests:
        return Verdict(
            INCONCLUSIVE,
            "too few requests to compare error rates: canary %d, primary %d, min_requests %d" % (canary_n, primary_n, min_requests),
            details=counts,
        )
    canary_e = min(counts["canary_errors"] or 0, canary_n)
    primary_e = min(counts["primary_errors"] or 0, primary_n)
    test = two_proportion_test(canary_e, canary_n, primary_e, primary_n)
    details = dict(
        counts,
        canary_error_rate=round(test.canary_rate * 100, 4),
        primary_error_rate=round(test.primary_rate * 100, 4),
        z=round(test.z, 4),
        p_value=test.p_value,
        confidence=confidence,
    )
    summary = "canary %d/%d errors (%.2f%%) vs primary %d/%d (%.2f%%), z=%.2f, p=%.4g" % (
        canary_e, canary_n, test.canary_rate * 100, primary_e, primary_n, test.primary_rate * 100, test.z, test.p_value)
    if test.p_value < 1.0 - confidence:
        return Verdict(FAIL, "canary error rate is higher than primary's at %g%% confidence: %s" % (confidence * 100, summary), details=details)
    return Verdict(PASS, "canary error rate is not significantly higher than primary's: %s" % summary, details=details)


def histogram_quantile(quantile: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative ``{le: count}`` buckets (linear within a bucket)."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    if not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = quantile * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return bounds[-2] if len(bounds) > 1 else None


def count_slower_than(buckets: dict[float, float], limit: float) -> tuple[float, float, float]:
    """Requests above the smallest bucket bound at or over ``limit``: (slow, total, bound used)."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    chosen = next((b for b in bounds if b >= limit), bounds[-1] if bounds else math.inf)
    return total - buckets.get(chosen, total), total, chosen


def compare_latency(
    canary_buckets: dict[float, float],
    primary_buckets: dict[float, float],
    tolerance: float,
    confidence: float,
    min_requests: int,
    quantile: float = 0.99,
) -> Verdict:
    """Canary fails when its p99 exceeds primary's by more than ``tolerance`` *and* that is not noise.

    The ratio alone swings with a handful of slow requests at low traffic, so the tail is also
    tested: the share of canary requests slower than the primary's p99 bucket must be significantly
    larger than the primary's own share.
    """
    canary_total = buckets_total(canary_buckets)
    primary_total = buckets_total(primary_buckets)
    if canary_total < min_requests or primary_total < min_requests:
        return Verdict(
            INCONCLUSIVE,
            "too few requests to compare latency: canary %d, primary %d, min_requests %d" % (canary_total, primary_total, min_requests),
            details={"canary_requests": round(canary_total), "primary_requests": round(primary_total)},
        )
    canary_q = histogram_quantile(quantile, canary_buckets)
    primary_q = histogram_quantile(quantile, primary_buckets)
    details: dict[str, Any] = {
        "canary_requests": round(canary_total),
        "primary_requests": round(primary_total),
        "canary_p99_ms": canary_q,
        "primary_p99_ms": primary_q,
        "tolerance": tolerance,
        "confidence": confidence,
    }
    if canary_q is None or primary_q is None or primary_q <= 0:
        return Verdict(INCONCLUSIVE, "latency histograms do not give a usable p99 (canary %s, primary %s)" % (
            format_number(canary_q), format_number(primary_q)), details=details)
    ratio = canary_q / primary_q
    canary_slow, _total_c, bound = count_slower_than(canary_buckets, primary_q)
    primary_slow, _total_p, _bound = count_slower_than(primary_buckets, primary_q)
    test = two_proportion_test(canary_slow, canary_total, primary_slow, primary_total)
    details.update(ratio=round(ratio, 4), tail_bound_ms=bound, canary_tail_share=round(test.canary_rate, 6),
                   primary_tail_share=round(test.primary_rate, 6), z=round(test.z, 4), p_value=test.p_value)
    summary = "canary p99 %sms vs primary %sms (ratio %.2f, tolerance %.2f); share slower than %sms: canary %.2f%%, primary %.2f%%, p=%.4g" % (
        format_number(canary_q), format_number(primary_q), ratio, tolerance, format_number(bound),
        test.canary_rate * 100, test.primary_rate * 100, test.p_value)
    if ratio > tolerance and test.p_value < 1.0 - confidence:
        return Verdict(FAIL, "canary is slower than primary beyond tolerance: %s" % summary, canary_q, details)
    return Verdict(PASS, "canary latency is within tolerance of primary's: %s" % summary, canary_q, details)


def buckets_total(buckets: dict[float, float]) -> float:
    if not buckets:
        return 0.0
    return buckets[max(buckets)]


def compare_values(canary: float, primary: float, threshold: ThresholdRange | None) -> Verdict:
    """Relative judgement for custom metrics, which have no counts to test.

    A canary breach fails unless the primary breaches the same bound at least as badly, which marks a
    service-wide condition rather than a regression of the new version.
    """
    canary_check = check_threshold(canary, threshold)
    details = {"canary_value": canary, "primary_value": primary}
    if canary_check.result == PASS:
        return Verdict(PASS, "canary %s; primary %s" % (canary_check.reason, format_number(primary)), canary, details)
    primary_check = check_threshold(primary, threshold)
    if primary_check.result == FAIL:
        below_min = threshold is not None and threshold.min is not None and canary < threshold.min
        canary_no_worse = canary >= primary if below_min else canary <= primary
        if canary_no_worse:
            return Verdict(PASS, "canary and primary both breach (service-wide): canary %s, primary %s" % (
                format_number(canary), format_number(primary)), canary, details)
    return Verdict(FAIL, "canary %s while primary has %s" % (canary_check.reason, format_number(primary)), canary, details)


def overall(results: list[dict[str, Any]]) -> tuple[bool, str]:
    """Gate verdict from per-metric results: any counted failure fails; otherwise inconclusive beats pass."""
    if any(not r.get("ok", False) and r.get("result") != INCONCLUSIVE for r in results):
        return False, FAIL
    if any(r.get("result") == INCONCLUSIVE for r in results):
        return False, INCONCLUSIVE
    return True, PASS


def _rounded(value: float | None) -> int | None:
    if value is None or math.isnan(value):
        return None
    return int(round(value))
