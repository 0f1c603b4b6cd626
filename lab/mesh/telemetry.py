"""Istio's standard request metrics, exported through prometheus_client.

Names, label names and duration buckets are Istio's, so PromQL written for a
real mesh (Flagger's builtin checks, dashboards) runs unchanged. Requests are
aggregated per label set in a custom collector: recording one is a dict
lookup and a bisect, cheap enough for thousands per second.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from lab.mesh.dispatch import Upstream
from lab.mesh.topology import Workload

LABEL_NAMES = (
    "reporter",
    "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
    "source_canonical_service", "source_canonical_revision", "source_cluster",
    "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
    "destination_version", "destination_service", "destination_service_name", "destination_service_namespace",
    "destination_canonical_service", "destination_canonical_revision", "destination_cluster",
    "request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
)

# Istio's default buckets for istio_request_duration_milliseconds.
DURATION_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
                       300000, 600000, 1800000, 3600000)
CLUSTER_ID = "Kubernetes"

_DESTINATION_SERVICE_NAMESPACE = LABEL_NAMES.index("destination_service_namespace")
_SOURCE_WORKLOAD_NAMESPACE = LABEL_NAMES.index("source_workload_namespace")


def _bucket_label(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


BUCKET_LABELS = tuple(_bucket_label(b) for b in DURATION_BUCKETS_MS) + ("+Inf",)


@dataclass(frozen=True)
class Source:
    """Who sends the traffic: the ingress gateway or an in-mesh client."""

    workload: str
    namespace: str
    app: str
    service_account: str
    version: str = "unknown"

    @property
    def principal(self) -> str:
        return f"spiffe://cluster.local/ns/{self.namespace}/sa/{self.service_account}"


INGRESS_GATEWAY = Source("istio-ingressgateway", "istio-system", "istio-ingressgateway", "istio-ingressgateway-service-account")


def mesh_client(namespace: str, workload: str = "lab-loadgen") -> Source:
    return Source(workload, namespace, workload, workload)


def _source_labels(source: Source) -> tuple[str, ...]:
    return (source.workload, source.namespace, source.principal, source.app, source.version,
            source.app, "latest", CLUSTER_ID)


def _destination_labels(upstream: Upstream) -> tuple[str, ...]:
    workload: Workload | None = upstream.workload
    if workload is None:
        return ("unknown", "unknown", "unknown", "unknown", "unknown", upstream.service_fqdn, upstream.service_name,
                upstream.service_namespace, "unknown", "unknown", "unknown")
    return (workload.name, workload.namespace, workload.principal, workload.app, workload.version, upstream.service_fqdn,
            upstream.service_name, upstream.service_namespace, workload.canonical_service, workload.canonical_revision,
            CLUSTER_ID)


def belongs_to(key: tuple[str, ...], namespaces: set[str] | frozenset[str]) -> bool:
    """Whether a series goes with one of these namespaces: its destination service is there, or the client-side
    proxy that reported it (reporter "source": every client request, and alone for 503 UH, 503 NC, 404 NR) is."""
    return (key[_DESTINATION_SERVICE_NAMESPACE] in namespaces
            or (key[0] == "source" and key[_SOURCE_WORKLOAD_NAMESPACE] in namespaces))


def label_values(reporter: str, source: Source, upstream: Upstream) -> tuple[str, ...]:
    # mTLS is only known at the server side; Istio reports "unknown" from the client.
    security = "mutual_tls" if reporter == "destination" else "unknown"
    return ((reporter,) + _source_labels(source) + _destination_labels(upstream)
            + ("http", str(upstream.code), "-", upstream.flags, security))


def cumulative_buckets(series: list[float]) -> list[tuple[str, float]]:
    """(le, count) pairs of a histogram kept as per-bucket counts, +Inf, then the sum (the last entry is ignored)."""
    cumulative = 0.0
    buckets = []
    for label, count in zip(BUCKET_LABELS, series[:-1]):
        cumulative += count
        buckets.append((label, cumulative))
    return buckets


class IstioTelemetry(Collector):
    """Accumulates istio_requests_total and istio_request_duration_milliseconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], list[float]] = {}

    def record(self, reporter: str, source: Source, upstream: Upstream) -> None:
        key = label_values(reporter, source, upstream)
        bucket = bisect.bisect_left(DURATION_BUCKETS_MS, upstream.latency_ms)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                # Layout: per-bucket (non-cumulative) counts, +Inf, then sum.
                series = self._series[key] = [0.0] * (len(DURATION_BUCKETS_MS) + 2)
            series[bucket] += 1
            series[-1] += upstream.latency_ms

    def record_request(self, source: Source, upstream: Upstream, mirrors: list[Upstream] | tuple = ()) -> None:
        """Record one request as both proxies report it; mirrored copies only reach the server side."""
        self.record("source", source, upstream)
        if upstream.workload is not None:
            self.record("destination", source, upstream)
        for mirrored in mirrors:
            self.record("destination", source, mirrored)

    def forget_namespaces(self, namespaces: set[str] | frozenset[str]) -> int:
        """Drop the series of these namespaces (see belongs_to), as Envoy's stats go with their pods.

        Returns how many series were dropped.
        """
        if not namespaces:
            return 0
        with self._lock:
            gone = [key for key in self._series if belongs_to(key, namespaces)]
            for key in gone:
                del self._series[key]
        return len(gone)

    def series_count(self) -> int:
        with self._lock:
            return len(self._series)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("istio_requests_total", "Total requests handled by an Istio proxy",
                                       labels=LABEL_NAMES)
        durations = HistogramMetricFamily("istio_request_duration_milliseconds",
                                          "Request duration in milliseconds as seen by an Istio proxy",
                                          labels=LABEL_NAMES)
        with self._lock:
            snapshot = [(key, list(series)) for key, series in self._series.items()]
        for key, series in snapshot:
            buckets = cumulative_buckets(series)
            requests.add_metric(key, buckets[-1][1])
            durations.add_metric(key, buckets, series[-1])
        yield requests
        yield durations

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily("istio_requests_total", "", labels=LABEL_NAMES)
        yield HistogramMetricFamily("istio_request_duration_milliseconds", "", labels=LABEL_NAMES)
