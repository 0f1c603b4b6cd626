"""Session affinity in the Istio router: cookies, sticky routes, Set-Cookie entries, their order and their removal."""

from __future__ import annotations

import copy
import re

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release.names import sticky_route_name
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import (
    DestinationRef,
    RouteError,
    RouteRequest,
    edit_virtual_service,
    request_from_params,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.sticky import (
    Cookie,
    SessionAffinityError,
    cookie_from_regex,
    cookie_regex,
    edit_set_cookie,
    parse_cookie,
    session_affinity_from_params,
)
from tests.support.routes import dest

NS = "prod"
CANARY_ROUTE = "backend-canary-sticky"
PRIMARY_ROUTE = "backend-primary-sticky"


def flagger_vs():
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "backend", "namespace": NS, "resourceVersion": "1"},
        "spec": {"hosts": ["backend"], "http": [{"route": [dest("backend-primary", 100), dest("backend-canary", 0)]}]},
    }


def user_owned_vs():
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "backend", "namespace": NS, "resourceVersion": "7"},
        "spec": {
            "hosts": ["api.example.com", "backend"],
            "http": [
                {"name": "health", "match": [{"uri": {"exact": "/healthz"}}], "route": [dest("backend-primary")]},
                {"name": "api", "match": [{"uri": {"prefix": "/api"}}],
                 "retries": {"attempts": 3}, "timeout": "10s",
                 "headers": {"request": {"set": {"x-team": "payments"}}},
                 "route": [dict(dest("backend-primary.prod.svc.cluster.local", 80, port=8080),
                                headers={"request": {"set": {"x-pool": "stable"}},
                                         "response": {"add": {"x-served-by": "primary"}}}),
                           dict(dest("backend-canary", 0, port=8080),
                                headers={"response": {"remove": ["server"]}}),
                           dest("legacy", 20)]},
                {"name": "default", "route": [dest("static-site", 100)]},
            ],
        },
    }


def affinity(**kwargs):
    base = {"state": "present", "cookie": "flagger-cookie=r1a2b3"}
    base.update(kwargs)
    return session_affinity_from_params(base)


def request(**kwargs):
    return RouteRequest(name="backend", namespace=NS, primary=DestinationRef("backend-primary"),
                        canary=DestinationRef("backend-canary"), **kwargs)


def names(edit):
    return [route.get("name") for route in edit.obj["spec"]["http"]]


def by_name(edit, name):
    return next(route for route in edit.obj["spec"]["http"] if route.get("name") == name)


def weighted(edit):
    return edit.obj["spec"]["http"][edit.route_index]


# --- cookies ----------------------------------------------------------------------------------------------------

def test_names_of_the_owned_routes():
    assert sticky_route_name("backend", "canary") == CANARY_ROUTE
    assert sticky_route_name("backend", "primary") == PRIMARY_ROUTE
    with pytest.raises(ValueError):
        sticky_route_name("backend", "blue")


@pytest.mark.parametrize("text", ["flagger-cookie=abc", "f=podinfo-7f9c.1", "a_b=x=y", "__Host-c=1"])
def test_valid_cookies(text):
    cookie = parse_cookie(text, "cookie")
    assert cookie.pair == text


@pytest.mark.parametrize("text, message", [
    ("noequals", "'name=value'"),
    ("=value", "not a valid cookie name"),
    ("my cookie=1", "not a valid cookie name"),
    ("a;b=1", "not a valid cookie name"),
    ("name=", "empty or holds"),
    ("name=a b", "empty or holds"),
    ("name=a;b", "empty or holds"),
    ('name="x"', "empty or holds"),
    (42, "'name=value'"),
])
def test_invalid_cookies_say_what_to_do(text, message):
    with pytest.raises(SessionAffinityError, match=re.escape(message)):
        parse_cookie(text, "session_affinity.cookie")


@pytest.mark.parametrize("pair", ["flagger-cookie=abc", "c=a.b+c*d", "c=(x)|[y]{z}^$?"])
def test_cookie_regex_round_trip(pair):
    regex = cookie_regex(pair)
    assert cookie_from_regex(regex) == parse_cookie(pair, "x")
    assert re.fullmatch(regex, "other=1; " + pair)
    assert not re.fullmatch(regex, "x" + pair)


