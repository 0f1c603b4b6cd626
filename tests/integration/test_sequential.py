"""The sequential judge on the lab: real Prometheus counters, real playbook runs.

A 5 %-error canary is caught by the tests on its counts, a good one is promoted, and a service-wide incident (both
versions failing alike) does not roll a canary back.
"""

from __future__ import annotations

import pytest

from lab.testing import wait_for
from tests.support.releases import Release, assert_safe, short_manifest

pytestmark = pytest.mark.slow

SEQUENTIAL = {"canary_analysis_mode": "sequential", "canary_metric_interval_override": "10s", "canary_poll": 0.5}
ERROR_RATE = "lab.progressive.delivery/error-rate"


def sequential_release(lab, namespace, tmp_path, interval: str) -> Release:
    # A threshold the failed-check count cannot reach: only the sequential tests roll back here.
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace, threshold=50))
    assert release.run(canary_analysis_mode="sequential").returncode == 0
    release.settings = dict(SEQUENTIAL, canary_interval_override=interval)
    return release


def test_a_5_percent_error_canary_is_rolled_back_by_the_sequential_tests(lab, namespace, tmp_path):
    release = sequential_release(lab, namespace, tmp_path, interval="60s")
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1", annotations={ERROR_RATE: "0.05"})
    result = release.run(**release.settings)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "a sequential test crossed its boundary" in result.stdout, result.stdout[-4000:]
    assert_safe(release)
    report = release.report()
    assert report["result"] == "Failed"
    # Caught within the first step: at 30 % of the traffic, long before its 60 s interval ends.
    assert not any("step 2/2" in entry.get("message", "") for entry in report["timeline"])
    crossed = [p for p in report["evidence"] if p["log_e_value"] >= p["log_boundary"]]
    assert crossed and crossed[0]["metric"] == "request-success-rate"


def test_a_good_canary_is_promoted_with_its_evidence_in_the_report(lab, namespace, tmp_path):
    release = sequential_release(lab, namespace, tmp_path, interval="3s")
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    result = release.run(**release.settings)
    assert result.returncode == 0, result.stdout[-4000:]
    assert release.state()["phase"] == "Succeeded"
    assert_safe(release)
    report = release.report()
    reasons = [m["reason"] for entry in report["timeline"] for m in entry.get("metrics") or []]
    # An interval with too few canary requests holds the step (a loaded machine sends fewer); every other analysis
    # found no regression: both metrics, at both steps.
    verdicts = [reason for reason in reasons if "needed for a verdict" not in reason]
    assert len(verdicts) >= 4 and all(reason.startswith("no regression found after") for reason in verdicts), reasons
    evidence = report["evidence"]
    assert {(p["metric"], p["test"]) for p in evidence} == {
        ("request-success-rate", "rate"), ("request-success-rate", "ratio"),
        ("request-duration", "latency-limit"), ("request-duration", "latency-order")}
    assert all(p["log_e_value"] < p["log_boundary"] for p in evidence)
    # Counted from the canary's first request across both steps: the second step's evidence rests on more requests.
    assert {p["weight"] for p in evidence} == {30, 60}


def test_a_service_wide_incident_does_not_roll_the_canary_back(lab, namespace, tmp_path):
    release = sequential_release(lab, namespace, tmp_path, interval="8s")
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    process = release.popen(**release.settings)
    try:
        wait_for(lambda: release.weights()["app-canary"] == 30, timeout=120, interval=0.1, message="the first step")
        # Every pod of both versions fails 30 % of its requests, as when a shared dependency is down.
        for pod in release.core.list_namespaced_pod(namespace).items:
            release.core.patch_namespaced_pod(pod.metadata.name, namespace,
                                              {"metadata": {"annotations": {ERROR_RATE: "0.3"}}})
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output[-4000:]
    assert release.state()["phase"] == "Succeeded"
    failed = lab.query_value(
        'sum(max_over_time(istio_requests_total{destination_workload_namespace="%s",'
        'destination_workload="app-primary",response_code=~"5.."}[5m]))' % namespace)
    assert failed is not None and failed > 10, "the primary did not fail: the incident was not simulated"
