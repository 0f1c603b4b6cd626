"""VirtualService evaluation rules of the lab mesh (pure functions, no servers)."""

from __future__ import annotations

import random
import re

import pytest

from lab.mesh.routing import (Request, example_for_regex, example_request_shape, mirror_targets, normalize_gateway,
                              pick_weighted, resolve_host, route_weights, select_route, string_match)
from lab.mesh.topology import Topology


@pytest.mark.parametrize("host, namespace, expected", [
    ("podinfo", "test", ("podinfo", "test")),
    ("podinfo.prod", "test", ("podinfo", "prod")),
    ("podinfo.prod.svc", "test", ("podinfo", "prod")),
    ("podinfo.prod.svc.cluster.local", "test", ("podinfo", "prod")),
    ("PodInfo.Prod.svc.cluster.local.", "test", ("podinfo", "prod")),
    ("podinfo.prod:9898", "test", ("podinfo", "prod")),
    ("api.example.com", "test", None),
    ("podinfo.prod.svc.other.domain", "test", None),
    ("*", "test", None),
])
def test_resolve_host_reads_short_names_relative_to_the_rule_namespace(host, namespace, expected):
    assert resolve_host(host, namespace) == expected


@pytest.mark.parametrize("gateway, expected", [
    ("mesh", "mesh"),
    ("public-gateway", "test/public-gateway"),
    ("istio-system/public-gateway", "istio-system/public-gateway"),
    ("public-gateway.istio-system.svc.cluster.local", "istio-system/public-gateway"),
])
def test_gateway_references_have_one_spelling(gateway, expected):
    assert normalize_gateway(gateway, "test") == expected


@pytest.mark.parametrize("condition, value, expected", [
    ({"exact": "insider"}, "insider", True),
    ({"exact": "insider"}, "insiders", False),
    ({"prefix": "/api"}, "/api/v1", True),
    ({"prefix": "/api"}, "/v1/api", False),
    ({"regex": ".*Firefox.*"}, "Mozilla Firefox 120", True),
    ({"regex": "Firefox"}, "Mozilla Firefox", False),  # RE2 in Istio matches the whole value
    ({"regex": "^(.*?;)?(canary=always)(;.*)?$"}, "a=b;canary=always;c=d", True),
    # As with RE2 in Envoy: the space browsers put after ';' is not matched by this common pattern.
    ({"regex": "^(.*?;)?(canary=always)(;.*)?$"}, "a=b; canary=always", False),
    ({"regex": "^(.*?;)?(canary=always)(;.*)?$"}, "canary=never", False),
    ({}, "anything", True),
    ({"exact": "x"}, None, False),
    ({}, None, False),
])
def test_string_match(condition, value, expected):
    assert string_match(condition, value) is expected


def _vs(http, namespace="test", gateways=None):
    spec = {"hosts": ["podinfo"], "http": http}
    if gateways:
        spec["gateways"] = gateways
    return {"metadata": {"name": "podinfo", "namespace": namespace}, "spec": spec}


