"""The HTTPRoute a Gateway API canary routes through: generated as Flagger's Gateway API router does, or adopted."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import owner_of
from ansible_collections.progressive.delivery.plugins.module_utils.routing import gateway_objects as gw
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_objects import ServiceSpec

OPTION = {"name": "backend", "port": 80, "targetPort": 8080, "hosts": ["api.example.com"],
          "gatewayRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}]}


def route(option=None, version="v1"):
    option = dict(OPTION if option is None else option)
    return gw.build_http_route("prod", "backend", version, ServiceSpec.from_option(option, "backend"), option)


def served_like_the_api_server(generated):
    """The route as an API server returns it: defaults filled in, metadata added."""
    served = copy.deepcopy(generated)
    served["metadata"].update(resourceVersion="7", uid="u-1")
    for ref in served["spec"]["parentRefs"]:
        ref.setdefault("group", gw.GATEWAY_GROUP)
        ref.setdefault("kind", "Gateway")
    return served


def test_the_generated_route_is_flaggers():
    generated = route()
    assert generated["apiVersion"] == "gateway.networking.k8s.io/v1" and generated["kind"] == "HTTPRoute"
    assert generated["metadata"]["name"] == "backend" and owner_of(generated) == "prod/backend"
    assert generated["spec"] == {
        "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
        "hostnames": ["api.example.com"],
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"group": "", "kind": "Service", "name": "backend-primary", "port": 80, "weight": 100},
                            {"group": "", "kind": "Service", "name": "backend-canary", "port": 80, "weight": 0}],
        }],
    }


def test_match_timeout_headers_and_rewrite_become_rule_fields():
    option = dict(OPTION, timeout="15s", match=[
        {"uri": {"prefix": "/api"}, "method": {"exact": "GET"}, "headers": {"x-b": {"regex": "b.*"}, "x-a": {"exact": "1"}}},
        {"queryParams": {"beta": {"exact": "yes"}}},
    ], headers={"request": {"set": {"x-z": "1", "x-y": "2"}, "remove": ["x-debug"]}, "response": {"add": {"x-served": "gw"}}},
        rewrite={"uri": "/v2", "authority": "internal"})
    rule = route(option)["spec"]["rules"][0]
    assert rule["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET",
         "headers": [{"name": "x-a", "type": "Exact", "value": "1"}, {"name": "x-b", "type": "RegularExpression", "value": "b.*"}]},
        {"queryParams": [{"name": "beta", "type": "Exact", "value": "yes"}]},
    ]
    assert rule["timeouts"] == {"request": "15s"}
    assert rule["filters"] == [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": "x-y", "value": "2"}, {"name": "x-z", "value": "1"}], "remove": ["x-debug"]}},
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "x-served", "value": "gw"}]}},
        {"type": "URLRewrite", "urlRewrite": {"hostname": "internal",
                                              "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}},
    ]


def test_no_hosts_means_no_hostnames_and_the_apex_name_is_not_added():
    assert "hostnames" not in route(dict(OPTION, hosts=[]))["spec"]


@pytest.mark.parametrize("option, named", [
    (dict(OPTION, gatewayRefs=[]), "service.gatewayRefs is required"),
    (dict(OPTION, gatewayRefs=[{"namespace": "x"}]), "service.gatewayRefs[0] must be a mapping with a name"),
    (dict(OPTION, match=[{"authority": {"exact": "a"}}]), "service.match[0]: authority has no Gateway API equivalent"),
    (dict(OPTION, match=[{"headers": {"x": {"prefix": "a"}}}]), "service.match[0].headers.x: the Gateway API matches"),
    (dict(OPTION, rewrite={"uri": "/", "type": "Replace"}), "service.rewrite.type must be"),
])
def test_settings_an_httproute_cannot_carry_are_refused_by_name(option, named):
    with pytest.raises(gw.GatewayRouteError) as caught:
        route(option)
    assert named in str(caught.value)


def test_a_second_initialize_changes_nothing_even_with_server_defaults():
    generated = route(dict(OPTION, timeout="5s", headers={"request": {"add": {"x": "1"}}}))
    assert gw.http_route_update(served_like_the_api_server(generated), generated) is None


def test_the_update_keeps_weights_mirror_filters_and_other_rules():
    generated = route()
    served = served_like_the_api_server(generated)
    rule = served["spec"]["rules"][0]
    rule["backendRefs"][0]["weight"], rule["backendRefs"][1]["weight"] = 70, 30
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "backend-canary", "port": 80}}}
    rule["filters"] = [mirror]
    sticky = {"matches": [{"headers": [{"name": "Cookie", "type": "RegularExpression", "value": ".*canary.*"}]}],
              "backendRefs": [{"name": "backend-canary", "port": 80}]}
    served["spec"]["rules"].append(sticky)
    assert gw.http_route_update(served, generated) is None
    wanted = route(dict(OPTION, hosts=["api.example.com", "www.example.com"], timeout="3s"))
    updated = gw.http_route_update(served, wanted)
    assert updated["spec"]["hostnames"] == ["api.example.com", "www.example.com"]
    rule = updated["spec"]["rules"][0]
    assert [ref["weight"] for ref in rule["backendRefs"]] == [70, 30]
    assert rule["filters"] == [mirror] and rule["timeouts"] == {"request": "3s"}
    assert updated["spec"]["rules"][1] == sticky
    assert updated["metadata"]["resourceVersion"] == "7"


def test_an_owned_setting_removed_is_removed_from_the_route():
    served = served_like_the_api_server(route(dict(OPTION, timeout="5s", headers={"request": {"add": {"x": "1"}}})))
    updated = gw.http_route_update(served, route())
    assert "timeouts" not in updated["spec"]["rules"][0] and "filters" not in updated["spec"]["rules"][0]


def user_route(rules):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "shop", "namespace": "prod"},
            "spec": {"parentRefs": [{"name": "public"}], "rules": rules}}


BOTH = [{"name": "backend-primary", "port": 80, "weight": 100}, {"name": "backend-canary", "port": 80, "weight": 0}]


def test_an_adopted_route_needs_a_rule_with_both_services():
    named = user_route([{"name": "static", "backendRefs": [{"name": "static", "port": 80}]},
                        {"name": "api", "backendRefs": BOTH}])
    assert gw.adopted_rule(named, "prod", "shop", "backend-primary", "backend-canary", "api") == "api"
    assert gw.adopted_rule(named, "prod", "shop", "backend-primary", "backend-canary", None) == "api"
    unnamed = user_route([{"backendRefs": BOTH}])
    assert gw.adopted_rule(unnamed, "prod", "shop", "backend-primary", "backend-canary", None) is None


@pytest.mark.parametrize("found, rule, message", [
    (None, None, "HTTPRoute prod/shop to adopt was not found"),
    (user_route([{"name": "api", "backendRefs": BOTH}]), "web", "has no rule named 'web' (rules: api)"),
    (user_route([{"name": "api", "backendRefs": BOTH[:1]}]), "api",
     "rule 'api' has no backendRef to the Service backend-canary"),
    (user_route([{"backendRefs": [{"name": "other", "port": 80}]}]), None, "has no rule whose backendRefs are both"),
    (user_route([{"backendRefs": BOTH}, {"backendRefs": BOTH}]), None, "has 2 rules whose backendRefs are"),
])
def test_an_adopted_route_that_cannot_be_driven_is_refused_with_what_to_do(found, rule, message):
    with pytest.raises(gw.GatewayRouteError) as caught:
        gw.adopted_rule(found, "prod", "shop", "backend-primary", "backend-canary", rule)
    assert message in str(caught.value)


@pytest.mark.parametrize("served, wanted, picked", [
    (["v1", "v1beta1"], None, "v1"),
    (["v1", "v1beta1"], "v1beta1", "v1beta1"),
    (["v1beta1"], "v1", "v1beta1"),
    (["v1"], "v1beta1", "v1"),
    (["v1alpha2"], "v1", None),
])
def test_the_version_falls_back_to_what_the_cluster_serves(served, wanted, picked):
    assert gw.pick_version(served, wanted) == picked


def test_version_of_reads_only_gateway_api_versions():
    assert gw.version_of("gateway.networking.k8s.io/v1beta1") == "v1beta1"
    assert gw.version_of("networking.istio.io/v1") is None and gw.version_of(None) is None


def test_a_deleted_canary_sends_its_rule_to_the_apex_service_and_keeps_everything_else():
    mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "app-canary", "port": 9898}}}
    user_filter = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "1"}]}}
    route = {"spec": {"parentRefs": [{"name": "gw"}], "rules": [
        {"name": "canary", "filters": [user_filter, mirror],
         "backendRefs": [gw.backend_ref("app-primary", 9898, 70), gw.backend_ref("app-canary", 9898, 30)]},
        {"name": "legacy", "backendRefs": [{"name": "legacy", "port": 80}]}]}}
    before = copy.deepcopy(route)
    updated = gw.http_route_to_apex(route, "app", "app-primary", "app-canary", "canary")
    assert route == before
    assert updated["spec"]["rules"][0] == {"name": "canary", "filters": [user_filter],
                                           "backendRefs": [{"group": "", "kind": "Service", "name": "app", "port": 9898}]}
    assert updated["spec"]["rules"][1] == before["spec"]["rules"][1]
    assert updated["spec"]["parentRefs"] == before["spec"]["parentRefs"]
    assert gw.http_route_to_apex(updated, "app", "app-primary", "app-canary", "canary") is None


def test_other_backends_of_the_rule_keep_their_weights_and_ours_add_up():
    route = {"spec": {"rules": [{"backendRefs": [gw.backend_ref("app-primary", 80, 60), gw.backend_ref("app-canary", 80, 20),
                                                 gw.backend_ref("other", 80, 20)]}]}}
    refs = gw.http_route_to_apex(route, "app", "app-primary", "app-canary")["spec"]["rules"][0]["backendRefs"]
    assert [(ref["name"], ref["weight"]) for ref in refs] == [("app", 80), ("other", 20)]
