"""A Gateway API HTTPRoute on the real control plane: weights and a mirror, as Prometheus sees them."""

from __future__ import annotations

import math

import pytest
import requests

from lab.testing import wait_for

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
HOST = "app.example.com"
TRAFFIC = {"lab.progressive.delivery/rps": "600", "lab.progressive.delivery/sessions": "0"}


def value(lab, promql: str) -> float:
    return lab.query_value(promql) or 0.0


def within(share: float, expected: float, draws: float, sigmas: float = 5.0) -> bool:
    return abs(share - expected) < sigmas * math.sqrt(expected * (1 - expected) / max(draws, 1.0))


def routed_by(lab, namespace: str, written: dict) -> None:
    """Wait until the mesh routes by this version of the HTTPRoute (the mirror follows the API a moment behind)."""
    key, wanted = f"{namespace}/{written['metadata']['name']}", int(written["metadata"]["resourceVersion"])

    def seen() -> bool:
        version = requests.get(lab.mesh_url + "/traffic", timeout=10).json().get("httproutes", {}).get(key)
        return version is not None and int(version) >= wanted
    wait_for(seen, timeout=15, message=f"the mesh to route by HTTPRoute {key} at resourceVersion {wanted}")


def test_httproute_weights_and_mirror_reach_prometheus(lab, namespace, lab_objects):
    if lab.backend != "cluster":
        pytest.skip("the emulated API does not serve the Gateway API")
    for name, error_rate in (("podinfo-primary", 0.0), ("podinfo-canary", 0.5), ("podinfo-mirror", 1.0)):
        lab_objects.workload(name, error_rate=error_rate)
    for name in ("podinfo-primary", "podinfo-canary", "podinfo-mirror"):
        lab_objects.wait_ready(name)
    custom = lab_objects.custom
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "gateways", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": "public"},
        "spec": {"gatewayClassName": "istio",
                 "listeners": [{"name": "http", "protocol": "HTTP", "port": 80, "hostname": "*.example.com"}]}})
    mirror = {"type": "RequestMirror", "requestMirror": {
        "backendRef": {"name": "podinfo-mirror", "port": 9898}, "fraction": {"numerator": 1, "denominator": 4}}}
    route = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "HTTPRoute",
        "metadata": {"name": "podinfo", "annotations": TRAFFIC},
        "spec": {"parentRefs": [{"name": "public"}], "hostnames": [HOST],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "filters": [mirror],
                            "backendRefs": [{"name": "podinfo-primary", "port": 9898, "weight": 80},
                                            {"name": "podinfo-canary", "port": 9898, "weight": 20}]}]}})
    routed_by(lab, namespace, route)

    sent = lab.send(HOST, namespace, count=400, gateway=f"{namespace}/public")
    assert sent["httproutes"] == [f"{namespace}/podinfo"] and sent["virtualservice"] is None
    assert set(sent["workloads"]) == {"podinfo-primary", "podinfo-canary"}

    ns = f'destination_workload_namespace="{namespace}"'
    source = f'reporter="source",source_workload="istio-ingressgateway",{ns}'
    wait_for(lambda: value(lab, f"sum(istio_requests_total{{{source}}})") >= 3000, timeout=25,
             message="3000 requests through the Gateway in Prometheus")
    total = value(lab, f"sum(istio_requests_total{{{source}}})")
    canary = value(lab, f'sum(istio_requests_total{{{source},destination_workload="podinfo-canary"}})')
    assert within(canary / total, 0.2, total)
    # Copies reach the mirror's own proxy only; clients never see its (failing) answers.
    assert value(lab, f'sum(istio_requests_total{{{source},destination_workload="podinfo-mirror"}})') == 0
    mirrored = value(lab, f'sum(istio_requests_total{{reporter="destination",{ns},destination_workload="podinfo-mirror"}})')
    assert within(mirrored / total, 0.25, total, sigmas=6.0)
    assert value(lab, f'sum(lab_mirrored_requests_total{{namespace="{namespace}",destination_workload="podinfo-mirror"}})') > 0

    # Flagger's builtin request-success-rate, unchanged, judges the canary behind the HTTPRoute.
    success = value(lab, (
        f'sum(rate(istio_requests_total{{reporter="destination",{ns},destination_workload=~"podinfo-canary",'
        f'response_code!~"5.*"}}[1m])) / sum(rate(istio_requests_total{{reporter="destination",{ns},'
        f'destination_workload=~"podinfo-canary"}}[1m])) * 100'))
    assert 35 < success < 65

    # A weight change applies at once to requests sent after it.
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 0
    updated = custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", "podinfo", route)
    routed_by(lab, namespace, updated)
    assert lab.send(HOST, namespace, count=300, gateway=f"{namespace}/public")["workloads"] == {"podinfo-primary": 300}
