"""prometheus_gate on the lab: simulated Istio traffic, the real Prometheus, the module run as Ansible runs it."""

from __future__ import annotations

import pytest

from lab.testing import wait_for
from tests.support.modules import run_module
from tests.support.tcp_forwarder import TcpForwarder

SCRAPE_SECONDS = 1  # the lab's Prometheus scrapes the mesh every second
SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}
SERVED = 'sum(istio_requests_total{{reporter="destination",destination_workload_namespace="{namespace}",destination_workload="{workload}"}})'


def canary_release(lab, lab_objects, canary_error=0.0, canary_latency=None, primary_error=0.0, rps=100, weight=50):
    """Primary ``podinfo-primary`` and canary ``podinfo`` behind one VirtualService, as Flagger lays them out."""
    lab_objects.workload("podinfo-primary", error_rate=primary_error)
    lab_objects.workload("podinfo", error_rate=canary_error, latency_ms=canary_latency)
    lab_objects.wait_ready("podinfo-primary")
    lab_objects.wait_ready("podinfo")
    lab_objects.virtualservice(
        "podinfo-vs", ["podinfo-vs"],
        [{"route": [{"destination": {"host": "podinfo-primary"}, "weight": 100 - weight},
                    {"destination": {"host": "podinfo"}, "weight": weight}]}],
        annotations={"lab.progressive.delivery/rps": str(rps)})


WINDOW_ERRORS = ('sum(increase(istio_requests_total{{reporter="destination",destination_workload_namespace="{namespace}",'
                 'destination_workload="{workload}",response_code=~"5.*"}}[1m]))')


def wait_for_requests(lab, namespace, workload, count):
    query = SERVED.format(namespace=namespace, workload=workload)
    wait_for(lambda: (lab.query_value(query) or 0) >= count, timeout=90, interval=0.5,
             message="%d requests to %s/%s in Prometheus" % (count, namespace, workload))


def gate(lab, namespace, metrics, **options):
    args = dict({"prometheus_url": lab.prometheus_url, "namespace": namespace, "target": "podinfo", "metrics": metrics}, **options)
    return run_module("prometheus_gate", args)


def by_name(result):
    return {m["name"]: m for m in result["metrics"]}


def test_healthy_workload_passes_both_builtins(lab, namespace, lab_objects):
    canary_release(lab, lab_objects)
    wait_for_requests(lab, namespace, "podinfo", 300)
    result = gate(lab, namespace, [SUCCESS, DURATION])
    metrics = by_name(result)
    assert result["passed"] is True, result["msg"]
    assert metrics["request-success-rate"]["value"] == 100.0
    # Default latency: median 20 ms, p99 in the 50-100 ms bucket.
    assert 25 < metrics["request-duration"]["value"] < 100
    assert result["metrics"][0]["query"].startswith("sum( rate( istio_requests_total{ reporter=\"destination\"")


def test_error_canary_fails_in_watch_at_the_first_poll_after_the_data_shows_it(lab, namespace, lab_objects):
    canary_release(lab, lab_objects)
    wait_for_requests(lab, namespace, "podinfo", 300)
    lab_objects.set_template_annotations("podinfo", {"lab.progressive.delivery/error-rate": "0.2"})

    result = gate(lab, namespace, [SUCCESS], mode="watch", poll=1, duration=90)

    assert result["breached"] is True and result["passed"] is False
    samples = result["samples"]
    assert samples[-1]["metrics"][0]["result"] == "fail"
    assert all(s["metrics"][0]["result"] == "pass" for s in samples[:-1])
    assert result["elapsed"] < 90
    if len(samples) > 1:
        # Asked again about the previous poll, Prometheus still says pass: the breach was reported at the first
        # poll that could see it. Asked one scrape before that moment, because a scrape's samples carry the time it
        # started and land a moment later: asked afterwards about the very instant of the previous poll, Prometheus
        # may count samples that had not arrived when that poll asked.
        before = gate(lab, namespace, [SUCCESS], mode="at", time=samples[-2]["timestamp"] - SCRAPE_SECONDS)
        assert before["metrics"][0]["result"] == "pass", before["metrics"][0]


def test_latency_regression_fails_request_duration(lab, namespace, lab_objects):
    canary_release(lab, lab_objects, canary_latency=400)  # p99 about 2.5 x 400 ms
    wait_for_requests(lab, namespace, "podinfo", 300)
    result = gate(lab, namespace, [SUCCESS, DURATION])
    metrics = by_name(result)
    assert result["passed"] is False
    assert metrics["request-duration"]["result"] == "fail" and metrics["request-duration"]["value"] > 500
    assert metrics["request-success-rate"]["result"] == "pass"


def test_workload_without_telemetry_gets_the_no_data_diagnosis(lab, namespace, lab_objects):
    canary_release(lab, lab_objects)
    lab_objects.workload("podinfo-nosidecar")
    wait_for_requests(lab, namespace, "podinfo", 50)
    result = gate(lab, namespace, [SUCCESS], target="podinfo-nosidecar")
    metric = result["metrics"][0]
    assert result["passed"] is False and metric["result"] == "no_data"
    assert "no Istio telemetry for workload %s/podinfo-nosidecar" % namespace in metric["reason"]
    assert "sidecar missing?" in metric["reason"]


