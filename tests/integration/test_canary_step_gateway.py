"""canary_step initialize with provider gatewayapi against the lab: the HTTPRoute the Gateway API CRDs validate."""

from __future__ import annotations

import copy
import json

import pytest

from tests.support.modules import run_module

pytest.importorskip("kubernetes")
from kubernetes.client.exceptions import ApiException  # noqa: E402

NAME = "backend"
GATEWAY_API = ("gateway.networking.k8s.io", "v1")
SERVICE = {"port": 80, "targetPort": 8080, "hosts": ["api.example.com"], "timeout": "5s",
           "gatewayRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
           "headers": {"request": {"set": {"x-route": "canary"}}}}


def deployment_body():
    container = {"name": "app", "image": "backend:1", "ports": [{"containerPort": 8080}]}
    return {"metadata": {"name": NAME, "labels": {"app": NAME}},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 30, "selector": {"matchLabels": {"app": NAME}},
                     "template": {"metadata": {"labels": {"app": NAME}}, "spec": {"containers": [container]}}}}


@pytest.fixture
def app(kube, namespace):
    kube.apps.create_namespaced_deployment(namespace, deployment_body())
    return namespace


@pytest.fixture
def step(k8s_auth, namespace):
    def call(action, **args):
        params = dict(k8s_auth, action=action, name=NAME, namespace=namespace, run_id="run-gw", holder="gateway test",
                      progress_deadline_seconds=20, provider="gatewayapi")
        params.update(args)
        result = run_module("canary_step", params)
        assert not result.get("failed"), result.get("msg")
        return result
    return call


def http_route(kube, namespace, name=NAME):
    return kube.custom.get_namespaced_custom_object(GATEWAY_API[0], GATEWAY_API[1], namespace, "httproutes", name)


def stored_state(kube, namespace):
    return json.loads(kube.core.read_namespaced_config_map(NAME + "-canary-state", namespace).data["state.json"])


def test_initialize_generates_the_httproute_and_a_second_call_changes_nothing(kube, app, step):
    namespace = app
    step("lock")
    first = step("initialize", service=SERVICE)
    assert first["changed"] and first["phase"] == "Initialized"
    route = http_route(kube, namespace)
    assert route["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "progressive.delivery"
    spec = route["spec"]
    assert [(ref["name"], ref.get("namespace"), ref.get("sectionName")) for ref in spec["parentRefs"]] == [
        ("public", "gateways", "https")]
    assert spec["hostnames"] == ["api.example.com"]
    (rule,) = spec["rules"]
    assert [(ref["name"], ref["port"], ref["weight"]) for ref in rule["backendRefs"]] == [
        ("backend-primary", 80, 100), ("backend-canary", 80, 0)]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["timeouts"] == {"request": "5s"}
    assert rule["filters"] == [{"type": "RequestHeaderModifier",
                                "requestHeaderModifier": {"set": [{"name": "x-route", "value": "canary"}]}}]
    assert not kube.custom.list_namespaced_custom_object("networking.istio.io", "v1", namespace,
                                                         "destinationrules")["items"]
    state = stored_state(kube, namespace)
    assert state["route"] == {"kind": "HTTPRoute", "apiVersion": "gateway.networking.k8s.io/v1", "name": NAME,
                              "rule": None, "adopted": False}

    second = step("initialize", service=SERVICE)
    assert not second["changed"], second["actions"]
    assert http_route(kube, namespace)["metadata"]["resourceVersion"] == route["metadata"]["resourceVersion"]


def test_the_v1beta1_version_is_used_when_asked_for(kube, app, step):
    step("lock")
    step("initialize", service=SERVICE, route_api_version="gateway.networking.k8s.io/v1beta1")
    assert stored_state(kube, app)["route"]["apiVersion"] == "gateway.networking.k8s.io/v1beta1"


def test_an_adopted_httproute_keeps_its_other_rules_and_filters(kube, app, step):
    namespace = app
    owned = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "public", "namespace": "gateways"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {"name": "static", "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                 "backendRefs": [{"name": "static", "port": 80}]},
                {"name": "api", "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                 "filters": [{"type": "ResponseHeaderModifier",
                              "responseHeaderModifier": {"add": [{"name": "x-shop", "value": "1"}]}}],
                 "backendRefs": [{"name": "backend-primary", "port": 80, "weight": 100},
                                 {"name": "backend-canary", "port": 80, "weight": 0}]},
            ],
        },
    }
    kube.custom.create_namespaced_custom_object(GATEWAY_API[0], GATEWAY_API[1], namespace, "httproutes", owned)
    before = copy.deepcopy(http_route(kube, namespace, "shop"))
    service = {key: value for key, value in SERVICE.items() if key != "gatewayRefs"}
    step("lock")
    step("initialize", service=service, virtual_service={"adopt": "shop", "route": "api"})
    after = http_route(kube, namespace, "shop")
    assert after["spec"] == before["spec"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert stored_state(kube, namespace)["route"] == {"kind": "HTTPRoute", "apiVersion": "gateway.networking.k8s.io/v1",
                                                      "name": "shop", "rule": "api", "adopted": True}
    with pytest.raises(ApiException) as missing:
        http_route(kube, namespace, NAME)
    assert missing.value.status == 404


def test_delete_points_the_generated_httproute_at_the_apex_service(kube, app, step):
    namespace = app
    step("lock")
    step("initialize", service=SERVICE)
    deleted = step("delete", service=SERVICE)
    assert deleted["changed"] and "update HTTPRoute %s/%s" % (namespace, NAME) in deleted["actions"], deleted["actions"]
    (rule,) = http_route(kube, namespace)["spec"]["rules"]
    assert [(ref["name"], ref["port"]) for ref in rule["backendRefs"]] == [(NAME, 80)]
    services = sorted(service.metadata.name for service in kube.core.list_namespaced_service(namespace).items)
    assert services == [NAME]
    assert "DestinationRule" not in " ".join(deleted["actions"])
