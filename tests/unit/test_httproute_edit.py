"""httproute_edit: rule selection, weights, mirror, A/B and sticky rules, user objects surviving, idempotency."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.routing.httproute_edit import (
    HTTPRouteEditError,
    ab_route_matches,
    convert_istio_match,
    edit_http_route,
    httproute_request_from_params,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.sticky import cookie_regex

NS = "prod"
PATH = {"type": "PathPrefix", "value": "/"}


def backend(name, weight=None, port=80):
    entry = {"group": "", "kind": "Service", "name": name, "port": port}
    if weight is not None:
        entry["weight"] = weight
    return entry


def user_route():
    """A user-owned HTTPRoute: parentRefs, hostnames, a health rule, a weighted rule with filters and timeouts."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "backend", "namespace": NS, "resourceVersion": "7", "labels": {"team": "payments"}},
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                            "namespace": "infra", "sectionName": "https"}],
            "hostnames": ["api.example.com"],
            "rules": [
                {"name": "health", "matches": [{"path": {"type": "Exact", "value": "/healthz"}}],
                 "backendRefs": [backend("backend-primary", 1)]},
                {"name": "api",
                 "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                 "filters": [{"type": "RequestHeaderModifier",
                              "requestHeaderModifier": {"set": [{"name": "x-team", "value": "payments"}]}}],
                 "timeouts": {"request": "10s"},
                 "backendRefs": [backend("backend-primary", 80), backend("backend-canary", 0),
                                 dict(backend("legacy", 20), filters=[
                                     {"type": "ResponseHeaderModifier",
                                      "responseHeaderModifier": {"remove": ["server"]}}])]},
            ],
        },
    }


def simple_route():
    route = user_route()
    route["spec"]["rules"][1]["backendRefs"].pop()
    route["spec"]["rules"][1]["backendRefs"][0]["weight"] = 100
    return route


def request(**params):
    params.setdefault("name", "backend")
    params.setdefault("namespace", NS)
    return httproute_request_from_params(params)


def apply_twice(route, **params):
    """Edit, then edit the result again: the second edit must change nothing."""
    edit = edit_http_route(route, request(**params))
    again = edit_http_route(edit.obj, request(**params))
    assert not again.changed, again.changes
    assert again.obj == edit.obj
    return edit


def rule(obj, name):
    return [r for r in obj["spec"]["rules"] if r.get("name") == name][0]


def test_weight_moves_primary_and_canary_and_keeps_other_backends():
    route = user_route()
    edit = apply_twice(route, weight=30)
    assert edit.changed
    assert edit.route == "api" and edit.route_index == 1
    assert edit.previous_weights == [{"name": "backend-primary", "port": 80, "weight": 80},
                                     {"name": "backend-canary", "port": 80, "weight": 0},
                                     {"name": "legacy", "port": 80, "weight": 20}]
    assert [w["weight"] for w in edit.weights] == [50, 30, 20]
    assert (edit.primary_weight, edit.canary_weight) == (50, 30)
    assert edit.changes == ["weight of backend-primary port 80: 80 -> 50", "weight of backend-canary port 80: 0 -> 30"]
    # Everything but the two weights is byte for byte the user's.
    expected = user_route()
    expected["spec"]["rules"][1]["backendRefs"][0]["weight"] = 50
    expected["spec"]["rules"][1]["backendRefs"][1]["weight"] = 30
    assert edit.obj == expected
    assert route == user_route()  # the input is not touched


def test_weight_that_does_not_fit_is_refused():
    with pytest.raises(HTTPRouteEditError, match="other backendRefs weigh 20"):
        edit_http_route(user_route(), request(weight=90))


def test_missing_weight_counts_as_the_api_default_of_one():
    route = simple_route()
    for entry in route["spec"]["rules"][1]["backendRefs"]:
        entry.pop("weight")
    edit = edit_http_route(route, request(weight=0))
    assert edit.previous_weights[0]["weight"] == 1
    assert [w["weight"] for w in edit.weights] == [100, 0]


def test_rule_selection_by_name_index_and_backends():
    route = user_route()
    assert edit_http_route(route, request(rule="api")).route == "api"
    unnamed = user_route()
    del unnamed["spec"]["rules"][1]["name"]
    edit = edit_http_route(unnamed, request())
    assert edit.route == 1
    assert edit_http_route(unnamed, request(rule="1", weight=10)).route == 1
    with pytest.raises(HTTPRouteEditError, match="no rule named 'nope'.*'health' -> \\[backend-primary port 80\\]"):
        edit_http_route(route, request(rule="nope"))
    twice = user_route()
    twice["spec"]["rules"].append(copy.deepcopy(twice["spec"]["rules"][1]))
    twice["spec"]["rules"][2]["name"] = "api2"
    with pytest.raises(HTTPRouteEditError, match="2 rules send traffic to backend-primary and backend-canary"):
        edit_http_route(twice, request())