AB_ROUTES = [
    {"name": "insiders", "match": [{"headers": {"x-canary": {"exact": "insider"}}},
                                   {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
     "route": [{"destination": {"host": "podinfo-canary"}}]},
    {"name": "api", "match": [{"uri": {"prefix": "/api"}, "method": {"exact": "POST"}}],
     "route": [{"destination": {"host": "podinfo-api"}}]},
    {"name": "default", "route": [{"destination": {"host": "podinfo-primary"}}]},
]


@pytest.mark.parametrize("request_, expected_route", [
    (Request("podinfo", headers={"x-canary": "insider"}), "insiders"),
    (Request("podinfo", headers={"cookie": "session=1;canary=always"}), "insiders"),
    (Request("podinfo", headers={"x-canary": "outsider"}), "default"),
    (Request("podinfo", path="/api/items", method="POST"), "api"),
    (Request("podinfo", path="/api/items", method="GET"), "default"),
    (Request("podinfo", path="/api/items?x=1", method="POST"), "api"),
])
def test_routes_are_evaluated_in_order_and_matches_are_or_of_ands(request_, expected_route):
    selected = select_route(_vs(AB_ROUTES), request_)
    assert selected is not None
    assert selected[1]["name"] == expected_route


def test_no_matching_route_selects_nothing():
    vs = _vs([{"match": [{"headers": {"x-canary": {"exact": "insider"}}}], "route": [{"destination": {"host": "a"}}]}])
    assert select_route(vs, Request("podinfo")) is None


def test_gateway_and_query_and_without_headers_conditions():
    routes = [
        {"name": "from-gateway", "match": [{"gateways": ["public-gateway.istio-system.svc.cluster.local"]}],
         "route": [{"destination": {"host": "a"}}]},
        {"name": "debug", "match": [{"queryParams": {"debug": {"exact": "1"}}, "withoutHeaders": {"x-internal": {}}}],
         "route": [{"destination": {"host": "b"}}]},
        {"name": "rest", "route": [{"destination": {"host": "c"}}]},
    ]
    vs = _vs(routes, gateways=["istio-system/public-gateway", "mesh"])
    assert select_route(vs, Request("podinfo", gateway="istio-system/public-gateway"))[1]["name"] == "from-gateway"
    assert select_route(vs, Request("podinfo", path="/?debug=1"))[1]["name"] == "debug"
    assert select_route(vs, Request("podinfo", path="/?debug=1", headers={"x-internal": "y"}))[1]["name"] == "rest"


def test_route_weights_default_a_lone_destination_to_100_and_missing_weights_to_0():
    assert route_weights({"route": [{"destination": {"host": "a"}}]}) == [({"host": "a"}, 100)]
    assert route_weights({"route": [{"destination": {"host": "a"}, "weight": 90},
                                    {"destination": {"host": "b"}}]}) == [({"host": "a"}, 90), ({"host": "b"}, 0)]


def test_pick_weighted_follows_the_weights():
    rng = random.Random(7)
    picks = [pick_weighted([("primary", 90), ("canary", 10), ("never", 0)], rng) for _ in range(20000)]
    share = picks.count("canary") / len(picks)
    # 20000 draws: the standard error of a 10% share is 0.2%, so 1% is five of them.
    assert 0.09 < share < 0.11
    assert "never" not in picks
    assert pick_weighted([("a", 0)], rng) is None


def test_mirror_targets_read_both_spellings_and_default_to_all_requests():
    route = {"mirror": {"host": "shadow"}, "mirrorPercentage": {"value": 25.5},
             "mirrors": [{"destination": {"host": "other"}}]}
    assert mirror_targets(route) == [({"host": "shadow"}, 25.5), ({"host": "other"}, 100.0)]
    assert mirror_targets({"mirror": {"host": "shadow"}}) == [({"host": "shadow"}, 100.0)]
    assert mirror_targets({"route": []}) == []


@pytest.mark.parametrize("pattern", [
    "^(.*?;)?(canary=always)(;.*)?$",
    ".*Firefox.*",
    "(insider|beta)",
    r"user-\d+",
])
def test_example_for_regex_produces_a_full_match_or_nothing(pattern):
    example = example_for_regex(pattern)
    if example is not None:
        assert re.fullmatch(pattern, example)


def test_example_for_regex_handles_the_cookie_shape_users_write():
    assert example_for_regex("^(.*?;)?(canary=always)(;.*)?$") == "canary=always"
    assert example_for_regex("[invalid") is None


def test_example_request_shape_satisfies_the_first_match():
    headers, path = example_request_shape(_vs(AB_ROUTES))
    request = Request("podinfo", path=path, headers=headers)
    assert select_route(_vs(AB_ROUTES), request)[1]["name"] == "insiders"
    assert example_request_shape(_vs([{"route": [{"destination": {"host": "a"}}]}])) is None


def test_a_short_host_belongs_to_the_virtual_service_namespace_and_external_hosts_to_everyone():
    def virtual_service(namespace, hosts):
        return {"metadata": {"name": "podinfo", "namespace": namespace},
                "spec": {"hosts": hosts, "http": [{"route": [{"destination": {"host": "podinfo"}}]}]}}

    in_a = virtual_service("a", ["podinfo", "app.example.com"])
    topology = Topology(virtualservices=[in_a, virtual_service("b", ["podinfo"])])
    assert topology.virtualservice_for("podinfo", "a") is in_a
    assert topology.virtualservice_for("podinfo", "b")["metadata"]["namespace"] == "b"
    assert topology.virtualservice_for("podinfo.a.svc.cluster.local", "c") is in_a
    assert topology.virtualservice_for("podinfo", "c") is None
    assert topology.virtualservice_for("app.example.com", "c") is in_a
