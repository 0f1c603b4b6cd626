"""Gateway API HTTPRoutes in the lab mesh: precedence, weights, filters, generated traffic and telemetry."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lab.mesh.dispatch import dispatch_httproute
from lab.mesh.engine import HTTPRouteTraffic, Mesh, traffic_sources
from lab.mesh.httproute import (ab_match_entries, example_request_shape, match_precedence, mirror_percent, path_matches,
                                route_parents, select_rule)
from lab.mesh.routing import Request
from lab.mesh.telemetry import INGRESS_GATEWAY
from lab.mesh.topology import Topology
from lab.store import Store

GATEWAY = "istio-ingress/public"
HOST = "app.example.com"
STICKY = "flagger-cookie=abc123"


def deployment(name, ready=1, annotations=None, namespace="test"):
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                                  "spec": {"containers": [{"name": "app", "image": "x"}]}}},
            "status": {"readyReplicas": ready}}


def service(name, namespace="test"):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"selector": {"app": name}}}


def backend(name, weight=None, filters=None, **extra):
    ref = {"name": name, "port": 9898, **extra}
    if weight is not None:
        ref["weight"] = weight
    if filters:
        ref["filters"] = filters
    return ref


def httproute(rules, name="podinfo", namespace="test", hostnames=(HOST,), parent=None, created=None, annotations=None):
    meta = {"name": name, "namespace": namespace, "annotations": annotations or {"lab.progressive.delivery/rps": "0"}}
    if created:
        meta["creationTimestamp"] = created
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
            "spec": {"parentRefs": [parent or {"name": "public", "namespace": "istio-ingress"}],
                     "hostnames": list(hostnames), "rules": rules}}


def topology(*routes, canary_ready=1, extra_deployments=(), extra_services=()):
    names = ("podinfo-primary", "podinfo-canary", "podinfo-mirror")
    return Topology(services=[service(n) for n in names] + list(extra_services),
                    deployments=[deployment("podinfo-primary", 2), deployment("podinfo-canary", canary_ready),
                                 deployment("podinfo-mirror")] + list(extra_deployments),
                    httproutes=list(routes))


def send(topo, request, count=1, seed=1):
    rng = random.Random(seed)
    routes = topo.httproutes_for(request.host, request.source_namespace, request.gateway)
    return [dispatch_httproute(topo, routes, request, rng) for _ in range(count)]


def through_gateway(path="/", headers=None, method="GET", host=HOST):
    return Request(host=host, path=path, method=method, headers=headers or {}, gateway=GATEWAY, source_namespace="test")


def served(outcomes):
    return Counter(o.upstream.workload.name if o.upstream.workload else o.code for o in outcomes)


# ------------------------------------------------------------------ precedence
@pytest.mark.parametrize("path,expected", [
    ("/api/v1", "exact"), ("/api/v1/x", "longer"), ("/api/v2", "prefix"), ("/apix", "root"), ("/", "root"),
])
def test_exact_path_beats_the_longest_prefix_which_beats_shorter_ones(path, expected):
    rules = [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [backend("root")]},
             {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": [backend("prefix")]},
             {"matches": [{"path": {"type": "PathPrefix", "value": "/api/v1"}}], "backendRefs": [backend("longer")]},
             {"matches": [{"path": {"type": "Exact", "value": "/api/v1"}}], "backendRefs": [backend("exact")]}]
    selection = select_rule([httproute(rules)], through_gateway(path))
    assert selection.rule["backendRefs"][0]["name"] == expected


def test_path_prefix_matches_whole_path_elements():
    assert path_matches({"type": "PathPrefix", "value": "/foo"}, "/foo/bar")
    assert path_matches({"type": "PathPrefix", "value": "/foo/"}, "/foo")
    assert not path_matches({"type": "PathPrefix", "value": "/foo"}, "/foobar")
    assert path_matches({"type": "RegularExpression", "value": "/v[0-9]+/.*"}, "/v2/items?x=1")


def test_method_then_header_count_then_query_count_break_ties_on_the_path():
    rules = [{"matches": [{"queryParams": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}]}],
              "backendRefs": [backend("queries")]},
             {"matches": [{"headers": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}]}],
              "backendRefs": [backend("two-headers")]},
             {"matches": [{"headers": [{"name": "x-a", "value": "1"}]}], "backendRefs": [backend("one-header")]},
             {"matches": [{"method": "POST"}], "backendRefs": [backend("method")]}]
    route = httproute(rules)

    def winner(**kwargs):
        return select_rule([route], through_gateway(**kwargs)).rule["backendRefs"][0]["name"]

    everything = {"path": "/?a=1&b=2", "headers": {"x-a": "1", "x-b": "2"}}
    assert winner(method="POST", **everything) == "method"
    assert winner(**everything) == "two-headers"
    assert winner(path="/?a=1&b=2", headers={"x-a": "1"}) == "one-header"
    assert winner(path="/?a=1&b=2") == "queries"
    assert select_rule([route], through_gateway()) is None


def test_ties_across_routes_go_to_the_oldest_then_by_name_and_within_a_route_to_the_first_rule():
    same = [{"backendRefs": [backend("first")]}, {"backendRefs": [backend("second")]}]
    old = httproute([{"backendRefs": [backend("old")]}], name="zz", created="2024-01-01T00:00:00Z")
    new = httproute([{"backendRefs": [backend("new")]}], name="aa", created="2025-01-01T00:00:00Z")
    assert select_rule([new, old], through_gateway()).route is old
    a, b = httproute(same, name="a", created="2025-01-01T00:00:00Z"), httproute(same, name="b", created="2025-01-01T00:00:00Z")
    chosen = select_rule([b, a], through_gateway())
    assert chosen.route is a and chosen.index == 0


def test_more_specific_match_in_a_newer_route_still_wins():
    old = httproute([{"backendRefs": [backend("podinfo-primary")]}], name="old", created="2024-01-01T00:00:00Z")
    new = httproute([{"matches": [{"headers": [{"name": "x-canary", "value": "insider"}]}],
                      "backendRefs": [backend("podinfo-canary")]}], name="new", created="2025-01-01T00:00:00Z")
    topo = topology(old, new)
    assert served(send(topo, through_gateway(headers={"x-canary": "insider"}), 20)) == {"podinfo-canary": 20}
    assert served(send(topo, through_gateway(), 20)) == {"podinfo-primary": 20}


def test_header_regex_matches_the_whole_value_like_envoy():
    rule = {"matches": [{"headers": [{"name": "Cookie", "type": "RegularExpression",
                                      "value": "^(.*?;)?(canary=always)(;.*)?$"}]}],
            "backendRefs": [backend("podinfo-canary")]}
    route = httproute([rule, {"backendRefs": [backend("podinfo-primary")]}])
    assert served(send(topology(route), through_gateway(headers={"cookie": "a=1;canary=always"}))) == {"podinfo-canary": 1}
    assert served(send(topology(route), through_gateway(headers={"cookie": "canary=alwaysx"}))) == {"podinfo-primary": 1}


def test_precedence_key_orders_exact_before_regex_before_prefix():
    exact = match_precedence({"path": {"type": "Exact", "value": "/a"}})
    regex = match_precedence({"path": {"type": "RegularExpression", "value": "/a.*"}})
    prefix = match_precedence({"path": {"type": "PathPrefix", "value": "/a/b/c/d"}})
    assert exact < regex < prefix


# ------------------------------------------------------------------ hosts and attachment
def test_hostnames_pick_the_routes_and_an_exact_hostname_beats_a_wildcard():
    wildcard = httproute([{"backendRefs": [backend("podinfo-primary")]}], name="wild", hostnames=("*.example.com",))
    exact = httproute([{"backendRefs": [backend("podinfo-canary")]}], name="exact")
    topo = topology(wildcard, exact)
    assert served(send(topo, through_gateway())) == {"podinfo-canary": 1}
    assert served(send(topo, through_gateway(host="other.example.com"))) == {"podinfo-primary": 1}
    outcome = send(topo, through_gateway(host="example.org"))[0]
    assert (outcome.code, outcome.upstream.flags) == (404, "NR")


def test_a_route_applies_only_through_its_parent_gateway():
    topo = topology(httproute([{"backendRefs": [backend("podinfo-primary")]}]))
    assert topo.httproutes_for(HOST, "test", "istio-ingress/other") == []
    assert topo.httproutes_for(HOST, "test", "mesh") == []
    assert len(topo.httproutes_for(HOST, "test", GATEWAY)) == 1


def test_a_service_parent_routes_mesh_traffic_for_that_service():
    route = httproute([{"backendRefs": [backend("podinfo-primary", 90), backend("podinfo-canary", 10)]}],
                      hostnames=(), parent={"group": "", "kind": "Service", "name": "podinfo", "port": 9898})
    topo = topology(route)
    assert route_parents(route) == ["mesh"]
    outcomes = send(topo, Request(host="podinfo", source_namespace="test"), 4000)
    assert 0.08 < served(outcomes)["podinfo-canary"] / 4000 < 0.12
    assert topo.httproutes_for("other", "test", "mesh") == []


# ------------------------------------------------------------------ backends
def test_weights_split_traffic_and_a_zero_weight_is_never_chosen():
    route = httproute([{"backendRefs": [backend("podinfo-primary", 3), backend("podinfo-canary", 1),
                                        backend("podinfo-mirror", 0)]}])
    counts = served(send(topology(route), through_gateway(), 8000))
    assert "podinfo-mirror" not in counts
    assert 0.23 < counts["podinfo-canary"] / 8000 < 0.27


def test_an_unset_weight_counts_as_one():
    route = httproute([{"backendRefs": [backend("podinfo-primary"), backend("podinfo-canary")]}])
    counts = served(send(topology(route), through_gateway(), 4000))
    assert 0.45 < counts["podinfo-canary"] / 4000 < 0.55


def test_backends_resolve_in_the_route_namespace_unless_the_ref_names_one():
    route = httproute([{"backendRefs": [backend("shared", namespace="other")]}])
    topo = topology(route, extra_services=[service("shared", "other")], extra_deployments=[deployment("shared", 1, namespace="other")])
    outcome = send(topo, through_gateway())[0]
    assert outcome.upstream.workload.namespace == "other"
    assert outcome.upstream.service_fqdn == "shared.other.svc.cluster.local"
    local = send(topology(httproute([{"backendRefs": [backend("shared")]}])), through_gateway())[0]
    assert (local.code, local.upstream.service_namespace) == (500, "test")


def test_no_ready_endpoints_answers_503_and_nowhere_to_send_answers_500():
    no_pods = topology(httproute([{"backendRefs": [backend("podinfo-canary")]}]), canary_ready=0)
    outcome = send(no_pods, through_gateway())[0]
    assert (outcome.code, outcome.upstream.flags, outcome.upstream.workload) == (503, "UH", None)
    all_zero = topology(httproute([{"backendRefs": [backend("podinfo-canary", 0)]}]))
    assert send(all_zero, through_gateway())[0].code == 500
    not_a_service = topology(httproute([{"backendRefs": [backend("podinfo-canary", group="example.com", kind="Bucket")]}]))
    assert send(not_a_service, through_gateway())[0].code == 500


def test_a_request_timeout_turns_a_slow_answer_into_504():
    slow = deployment("podinfo-canary", annotations={"lab.progressive.delivery/latency-ms": "500"})
    topo = Topology(services=[service("podinfo-canary")], deployments=[slow],
                    httproutes=[httproute([{"backendRefs": [backend("podinfo-canary")], "timeouts": {"request": "50ms"}}])])
    outcome = send(topo, through_gateway())[0]
    assert (outcome.code, outcome.upstream.flags, outcome.latency_ms) == (504, "UT", 50.0)


def test_a_redirect_is_answered_by_the_gateway():
    route = httproute([{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}])
    outcome = send(topology(route), through_gateway())[0]
    assert outcome.code == 301 and outcome.upstream.workload is None


# ------------------------------------------------------------------ filters
@pytest.mark.parametrize("mirror,expected", [({}, 100.0), ({"percent": 25}, 25.0),
                                             ({"fraction": {"numerator": 1, "denominator": 8}}, 12.5),
                                             ({"fraction": {"numerator": 30}}, 30.0)])
def test_mirror_share_from_percent_or_fraction(mirror, expected):
    assert mirror_percent(mirror) == expected


def test_mirrored_copies_reach_only_the_server_side():
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "podinfo-mirror", "port": 9898},
                                                         "fraction": {"numerator": 1, "denominator": 4}}}
    route = httproute([{"filters": [mirror], "backendRefs": [backend("podinfo-primary")]}])
    outcomes = send(topology(route), through_gateway(), 8000)
    assert served(outcomes) == {"podinfo-primary": 8000}
    copies = Counter(m.workload.name for o in outcomes for m in o.mirrors)
    assert 0.22 < copies["podinfo-mirror"] / 8000 < 0.28


def test_request_header_modifier_rewrites_after_the_match_and_does_not_change_the_rule():
    modifier = {"type": "RequestHeaderModifier",
                "requestHeaderModifier": {"set": [{"name": "X-Version", "value": "canary"}],
                                          "add": [{"name": "x-added", "value": "1"}], "remove": ["x-drop"]}}
    rules = [{"matches": [{"headers": [{"name": "x-version", "value": "canary"}]}],
              "backendRefs": [backend("podinfo-canary")]},
             {"filters": [modifier], "backendRefs": [backend("podinfo-primary")]}]
    outcome = send(topology(httproute(rules)), through_gateway(headers={"x-version": "old", "x-drop": "y", "x-keep": "k"}))[0]
    assert outcome.upstream.workload.name == "podinfo-primary"
    assert sorted(outcome.request_headers) == [("x-added", "1"), ("x-keep", "k"), ("x-version", "canary")]


def test_response_header_modifiers_backend_first_then_rule_so_the_rule_set_wins():
    def modifier(**operations):
        return {"type": "ResponseHeaderModifier", "responseHeaderModifier": operations}

    rule = {"filters": [modifier(set=[{"name": "x-served-by", "value": "rule"}])],
            "backendRefs": [backend("podinfo-primary", filters=[modifier(set=[{"name": "x-served-by", "value": "backend"}],
                                                                          add=[{"name": "x-backend", "value": "p"}])])]}
    outcome = send(topology(httproute([rule])), through_gateway())[0]
    assert sorted(outcome.response_headers) == [("x-backend", "p"), ("x-served-by", "rule")]


def test_proxy_answers_carry_no_response_headers():
    rule = {"filters": [{"type": "ResponseHeaderModifier",
                         "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": STICKY}]}}],
            "backendRefs": [backend("podinfo-canary")]}
    outcome = send(topology(httproute([rule]), canary_ready=0), through_gateway())[0]
    assert outcome.code == 503 and outcome.response_headers == ()


def session_affinity_route(canary_weight):
    """Flagger's session-affinity shape: a sticky rule on the cookie, and a weighted rule whose canary sets it."""
    set_cookie = {"type": "ResponseHeaderModifier",
                  "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": f"{STICKY}; Max-Age=86400"}]}}
    return httproute([
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                      "headers": [{"name": "Cookie", "type": "RegularExpression", "value": f".*{STICKY}.*"}]}],
         "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [backend("podinfo-primary", 100 - canary_weight),
                         backend("podinfo-canary", canary_weight, filters=[set_cookie])]},
    ], annotations={"lab.progressive.delivery/rps": "0"})