def test_backends_are_matched_by_name_port_and_namespace():
    route = simple_route()
    with pytest.raises(HTTPRouteEditError, match="no rule sends traffic"):
        edit_http_route(route, request(canary={"name": "backend-canary", "port": 8080}))
    route["spec"]["rules"][1]["backendRefs"][1]["namespace"] = "other"
    with pytest.raises(HTTPRouteEditError, match="no rule sends traffic"):
        edit_http_route(route, request())
    route["spec"]["rules"][1]["backendRefs"][1]["namespace"] = NS
    assert edit_http_route(route, request(weight=5)).canary_weight == 5


def test_no_rules_is_explained():
    route = simple_route()
    route["spec"]["rules"] = []
    with pytest.raises(HTTPRouteEditError, match="has no rules"):
        edit_http_route(route, request())


def test_read_only_request_changes_nothing():
    edit = edit_http_route(user_route(), request())
    assert not edit.changed and edit.obj == user_route()
    assert edit.mirror == {"enabled": False, "name": None, "port": None, "percentage": None}
    assert edit.match["state"] == "absent" and edit.session_affinity["state"] == "absent"


@pytest.mark.parametrize("percentage, field", [(100, {}), (20, {"percent": 20}),
                                               (12.5, {"fraction": {"numerator": 12500, "denominator": 100000}})])
def test_mirror_added_and_removed(percentage, field):
    route = user_route()
    edit = apply_twice(route, mirror={"enabled": True, "percentage": percentage})
    filters = rule(edit.obj, "api")["filters"]
    assert filters[0] == user_route()["spec"]["rules"][1]["filters"][0]
    assert filters[1] == {"type": "RequestMirror", "requestMirror": dict(
        {"backendRef": {"group": "", "kind": "Service", "name": "backend-canary", "port": 80}}, **field)}
    assert edit.mirror == {"enabled": True, "name": "backend-canary", "port": 80, "percentage": float(percentage)}
    removed = apply_twice(edit.obj, mirror={"enabled": False})
    assert removed.obj == user_route()
    assert removed.changes == ["mirror to backend-canary removed from rule 'api'"]


def test_mirror_of_the_user_to_another_backend_survives():
    route = simple_route()
    user_mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "analytics", "port": 9000}}}
    route["spec"]["rules"][1]["filters"].append(user_mirror)
    edit = apply_twice(route, mirror={"enabled": True})
    removed = edit_http_route(edit.obj, request(mirror={"enabled": False}))
    assert removed.obj == route


def test_mirror_percentage_out_of_range_is_refused_before_any_call():
    with pytest.raises(HTTPRouteEditError, match="mirror.percentage must be from 0 to 100"):
        request(mirror={"enabled": True, "percentage": 101})


def test_istio_matches_convert_to_httproute_matches():
    assert convert_istio_match({"headers": {"x-canary": {"exact": "insider"}, "user-agent": {"regex": ".*Firefox.*"},
                                            "x-tier": {"prefix": "gold."}},
                                "queryParams": {"beta": {"exact": "1"}},
                                "uri": {"prefix": "/api"}, "method": {"exact": "get"}}) == {
        "path": {"type": "PathPrefix", "value": "/api"},
        "method": "GET",
        "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"},
                    {"name": "user-agent", "type": "RegularExpression", "value": ".*Firefox.*"},
                    {"name": "x-tier", "type": "RegularExpression", "value": "^gold\\..*"}],
        "queryParams": [{"name": "beta", "type": "Exact", "value": "1"}],
    }
    assert convert_istio_match({"uri": {"exact": "/a"}})["path"] == {"type": "Exact", "value": "/a"}
    assert convert_istio_match({"uri": {"regex": "/a.*"}})["path"] == {"type": "RegularExpression", "value": "/a.*"}
    assert convert_istio_match({"headers": {"x": {"exact": "1"}}})["path"] == PATH