def test_foreign_regexes_are_not_read_as_ours():
    assert cookie_from_regex(".*flagger-cookie.*abc.*") is None
    assert cookie_from_regex("^(.*?;\\s*)?(c=a.b)(;.*)?$") is None  # an unescaped dot is not something we wrote
    assert cookie_from_regex(None) is None


def test_params_need_a_cookie_when_present_and_distinct_names():
    with pytest.raises(SessionAffinityError, match="needs session_affinity.cookie"):
        session_affinity_from_params({"state": "present"})
    with pytest.raises(SessionAffinityError, match="another name"):
        affinity(primary_cookie="flagger-cookie=p1", primary_max_age=60)
    with pytest.raises(SessionAffinityError, match="primary_max_age"):
        affinity(primary_cookie="primary-cookie=p1")
    with pytest.raises(SessionAffinityError, match="above 0"):
        affinity(max_age=0)
    with pytest.raises(SessionAffinityError, match="present or absent"):
        affinity(state="gone")
    # Absent needs no cookie: the one to expire is read from the route that matched it.
    assert session_affinity_from_params({"state": "absent"}).cookie is None


def test_module_params_refuse_bad_affinity_before_any_api_call():
    params = {"name": "backend", "namespace": NS, "session_affinity": {"state": "present", "cookie": "bad cookie=1"}}
    with pytest.raises(RouteError, match="not a valid cookie name"):
        request_from_params(params)
    params["session_affinity"] = {"state": "present", "cookie": "c=1", "max_age": 60, "primary_cookie": None,
                                  "primary_max_age": None, "expire": True}
    req = request_from_params(params)
    assert req.session_affinity.cookie == Cookie("c", "1") and req.session_affinity.max_age == 60


# --- Set-Cookie entries ----------------------------------------------------------------------------------------

def test_set_cookie_keeps_user_headers_and_removes_only_what_it_emptied():
    entry = {"destination": {"host": "c"}, "headers": {"response": {"add": {"x-a": "1"}, "set": {"x-b": "2"}}}}
    original = copy.deepcopy(entry)
    assert edit_set_cookie(entry, "c=1; Max-Age=5", {"c"}, "canary") == ["Set-Cookie 'c=1; Max-Age=5' added to canary"]
    assert entry["headers"]["response"]["add"] == {"x-a": "1", "Set-Cookie": "c=1; Max-Age=5"}
    assert edit_set_cookie(entry, "c=1; Max-Age=5", {"c"}, "canary") == []
    assert edit_set_cookie(entry, None, {"c"}, "canary") == ["Set-Cookie 'c=1; Max-Age=5' removed from canary"]
    assert entry == original

    bare = {"destination": {"host": "c"}}
    edit_set_cookie(bare, "c=1; Max-Age=5", {"c"}, "canary")
    edit_set_cookie(bare, None, {"c"}, "canary")
    assert bare == {"destination": {"host": "c"}}


def test_a_set_cookie_of_the_user_is_never_overwritten():
    entry = {"destination": {"host": "c"}, "headers": {"response": {"add": {"set-cookie": "session=u; Path=/"}}}}
    with pytest.raises(SessionAffinityError, match="already adds its own Set-Cookie"):
        edit_set_cookie(entry, "c=1; Max-Age=5", {"c"}, "canary destination")
    assert edit_set_cookie(entry, None, {"c"}, "canary destination") == []
    assert entry["headers"]["response"]["add"] == {"set-cookie": "session=u; Path=/"}


# --- present -----------------------------------------------------------------------------------------------------