def test_cookies_from_response_header_modifier_reach_the_jar_and_keep_the_user_on_the_canary():
    mesh = Mesh(Store(), seed=3)
    store = mesh._store  # pylint: disable=protected-access
    for name in ("podinfo-primary", "podinfo-canary"):
        store.create("services", service(name))
        store.create("deployments", deployment(name))
    store.create("httproutes", session_affinity_route(50))
    for _ in range(20):
        result = mesh.send(HOST, "test", count=30, gateway=GATEWAY, cookies={})
        if result["cookies"]:
            break
    assert result["cookies"] == {"flagger-cookie": "abc123"}
    assert result["httproutes"] == ["test/podinfo"]
    # Once the cookie is set, the sticky rule (one header match more) wins every time.
    sticky = mesh.send(HOST, "test", count=200, gateway=GATEWAY, cookies=result["cookies"])
    assert sticky["workloads"] == {"podinfo-canary": 200} and sticky["switches"] == 0
    assert mesh.evidence.value("lab_set_cookie", cookie="flagger-cookie", action="set") >= 1


# ------------------------------------------------------------------ generated traffic and telemetry
def test_the_sticky_rule_is_not_an_ab_rule_but_a_header_rule_is():
    assert ab_match_entries(session_affinity_route(10)) == []
    ab = httproute([{"matches": [{"path": {"type": "PathPrefix", "value": "/"}, "method": "POST",
                                  "headers": [{"name": "x-canary", "value": "insider"}],
                                  "queryParams": [{"name": "beta", "type": "RegularExpression", "value": "on|yes"}]}],
                     "backendRefs": [backend("podinfo-canary")]},
                    {"backendRefs": [backend("podinfo-primary")]}])
    shape = example_request_shape(ab)
    assert (dict(shape.headers), shape.path, shape.method) == ({"x-canary": "insider"}, "/?beta=on", "POST")