@pytest.mark.parametrize("entry, reason", [
    ({"sourceLabels": {"app": "web"}}, "not the workload that sends them"),
    ({"withoutHeaders": {"x": {"exact": "1"}}}, "no negative header condition"),
    ({"ignoreUriCase": True}, "case-sensitive"),
    ({"authority": {"exact": "a"}}, "spec.hostnames"),
    ({"bogus": 1}, "unknown HTTPMatchRequest field 'bogus'"),
    ({"method": {"regex": "GET|POST"}}, "matches one method exactly"),
    ({"headers": {"x": {"suffix": "1"}}}, "not an Istio string match"),
    ({"headers": {"x": {"exact": ""}}}, "non-empty string"),
    ("x-canary", "must be Istio HTTPMatchRequest mappings"),
])
def test_matches_that_cannot_be_expressed_are_refused_with_the_reason(entry, reason):
    with pytest.raises(HTTPRouteEditError, match=reason):
        request(match={"state": "present", "headers": [entry]})


def test_bad_cookie_and_empty_match_are_refused():
    with pytest.raises(HTTPRouteEditError, match="name=value"):
        ab_route_matches(None, ["nocookie"])
    with pytest.raises(HTTPRouteEditError, match="at least one entry"):
        request(match={"state": "present"})


def test_ab_rule_ands_the_weighted_matches_and_copies_filters_and_timeouts():
    route = user_route()
    edit = apply_twice(route, weight=10, mirror={"enabled": True},
                       match={"headers": [{"headers": {"x-canary": {"exact": "insider"}}}], "cookie": ["canary=always"]})
    rules = edit.obj["spec"]["rules"]
    assert [r["name"] for r in rules] == ["health", "backend-canary-match", "api"]
    ab = rules[1]
    assert ab["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/api"},
         "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}]},
        {"path": {"type": "PathPrefix", "value": "/api"},
         "headers": [{"name": "Cookie", "type": "RegularExpression", "value": cookie_regex("canary=always")}]},
    ]
    assert ab["backendRefs"] == [{"group": "", "kind": "Service", "name": "backend-canary", "port": 80, "weight": 100}]
    # The user's filter comes along; our mirror to the canary does not.
    assert ab["filters"] == user_route()["spec"]["rules"][1]["filters"]
    assert ab["timeouts"] == {"request": "10s"}
    assert edit.match == {"state": "present", "route": "backend-canary-match", "index": 1, "match": ab["matches"]}
    assert edit.route_index == 2
    removed = apply_twice(edit.obj, match={"state": "absent"}, mirror={"enabled": False}, weight=0)
    expected = user_route()
    expected["spec"]["rules"][1]["backendRefs"][0]["weight"] = 80
    assert removed.obj == expected
    assert "A/B match rule 'backend-canary-match' removed" in removed.changes


def test_ab_conditions_win_a_header_clash_case_insensitively():
    route = simple_route()
    route["spec"]["rules"][1]["matches"] = [{"path": PATH, "headers": [{"name": "X-Canary", "type": "Exact",
                                                                         "value": "no"}]}]
    edit = edit_http_route(route, request(match={"headers": [{"headers": {"x-canary": {"exact": "yes"}}}]}))
    assert rule(edit.obj, "backend-canary-match")["matches"][0]["headers"] == [
        {"name": "x-canary", "type": "Exact", "value": "yes"}]


def test_a_user_rule_with_our_name_is_left_alone():
    route = simple_route()
    route["spec"]["rules"].insert(0, {"name": "backend-canary-match", "backendRefs": [backend("other", 1)]})
    with pytest.raises(HTTPRouteEditError, match="not ours, so it is left alone"):
        edit_http_route(route, request(match={"state": "absent"}))


