"""Istio's metric names, labels and buckets as the lab mesh exports them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lab.mesh.dispatch import Upstream
from lab.mesh.engine import summarize, traffic_sources
from lab.mesh.dispatch import Outcome
from lab.mesh.telemetry import BUCKET_LABELS, INGRESS_GATEWAY, IstioTelemetry, mesh_client
from lab.mesh.topology import Topology, Workload

CANARY = Workload("podinfo-canary", "test", 1, {"app": "podinfo", "version": "2.0"}, service_account="podinfo")


def upstream(code=200, latency=12.0, workload=CANARY, flags="-"):
    return Upstream("podinfo-canary.test.svc.cluster.local", "podinfo-canary", "test", workload, code, latency, flags)


def scrape(telemetry):
    registry = CollectorRegistry()
    registry.register(telemetry)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    return families


def test_a_served_request_is_reported_by_both_proxies_with_istio_labels():
    telemetry = IstioTelemetry()
    telemetry.record_request(mesh_client("test"), upstream())
    families = scrape(telemetry)
    samples = [s for s in families["istio_requests"].samples if s.name == "istio_requests_total"]
    by_reporter = {s.labels["reporter"]: s for s in samples}
    assert set(by_reporter) == {"source", "destination"}
    destination = by_reporter["destination"].labels
    assert destination["destination_workload"] == "podinfo-canary"
    assert destination["destination_workload_namespace"] == "test"
    assert destination["destination_service"] == "podinfo-canary.test.svc.cluster.local"
    assert destination["destination_service_name"] == "podinfo-canary"
    assert destination["destination_app"] == "podinfo"
    assert destination["destination_version"] == "2.0"
    assert destination["destination_canonical_service"] == "podinfo"
    assert destination["destination_principal"] == "spiffe://cluster.local/ns/test/sa/podinfo"
    assert destination["source_workload"] == "lab-loadgen"
    assert destination["response_code"] == "200"
    assert destination["response_flags"] == "-"
    assert destination["connection_security_policy"] == "mutual_tls"
    assert by_reporter["source"].labels["connection_security_policy"] == "unknown"
    assert by_reporter["destination"].value == 1.0


def test_duration_histogram_uses_istio_buckets_and_counts():
    telemetry = IstioTelemetry()
    for latency in (0.4, 3.0, 40.0, 40.0, 7000.0):
        telemetry.record("destination", INGRESS_GATEWAY, upstream(latency=latency))
    histogram = scrape(telemetry)["istio_request_duration_milliseconds"]
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert list(buckets) == list(BUCKET_LABELS)
    assert BUCKET_LABELS[:4] == ("0.5", "1", "5", "10") and BUCKET_LABELS[-2:] == ("3600000", "+Inf")
    assert (buckets["0.5"], buckets["1"], buckets["5"], buckets["50"], buckets["5000"], buckets["10000"]) == (1, 1, 2, 4, 4, 5)
    total = {s.name: s.value for s in histogram.samples if not s.name.endswith("_bucket")}
    assert total["istio_request_duration_milliseconds_count"] == 5
    assert abs(total["istio_request_duration_milliseconds_sum"] - 7083.4) < 1e-6
    source = [s for s in histogram.samples if s.name.endswith("_count")][0].labels
    assert source["source_workload"] == "istio-ingressgateway"
    assert source["source_workload_namespace"] == "istio-system"


def test_a_failed_connection_is_reported_by_the_client_only():
    telemetry = IstioTelemetry()
    telemetry.record_request(mesh_client("test"), upstream(503, 0.3, None, "UH"))
    samples = [s for s in scrape(telemetry)["istio_requests"].samples if s.name == "istio_requests_total"]
    assert len(samples) == 1
    labels = samples[0].labels
    assert (labels["reporter"], labels["response_code"], labels["response_flags"], labels["destination_workload"]) == (
        "source", "503", "UH", "unknown")


def test_mirrored_requests_are_reported_at_the_mirror_destination_only():
    telemetry = IstioTelemetry()
    primary = Workload("podinfo-primary", "test", 1, {"app": "podinfo"})
    telemetry.record_request(mesh_client("test"), upstream(workload=primary), [upstream(500)])
    samples = [s for s in scrape(telemetry)["istio_requests"].samples if s.name == "istio_requests_total"]
    seen = sorted((s.labels["reporter"], s.labels["destination_workload"], s.labels["response_code"]) for s in samples)
    assert seen == [("destination", "podinfo-canary", "500"), ("destination", "podinfo-primary", "200"),
                    ("source", "podinfo-primary", "200")]


def test_traffic_sources_split_the_rate_between_mesh_and_gateway():
    vs = {"metadata": {"name": "podinfo", "namespace": "test", "annotations": {"lab.progressive.delivery/rps": "50"}},
          "spec": {"hosts": ["app.example.com", "podinfo"], "gateways": ["public-gateway.istio-system.svc.cluster.local", "mesh"],
                   "http": [{"route": [{"destination": {"host": "podinfo"}}]}]}}
    idle = {"metadata": {"name": "off", "namespace": "test", "annotations": {"lab.progressive.delivery/rps": "0"}},
            "spec": {"hosts": ["off"], "http": [{"route": [{"destination": {"host": "off"}}]}]}}
    sources = traffic_sources(Topology(virtualservices=[vs, idle]))
    assert sorted((s.gateway, s.source.workload, s.rps) for s in sources) == [
        ("istio-system/public-gateway", "istio-ingressgateway", 25.0), ("mesh", "lab-loadgen", 25.0)]


def test_summarize_counts_codes_workloads_and_failures():
    outcomes = [Outcome(upstream(200, 10.0)), Outcome(upstream(500, 20.0)), Outcome(upstream(404, 1.0, None, "NR"))]
    summary = summarize(outcomes)
    assert summary["total"] == 3
    assert summary["codes"] == {"200": 1, "500": 1, "404": 1}
    assert summary["failed"] == 2
    assert summary["workloads"] == {"podinfo-canary": 2, "unknown": 1}
    assert summary["latencies_ms"]["max"] == 20.0
