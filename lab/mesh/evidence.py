"""Lab-only series that make each release strategy's promise one exact PromQL assertion.

Istio's metrics say which workload served a request, not why: whether the
client asked for the A/B route, or held a sticky cookie. These counters add
that, from the client's side (one count per client request; mirrored copies
have a series of their own):

- lab_requests_total{namespace, destination_workload, matched}
- lab_mirrored_requests_total{namespace, destination_workload, matched}
- lab_session_requests_total{namespace, destination_workload, sticky}
- lab_session_switches_total{namespace, from_workload, to_workload, sticky}
- lab_set_cookie_total{namespace, destination_workload, cookie, action}
- lab_sessions_started_total{namespace}

`namespace` is the destination service's namespace; `destination_workload`
is "unknown" when no workload answered, as in Istio's series.
"""

from __future__ import annotations

import threading
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from lab.mesh.dispatch import Outcome, Upstream
from lab.mesh.sessions import Visit

UNKNOWN = "unknown"

# name -> (help, label names); the name is given without the _total suffix prometheus_client adds.
SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "lab_requests": ("Client requests by the workload that answered and whether they satisfied the A/B match",
                     ("namespace", "destination_workload", "matched")),
    "lab_mirrored_requests": ("Mirrored copies by the workload that received them and whether the original satisfied "
                              "the A/B match", ("namespace", "destination_workload", "matched")),
    "lab_session_requests": ("Requests of simulated users by the workload that answered and whether they carried a "
                             "cookie from their jar", ("namespace", "destination_workload", "sticky")),
    "lab_session_switches": ("Requests of simulated users answered by another workload than their previous request",
                             ("namespace", "from_workload", "to_workload", "sticky")),
    "lab_set_cookie": ("Set-Cookie headers in answers to clients, by cookie name; action delete for Max-Age <= 0",
                       ("namespace", "destination_workload", "cookie", "action")),
    "lab_sessions_started": ("Simulated users that arrived (the first request of a new session)", ("namespace",)),
}


def _workload(upstream: Upstream) -> str:
    return upstream.workload.name if upstream.workload is not None else UNKNOWN


def _flag(value: bool) -> str:
    return "true" if value else "false"


class LabSeries(Collector):
    """Counters keyed by label values, collected as Prometheus counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in SERIES}

    def _add(self, name: str, labels: tuple[str, ...]) -> None:
        series = self._counts[name]
        series[labels] = series.get(labels, 0.0) + 1.0

    def record_request(self, outcome: Outcome, matched: bool) -> None:
        upstream = outcome.upstream
        namespace = upstream.service_namespace
        with self._lock:
            self._add("lab_requests", (namespace, _workload(upstream), _flag(matched)))
            for mirrored in outcome.mirrors:
                self._add("lab_mirrored_requests", (mirrored.service_namespace, _workload(mirrored), _flag(matched)))

    def record_set_cookies(self, outcome: Outcome, cookies: list[tuple[str, bool]]) -> None:
        """(cookie name, deletes) of each Set-Cookie the client got with this answer."""
        if not cookies:
            return
        upstream = outcome.upstream
        with self._lock:
            for name, deletes in cookies:
                self._add("lab_set_cookie", (upstream.service_namespace, _workload(upstream), name,
                                             "delete" if deletes else "set"))

    def record_session(self, outcome: Outcome, visit: Visit, sticky: bool, started: bool) -> None:
        namespace = outcome.upstream.service_namespace
        with self._lock:
            if started:
                self._add("lab_sessions_started", (namespace,))
            self._add("lab_session_requests", (namespace, _workload(outcome.upstream), _flag(sticky)))
            if visit.switched_from is not None and visit.workload is not None:
                self._add("lab_session_switches", (namespace, visit.switched_from, visit.workload, _flag(sticky)))

    def forget_namespaces(self, namespaces: set[str] | frozenset[str]) -> int:
        """Drop every series whose `namespace` is one of these; returns how many were dropped."""
        if not namespaces:
            return 0
        dropped = 0
        with self._lock:
            for name, series in self._counts.items():
                index = SERIES[name][1].index("namespace")
                gone = [labels for labels in series if labels[index] in namespaces]
                for labels in gone:
                    del series[labels]
                dropped += len(gone)
        return dropped

    def value(self, name: str, **labels: str) -> float:
        """Sum of a series' counts over the samples whose labels match (for tests and /traffic)."""
        names = SERIES[name][1]
        with self._lock:
            return sum(count for key, count in self._counts[name].items()
                       if all(key[names.index(k)] == v for k, v in labels.items()))

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = {name: dict(series) for name, series in self._counts.items()}
        for name, (help_text, label_names) in SERIES.items():
            family = CounterMetricFamily(name, help_text, labels=label_names)
            for labels, count in snapshot[name].items():
                family.add_metric(labels, count)
            yield family

    def describe(self) -> Iterator[Metric]:
        for name, (help_text, label_names) in SERIES.items():
            yield CounterMetricFamily(name, help_text, labels=label_names)