def test_session_affinity_present_then_expiring_then_gone():
    route = user_route()
    affinity = {"state": "present", "cookie": "flagger-cookie=abc", "max_age": 600,
                "primary_cookie": "primary-cookie=s1", "primary_max_age": 60}
    edit = apply_twice(route, weight=20, session_affinity=affinity)
    rules = edit.obj["spec"]["rules"]
    assert [r["name"] for r in rules] == ["health", "backend-canary-sticky", "backend-primary-sticky", "api"]
    api = rules[3]
    assert api["backendRefs"][1]["filters"] == [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
        "add": [{"name": "Set-Cookie", "value": "flagger-cookie=abc; Max-Age=600"}]}}]
    assert api["backendRefs"][0]["filters"][0]["responseHeaderModifier"]["add"] == [
        {"name": "Set-Cookie", "value": "primary-cookie=s1; Max-Age=60"}]
    sticky = rules[1]
    assert sticky["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}, "headers": [
        {"name": "Cookie", "type": "RegularExpression", "value": cookie_regex("flagger-cookie=abc")}]}]
    assert sticky["backendRefs"] == [{"group": "", "kind": "Service", "name": "backend-canary", "port": 80,
                                      "weight": 100}]
    assert rules[2]["backendRefs"][0]["name"] == "backend-primary"
    assert edit.session_affinity == {
        "state": "present", "canary_route": "backend-canary-sticky", "canary_route_index": 1,
        "primary_route": "backend-primary-sticky", "primary_route_index": 2, "cookie": "flagger-cookie=abc",
        "primary_cookie": "primary-cookie=s1",
        "set_cookie": {"canary": "flagger-cookie=abc; Max-Age=600", "primary": "primary-cookie=s1; Max-Age=60"}}

    expiring = apply_twice(edit.obj, weight=0, session_affinity={"state": "absent"})
    rules = expiring.obj["spec"]["rules"]
    assert [r["name"] for r in rules] == ["health", "backend-canary-sticky", "api"]
    assert rules[1]["backendRefs"] == [{"group": "", "kind": "Service", "name": "backend-primary", "port": 80,
                                        "weight": 100, "filters": [{"type": "ResponseHeaderModifier",
                                        "responseHeaderModifier": {"add": [{"name": "Set-Cookie",
                                                                            "value": "flagger-cookie=abc; Max-Age=-1"}]}}]}]
    assert expiring.session_affinity["state"] == "expiring"
    gone = apply_twice(expiring.obj, session_affinity={"state": "absent", "expire": False})
    # weight 0 gave the primary its 80 back: the object is the user's again.
    assert gone.obj == user_route()
    assert gone.session_affinity["state"] == "absent"


def test_set_cookie_joins_a_user_response_modifier_and_leaves_it_as_it_was():
    route = user_route()
    route["spec"]["rules"][1]["backendRefs"][1]["filters"] = [
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}}]
    original = copy.deepcopy(route)
    edit = apply_twice(route, session_affinity={"cookie": "c=1"})
    modifier = rule(edit.obj, "api")["backendRefs"][1]["filters"][0]["responseHeaderModifier"]
    assert modifier == {"set": [{"name": "x-a", "value": "1"}],
                        "add": [{"name": "Set-Cookie", "value": "c=1; Max-Age=86400"}]}
    gone = edit_http_route(edit.obj, request(session_affinity={"state": "absent", "expire": False}))
    assert gone.obj == original


def test_a_set_cookie_of_the_user_is_never_overwritten():
    route = simple_route()
    route["spec"]["rules"][1]["backendRefs"][1]["filters"] = [
        {"type": "ResponseHeaderModifier",
         "responseHeaderModifier": {"add": [{"name": "set-cookie", "value": "theirs=1"}]}}]
    with pytest.raises(HTTPRouteEditError, match="already sets its own Set-Cookie"):
        edit_http_route(route, request(session_affinity={"cookie": "c=1"}))


def test_owned_rules_keep_their_order_ahead_of_the_weighted_rule():
    route = user_route()
    edit = apply_twice(route, match={"cookie": ["ab=1"]}, session_affinity={"cookie": "c=1"})
    names = [r["name"] for r in edit.obj["spec"]["rules"]]
    assert names == ["health", "backend-canary-match", "backend-canary-sticky", "api"]
    moved = copy.deepcopy(edit.obj)
    moved["spec"]["rules"].append(moved["spec"]["rules"].pop(1))
    fixed = edit_http_route(moved, request(match={"cookie": ["ab=1"]}, session_affinity={"cookie": "c=1"}))
    assert [r["name"] for r in fixed.obj["spec"]["rules"]] == names


def test_session_affinity_options_are_checked_before_any_call():
    with pytest.raises(HTTPRouteEditError, match="needs session_affinity.cookie"):
        request(session_affinity={"state": "present"})
    with pytest.raises(HTTPRouteEditError, match="needs session_affinity.primary_max_age"):
        request(session_affinity={"cookie": "a=1", "primary_cookie": "b=1"})


def test_request_defaults_and_names():
    req = request(primary={"port": 8080})
    assert req.primary.name == "backend-primary" and req.primary.port == 8080
    assert req.canary.name == "backend-canary" and req.canary.port is None
    assert req.owned_rule_order == ["backend-canary-match", "backend-canary-sticky", "backend-primary-sticky"]
    with pytest.raises(HTTPRouteEditError, match="from 0 to 100"):
        request(weight=101)
