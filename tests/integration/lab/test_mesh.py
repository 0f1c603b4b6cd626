"""The lab mesh against the running lab: objects created with the real kubernetes client over HTTPS."""

from __future__ import annotations

import math

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from lab.testing import wait_for

QUIET = {"lab.progressive.delivery/rps": "0"}  # no background traffic: only what the test sends


def share_bounds(expected: float, draws: int, sigmas: float = 5.0) -> tuple[float, float]:
    """Bounds that a binomial share stays within except with negligible probability."""
    margin = sigmas * math.sqrt(expected * (1 - expected) / draws)
    return expected - margin, expected + margin


def canary_pair(lab_objects, canary_error_rate=0.0, canary_annotations=None):
    lab_objects.workload("podinfo-primary", replicas=2)
    lab_objects.workload("podinfo-canary", error_rate=canary_error_rate, extra_annotations=canary_annotations)
    lab_objects.wait_ready("podinfo-primary")
    lab_objects.wait_ready("podinfo-canary")


def weighted_route(primary: int, canary: int) -> list[dict]:
    return [{"name": "primary", "route": [{"destination": {"host": "podinfo-primary"}, "weight": primary},
                                          {"destination": {"host": "podinfo-canary"}, "weight": canary}]}]


def requests_total(lab, **labels) -> float:
    """Sum of istio_requests_total samples with the given labels, read from the mesh's /metrics."""
    text = requests.get(lab.mesh_url + "/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "istio_requests_total" and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_weights_split_requests_and_a_weight_change_applies_at_once(lab, namespace, lab_objects):
    canary_pair(lab_objects)
    lab_objects.virtualservice("podinfo", ["podinfo"], weighted_route(90, 10), annotations=QUIET)
    result = lab.send("podinfo", namespace, count=4000)
    assert result["virtualservice"] == f"{namespace}/podinfo"
    assert result["codes"] == {"200": 4000}
    low, high = share_bounds(0.1, 4000)
    assert low < result["workloads"]["podinfo-canary"] / 4000 < high

    lab_objects.patch_virtualservice("podinfo", {"spec": {"http": weighted_route(40, 60)}})
    result = lab.send("podinfo", namespace, count=4000)
    low, high = share_bounds(0.6, 4000)
    assert low < result["workloads"]["podinfo-canary"] / 4000 < high


def test_header_and_cookie_matches_route_to_the_canary(lab, namespace, lab_objects):
    canary_pair(lab_objects)
    http = [{"match": [{"headers": {"x-canary": {"exact": "insider"}}},
                       {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
             "route": [{"destination": {"host": "podinfo-canary"}}]},
            {"route": [{"destination": {"host": "podinfo-primary"}}]}]
    lab_objects.virtualservice("podinfo", ["podinfo"], http, annotations=QUIET)
    assert lab.send("podinfo", namespace, 50, headers={"X-Canary": "insider"})["workloads"] == {"podinfo-canary": 50}
    assert lab.send("podinfo", namespace, 50, headers={"Cookie": "a=1;canary=always"})["workloads"] == {"podinfo-canary": 50}
    assert lab.send("podinfo", namespace, 50, headers={"x-canary": "other"})["workloads"] == {"podinfo-primary": 50}


def test_generated_traffic_carries_match_headers_for_a_share_of_requests(lab, namespace, lab_objects):
    canary_pair(lab_objects)
    http = [{"match": [{"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
             "route": [{"destination": {"host": "podinfo-canary"}}]},
            {"route": [{"destination": {"host": "podinfo-primary"}}]}]
    lab_objects.virtualservice("podinfo", ["podinfo"], http,
                               annotations={"lab.progressive.delivery/rps": "400", "lab.progressive.delivery/match-share": "0.3"})

    def served(workload):
        return requests_total(lab, reporter="destination", destination_workload=workload,
                              destination_workload_namespace=namespace)

    wait_for(lambda: served("podinfo-canary") + served("podinfo-primary") >= 1500, timeout=30,
             message="1500 generated requests")
    canary, primary = served("podinfo-canary"), served("podinfo-primary")
    low, high = share_bounds(0.3, int(canary + primary))
    assert low < canary / (canary + primary) < high


def test_mirror_reaches_the_mirror_workload_without_affecting_clients(lab, namespace, lab_objects):
    canary_pair(lab_objects, canary_error_rate=1.0)
    http = [{"route": [{"destination": {"host": "podinfo-primary"}}],
             "mirror": {"host": "podinfo-canary"}, "mirrorPercentage": {"value": 50.0}}]
    lab_objects.virtualservice("podinfo", ["podinfo"], http, annotations=QUIET)
    result = lab.send("podinfo", namespace, count=2000)
    assert result["codes"] == {"200": 2000}
    low, high = share_bounds(0.5, 2000)
    assert low < result["mirrored"]["podinfo-canary"] / 2000 < high
    mirrored_errors = requests_total(lab, reporter="destination", destination_workload="podinfo-canary",
                                     destination_workload_namespace=namespace)
    assert mirrored_errors == result["mirrored"]["podinfo-canary"]
    assert requests_total(lab, reporter="source", destination_workload="podinfo-canary",
                          destination_workload_namespace=namespace) == 0


def test_no_ready_endpoint_answers_503_no_healthy_upstream(lab, namespace, lab_objects):
    lab_objects.workload("podinfo-primary", extra_annotations={"lab.progressive.delivery/ready": "false"})
    lab_objects.virtualservice("podinfo", ["podinfo"], [{"route": [{"destination": {"host": "podinfo-primary"}}]}],
                               annotations=QUIET)
    result = lab.send("podinfo", namespace, count=20)
    assert result["codes"] == {"503": 20}
    assert result["response_flags"] == {"UH": 20}
    assert requests_total(lab, reporter="source", response_code="503", response_flags="UH", destination_workload="unknown",
                          destination_service=f"podinfo-primary.{namespace}.svc.cluster.local") == 20


def test_without_a_virtualservice_the_service_balances_over_ready_pods(lab, namespace, lab_objects):
    lab_objects.workload("backend-a", replicas=3, labels={"app": "backend", "track": "a"}, with_service=False)
    lab_objects.workload("backend-b", replicas=1, labels={"app": "backend", "track": "b"}, with_service=False)
    lab_objects.core.create_namespaced_service(namespace, {"metadata": {"name": "backend"},
                                                           "spec": {"selector": {"app": "backend"}, "ports": [{"port": 80}]}})
    lab_objects.wait_ready("backend-a")
    lab_objects.wait_ready("backend-b")
    lab_objects.wait_endpoints("backend", 4)
    result = lab.send(f"backend.{namespace}.svc.cluster.local", "default", count=4000)
    assert result["virtualservice"] is None
    low, high = share_bounds(0.75, 4000)
    assert low < result["workloads"]["backend-a"] / 4000 < high


def test_an_error_rate_change_takes_effect_once_the_new_pods_serve(lab, namespace, lab_objects):
    canary_pair(lab_objects)
    lab_objects.virtualservice("podinfo", ["podinfo"], weighted_route(0, 100), annotations=QUIET)
    assert lab.send("podinfo", namespace, 200)["failed"] == 0
    lab_objects.set_template_annotations("podinfo-canary", {"lab.progressive.delivery/error-rate": "1"})
    # The new pods replace the old ones after the controller's delay (1 s); the mesh sees them on its next tick.
    wait_for(lambda: lab.send("podinfo", namespace, 50)["failed"] == 50, timeout=5.0, interval=0.1,
             message="the new error rate to apply")


def test_a_stalled_rollout_keeps_the_old_pods_serving(lab, namespace, lab_objects):
    canary_pair(lab_objects)
    lab_objects.virtualservice("podinfo", ["podinfo"], weighted_route(0, 100), annotations=QUIET)
    lab_objects.set_template_annotations("podinfo-canary", {"lab.progressive.delivery/error-rate": "1",
                                                            "lab.progressive.delivery/ready": "false"})

    def new_pods_created():
        pods = lab_objects.core.list_namespaced_pod(namespace, label_selector="app=podinfo-canary").items
        return len({p.metadata.labels["pod-template-hash"] for p in pods}) == 2

    wait_for(new_pods_created, timeout=5.0, message="the new, never ready, pods")
    result = lab.send("podinfo", namespace, 200)
    assert result["codes"] == {"200": 200}


def test_latency_annotation_sets_the_median_with_a_realistic_tail(lab, namespace, lab_objects):
    lab_objects.workload("slow", latency_ms=200)
    lab_objects.wait_ready("slow")
    result = lab.send("slow", namespace, count=3000)
    latencies = result["latencies_ms"]
    assert 185 < latencies["p50"] < 215
    assert 2.0 < latencies["p99"] / latencies["p50"] < 3.2


def test_generated_traffic_is_exported_with_istio_labels_for_gateway_and_mesh(lab, namespace, lab_objects):
    lab_objects.workload("backend-service", replicas=2)
    lab_objects.wait_ready("backend-service")
    lab_objects.virtualservice(
        "backend-service", ["api.example.com", "backend-service"],
        [{"route": [{"destination": {"host": "backend-service"}}]}],
        gateways=["public-gateway.istio-system.svc.cluster.local", "mesh"],
        annotations={"lab.progressive.delivery/rps": "100"})

    def reported(source_workload):
        return requests_total(lab, reporter="destination", source_workload=source_workload,
                              destination_workload="backend-service", destination_workload_namespace=namespace,
                              destination_service=f"backend-service.{namespace}.svc.cluster.local",
                              destination_service_name="backend-service", response_code="200")

    wait_for(lambda: reported("istio-ingressgateway") >= 30 and reported("lab-loadgen") >= 30, timeout=30,
             message="traffic from the ingress gateway and from the mesh")


@pytest.mark.parametrize("body, error", [
    ({}, "'host' is required"),
    ({"host": "x", "count": 0}, "'count' must be between"),
    ({"host": "x", "count": "many"}, "'count' must be an integer"),
])
def test_send_rejects_bad_requests_with_a_reason(lab, body, error):
    response = requests.post(lab.mesh_url + "/send", json=body, timeout=10)
    assert response.status_code == 400
    assert error in response.json()["error"]
