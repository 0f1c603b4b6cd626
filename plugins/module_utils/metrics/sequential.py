# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Anytime-valid tests on request and error counts: e-values that may be checked after every poll.

Each statistic is a test supermartingale under its null hypothesis, so by Ville's inequality the chance that
it ever reaches 1/alpha, however often it is looked at, is at most alpha (Lindon, Sanden, Shirikian, KDD 2022;
Lindon & Malek, NeurIPS 2022). Everything is computed in logs: a release may serve tens of millions of requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

_CF_EPSILON = 1e-15
_CF_TINY = 1e-300


def log_beta(a: float, b: float) -> float:
    """ln B(a, b) = ln Gamma(a) + ln Gamma(b) - ln Gamma(a + b)."""
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def log1mexp(value: float) -> float:
    """ln(1 - e^value) for value <= 0, accurate both near 0 and for very negative values."""
    if value >= 0.0:
        return -math.inf
    if value > -math.log(2.0):
        return math.log(-math.expm1(value))
    return math.log1p(-math.exp(value))


def logsumexp(values: Iterable[float]) -> float:
    values = list(values)
    top = max(values)
    if math.isinf(top):
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _beta_continued_fraction(x: float, a: float, b: float) -> float:
    """Lentz's evaluation of the continued fraction of I_x(a, b); it converges fast for x < (a + 1) / (a + b + 2).

    Near the mean it needs about sqrt(max(a, b)) terms, hence the budget grows with the arguments.
    """
    budget = 200 + int(20 * math.sqrt(max(a, b)))
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _CF_TINY else _CF_TINY)
    fraction = d
    for m in range(1, budget + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _CF_TINY else _CF_TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _CF_TINY else _CF_TINY
            step = c * d
            fraction *= step
        if abs(step - 1.0) < _CF_EPSILON:
            return fraction
    raise ArithmeticError("incomplete beta did not converge for x=%r a=%r b=%r" % (x, a, b))


def log_incomplete_beta(x: float, a: float, b: float) -> tuple[float, float]:
    """(ln I_x(a, b), ln(1 - I_x(a, b))) of the regularized incomplete beta function, for a, b > 0.

    Both tails are returned in logs because the one we need can be far below the smallest double.
    """
    if a <= 0.0 or b <= 0.0:
        raise ValueError("incomplete beta needs a > 0 and b > 0, got a=%r b=%r" % (a, b))
    if x <= 0.0:
        return -math.inf, 0.0
    if x >= 1.0:
        return 0.0, -math.inf
    log_front = a * math.log(x) + b * math.log1p(-x) - log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        log_lower = log_front + math.log(_beta_continued_fraction(x, a, b) / a)
        return log_lower, log1mexp(log_lower)
    log_upper = log_front + math.log(_beta_continued_fraction(1.0 - x, b, a) / b)
    return log1mexp(log_upper), log_upper


def incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    return math.exp(log_incomplete_beta(x, a, b)[0])


@dataclass(frozen=True)
class BetaPrior:
    """Beta(a, b) mixing distribution over the error share, restricted to one side of the hypothesised share."""

    a: float
    b: float


def threshold_prior(p0: float) -> BetaPrior:
    """Beta(1, (1 - p0) / p0): mean p0 and the weight of 1/p0 requests, i.e. of one expected error.

    Restricted to (p0, 1] its density falls off like exp(-(p - p0) / p0): most mass lies between p0 and a few
    times p0, the regressions worth catching quickly (1.5x to 5x), while 20x still has enough weight to be caught
    within a handful of errors. A wider prior would spend weight on shares no release survives long enough to
    show; a narrower one would make a 20x canary wait for its likelihood to cross the prior's tail.
    """
    return BetaPrior(1.0, (1.0 - p0) / p0)


UNIFORM_PRIOR = BetaPrior(1.0, 1.0)


def log_rate_e_value(requests: float, errors: float, p0: float, prior: BetaPrior | None = None,
                     side: str = "greater") -> float:
    """ln of the beta-mixture e-value for an error share against p0, after `requests` with `errors` among them.

    side "greater" tests "share <= p0" mixing over (p0, 1]; "less" tests "share >= p0" mixing over [0, p0);
    "both" mixes over all of (0, 1) and tests "share = p0". Each mixed likelihood ratio p^x (1-p)^(n-x) /
    p0^x (1-p0)^(n-x) with p on the alternative side has expectation <= 1 at every step under every share on the
    null side, so the mixture is a test supermartingale there.
    """
    _check_counts(requests, errors)
    if not 0.0 < p0 < 1.0:
        raise ValueError("the hypothesised error share must lie strictly between 0 and 1, got %r" % p0)
    prior = prior or threshold_prior(p0)
    passed = requests - errors
    posterior_a, posterior_b = errors + prior.a, passed + prior.b
    if side == "greater":
        log_posterior_mass = log_incomplete_beta(p0, posterior_a, posterior_b)[1]
        log_prior_mass = log_incomplete_beta(p0, prior.a, prior.b)[1]
    elif side == "less":
        log_posterior_mass = log_incomplete_beta(p0, posterior_a, posterior_b)[0]
        log_prior_mass = log_incomplete_beta(p0, prior.a, prior.b)[0]
    elif side == "both":
        log_posterior_mass = log_prior_mass = 0.0
    else:
        raise ValueError("side must be greater, less or both, got %r" % side)
    log_null = _xlogy(errors, p0) + _xlogy(passed, 1.0 - p0)
    return (log_beta(posterior_a, posterior_b) + log_posterior_mass
            - log_beta(prior.a, prior.b) - log_prior_mass - log_null)


def rate_upper_bound(requests: float, errors: float, alpha: float) -> float:
    """Anytime-valid upper confidence bound for the error share: with probability >= 1 - alpha, at every poll
    the true share lies below the bound.

    It inverts the "less" test with a uniform prior on [0, q): that prior is q times a fixed Uniform(0, 1), and the
    log-likelihood is concave in ln p, so the e-value rises with q and the shares it rejects are exactly [U, 1).
    """
    _check_counts(requests, errors)
    if errors >= requests:
        return 1.0
    target = -math.log(alpha)
    low, high = errors / requests, 1.0
    while high - low > 1e-9 * high:
        middle = 0.5 * (low + high)
        if log_rate_e_value(requests, errors, middle, UNIFORM_PRIOR, "less") >= target:
            high = middle
        else:
            low = middle
    return high


def rate_below(requests: float, errors: float, share: float, alpha: float) -> bool:
    """Whether the evidence shows, anytime-valid at level alpha, that the error share is below `share`."""
    if share >= 1.0:
        return True
    return log_rate_e_value(requests, errors, share, UNIFORM_PRIOR, "less") >= -math.log(alpha)


class RateRatioTest:
    """Canary against primary as two Poisson processes with time-varying rates (Lindon & Malek).

    Given k = e + f errors in one poll increment, under "canary error rate = r x primary error rate" the canary's
    errors are Binomial(k, w r / (w r + 1 - w)), w being the canary's share of that increment's requests. The
    log-likelihood of r, up to terms free of r, is kept on a geometric grid anchored at the null ratio r0:
    sum_i e_i ln r - k_i ln(w_i r + 1 - w_i). That is all the state, whatever the traffic did. A service-wide
    incident raises both rates together, r stays near 1, and the likelihood ratios stay small.
    """

    # Alternatives are r0 x 2^(j/4): from 1.19x to 32x, equally weighted.
    ALTERNATIVE_STEPS: Sequence[int] = (1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20)
    GRID_STEPS = 24
    GRID_RATIO = 2.0 ** 0.25

    def __init__(self, null_ratio: float = 1.0, min_effect: float = 0.0) -> None:
        if null_ratio <= 0.0:
            raise ValueError("the null ratio must be positive, got %r" % null_ratio)
        if min_effect < 0.0:
            raise ValueError("the minimum effect must be 0 or more, got %r" % min_effect)
        self.null_ratio = null_ratio
        self.min_effect = min_effect
        # Regressions smaller than the minimum effect are not worth the evidence they would cost: the mixture
        # spends its weight on the alternatives at or above it (at least the largest one is always kept).
        smallest = math.log(1.0 + min_effect) / math.log(self.GRID_RATIO) - 1e-9
        self.alternatives: tuple[int, ...] = tuple(step for step in self.ALTERNATIVE_STEPS if step >= smallest) \
            or (self.ALTERNATIVE_STEPS[-1],)
        self._log_grid = [math.log(null_ratio) + step * math.log(self.GRID_RATIO)
                          for step in range(-self.GRID_STEPS, self.GRID_STEPS + 1)]
        self._log_likelihood = [0.0] * len(self._log_grid)
        self.canary_requests = 0.0
        self.primary_requests = 0.0
        self.canary_errors = 0.0
        self.primary_errors = 0.0

    def update(self, canary_requests: float, primary_requests: float, canary_errors: float,
               primary_errors: float) -> None:
        """Adds one poll increment: requests and errors of each version since the previous poll."""
        _check_counts(canary_requests, canary_errors)
        _check_counts(primary_requests, primary_errors)
        self.canary_requests += canary_requests
        self.primary_requests += primary_requests
        self.canary_errors += canary_errors
        self.primary_errors += primary_errors
        errors = canary_errors + primary_errors
        total = canary_requests + primary_requests
        if errors == 0 or canary_requests == 0 or primary_requests == 0:
            return  # no errors, or one version alone: the increment says nothing about the ratio
        share = canary_requests / total
        for index, log_ratio in enumerate(self._log_grid):
            self._log_likelihood[index] += (canary_errors * log_ratio
                                            - errors * math.log(share * math.exp(log_ratio) + 1.0 - share))

    def _log_mixture(self, anchor: int, direction: int) -> float:
        """ln of the mean likelihood ratio of the alternatives beside grid point `anchor` against it."""
        base = self._log_likelihood[anchor]
        steps = self.alternatives if direction > 0 else self.ALTERNATIVE_STEPS
        return logsumexp(self._log_likelihood[anchor + direction * step] - base for step in steps) - math.log(len(steps))

    @property
    def log_e_value(self) -> float:
        """ln e-value against "canary error rate <= r0 x primary's"."""
        return self._log_mixture(self.GRID_STEPS, +1)

    @property
    def e_value(self) -> float:
        return safe_exp(self.log_e_value)

    def log_e_value_below(self, ratio_step: int = 0) -> float:
        """ln e-value against "ratio >= r0 x GRID_RATIO^ratio_step", which grows when the canary does better."""
        anchor = self.GRID_STEPS + ratio_step
        if anchor - max(self.ALTERNATIVE_STEPS) < 0 or anchor >= len(self._log_grid):
            raise ValueError("ratio step %r is outside the grid" % ratio_step)
        return self._log_mixture(anchor, -1)

    def upper_bound(self, alpha: float) -> float:
        """Smallest grid ratio rejected from below at level alpha: the canary's rate ratio is under it, anytime-valid.

        The log-likelihood is concave in ln r, so each ratio L(rho/m)/L(rho) rises with rho: once a grid ratio is
        rejected every larger one is, and a single true hypothesis carries the error. math.inf if none is rejected.
        """
        target = -math.log(alpha)
        lowest = max(self.ALTERNATIVE_STEPS) - self.GRID_STEPS
        bound = math.inf
        for ratio_step in range(self.GRID_STEPS, lowest - 1, -1):
            if self.log_e_value_below(ratio_step) < target:
                break
            bound = math.exp(self._log_grid[self.GRID_STEPS + ratio_step])
        return bound

    def to_state(self) -> dict[str, Any]:
        """What a later process needs to go on: the test depends on every increment's traffic split, not only on totals."""
        return {"null_ratio": self.null_ratio, "min_effect": self.min_effect, "log_likelihood": list(self._log_likelihood),
                "canary_requests": self.canary_requests, "primary_requests": self.primary_requests,
                "canary_errors": self.canary_errors, "primary_errors": self.primary_errors}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "RateRatioTest":
        test = cls(float(state["null_ratio"]), float(state.get("min_effect") or 0.0))
        likelihood = [float(value) for value in state["log_likelihood"]]
        if len(likelihood) != len(test._log_grid):
            raise ValueError("a stored rate-ratio test has %d grid points, this version uses %d" % (
                len(likelihood), len(test._log_grid)))
        test._log_likelihood = likelihood
        for key in ("canary_requests", "primary_requests", "canary_errors", "primary_errors"):
            setattr(test, key, float(state.get(key) or 0.0))
        return test

    @property
    def observed_ratio(self) -> float | None:
        """Canary error rate over primary error rate, pooled over the release, for people to read."""
        if not self.canary_requests or not self.primary_requests or not self.primary_errors:
            return None
        return (self.canary_errors / self.canary_requests) / (self.primary_errors / self.primary_requests)


def slow_counts(requests: float, at_most: dict[float, float]) -> dict[float, float]:
    """Requests slower than each finite histogram boundary `le`, from a histogram's cumulative bucket counts."""
    return {le: max(requests - count, 0.0) for le, count in at_most.items() if not math.isinf(le)}


def safe_exp(value: float) -> float:
    return math.inf if value > 709.0 else math.exp(value)


def _xlogy(count: float, probability: float) -> float:
    return 0.0 if count == 0 else count * math.log(probability)


def _check_counts(requests: float, errors: float) -> None:
    if requests < 0 or errors < 0 or errors > requests:
        raise ValueError("counts need 0 <= errors <= requests, got %r errors of %r requests" % (errors, requests))
