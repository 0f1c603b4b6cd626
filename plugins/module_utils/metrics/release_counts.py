# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Request, error and latency-bucket counts of the canary and the primary since the canary began taking traffic.

A sequential test needs every request and every error the canary served, counted from the moment it took
traffic. ``rate()`` and ``increase()`` cannot give that: they treat a series' first sample as its baseline, so
when a canary's first 5xx creates a new ``response_code="503"`` series, that error (and all the series counted
before its first scrape) is invisible. Here the raw counters are read at the start and at every poll and each
series is followed on its own, so a series that appears later counts from zero, a counter that goes down has
reset, and a series that disappears keeps what it counted.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import PrometheusClient, Series
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import escape_promql_string
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import format_number

CANARY = "canary"
PRIMARY = "primary"
VERSIONS = (CANARY, PRIMARY)

# How far back the baseline looks for a series' last sample. A plain instant selector only sees samples of the
# last 5 minutes (Prometheus' lookback delta); a primary series that missed scrapes around the start would then
# get no baseline and its whole history would count as the release's traffic when it comes back.
DEFAULT_BASELINE_LOOKBACK = "1h"

# A series is identified by its full label set. ``__name__`` is left out because functions such as
# last_over_time() drop it, and the baseline and the polls must name the same series the same way.
SeriesKey = tuple[tuple[str, str], ...]


class ReleaseCountsError(DeliveryError):
    """The counts were asked for in an order that cannot give a truthful answer (poll before start, time going back)."""


def series_key(labels: Mapping[str, str]) -> SeriesKey:
    return tuple(sorted((name, value) for name, value in labels.items() if name != "__name__"))


@dataclass
class _SeriesState:
    last: float
    counted: float = 0.0


class CounterBaseline:
    """Follows each counter series from a start: what each one counted since, and by how much at each poll.

    Only the series' own history is trusted. A sum over series is not a counter: when one pod's series goes
    away the sum drops, which looks like a reset and would count every other series' whole value again, and
    when a series is born mid-release its starting value is hidden inside the sum's jump.
    """

    def __init__(self) -> None:
        self._series: dict[SeriesKey, _SeriesState] = {}
        self.started = False
        self.resets = 0
        self.births = 0

    def start(self, samples: Iterable[Series]) -> None:
        """Remember every series' value at the start; nothing is counted yet."""
        self._series = {key: _SeriesState(value) for key, value in _finite_samples(samples)}
        self.started = True
        self.resets = 0
        self.births = 0

    def observe(self, samples: Iterable[Series]) -> dict[SeriesKey, float]:
        """Take one poll's samples; return how much each series present in them counted since the last poll."""
        if not self.started:
            raise ReleaseCountsError("counter baseline observed before it was started; call start() when the canary "
                                     "begins taking traffic")
        increments: dict[SeriesKey, float] = {}
        for key, value in _finite_samples(samples):
            state = self._series.get(key)
            if state is None:
                # Born after the start: every request it counted happened during the release.
                self.births += 1
                increment = value
                state = self._series[key] = _SeriesState(value)
            elif value < state.last:
                # A counter only goes down when its process restarted; what it shows now is all new.
                # (A restart that grew past the last value between two polls cannot be seen; increase() has
                # the same blind spot.)
                self.resets += 1
                increment = value
            else:
                increment = value - state.last
            state.last = value
            state.counted += increment
            increments[key] = increment
        return increments

    def counted(self) -> dict[SeriesKey, float]:
        """What every series counted since the start, including series no longer reported."""
        return {key: state.counted for key, state in self._series.items()}

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable copy, so the next module process (or a resumed run) continues the same counts."""
        return {
            "started": self.started,
            "resets": self.resets,
            "births": self.births,
            "series": [[dict(key), state.last, state.counted] for key, state in self._series.items()],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "CounterBaseline":
        baseline = cls()
        baseline.started = bool(state.get("started"))
        baseline.resets = int(state.get("resets") or 0)
        baseline.births = int(state.get("births") or 0)
        for labels, last, counted in state.get("series") or []:
            baseline._series[series_key(labels)] = _SeriesState(float(last), float(counted))
        return baseline


def _finite_samples(samples: Iterable[Series]) -> Iterable[tuple[SeriesKey, float]]:
    for sample in samples:
        if sample.value is not None and not math.isnan(sample.value) and not math.isinf(sample.value):
            yield series_key(sample.labels), sample.value


def _regex_literal(value: str) -> str:
    # Workload names are DNS names, so a dot is the metacharacter that matters; escape them all for RE2 anyway.
    return "".join("\\" + char if char in "\\.+*?()|[]{}^$" else char for char in value)


@dataclass(frozen=True)
class IstioCountQueries:
    """The raw counter selectors for one release, with the selectors of Flagger's builtin Istio queries.

    The series are queried raw, neither summed nor grouped: summing ``by (destination_workload,
    response_code)`` merges counters that are born, reset and vanish at different times (one per pod and per
    source workload, protocol, response flag...), and grouping by "every label that tells series apart" would
    need the full label list, which depends on Istio's version and on the scrape config (pod, instance, cluster
    labels). Only the raw series keep a counter's meaning; the grouping by version, response code and ``le``
    happens here after each series' increment is known.
    """

    namespace: str
    target: str
    primary: str

    @property
    def _matchers(self) -> str:
        workloads = "%s|%s" % (_regex_literal(self.target), _regex_literal(self.primary))
        return 'reporter="destination",destination_workload_namespace="%s",destination_workload=~"%s"' % (
            escape_promql_string(self.namespace), escape_promql_string(workloads))

    @property
    def requests(self) -> str:
        return "istio_requests_total{%s}" % self._matchers

    @property
    def durations(self) -> str:
        return "istio_request_duration_milliseconds_bucket{%s}" % self._matchers

    @staticmethod
    def at_baseline(selector: str, lookback: str = DEFAULT_BASELINE_LOOKBACK) -> str:
        return "last_over_time(%s[%s])" % (selector, lookback)

    def version_of(self, labels: Mapping[str, str]) -> str | None:
        workload = labels.get("destination_workload")
        if workload == self.target:
            return CANARY
        if workload == self.primary:
            return PRIMARY
        return None


def is_server_error(labels: Mapping[str, str]) -> bool:
    # The same class Flagger's request-success-rate counts as failed: response_code=~"5.*".
    return labels.get("response_code", "").startswith("5")


@dataclass
class VersionCounts:
    """One version's counts. ``buckets`` maps a bucket's upper bound ``le`` (ms, ``inf`` for +Inf) to the
    cumulative number of requests at or under it, as Prometheus histograms count."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "buckets": {format_number(le): count for le, count in sorted(self.buckets.items())},
        }