def test_traffic_sources_follow_parents_hostnames_and_the_rps_annotation():
    listeners = {"metadata": {"name": "public", "namespace": "istio-ingress"},
                 "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": 80, "hostname": "*.example.org"}]}}
    two_parents = httproute([{"backendRefs": [backend("podinfo-primary")]}], hostnames=(),
                            annotations={"lab.progressive.delivery/rps": "40"})
    two_parents["spec"]["parentRefs"].append({"name": "internal", "namespace": "istio-ingress", "sectionName": "http"})
    idle = httproute([{"backendRefs": [backend("podinfo-primary")]}], name="idle")
    topo = Topology(httproutes=[two_parents, idle], gateways=[listeners])
    sources = traffic_sources(topo)
    assert [(s.gateway, s.rps, s.hosts, s.source) for s in sources] == [
        (GATEWAY, 20.0, ["www.example.org"], INGRESS_GATEWAY), ("istio-ingress/internal", 20.0, ["podinfo"], INGRESS_GATEWAY)]
    assert all(isinstance(s, HTTPRouteTraffic) for s in sources)


def test_generated_traffic_is_shaped_for_the_ab_rule_and_counted_in_istio_and_lab_series():
    route = httproute([{"matches": [{"headers": [{"name": "x-canary", "value": "insider"}]}],
                        "backendRefs": [backend("podinfo-canary")],
                        "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "podinfo-mirror",
                                                                                               "port": 9898}}}]},
                       {"backendRefs": [backend("podinfo-primary")]}],
                      annotations={"lab.progressive.delivery/rps": "1000", "lab.progressive.delivery/match-share": "0.3",
                                   "lab.progressive.delivery/sessions": "0"})
    store = Store()
    for name in ("podinfo-primary", "podinfo-canary", "podinfo-mirror"):
        store.create("services", service(name))
        store.create("deployments", deployment(name))
    store.create("httproutes", route)
    mesh = Mesh(store, seed=5)
    topo = mesh.topology()
    mesh._generate(topo, mesh._sources, 4.0, random.Random(7))  # pylint: disable=protected-access
    canary = mesh.evidence.value("lab_requests", destination_workload="podinfo-canary", matched="true")
    primary = mesh.evidence.value("lab_requests", destination_workload="podinfo-primary", matched="false")
    assert mesh.evidence.value("lab_requests", destination_workload="podinfo-primary", matched="true") == 0
    assert 0.26 < canary / (canary + primary) < 0.34
    assert mesh.evidence.value("lab_mirrored_requests", destination_workload="podinfo-mirror", matched="true") == canary
    samples = {}
    for family in mesh.telemetry.collect():
        for sample in family.samples:
            if sample.name == "istio_requests_total" and sample.labels["reporter"] == "source":
                samples[sample.labels["destination_workload"]] = (sample.labels["source_workload"], sample.value)
    assert samples["podinfo-canary"] == ("istio-ingressgateway", canary)
    assert samples["podinfo-primary"] == ("istio-ingressgateway", primary)
    assert "podinfo-mirror" not in samples  # a mirror's copies are reported by the destination only
    assert mesh.describe()["traffic"][0]["httproute"] == "test/podinfo"


