"""How a simulated workload answers: error share and latency drawn from pod template annotations."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Mapping

ANNOTATION_PREFIX = "lab.progressive.delivery/"
ERROR_RATE_ANNOTATION = ANNOTATION_PREFIX + "error-rate"
LATENCY_ANNOTATION = ANNOTATION_PREFIX + "latency-ms"
RPS_ANNOTATION = ANNOTATION_PREFIX + "rps"
MATCH_SHARE_ANNOTATION = ANNOTATION_PREFIX + "match-share"

DEFAULT_LATENCY_MS = 20.0
DEFAULT_RPS = 20.0
DEFAULT_MATCH_SHARE = 0.1

# exp(2.326 * 0.4) ~= 2.5: the 99th percentile lands at about 2.5x the median,
# the spread of a healthy HTTP service.
LATENCY_SIGMA = 0.4
# Share of 5xx answered as 500; the rest are 503 (overload, upstream reset).
SHARE_OF_500 = 0.7


@dataclass(frozen=True)
class Behaviour:
    error_rate: float = 0.0
    latency_ms: float = DEFAULT_LATENCY_MS


def annotation_float(annotations: Mapping[str, Any] | None, key: str, default: float,
                     low: float = 0.0, high: float = math.inf) -> float:
    """A numeric annotation clamped to [low, high]; unreadable values fall back to the default."""
    if not annotations or key not in annotations:
        return default
    try:
        value = float(str(annotations[key]).strip())
    except ValueError:
        return default
    if math.isnan(value):
        return default
    return min(max(value, low), high)


def behaviour_from_annotations(annotations: Mapping[str, Any] | None) -> Behaviour:
    return Behaviour(
        error_rate=annotation_float(annotations, ERROR_RATE_ANNOTATION, 0.0, 0.0, 1.0),
        latency_ms=annotation_float(annotations, LATENCY_ANNOTATION, DEFAULT_LATENCY_MS, 0.0),
    )


def draw_latency(median_ms: float, rng: random.Random) -> float:
    if median_ms <= 0:
        return 0.0
    return rng.lognormvariate(math.log(median_ms), LATENCY_SIGMA)


def draw_outcome(behaviour: Behaviour, rng: random.Random) -> tuple[int, float]:
    """(HTTP status, latency in ms) of one request served by a workload."""
    latency = draw_latency(behaviour.latency_ms, rng)
    if behaviour.error_rate > 0 and rng.random() < behaviour.error_rate:
        return (500 if rng.random() < SHARE_OF_500 else 503), latency
    return 200, latency


def poisson(expected: float, rng: random.Random) -> int:
    """Number of arrivals in an interval with the given mean (Knuth for small means, normal beyond)."""
    if expected <= 0:
        return 0
    if expected > 50:
        return max(0, int(round(rng.gauss(expected, math.sqrt(expected)))))
    limit = math.exp(-expected)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