def test_present_adds_the_canary_sticky_route_ahead_and_the_cookie_on_the_canary():
    vs = flagger_vs()
    edit = edit_virtual_service(vs, request(weight=10, session_affinity=affinity(max_age=21600)))
    assert names(edit) == [CANARY_ROUTE, None]
    sticky = by_name(edit, CANARY_ROUTE)
    assert sticky["route"] == [{"destination": {"host": "backend-canary"}, "weight": 100}]
    assert sticky["match"] == [{"headers": {"cookie": {"regex": cookie_regex("flagger-cookie=r1a2b3")}}}]
    route = weighted(edit)["route"]
    assert route[1]["headers"] == {"response": {"add": {"Set-Cookie": "flagger-cookie=r1a2b3; Max-Age=21600"}}}
    assert "headers" not in route[0]
    assert [entry["weight"] for entry in route] == [90, 10]
    assert edit.route_index == 1 and edit.canary_weight == 10
    assert edit.session_affinity == {
        "state": "present", "canary_route": CANARY_ROUTE, "canary_route_index": 0,
        "primary_route": PRIMARY_ROUTE, "primary_route_index": None,
        "cookie": "flagger-cookie=r1a2b3", "primary_cookie": None,
        "set_cookie": {"canary": "flagger-cookie=r1a2b3; Max-Age=21600", "primary": None}}
    assert any("added ahead of route #0" in line and "flagger-cookie=r1a2b3" in line for line in edit.changes)
    assert edit.after["sticky_routes"] == {CANARY_ROUTE: sticky} and "sticky_routes" not in edit.before

    again = edit_virtual_service(edit.obj, request(weight=10, session_affinity=affinity(max_age=21600)))
    assert not again.changed and again.obj == edit.obj
    # The weight moves on while the cookie stays; the sticky route is not picked as the weighted route.
    step = edit_virtual_service(edit.obj, request(weight=20, session_affinity=affinity(max_age=21600)))
    assert step.changes == ["weight of backend-primary: 90 -> 80", "weight of backend-canary: 10 -> 20"]


def test_sticky_route_carries_the_weighted_route_behaviour_and_conditions():
    vs = user_owned_vs()
    edit = edit_virtual_service(vs, request(session_affinity=affinity()))
    assert names(edit) == ["health", CANARY_ROUTE, "api", "default"]
    sticky = by_name(edit, CANARY_ROUTE)
    assert sticky["match"] == [{"uri": {"prefix": "/api"},
                                "headers": {"cookie": {"regex": cookie_regex("flagger-cookie=r1a2b3")}}}]
    assert sticky["retries"] == {"attempts": 3} and sticky["timeout"] == "10s"
    assert sticky["headers"] == {"request": {"set": {"x-team": "payments"}}}
    assert sticky["route"] == [{"destination": {"host": "backend-canary", "port": {"number": 8080}}, "weight": 100}]
    api = by_name(edit, "api")
    # The user's own destination headers survive next to ours; other destinations and routes are untouched.
    assert api["route"][1]["headers"] == {"response": {"remove": ["server"],
                                                       "add": {"Set-Cookie": "flagger-cookie=r1a2b3; Max-Age=86400"}}}
    assert api["route"][0] == vs["spec"]["http"][1]["route"][0]
    assert api["route"][2] == vs["spec"]["http"][1]["route"][2]
    for name in ("health", "default"):
        assert by_name(edit, name) == next(r for r in vs["spec"]["http"] if r["name"] == name)


def test_primary_cookie_adds_a_primary_sticky_route_behind_the_canary_one():
    edit = edit_virtual_service(flagger_vs(), request(session_affinity=affinity(
        primary_cookie="primary-cookie=s1", primary_max_age=60)))
    assert names(edit) == [CANARY_ROUTE, PRIMARY_ROUTE, None]
    assert by_name(edit, PRIMARY_ROUTE)["route"] == [{"destination": {"host": "backend-primary"}, "weight": 100}]
    route = weighted(edit)["route"]
    assert route[0]["headers"]["response"]["add"] == {"Set-Cookie": "primary-cookie=s1; Max-Age=60"}
    assert edit.session_affinity["primary_cookie"] == "primary-cookie=s1"

    # A new step brings a new primary cookie: the route and the header follow, the canary's stay.
    step = edit_virtual_service(edit.obj, request(session_affinity=affinity(
        primary_cookie="primary-cookie=s2", primary_max_age=60)))
    assert step.changes == [
        "Set-Cookie of primary destination backend-primary of route #2: 'primary-cookie=s1; Max-Age=60' -> "
        "'primary-cookie=s2; Max-Age=60'",
        "session affinity route %r updated: requests with cookie primary-cookie=s2 go to backend-primary" % PRIMARY_ROUTE]

    # Dropping primary stickiness mid-release removes its route and header only.
    plain = edit_virtual_service(step.obj, request(session_affinity=affinity()))
    assert names(plain) == [CANARY_ROUTE, None]
    assert "headers" not in weighted(plain)["route"][0]