def test_a_virtualservice_for_the_host_wins_over_httproutes_in_send():
    store = Store()
    for name in ("podinfo-primary", "podinfo-canary"):
        store.create("services", service(name))
        store.create("deployments", deployment(name))
    store.create("httproutes", httproute([{"backendRefs": [backend("podinfo-canary")]}]))
    mesh = Mesh(store, seed=1)
    assert mesh.send(HOST, "test", 10, gateway=GATEWAY)["workloads"] == {"podinfo-canary": 10}
    store.create("virtualservices", {"metadata": {"name": "vs", "namespace": "test"},
                                     "spec": {"hosts": [HOST], "gateways": [GATEWAY],
                                              "http": [{"route": [{"destination": {"host": "podinfo-primary"}}]}]}})
    result = mesh.send(HOST, "test", 10, gateway=GATEWAY)
    assert result["workloads"] == {"podinfo-primary": 10} and result["httproutes"] == []


def envoy_samples(mesh):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in mesh.envoy.collect() for s in family.samples}


def test_gateway_traffic_is_counted_in_the_gateway_envoys_cluster_stats_and_mesh_traffic_is_not():
    # Flagger's Gateway API guide selects the canary with envoy_cluster_name=~"<ns>_<service>_[0-9a-zA-Z-]+".
    store = Store()
    for name in ("podinfo-primary", "podinfo-canary"):
        store.create("services", service(name))
    store.create("deployments", deployment("podinfo-primary"))
    store.create("deployments", deployment("podinfo-canary", annotations={"lab.progressive.delivery/error-rate": "1"}))
    store.create("httproutes", httproute([{"backendRefs": [backend("podinfo-primary", 50), backend("podinfo-canary", 50)]}]))
    mesh = Mesh(store, seed=3)
    mesh.send(HOST, "test", 400, gateway=GATEWAY)
    samples = envoy_samples(mesh)

    def requests(cluster):
        return {dict(labels)["envoy_response_code"]: value for (name, labels), value in samples.items()
                if name == "envoy_cluster_upstream_rq" and dict(labels)["envoy_cluster_name"] == cluster}
    primary, canary = requests("test_podinfo-primary_9898"), requests("test_podinfo-canary_9898")
    assert set(primary) == {"200"} and canary and all(code.startswith("5") for code in canary)
    assert sum(primary.values()) + sum(canary.values()) == 400 and 150 < sum(canary.values()) < 250
    timed = samples[("envoy_cluster_upstream_rq_time_count", (("envoy_cluster_name", "test_podinfo-canary_9898"),))]
    assert timed == sum(canary.values())
    before = dict(samples)
    mesh.send("podinfo-canary.test", "test", 50)
    assert envoy_samples(mesh) == before
    assert mesh.envoy.forget_namespaces({"test"}) == len(primary) + len(canary) + 2
    assert envoy_samples(mesh) == {}