@dataclass
class ReleaseCounts:
    """Counts at one poll: ``totals`` since the start, ``increments`` since the previous poll (or the start)."""

    time: float
    started_at: float
    totals: dict[str, VersionCounts]
    increments: dict[str, VersionCounts]
    # Seen across both queries since the start; a report can say why counts differ from increase().
    resets: int = 0
    new_series: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "started_at": self.started_at,
            "totals": {version: counts.as_dict() for version, counts in self.totals.items()},
            "increments": {version: counts.as_dict() for version, counts in self.increments.items()},
            "resets": self.resets,
            "new_series": self.new_series,
        }


class ReleaseCounter:
    """Reads Istio's counters for the canary (``target``) and the primary from Prometheus since a start.

    ``start()`` when the canary begins taking traffic, then ``poll()`` as often as the judge wants. Both
    queries of a poll are evaluated at the same instant, so errors and buckets describe the same requests.
    """

    def __init__(
        self,
        client: PrometheusClient,
        namespace: str,
        target: str,
        primary: str,
        clock: Callable[[], float] = _time.time,
        baseline_lookback: str = DEFAULT_BASELINE_LOOKBACK,
    ) -> None:
        self.client = client
        self.queries = IstioCountQueries(namespace, target, primary)
        self.clock = clock
        self.baseline_lookback = baseline_lookback
        self.requests = CounterBaseline()
        self.durations = CounterBaseline()
        self.started_at: float | None = None
        self.last_time: float | None = None

    def start(self, at: float | None = None) -> float:
        """Take the baseline at ``at`` (default now): the moment the canary begins taking traffic.

        A resumed run may pass the recorded start time; series reset between then and now are then missed,
        so prefer restoring the state with :meth:`restore` when it was kept.
        """
        at = self.clock() if at is None else float(at)
        requests = self.client.query(self.queries.at_baseline(self.queries.requests, self.baseline_lookback), at)
        durations = self.client.query(self.queries.at_baseline(self.queries.durations, self.baseline_lookback), at)
        self.requests.start(requests.series)
        self.durations.start(durations.series)
        self.started_at = self.last_time = at
        return at

    def poll(self, at: float | None = None) -> ReleaseCounts:
        """Read the counters at ``at`` (default now): the totals since the start and this poll's increments."""
        if self.started_at is None or self.last_time is None:
            raise ReleaseCountsError("release counts polled before start(); take the baseline when the canary begins "
                                     "taking traffic")
        at = self.clock() if at is None else float(at)
        if at < self.last_time:
            raise ReleaseCountsError(
                "release counts polled at %.3f, before the previous poll at %.3f; older samples would look like "
                "counter resets" % (at, self.last_time))
        # Both answers are fetched before either tracker moves, so a failed query leaves the state as it was
        # and the next poll's increments still cover everything since the last successful one.
        requests = self.client.query(self.queries.requests, at).series
        durations = self.client.query(self.queries.durations, at).series
        request_steps = self.requests.observe(requests)
        duration_steps = self.durations.observe(durations)
        self.last_time = at
        return ReleaseCounts(
            time=at,
            started_at=self.started_at,
            totals=self._by_version(self.requests.counted(), self.durations.counted()),
            increments=self._by_version(request_steps, duration_steps),
            resets=self.requests.resets + self.durations.resets,
            new_series=self.requests.births + self.durations.births,
        )

    def _by_version(
        self, requests: Mapping[SeriesKey, float], durations: Mapping[SeriesKey, float]
    ) -> dict[str, VersionCounts]:
        counts = {version: VersionCounts() for version in VERSIONS}
        for key, amount in requests.items():
            labels = dict(key)
            version = self.queries.version_of(labels)
            if version is None:
                continue
            counts[version].requests += amount
            if is_server_error(labels):
                counts[version].errors += amount
        for key, amount in durations.items():
            labels = dict(key)
            version = self.queries.version_of(labels)
            le = _bucket_bound(labels.get("le"))
            if version is None or le is None:
                continue
            buckets = counts[version].buckets
            buckets[le] = buckets.get(le, 0.0) + amount
        return counts

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue in another process: the module that polls next is a new one."""
        return {
            "started_at": self.started_at,
            "last_time": self.last_time,
            "requests": self.requests.to_state(),
            "durations": self.durations.to_state(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.started_at = state.get("started_at")
        self.last_time = state.get("last_time")
        self.requests = CounterBaseline.from_state(state.get("requests") or {})
        self.durations = CounterBaseline.from_state(state.get("durations") or {})


def _bucket_bound(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)  # float() reads "+Inf" as inf
    except ValueError:
        return None