def test_a_new_release_cookie_replaces_the_old_one():
    first = edit_virtual_service(flagger_vs(), request(session_affinity=affinity()))
    second = edit_virtual_service(first.obj, request(session_affinity=affinity(cookie="flagger-cookie=n3w")))
    assert second.session_affinity["cookie"] == "flagger-cookie=n3w"
    assert weighted(second)["route"][1]["headers"]["response"]["add"]["Set-Cookie"] == "flagger-cookie=n3w; Max-Age=86400"


def test_match_route_stays_ahead_of_the_sticky_routes_whichever_comes_first():
    ab = [{"headers": {"x-canary": {"exact": "insider"}}}]
    sticky_first = edit_virtual_service(flagger_vs(), request(session_affinity=affinity(
        primary_cookie="p=1", primary_max_age=60)))
    both = edit_virtual_service(sticky_first.obj, request(match_state="present", match_headers=ab))
    assert names(both) == ["backend-canary-match", CANARY_ROUTE, PRIMARY_ROUTE, None]
    assert both.changes == ["match route 'backend-canary-match' added ahead of route #2"]

    together = edit_virtual_service(flagger_vs(), request(match_state="present", match_headers=ab,
                                                          session_affinity=affinity()))
    assert names(together) == ["backend-canary-match", CANARY_ROUTE, None]
    assert together.match["index"] == 0 and together.session_affinity["canary_route_index"] == 1


def test_owned_routes_out_of_order_are_put_back():
    edit = edit_virtual_service(flagger_vs(), request(match_state="present", match_cookies=["ab=1"],
                                                      session_affinity=affinity(primary_cookie="p=1",
                                                                                primary_max_age=60)))
    http = edit.obj["spec"]["http"]
    http.insert(0, http.pop(2))  # someone moved the primary sticky route to the top
    fixed = edit_virtual_service(edit.obj, request(match_state="present", match_cookies=["ab=1"],
                                                   session_affinity=affinity(primary_cookie="p=1", primary_max_age=60)))
    assert names(fixed) == ["backend-canary-match", CANARY_ROUTE, PRIMARY_ROUTE, None]
    assert fixed.changes == ["routes 'backend-canary-match', %r, %r moved ahead of route #3, in that order"
                             % (CANARY_ROUTE, PRIMARY_ROUTE)]


def test_a_route_of_the_user_with_our_name_is_refused_not_rewritten():
    vs = flagger_vs()
    vs["spec"]["http"].insert(0, {"name": CANARY_ROUTE, "match": [{"uri": {"prefix": "/beta"}}],
                                  "route": [dest("beta-site", 100)]})
    for state in ("present", "absent"):
        with pytest.raises(RouteError, match="not ours, so it is left alone. Rename that route"):
            edit_virtual_service(vs, request(session_affinity=affinity(state=state)))
    # Without a session affinity request it is just another route.
    assert not edit_virtual_service(vs, request(weight=0)).changed


def test_a_route_of_our_shape_and_name_is_adopted():
    vs = flagger_vs()
    vs["spec"]["http"].insert(0, {"name": CANARY_ROUTE, "route": [dest("backend-canary", 100)]})
    edit = edit_virtual_service(vs, request(session_affinity=affinity()))
    assert names(edit) == [CANARY_ROUTE, None]
    assert edit.changes[-1].startswith("session affinity route %r updated" % CANARY_ROUTE)


def test_a_set_cookie_of_the_user_on_the_canary_fails_with_what_to_do():
    vs = flagger_vs()
    vs["spec"]["http"][0]["route"][1]["headers"] = {"response": {"add": {"Set-Cookie": "session=u"}}}
    with pytest.raises(RouteError, match=r"VirtualService prod/backend: canary destination backend-canary of route "
                                         r"#0 already adds its own Set-Cookie .*Move that cookie"):
        edit_virtual_service(vs, request(session_affinity=affinity()))


