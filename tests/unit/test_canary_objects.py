"""Services, DestinationRules and the VirtualService generated for a canary."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_objects as co
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import MANAGED_BY_LABEL, ownership_problem

SEED_SERVICE = {"port": 80, "gateways": ["public-gateway.istio-system.svc.cluster.local"], "hosts": ["api.example.com"]}


def spec(**overrides):
    option = dict(SEED_SERVICE)
    option.update(overrides)
    return co.ServiceSpec.from_option(option, "backend-service")


def test_service_spec_defaults_follow_flagger():
    s = spec()
    assert (s.name, s.port, s.target_port, s.port_name) == ("backend-service", 80, 80, "http")
    named = spec(name="api", targetPort="http-web", portName="grpc")
    assert (named.name, named.target_port, named.port_name) == ("api", "http-web", "grpc")
    assert spec(targetPort="8080").target_port == 8080


@pytest.mark.parametrize("option, fragment", [
    ({}, "service.port is required"),
    ({"port": "eighty"}, "must be a number"),
    ({"port": 70000}, "between 1 and 65535"),
])
def test_service_spec_rejects_bad_ports(option, fragment):
    with pytest.raises(co.ServiceSpecError, match=fragment):
        co.ServiceSpec.from_option(option, "x")


def test_build_service_selects_by_label_and_is_marked():
    service = co.build_service("backend-service-primary", "prod", "backend-service", "app", "backend-primary", spec(targetPort=8080))
    assert service["spec"]["selector"] == {"app": "backend-primary"}
    assert service["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
    assert service["metadata"]["labels"]["app"] == "backend-service-primary"
    assert ownership_problem(service, "Service", "prod", "backend-service") is None


def test_discovered_ports_skip_sidecars_and_the_main_port():
    containers = [{"name": "app", "ports": [{"containerPort": 80}, {"name": "metrics", "containerPort": 9090}, {"containerPort": 7000}]},
                  {"name": "istio-proxy", "ports": [{"containerPort": 15090}]}]
    assert co.discovered_ports(containers, spec()) == {"metrics": 9090, "tcp-app-2": 7000}
    service = co.build_service("x", "prod", "c", "app", "x", spec(), {"metrics": 9090})
    assert [p["name"] for p in service["spec"]["ports"]] == ["http", "metrics"]


def test_service_update_changes_selector_and_ports_and_keeps_the_rest():
    desired = co.build_service("backend-service", "prod", "backend-service", "app", "backend-primary", spec())
    existing = copy.deepcopy(desired)
    existing["metadata"]["resourceVersion"] = "7"
    existing["metadata"]["labels"]["extra"] = "kept"
    existing["spec"]["clusterIP"] = "10.0.0.1"
    existing["spec"]["ports"][0]["nodePort"] = 30080
    assert co.service_update(existing, desired) is None
    existing["spec"]["selector"] = {"app": "backend"}
    updated = co.service_update(existing, desired)
    assert updated["spec"]["selector"] == {"app": "backend-primary"}
    assert updated["spec"]["clusterIP"] == "10.0.0.1"
    assert updated["spec"]["ports"][0]["nodePort"] == 30080
    assert updated["metadata"]["labels"]["extra"] == "kept"
    assert updated["metadata"]["resourceVersion"] == "7"


def test_destination_rule_has_no_subsets_and_takes_the_traffic_policy():
    rule = co.build_destination_rule("backend-service-canary", "prod", "backend-service", "v1",
                                     {"tls": {"mode": "ISTIO_MUTUAL"}})
    assert rule["apiVersion"] == "networking.istio.io/v1"
    assert rule["spec"] == {"host": "backend-service-canary", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}
    assert co.spec_update(copy.deepcopy(rule), rule) is None
    plain = co.build_destination_rule("backend-service-canary", "prod", "backend-service", "v1", None)
    assert co.spec_update(rule, plain)["spec"] == {"host": "backend-service-canary"}


def test_virtual_service_for_the_seed_canary():
    vs = co.build_virtual_service("prod", "backend-service", "v1beta1", spec())
    assert vs["apiVersion"] == "networking.istio.io/v1beta1"
    assert vs["metadata"]["name"] == "backend-service"
    assert vs["spec"]["hosts"] == ["api.example.com", "backend-service"]
    assert vs["spec"]["gateways"] == ["public-gateway.istio-system.svc.cluster.local"]
    assert vs["spec"]["http"] == [{"route": [
        {"destination": {"host": "backend-service-primary"}, "weight": 100},
        {"destination": {"host": "backend-service-canary"}, "weight": 0},
    ]}]
    assert vs["metadata"]["labels"][MANAGED_BY_LABEL] == "progressive.delivery"


def test_virtual_service_defaults_to_mesh_and_copies_route_settings():
    settings = {"match": [{"uri": {"prefix": "/api"}}], "retries": {"attempts": 3}, "timeout": "5s",
                "headers": {"request": {"set": {"x": "y"}}}, "corsPolicy": {"allowOrigins": [{"exact": "*"}]},
                "rewrite": {"uri": "/"}}
    vs = co.build_virtual_service("prod", "c", "v1", co.ServiceSpec.from_option(dict(port=80, hosts=["*"], **settings), "svc"))
    assert vs["spec"]["gateways"] == ["mesh"]
    assert vs["spec"]["hosts"] == ["*"]
    route = vs["spec"]["http"][0]
    for key, value in settings.items():
        assert route[key] == value


def test_virtual_service_update_keeps_current_weights():
    desired = co.build_virtual_service("prod", "backend-service", "v1", spec())
    live = copy.deepcopy(desired)
    live["spec"]["http"][0]["route"][0]["weight"] = 70
    live["spec"]["http"][0]["route"][1]["weight"] = 30
    assert co.virtual_service_update(live, desired) is None
    changed = co.build_virtual_service("prod", "backend-service", "v1", spec(timeout="3s"))
    updated = co.virtual_service_update(live, changed)
    assert updated["spec"]["http"][0]["timeout"] == "3s"
    assert [d["weight"] for d in updated["spec"]["http"][0]["route"]] == [70, 30]


def test_route_lookup_for_adoption():
    vs = {"spec": {"http": [{"name": "api", "route": []}, {"route": []}, {"name": "web", "route": []}]}}
    assert co.route_names(vs) == ["api", "web"]
    assert co.find_route(vs, "web") == {"name": "web", "route": []}
    assert co.find_route(vs, "nope") is None


def test_ownership_problem_explains_foreign_objects():
    foreign = {"metadata": {"name": "backend-service"}}
    text = ownership_problem(foreign, "Service", "prod", "backend-service")
    assert "Service prod/backend-service exists but was not created by progressive.delivery" in text
    assert "delete it or adopt it" in text
    other = co.build_service("backend-service", "prod", "another", "app", "x", spec())
    assert "belongs to canary prod/another" in ownership_problem(other, "Service", "prod", "backend-service")
