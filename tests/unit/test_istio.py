"""Pure route edits of plugins/module_utils/routing/istio_routes.py: selection, weights, mirror, match, validation."""

from __future__ import annotations

import copy
import json
import re

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import (
    DestinationRef,
    RouteError,
    RouteRequest,
    ab_match_requests,
    cookie_match,
    edit_virtual_service,
    host_key,
    merge_matches,
    request_from_params,
    route_weights,
    select_route,
    validate_weight,
    weights_explicit,
    weights_for_canary,
)

NS = "prod"
PRIMARY = DestinationRef("backend-primary")
CANARY = DestinationRef("backend-canary")


def dest(host, weight=None, subset=None, port=None):
    entry = {"destination": {"host": host}}
    if subset:
        entry["destination"]["subset"] = subset
    if port:
        entry["destination"]["port"] = {"number": port}
    if weight is not None:
        entry["weight"] = weight
    return entry


def user_owned_vs():
    """A VirtualService a team wrote by hand: several routes, hosts, retries, timeouts, headers, an extra destination."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "backend", "namespace": NS, "resourceVersion": "7",
                     "labels": {"team": "payments"}, "annotations": {"owner": "payments@example.com"}},
        "spec": {
            "hosts": ["api.example.com", "backend"],
            "gateways": ["public-gateway.istio-system.svc.cluster.local", "mesh"],
            "http": [
                {"name": "health", "match": [{"uri": {"exact": "/healthz"}}],
                 "route": [dest("backend-primary")], "timeout": "1s"},
                {"name": "api", "match": [{"uri": {"prefix": "/api"}}],
                 "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset"},
                 "timeout": "10s",
                 "headers": {"request": {"set": {"x-team": "payments"}}},
                 "route": [dest("backend-primary.prod.svc.cluster.local", 80, port=8080),
                           dest("backend-canary", 0, port=8080),
                           dest("legacy.prod.svc.cluster.local", 20)]},
                {"name": "default", "route": [dest("static-site", 100)], "corsPolicy": {"allowOrigins": [{"exact": "*"}]}},
            ],
            "tcp": [{"route": [{"destination": {"host": "db"}}]}],
        },
    }


def flagger_vs():
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "backend", "namespace": NS, "resourceVersion": "1"},
        "spec": {"hosts": ["backend"], "http": [{"route": [dest("backend-primary", 100), dest("backend-canary", 0)]}]},
    }


def everything_but(obj, route_index):
    """JSON of the object with the weights of one route blanked: what must survive an edit byte for byte."""
    obj = copy.deepcopy(obj)
    for entry in obj["spec"]["http"][route_index]["route"]:
        entry.pop("weight", None)
    return json.dumps(obj, sort_keys=False)


# --- hosts and destinations ---------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["backend", "backend.prod", "backend.prod.svc", "backend.prod.svc.cluster.local",
                                  "backend.prod.svc.corp.internal", "Backend.Prod.svc.cluster.local."])
def test_short_and_fqdn_hosts_are_one_service(host):
    assert host_key(host, NS) == "backend.prod.svc"


def test_hosts_in_other_namespaces_and_outside_the_cluster_differ():
    assert host_key("backend.staging", NS) != host_key("backend", NS)
    assert host_key("backend.prod.svc.cluster.local", "staging") == "backend.prod.svc"
    assert host_key("backend", "staging") == "backend.staging.svc"
    assert host_key("api.example.com", NS) == "api.example.com"


# --- route selection ----------------------------------------------------------------------------------------

def test_default_route_is_the_one_with_primary_and_canary():
    http = user_owned_vs()["spec"]["http"]
    assert select_route(http, NS, None, [PRIMARY, CANARY]) == 1


def test_route_by_name():
    http = user_owned_vs()["spec"]["http"]
    assert select_route(http, NS, "default", [PRIMARY, CANARY]) == 2


def test_missing_route_name_lists_the_routes():
    http = user_owned_vs()["spec"]["http"]
    with pytest.raises(RouteError) as caught:
        select_route(http, NS, "nope", [PRIMARY, CANARY])
    message = str(caught.value)
    assert "no http route named 'nope'" in message
    for name in ("'health'", "'api'", "'default'", "static-site"):
        assert name in message


def test_no_route_with_both_destinations_is_an_error():
    http = user_owned_vs()["spec"]["http"]
    with pytest.raises(RouteError, match="no http route sends traffic to other-primary and backend-canary"):
        select_route(http, NS, None, [DestinationRef("other-primary"), CANARY])


def test_several_candidate_routes_are_ambiguous():
    http = user_owned_vs()["spec"]["http"]
    http.append({"name": "api-v2", "route": [dest("backend-primary", 100), dest("backend-canary", 0)]})
    with pytest.raises(RouteError) as caught:
        select_route(http, NS, None, [PRIMARY, CANARY])
    assert "2 http routes send traffic" in str(caught.value)
    assert "'api', 'api-v2'" in str(caught.value)


def test_duplicate_route_names_are_refused():
    http = [{"name": "a", "route": [dest("x")]}, {"name": "a", "route": [dest("y")]}]
    with pytest.raises(RouteError, match="2 http routes are named 'a'"):
        select_route(http, NS, "a", [])


def test_unnamed_route_by_index():
    http = [{"route": [dest("x", 100)]}, {"name": "b", "route": [dest("y", 100)]}]
    assert select_route(http, NS, "0", []) == 0
    with pytest.raises(RouteError, match="no http route named '1'"):
        select_route(http, NS, "1", [])
    with pytest.raises(RouteError, match="no http route named '5'"):
        select_route(http, NS, "5", [])


def test_unnamed_routes_are_listed_by_index():
    http = [{"route": [dest("x", 100)]}]
    with pytest.raises(RouteError, match=r"#0 \(unnamed\) -> \[x\]"):
        select_route(http, NS, None, [PRIMARY, CANARY])


# --- weight arithmetic and validation -----------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 1, 50, 100, 10.0, "30"])
def test_valid_weights(value):
    assert validate_weight(value) == int(float(value))


@pytest.mark.parametrize("value", [-1, 101, 10.5, True, None, "ten", [10]])
def test_invalid_weights(value):
    with pytest.raises(RouteError):
        validate_weight(value)


def test_canary_weight_gives_primary_the_rest():
    route = {"route": [dest("backend-primary", 100), dest("backend-canary", 0)]}
    assert weights_for_canary(route, 0, 1, 35, "r") == {0: 65, 1: 35}


def test_canary_weight_keeps_other_destinations_share():
    route = user_owned_vs()["spec"]["http"][1]
    assert weights_for_canary(route, 0, 1, 30, "api") == {0: 50, 1: 30}


def test_canary_weight_larger_than_the_free_share_is_refused():
    route = user_owned_vs()["spec"]["http"][1]
    with pytest.raises(RouteError, match="canary weight 90 does not fit route 'api': its other destinations take 20%"):
        weights_for_canary(route, 0, 1, 90, "api")


def test_explicit_weights_must_total_100_counting_unlisted_destinations():
    route = user_owned_vs()["spec"]["http"][1]
    assert weights_explicit(route, [(0, 40), (1, 40)], "api") == {0: 40, 1: 40}
    with pytest.raises(RouteError) as caught:
        weights_explicit(route, [(0, 50), (1, 50)], "api")
    assert "would total 120" in str(caught.value)
    assert "legacy.prod.svc.cluster.local=20" in str(caught.value)


def test_explicit_weights_cannot_name_a_destination_twice():
    route = {"route": [dest("a", 50), dest("b", 50)]}
    with pytest.raises(RouteError, match="twice"):
        weights_explicit(route, [(0, 50), (0, 50)], "r")


def test_effective_weights_of_unweighted_destinations():
    assert route_weights({"route": [dest("a")]})[0]["weight"] == 100
    assert [w["weight"] for w in route_weights({"route": [dest("a", 100), dest("b")]})] == [100, 0]


# --- the whole edit -----------------------------------------------------------------------------------------

def request(**kwargs):
    kwargs.setdefault("name", "backend")
    kwargs.setdefault("namespace", NS)
    kwargs.setdefault("primary", PRIMARY)
    kwargs.setdefault("canary", CANARY)
    return RouteRequest(**kwargs)


def test_weight_change_touches_only_the_selected_route_weights():
    vs = user_owned_vs()
    edit = edit_virtual_service(vs, request(weight=25))
    assert edit.changed
    assert edit.route == "api" and edit.route_index == 1
    assert [w["weight"] for w in edit.previous_weights] == [80, 0, 20]
    assert [w["weight"] for w in edit.weights] == [55, 25, 20]
    assert edit.primary_weight == 55 and edit.canary_weight == 25
    assert edit.weights[0] == {"host": "backend-primary.prod.svc.cluster.local", "subset": None, "port": 8080,
                               "weight": 55}
    assert everything_but(edit.obj, 1) == everything_but(vs, 1)
    assert vs == user_owned_vs(), "the input object must not be modified"
    assert edit.changes == ["weight of backend-primary.prod.svc.cluster.local port 8080: 80 -> 55",
                            "weight of backend-canary port 8080: 0 -> 25"]


def test_same_weight_is_no_change():
    edit = edit_virtual_service(user_owned_vs(), request(weight=0))
    assert not edit.changed and edit.changes == []
    assert edit.obj == user_owned_vs()


def test_read_only_request_reports_weights():
    edit = edit_virtual_service(flagger_vs(), request())
    assert not edit.changed
    assert edit.route == 0
    assert (edit.primary_weight, edit.canary_weight) == (100, 0)
    assert edit.mirror == {"enabled": False, "host": None, "subset": None, "port": None, "percentage": None}
    assert edit.match["state"] == "absent"


def test_missing_destination_with_named_route():
    vs = user_owned_vs()
    with pytest.raises(RouteError) as caught:
        edit_virtual_service(vs, request(route_name="default", weight=10))
    assert "VirtualService prod/backend" in str(caught.value)
    assert "destination backend-primary is not in route 'default'" in str(caught.value)
    assert "static-site" in str(caught.value)


def test_subset_destinations_need_the_subset_to_be_unique():
    vs = flagger_vs()
    vs["spec"]["http"][0]["route"] = [dest("reviews", 100, subset="v1"), dest("reviews", 0, subset="v2")]
    with pytest.raises(RouteError, match="matches 2 destinations"):
        edit_virtual_service(vs, request(primary=DestinationRef("reviews"), canary=DestinationRef("reviews", "v2"),
                                         weight=10))
    edit = edit_virtual_service(vs, request(primary=DestinationRef("reviews", "v1"),
                                            canary=DestinationRef("reviews", "v2"), weight=10))
    assert [w["weight"] for w in edit.weights] == [90, 10]


def test_explicit_weights_select_the_route_holding_them():
    vs = user_owned_vs()
    edit = edit_virtual_service(vs, request(weights=[(DestinationRef("backend-primary"), 30),
                                                     (DestinationRef("backend-canary"), 30),
                                                     (DestinationRef("legacy"), 40)]))
    assert edit.route == "api"
    assert [w["weight"] for w in edit.weights] == [30, 30, 40]
    assert everything_but(edit.obj, 1) == everything_but(vs, 1)


def test_explicit_weights_not_totalling_100_write_nothing():
    with pytest.raises(RouteError, match="must total 100, they would total 90"):
        edit_virtual_service(flagger_vs(), request(weights=[(PRIMARY, 50), (CANARY, 40)]))


def test_empty_http_is_an_error():
    vs = flagger_vs()
    vs["spec"]["http"] = []
    with pytest.raises(RouteError, match="has no http routes"):
        edit_virtual_service(vs, request(weight=10))


# --- mirror -------------------------------------------------------------------------------------------------

def test_mirror_defaults_to_the_canary_and_is_idempotent():
    edit = edit_virtual_service(flagger_vs(), request(mirror_enabled=True, mirror_percentage=50.0))
    route = edit.obj["spec"]["http"][0]
    assert route["mirror"] == {"host": "backend-canary"}
    assert route["mirrorPercentage"] == {"value": 50.0}
    assert edit.mirror == {"enabled": True, "host": "backend-canary", "subset": None, "port": None, "percentage": 50.0}
    again = edit_virtual_service(edit.obj, request(mirror_enabled=True, mirror_percentage=50))
    assert not again.changed


def test_mirror_percentage_change_only_updates_the_percentage():
    first = edit_virtual_service(flagger_vs(), request(mirror_enabled=True, mirror_percentage=100.0))
    second = edit_virtual_service(first.obj, request(mirror_enabled=True, mirror_percentage=10.0))
    assert second.changes == ["mirror percentage: 100.0 -> 10.0"]


def test_disabling_removes_only_our_mirror():
    vs = flagger_vs()
    vs["spec"]["http"][0]["mirror"] = {"host": "backend-canary.prod.svc.cluster.local"}
    edit = edit_virtual_service(vs, request(mirror_enabled=False))
    assert "mirror" not in edit.obj["spec"]["http"][0]
    assert edit.changes == ["mirror to backend-canary removed"]

    vs["spec"]["http"][0]["mirror"] = {"host": "shadow-recorder"}
    vs["spec"]["http"][0]["mirrorPercentage"] = {"value": 5.0}
    edit = edit_virtual_service(vs, request(mirror_enabled=False))
    assert not edit.changed
    assert edit.obj["spec"]["http"][0]["mirror"] == {"host": "shadow-recorder"}


def test_mirror_to_an_explicit_destination():
    edit = edit_virtual_service(flagger_vs(), request(mirror_enabled=True,
                                                      mirror_target=DestinationRef("backend-green", None, 80)))
    assert edit.obj["spec"]["http"][0]["mirror"] == {"host": "backend-green", "port": {"number": 80}}


# --- match (A/B) ----------------------------------------------------------------------------------------------

def test_cookie_match_is_anchored_and_escaped():
    regex = cookie_match("canary=always.on")["headers"]["cookie"]["regex"]
    assert regex == r"^(.*?;\s*)?(canary=always\.on)(;.*)?$"


@pytest.mark.parametrize("header, matches", [
    ("canary=always", True),
    ("a=1; canary=always", True),  # browsers join cookies with "; "
    ("a=1;canary=always;b=2", True),
    ("a=1; canary=always; b=2", True),
    ("xcanary=always", False),
    ("canary=alwaysX", False),
    ("a=1; canary=never", False),
])
def test_cookie_match_finds_the_cookie_wherever_the_client_puts_it(header, matches):
    # Istio's regex is RE2 with full-match semantics; these patterns mean the same in Python's re.
    regex = cookie_match("canary=always")["headers"]["cookie"]["regex"]
    assert bool(re.fullmatch(regex, header)) is matches


def test_ab_match_requests_need_entries():
    with pytest.raises(RouteError, match="at least one entry"):
        ab_match_requests([], None)
    with pytest.raises(RouteError, match="name=value"):
        ab_match_requests(None, ["justaname"])


def test_match_conditions_are_anded_with_the_route_own():
    merged = merge_matches([{"uri": {"prefix": "/api"}, "headers": {"x-tenant": {"exact": "a"}}}, {"port": 8080}],
                           [{"headers": {"x-canary": {"exact": "insider"}}}, {"queryParams": {"canary": {"exact": "1"}}}])
    assert merged == [
        {"uri": {"prefix": "/api"}, "headers": {"x-tenant": {"exact": "a"}, "x-canary": {"exact": "insider"}}},
        {"uri": {"prefix": "/api"}, "headers": {"x-tenant": {"exact": "a"}}, "queryParams": {"canary": {"exact": "1"}}},
        {"port": 8080, "headers": {"x-canary": {"exact": "insider"}}},
        {"port": 8080, "queryParams": {"canary": {"exact": "1"}}},
    ]


def test_match_route_is_added_ahead_with_the_route_behaviour():
    vs = user_owned_vs()
    ab = [{"headers": {"x-canary": {"exact": "insider"}}}]
    edit = edit_virtual_service(vs, request(match_state="present", match_headers=ab, match_cookies=["canary=always"]))
    http = edit.obj["spec"]["http"]
    assert [r.get("name") for r in http] == ["health", "backend-canary-match", "api", "default"]
    owned = http[1]
    assert owned["route"] == [{"destination": {"host": "backend-canary", "port": {"number": 8080}}, "weight": 100}]
    assert owned["retries"] == vs["spec"]["http"][1]["retries"]
    assert owned["timeout"] == "10s" and owned["headers"] == vs["spec"]["http"][1]["headers"]
    assert owned["match"] == [
        {"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "insider"}}},
        {"uri": {"prefix": "/api"}, "headers": {"cookie": {"regex": "^(.*?;\\s*)?(canary=always)(;.*)?$"}}},
    ]
    assert edit.route_index == 2 and edit.route == "api"
    assert edit.match == {"state": "present", "route": "backend-canary-match", "index": 1, "match": owned["match"]}
    assert edit.obj["spec"]["http"][2] == vs["spec"]["http"][1]

    again = edit_virtual_service(edit.obj, request(match_state="present", match_headers=ab,
                                                   match_cookies=["canary=always"]))
    assert not again.changed

    # The weighted route is still found by default while our match route holds only the canary.
    weighted = edit_virtual_service(edit.obj, request(weight=10))
    assert weighted.route == "api"

    removed = edit_virtual_service(edit.obj, request(match_state="absent"))
    assert removed.changes == ["match route 'backend-canary-match' removed"]
    assert removed.obj == vs


def test_match_route_follows_a_changed_condition():
    first = edit_virtual_service(flagger_vs(), request(match_state="present", match_cookies=["a=1"]))
    second = edit_virtual_service(first.obj, request(match_state="present", match_cookies=["a=2"]))
    assert second.changes == ["match route 'backend-canary-match' updated"]
    assert len(second.obj["spec"]["http"]) == 2


def test_match_route_behind_the_weighted_route_is_moved_ahead():
    vs = flagger_vs()
    vs["spec"]["http"].append({"name": "backend-canary-match", "match": [{"headers": {"cookie": {"regex": "x"}}}],
                               "route": [dest("backend-canary", 100)]})
    edit = edit_virtual_service(vs, request(match_state="present", match_headers=[{"headers": {"cookie": {"regex": "x"}}}]))
    assert [r.get("name") for r in edit.obj["spec"]["http"]] == ["backend-canary-match", None]
    assert "moved ahead" in edit.changes[-1]


def test_absent_match_without_a_match_route_is_no_change_and_other_routes_survive():
    vs = user_owned_vs()
    vs["spec"]["http"].insert(0, {"name": "someone-else-canary-match", "route": [dest("backend-canary", 100)]})
    edit = edit_virtual_service(vs, request(match_state="absent"))
    assert not edit.changed
    assert edit.obj == vs


# --- module parameters ----------------------------------------------------------------------------------------

def params(**kwargs):
    base = {"name": "backend", "namespace": NS, "route": None, "primary": None, "canary": None, "weight": None,
            "weights": None, "mirror": None, "match": None}
    base.update(kwargs)
    return base


def test_params_defaults_follow_flagger_naming():
    req = request_from_params(params(weight=10))
    assert req.primary == DestinationRef("backend-primary") and req.canary == DestinationRef("backend-canary")
    assert req.weight == 10 and req.mirror_enabled is None and req.match_state is None


def test_params_destinations_and_mirror():
    req = request_from_params(params(canary={"host": "backend", "subset": "v2", "port": 80},
                                     mirror={"enabled": True, "percentage": 20.0, "host": None, "subset": None,
                                             "port": None}))
    assert req.canary == DestinationRef("backend", "v2", 80)
    assert req.mirror_enabled is True and req.mirror_target is None and req.mirror_percentage == 20.0


@pytest.mark.parametrize("bad, message", [
    ({"weight": 101}, "from 0 to 100"),
    ({"weights": [{"host": "a", "weight": 70, "subset": None, "port": None},
                  {"host": "b", "weight": 50, "subset": None, "port": None}]}, "total 120"),
    ({"mirror": {"enabled": True, "percentage": 150.0}}, "mirror.percentage"),
    ({"match": {"state": "present", "headers": None, "cookie": None}}, "at least one entry"),
])
def test_params_refused(bad, message):
    with pytest.raises(RouteError, match=message):
        request_from_params(params(**bad))


def test_default_mirror_uses_the_canary_as_the_route_spells_it():
    edit = edit_virtual_service(user_owned_vs(), request(mirror_enabled=True))
    assert edit.obj["spec"]["http"][1]["mirror"] == {"host": "backend-canary", "port": {"number": 8080}}
    disabled = edit_virtual_service(edit.obj, request(mirror_enabled=False))
    assert "mirror" not in disabled.obj["spec"]["http"][1]
    assert disabled.obj == user_owned_vs()


def test_mirror_next_to_a_mirrors_list_is_refused():
    vs = flagger_vs()
    vs["spec"]["http"][0]["mirrors"] = [{"destination": {"host": "recorder"}}]
    with pytest.raises(RouteError, match="already mirrors with 'mirrors'"):
        edit_virtual_service(vs, request(mirror_enabled=True))
    assert not edit_virtual_service(vs, request(mirror_enabled=False)).changed