def test_present_needs_both_destinations_in_the_route():
    vs = flagger_vs()
    vs["spec"]["http"][0]["route"] = [dest("backend-primary", 100), dest("other", 0)]
    with pytest.raises(RouteError):
        edit_virtual_service(vs, request(route_name="0", session_affinity=affinity()))


# --- absent ------------------------------------------------------------------------------------------------------

def released(**kwargs):
    return edit_virtual_service(flagger_vs(), request(weight=30, session_affinity=affinity(**kwargs))).obj


def test_absent_turns_the_canary_route_into_an_expiry_route_and_removes_the_rest():
    obj = released(primary_cookie="primary-cookie=s1", primary_max_age=60)
    edit = edit_virtual_service(obj, request(weight=0, session_affinity=affinity(state="absent")))
    assert names(edit) == [CANARY_ROUTE, None]
    expiry = by_name(edit, CANARY_ROUTE)
    assert expiry["match"] == [{"headers": {"cookie": {"regex": cookie_regex("flagger-cookie=r1a2b3")}}}]
    assert expiry["route"] == [{"destination": {"host": "backend-primary"}, "weight": 100,
                                "headers": {"response": {"add": {"Set-Cookie": "flagger-cookie=r1a2b3; Max-Age=-1"}}}}]
    assert weighted(edit)["route"] == [dest("backend-primary", 100), dest("backend-canary", 0)]
    assert edit.session_affinity["state"] == "expiring"
    assert edit.session_affinity["set_cookie"] == {"canary": None, "primary": None}
    assert "session affinity route %r removed" % PRIMARY_ROUTE in edit.changes
    assert any("go to backend-primary, which tells them to drop it" in line for line in edit.changes)

    again = edit_virtual_service(edit.obj, request(weight=0, session_affinity=affinity(state="absent")))
    assert not again.changed

    # The cookie to expire is the one clients hold, even when the request names another.
    other = edit_virtual_service(edit.obj, request(session_affinity=session_affinity_from_params(
        {"state": "absent", "cookie": "flagger-cookie=zzz"})))
    assert not other.changed

    gone = edit_virtual_service(edit.obj, request(session_affinity=session_affinity_from_params(
        {"state": "absent", "expire": False})))
    assert gone.obj == edit_virtual_service(flagger_vs(), request(weight=0)).obj
    assert gone.session_affinity["state"] == "absent"


def test_absent_without_expiry_leaves_the_object_as_before_the_release():
    vs = user_owned_vs()
    present = edit_virtual_service(vs, request(session_affinity=affinity(primary_cookie="p=1", primary_max_age=60)))
    absent = edit_virtual_service(present.obj, request(session_affinity=session_affinity_from_params(
        {"state": "absent", "expire": False})))
    assert absent.obj == vs


def test_next_release_reuses_the_expiry_route():
    obj = edit_virtual_service(released(), request(session_affinity=affinity(state="absent"))).obj
    edit = edit_virtual_service(obj, request(session_affinity=affinity(cookie="flagger-cookie=next")))
    assert names(edit) == [CANARY_ROUTE, None]
    assert by_name(edit, CANARY_ROUTE)["route"] == [{"destination": {"host": "backend-canary"}, "weight": 100}]
    assert edit.session_affinity["state"] == "present" and edit.session_affinity["cookie"] == "flagger-cookie=next"


def test_absent_on_a_service_that_never_had_affinity_changes_nothing():
    vs = user_owned_vs()
    edit = edit_virtual_service(vs, request(session_affinity=affinity(state="absent")))
    assert not edit.changed and edit.obj == vs
    assert edit.session_affinity["state"] == "absent" and edit.session_affinity["canary_route_index"] is None


def test_read_only_call_reports_the_affinity_found():
    edit = edit_virtual_service(released(), request())
    assert not edit.changed
    assert edit.session_affinity["state"] == "present"
    assert edit.session_affinity["set_cookie"]["canary"] == "flagger-cookie=r1a2b3; Max-Age=86400"
