"""The cluster stats of a Gateway API implementation's Envoy (Contour, Envoy Gateway), for HTTPRoute traffic.

Flagger's Gateway API guide judges a canary with PromQL over these series, not Istio's:
``envoy_cluster_upstream_rq{envoy_cluster_name=~"<ns>_<service>_[0-9a-zA-Z-]+", envoy_response_code!~"5.*"}``
and ``envoy_cluster_upstream_rq_time_bucket``. A gateway's Envoy names the cluster of a Service backend
``<namespace>_<service>_<port>`` in its stats (``dispatch.gateway_cluster``), so the guide's regular expressions select the canary's Service.
Only requests that enter through a Gateway are counted: they are the ones the gateway's Envoy proxies.
"""

from __future__ import annotations

import bisect
import threading
from typing import Iterator

from prometheus_client.core import HistogramMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.registry import Collector

from lab.mesh.telemetry import DURATION_BUCKETS_MS, cumulative_buckets

REQUESTS = "envoy_cluster_upstream_rq"
TIMES = "envoy_cluster_upstream_rq_time"


class EnvoyClusterStats(Collector):
    """Accumulates the upstream requests (by response code) and their times (ms) of each Envoy cluster."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], float] = {}
        self._times: dict[str, list[float]] = {}

    def record(self, cluster: str, code: int, latency_ms: float) -> None:
        bucket = bisect.bisect_left(DURATION_BUCKETS_MS, latency_ms)
        with self._lock:
            key = (cluster, str(code))
            self._requests[key] = self._requests.get(key, 0.0) + 1
            series = self._times.get(cluster)
            if series is None:
                # Per-bucket (non-cumulative) counts, +Inf, then sum, as in IstioTelemetry.
                series = self._times[cluster] = [0.0] * (len(DURATION_BUCKETS_MS) + 2)
            series[bucket] += 1
            series[-1] += latency_ms

    def forget_namespaces(self, namespaces: set[str] | frozenset[str]) -> int:
        """Drop the clusters of Services in these namespaces; returns how many series went."""
        prefixes = tuple(namespace + "_" for namespace in namespaces)
        if not prefixes:
            return 0
        with self._lock:
            requests = [key for key in self._requests if key[0].startswith(prefixes)]
            times = [key for key in self._times if key.startswith(prefixes)]
            for key in requests:
                del self._requests[key]
            for cluster in times:
                del self._times[cluster]
        return len(requests) + len(times)

    def collect(self) -> Iterator[Metric]:
        # Envoy exports its counters without the _total suffix prometheus_client would add to a counter family.
        requests = UnknownMetricFamily(REQUESTS, "Total upstream requests of a cluster",
                                       labels=("envoy_cluster_name", "envoy_response_code"))
        times = HistogramMetricFamily(TIMES, "Upstream request time in milliseconds", labels=("envoy_cluster_name",))
        with self._lock:
            counted = list(self._requests.items())
            timed = [(cluster, list(series)) for cluster, series in self._times.items()]
        for key, value in counted:
            requests.add_metric(key, value)
        for cluster, series in timed:
            times.add_metric((cluster,), cumulative_buckets(series), series[-1])
        yield requests
        yield times

    def describe(self) -> Iterator[Metric]:
        yield UnknownMetricFamily(REQUESTS, "", labels=("envoy_cluster_name", "envoy_response_code"))
        yield HistogramMetricFamily(TIMES, "", labels=("envoy_cluster_name",))
