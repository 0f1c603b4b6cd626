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


def test_app_protocol_is_set_on_the_main_port_and_a_change_is_an_update():
    with_protocol = spec(appProtocol="kubernetes.io/h2c")
    service = co.build_service("backend-service", "prod", "backend-service", "app", "backend-primary", with_protocol,
                               {"metrics": 9090})
    assert service["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/h2c"
    assert "appProtocol" not in service["spec"]["ports"][1]
    plain = co.build_service("backend-service", "prod", "backend-service", "app", "backend-primary", spec())
    assert "appProtocol" not in plain["spec"]["ports"][0]
    updated = co.service_update(plain, service)
    assert updated is not None and updated["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/h2c"
    assert co.service_update(updated, service) is None
    with pytest.raises(co.ServiceSpecError, match="appProtocol must be a string"):
        spec(appProtocol=5)


def test_delegation_generates_a_delegate_without_hosts_and_gateways():
    delegate = co.ServiceSpec.from_option({"port": 80, "delegation": True}, "backend-service")
    vs = co.build_virtual_service("prod", "backend-service", "v1", delegate)
    assert "hosts" not in vs["spec"] and "gateways" not in vs["spec"]
    assert [d["destination"]["host"] for d in vs["spec"]["http"][0]["route"]] == ["backend-service-primary", "backend-service-canary"]
    # A VirtualService generated before delegation was turned on loses its hosts and gateways, weights kept.
    rooted = co.build_virtual_service("prod", "backend-service", "v1", spec())
    rooted["spec"]["http"][0]["route"][1]["weight"] = 30
    updated = co.virtual_service_update(rooted, vs)
    assert "hosts" not in updated["spec"] and "gateways" not in updated["spec"]
    assert updated["spec"]["http"][0]["route"][1]["weight"] == 30
    assert co.virtual_service_update(updated, vs) is None


@pytest.mark.parametrize("extra", [{"hosts": ["api.example.com"]}, {"gateways": ["public-gateway"]}])
def test_delegation_with_hosts_or_gateways_is_refused(extra):
    option = dict({"port": 80, "delegation": True}, **extra)
    with pytest.raises(co.ServiceSpecError, match="delegate.*root VirtualService"):
        co.ServiceSpec.from_option(option, "backend-service")


CUSTOM = {"apex": {"labels": {"tier": "edge"}, "annotations": {"team": "payments",
                                                               "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
          "primary": {"labels": {"role": "stable"}},
          "canary": {"annotations": {"role": "candidate"}}}


def test_custom_metadata_goes_on_each_service_and_the_apex_on_the_virtual_service():
    s = spec(**CUSTOM)
    apex = co.build_service("backend-service", "prod", "backend-service", "app", "backend-primary", s, which="apex")
    primary = co.build_service("backend-service-primary", "prod", "backend-service", "app", "backend-primary", s, which="primary")
    canary = co.build_service("backend-service-canary", "prod", "backend-service", "app", "backend", s, which="canary")
    assert apex["metadata"]["labels"]["tier"] == "edge" and apex["metadata"]["annotations"]["team"] == "payments"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in apex["metadata"]["annotations"]
    assert primary["metadata"]["labels"]["role"] == "stable" and "tier" not in primary["metadata"]["labels"]
    assert canary["metadata"]["annotations"]["role"] == "candidate" and "role" not in canary["metadata"]["labels"]
    vs = co.build_virtual_service("prod", "backend-service", "v1", s)
    assert vs["metadata"]["labels"]["tier"] == "edge" and vs["metadata"]["annotations"]["team"] == "payments"
    for obj in (apex, primary, canary, vs):
        assert ownership_problem(obj, obj["kind"], "prod", "backend-service") is None


def test_custom_labels_cannot_take_over_the_selector_label_or_the_marker():
    s = spec(apex={"labels": {"app": "other", MANAGED_BY_LABEL: "someone"}})
    apex = co.build_service("backend-service", "prod", "backend-service", "app", "backend-primary", s)
    assert apex["metadata"]["labels"]["app"] == "backend-service"
    assert ownership_problem(apex, "Service", "prod", "backend-service") is None


def test_owned_metadata_is_reapplied_removed_when_dropped_and_others_survive():
    first = co.build_service("backend-service", "prod", "backend-service", "app", "backend-primary", spec(**CUSTOM))
    existing = copy.deepcopy(first)
    existing["metadata"]["labels"]["added-by"] = "someone-else"
    existing["metadata"]["annotations"]["team"] = "edited by hand"
    # The same settings again: our value comes back, theirs stays.
    restored = co.service_update(existing, first)
    assert restored["metadata"]["annotations"]["team"] == "payments"
    assert restored["metadata"]["labels"]["added-by"] == "someone-else"
    assert co.service_update(restored, first) is None
    # The settings drop the apex metadata: what we set goes, theirs still stays.
    second = co.build_service("backend-service", "prod", "backend-service", "app", "backend-primary", spec())
    cleaned = co.service_update(restored, second)
    assert "tier" not in cleaned["metadata"]["labels"] and "team" not in cleaned["metadata"]["annotations"]
    assert cleaned["metadata"]["labels"]["added-by"] == "someone-else"
    assert co.service_update(cleaned, second) is None


def test_bad_custom_metadata_is_named():
    with pytest.raises(co.ServiceSpecError, match="service.primary takes 'labels' and 'annotations'"):
        spec(primary={"label": {"a": "b"}})
    with pytest.raises(co.ServiceSpecError, match="service.canary.labels must be a mapping"):
        spec(canary={"labels": ["a"]})


def weighted_vs(primary_weight=90, canary_weight=10):
    vs = co.build_virtual_service("prod", "backend-service", "v1", spec())
    vs["spec"]["http"][0]["route"][0]["weight"] = primary_weight
    vs["spec"]["http"][0]["route"][1]["weight"] = canary_weight
    vs["spec"]["http"][0]["mirror"] = {"host": "backend-service-canary"}
    vs["spec"]["http"][0]["mirrorPercentage"] = {"value": 50}
    return vs


def test_routed_to_apex_sends_all_traffic_to_the_apex_host():
    updated = co.routed_to_apex(weighted_vs(), "backend-service", "backend-service-primary", "backend-service-canary")
    route = updated["spec"]["http"][0]
    assert route["route"] == [{"destination": {"host": "backend-service"}, "weight": 100}]
    assert "mirror" not in route and "mirrorPercentage" not in route
    assert updated["spec"]["hosts"] == weighted_vs()["spec"]["hosts"]
    assert co.routed_to_apex(updated, "backend-service", "backend-service-primary", "backend-service-canary") is None


def test_routed_to_apex_changes_only_the_named_route_of_an_adopted_virtual_service():
    adopted = {"spec": {"hosts": ["shop.example.com"], "http": [
        {"name": "legacy", "route": [{"destination": {"host": "legacy"}}]},
        {"name": "api", "route": [{"destination": {"host": "web-primary", "port": {"number": 80}}, "weight": 60},
                                  {"destination": {"host": "web-canary", "port": {"number": 80}}, "weight": 20},
                                  {"destination": {"host": "static"}, "weight": 20}]}]}}
    updated = co.routed_to_apex(adopted, "web", "web-primary", "web-canary", "api")
    assert updated["spec"]["http"][0] == adopted["spec"]["http"][0]
    assert updated["spec"]["http"][1]["route"] == [{"destination": {"host": "web", "port": {"number": 80}}, "weight": 80},
                                                   {"destination": {"host": "static"}, "weight": 20}]
    assert co.routed_to_apex(adopted, "web", "web-primary", "web-canary", "other") is None