def test_workload_whose_traffic_stopped_gets_the_no_traffic_diagnosis(lab, namespace, lab_objects):
    canary_release(lab, lab_objects)
    wait_for_requests(lab, namespace, "podinfo", 50)
    lab_objects.patch_virtualservice("podinfo-vs", {"spec": {"http": [{"route": [{"destination": {"host": "podinfo-primary"}, "weight": 100}]}]}})
    window = 'sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="%s",destination_workload="podinfo"}[5s]))' % namespace
    wait_for(lambda: lab.query_value(window) == 0, timeout=60, interval=0.5, message="no canary requests in the last 5s")
    result = gate(lab, namespace, [dict(SUCCESS, interval="5s", on_no_data="skip")])
    metric = result["metrics"][0]
    assert metric["result"] == "skipped" and result["passed"] is True
    assert "received no requests in the last 5s: no traffic" in metric["reason"]


def test_names_cannot_inject_query_text(lab, namespace, lab_objects):
    canary_release(lab, lab_objects)
    wait_for_requests(lab, namespace, "podinfo", 50)
    template = 'sum(istio_requests_total{destination_workload_namespace="%s",destination_workload="{{ target }}"})' % namespace
    hostile = 'nobody"} or vector(100) or up{job="'
    # Pasted in as plain text, the name turns the query into one that answers 100 ...
    assert lab.query_value(template.replace("{{ target }}", hostile)) == 100
    # ... escaped, it is only an odd workload name that has no data.
    result = gate(lab, namespace, [{"name": "requests", "query": template, "thresholdRange": {"min": 1}}], target=hostile)
    assert result["metrics"][0]["result"] == "no_data", result["metrics"][0]
    assert result["metrics"][0]["value"] is None


def test_bad_query_fails_the_task_as_configuration_error(lab, namespace):
    result = gate(lab, namespace, [{"name": "typo", "query": "sum(rate(istio_requests_total[1m]) by"}])
    assert result["failed"] is True and result["config_error"] is True
    assert "Prometheus rejected the query (HTTP 400" in result["msg"]


def test_compare_passes_an_incident_that_degrades_primary_and_canary_alike(lab, namespace, lab_objects):
    canary_release(lab, lab_objects, canary_error=0.2, primary_error=0.2)
    wait_for_requests(lab, namespace, "podinfo", 500)
    wait_for_requests(lab, namespace, "podinfo-primary", 500)
    # The absolute check fails, as Flagger's would ...
    assert gate(lab, namespace, [SUCCESS])["metrics"][0]["result"] == "fail"
    # ... while the comparison sees no difference between the versions. High confidence keeps false alarms rare.
    result = gate(lab, namespace, [SUCCESS, DURATION], mode="compare", confidence=0.999, min_requests=200)
    assert result["passed"] is True, result["msg"]
    success = result["comparison"]["metrics"][0]
    assert success["canary_requests"] >= 200 and 10 < success["canary_error_rate"] < 30
    assert by_name(result)["request-success-rate"]["value"] < 99


def test_compare_fails_a_canary_with_three_times_the_primary_error_rate(lab, namespace, lab_objects):
    canary_release(lab, lab_objects, canary_error=0.15, primary_error=0.05)
    wait_for_requests(lab, namespace, "podinfo", 500)
    wait_for_requests(lab, namespace, "podinfo-primary", 500)
    # The comparison reads increase() over the metric window, which counts a 5xx series only from its first sample:
    # wait until both versions' errors show in the window, or a young canary series would hide most of its errors.
    # 150 and 50 errors at 15 % and 5 % are about 1,000 requests each: the difference is some 7 standard errors. At 40
    # and 10 it was about 3.4, next to the 3.09 a confidence of 0.999 asks for, and the verdict could go either way.
    for workload, errors in (("podinfo", 150), ("podinfo-primary", 50)):
        wait_for(lambda w=workload, e=errors: (lab.query_value(WINDOW_ERRORS.format(namespace=namespace, workload=w)) or 0) >= e,
                 timeout=120, interval=0.5, message="%s's errors in the comparison window" % workload)
    result = gate(lab, namespace, [dict(SUCCESS, thresholdRange={"min": 80})], mode="compare", confidence=0.999, min_requests=200)
    metric = result["metrics"][0]
    assert metric["value"] > 80, "the canary is inside the absolute threshold"
    assert metric["result"] == "fail" and result["verdict"] == "fail"
    assert result["comparison"]["metrics"][0]["p_value"] < 0.001


def test_range_rehearses_the_gate_against_history(lab, namespace, lab_objects):
    canary_release(lab, lab_objects)
    wait_for_requests(lab, namespace, "podinfo", 300)
    lab_objects.set_template_annotations("podinfo", {"lab.progressive.delivery/error-rate": "0.5"})
    wait_for(lambda: (gate(lab, namespace, [SUCCESS])["metrics"][0]["value"] or 100) < 90, timeout=60, interval=1,
             message="the error canary to show in Prometheus")
    result = gate(lab, namespace, [dict(SUCCESS, interval="10s")], mode="range", start="-40s", end="now", step="2s")
    metric = result["metrics"][0]
    assert metric["result"] == "fail" and 0 < metric["breaches"] < metric["steps"]
    assert [s["passed"] for s in result["samples"]][0] is True and result["samples"][-1]["passed"] is False


@pytest.mark.timeout(180)
def test_stopped_prometheus_is_a_failed_check_with_reason(lab, namespace):
    # The lab's Prometheus behind a forwarder of this test's own, closed: Prometheus is down for this test only.
    forwarder = TcpForwarder(lab.prometheus_url)
    forwarder.close()
    result = gate(lab, namespace, [SUCCESS, DURATION], prometheus_url=forwarder.url)
    assert result.get("failed") is not True and result["passed"] is False
    assert {m["result"] for m in result["metrics"]} == {"error"}
    assert "cannot connect to Prometheus" in result["metrics"][0]["reason"]
    assert "Traceback" not in result["_stderr"]
