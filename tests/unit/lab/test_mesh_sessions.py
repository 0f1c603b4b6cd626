"""Cookies, response headers, simulated users and the lab's evidence series in the lab mesh."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lab.mesh.cookies import CookieJar, join_cookie_headers, parse_cookie_header, parse_set_cookie
from lab.mesh.dispatch import dispatch
from lab.mesh.engine import Mesh, _send_arguments
from lab.mesh.headers import apply_operations, issued_set_cookies, response_headers
from lab.mesh.routing import Request, ab_match_entries, example_request_shape
from lab.mesh.sessions import Session, SessionPool, SessionSettings, session_settings
from lab.store import Store

NS = "test"
STICKY = "flagger-cookie=abc123"
STICKY_REGEX = ".*flagger-cookie.*abc123.*"


class Clock:
    """Mesh time the test moves by hand."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------ fixtures
def deployment(name, ready=1, annotations=None):
    return {"metadata": {"name": name, "namespace": NS},
            "spec": {"template": {"metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                                  "spec": {"containers": [{"name": "app", "image": "x"}]}}},
            "status": {"readyReplicas": ready}}


def service(name):
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"selector": {"app": name}}}


def virtualservice(http, annotations=None):
    return {"metadata": {"name": "podinfo", "namespace": NS, "annotations": annotations or {}},
            "spec": {"hosts": ["podinfo"], "http": http}}


def destination(host, weight, headers=None):
    entry = {"destination": {"host": host}, "weight": weight}
    if headers:
        entry["headers"] = headers
    return entry


def set_cookie(value):
    return {"response": {"add": {"Set-Cookie": value}}}


def affinity_routes(primary, canary, max_age=86400):
    """Flagger's session-affinity VirtualService during a rollout: a sticky route, then the weighted one."""
    return [{"name": "sticky-route", "match": [{"headers": {"cookie": {"regex": STICKY_REGEX}}}],
             "route": [destination("podinfo-primary", 0), destination("podinfo-canary", 100)]},
            {"name": "podinfo", "route": [destination("podinfo-primary", primary),
                                          destination("podinfo-canary", canary, set_cookie(f"{STICKY}; Max-Age={max_age}"))]}]


def affinity_routes_after_promotion():
    """Canary weight back to 0: the previous cookie still matches, is sent to the primary and deleted."""
    return [{"name": "sticky-route", "match": [{"headers": {"cookie": {"regex": STICKY_REGEX}}}],
             "headers": set_cookie(f"{STICKY}; Max-Age=-1"),
             "route": [destination("podinfo-primary", 100), destination("podinfo-canary", 0)]},
            {"name": "podinfo", "route": [destination("podinfo-primary", 100), destination("podinfo-canary", 0)]}]


AB_ROUTES = [{"match": [{"headers": {"x-canary": {"exact": "insider"}}},
                        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
              "route": [destination("podinfo-primary", 0), destination("podinfo-canary", 100)]},
             {"route": [destination("podinfo-primary", 100)]}]


def lab_mesh(http, annotations=None, clock=None, canary_annotations=None):
    store = Store()
    for name in ("podinfo-primary", "podinfo-canary", "podinfo"):
        store.create("services", service(name))
    store.create("deployments", deployment("podinfo-primary", 2))
    store.create("deployments", deployment("podinfo-canary", 1, canary_annotations))
    store.create("virtualservices", virtualservice(http, annotations))
    return store, Mesh(store, seed=7, clock=clock or Clock())


def set_routes(store, http):
    def change(vs):
        vs["spec"]["http"] = http
        return vs
    store.mutate("virtualservices", NS, "podinfo", change)


def run(mesh, seconds, clock=None, tick=0.1, rng=None):
    """Generate `seconds` of traffic in ticks, moving the mesh clock along."""
    rng = rng or random.Random(3)
    for _ in range(int(round(seconds / tick))):
        topology = mesh.topology()
        mesh._generate(topology, mesh._sources, tick, rng)  # pylint: disable=protected-access
        if clock is not None:
            clock.now += tick


def series(mesh):
    """name -> list of (labels, value) from the mesh's /metrics text, parsed as Prometheus would."""
    text = generate_latest(mesh.registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def total(mesh, name, **labels):
    return sum(value for found, value in series(mesh).get(name, []) if all(found.get(k) == v for k, v in labels.items()))


# ------------------------------------------------------------------- cookies
@pytest.mark.parametrize("header, expected", [
    ("a=1", ("a", "1", None)),
    ("flagger-cookie=abc; Max-Age=60; Path=/; HttpOnly", ("flagger-cookie", "abc", 60.0)),
    ("a=1; max-age=-1", ("a", "1", -1.0)),
    ("a=1; Max-Age=0", ("a", "1", 0.0)),
    ("a=1; Max-Age=soon", ("a", "1", None)),
    ('a="quoted value"; Max-Age=5', ("a", "quoted value", 5.0)),
    (" a = 1 ;Max-Age= 7 ", ("a", "1", 7.0)),
    ("a=", ("a", "", None)),
])
def test_set_cookie_is_read_like_rfc_6265(header, expected):
    cookie = parse_set_cookie(header)
    assert (cookie.name, cookie.value, cookie.max_age) == expected


@pytest.mark.parametrize("header", ["", "novalue", "=1; Max-Age=3"])
def test_a_set_cookie_without_a_name_is_ignored(header):
    assert parse_set_cookie(header) is None


def test_expires_counts_only_without_max_age():
    def wall():
        return 1_700_000_000.0  # 2023-11-14T22:13:20Z

    expires = parse_set_cookie("a=1; Expires=Tue, 14 Nov 2023 22:14:20 GMT", wall)
    assert expires.max_age == pytest.approx(60.0)
    assert parse_set_cookie("a=1; Expires=Tue, 14 Nov 2023 22:14:20 GMT; Max-Age=5", wall).max_age == 5.0
    assert parse_set_cookie("a=1; Expires=Tue, 14 Nov 2023 22:12:20 GMT", wall).deletes
    assert parse_set_cookie("a=1; Expires=not a date", wall).max_age is None


def test_the_jar_expires_cookies_in_mesh_time_and_max_age_zero_or_less_deletes():
    clock = Clock(50.0)
    jar = CookieJar(clock)
    assert jar.header() is None
    jar.store(["short=1; Max-Age=10", "forever=2", "junk"])
    assert jar.header() == "short=1; forever=2"
    clock.now = 59.9
    assert jar.cookies() == {"short": "1", "forever": "2"}
    clock.now = 60.0
    assert jar.cookies() == {"forever": "2"}
    jar.store(["forever=3; Max-Age=100"])
    assert jar.cookies() == {"forever": "3"}
    jar.store(["forever=3; Max-Age=0"])
    assert jar.header() is None and len(jar) == 0
    jar.store(["x=1", "x=2; Max-Age=-1"])
    assert jar.cookies() == {}


def test_cookie_headers_join_and_parse():
    assert join_cookie_headers("canary=always", None, "a=1; b=2") == "canary=always; a=1; b=2"
    assert join_cookie_headers(None, " ") is None
    assert parse_cookie_header("a=1; b = 2;c=3=4; ; junk") == {"a": "1", "b": "2", "c": "3=4"}


# ---------------------------------------------------------- response headers
def test_header_operations_remove_then_set_then_add():
    headers = (("x-old", "1"), ("x-keep", "k"), ("x-set", "before"))
    result = apply_operations(headers, {"remove": ["X-Old"], "set": {"X-Set": "after"}, "add": {"X-Keep": "k2"}})
    assert result == (("x-keep", "k"), ("x-set", "after"), ("x-keep", "k2"))
    assert apply_operations(headers, None) == headers


def test_destination_operations_come_first_and_the_route_wins_a_set():
    route = {"headers": {"response": {"set": {"x-version": "route"}, "add": {"Set-Cookie": "r=1"}}}}
    entry = {"headers": {"response": {"set": {"X-Version": "destination"}, "add": {"Set-Cookie": "d=1"},
                                      "remove": ["server"]}}}
    assert response_headers(route, entry) == (("set-cookie", "d=1"), ("x-version", "route"), ("set-cookie", "r=1"))
    assert response_headers({}, {}) == ()


def test_only_the_chosen_destination_sets_its_cookie_and_proxy_answers_carry_none():
    _, mesh = lab_mesh([])
    vs = virtualservice(affinity_routes(50, 50))
    rng = random.Random(1)
    seen = {"podinfo-primary": set(), "podinfo-canary": set()}
    topology = mesh.topology()
    for _ in range(400):
        outcome = dispatch(topology, vs, Request("podinfo", source_namespace=NS), rng)
        seen[outcome.upstream.workload.name].add(outcome.response_headers)
    assert seen["podinfo-canary"] == {(("set-cookie", f"{STICKY}; Max-Age=86400"),)}
    assert seen["podinfo-primary"] == {()}

    unready = virtualservice([{"route": [destination("podinfo-missing", 100, set_cookie("a=1"))],
                               "headers": set_cookie("b=1")}])
    outcome = dispatch(topology, unready, Request("podinfo", source_namespace=NS), rng)
    assert outcome.upstream.flags == "NC" and outcome.response_headers == ()


def test_issued_cookies_and_sticky_routes_are_not_ab_routes():
    vs = virtualservice(affinity_routes(90, 10))
    assert issued_set_cookies(vs) == [f"{STICKY}; Max-Age=86400"]
    assert ab_match_entries(vs) == []
    assert example_request_shape(vs) is None
    promoted = virtualservice(affinity_routes_after_promotion())
    assert example_request_shape(promoted) is None
    ab = virtualservice(AB_ROUTES)
    assert len(ab_match_entries(ab)) == 2
    assert example_request_shape(ab) == ({"x-canary": "insider"}, "/")
    # The same cookie route without a Set-Cookie anywhere is an ordinary A/B route.
    assert example_request_shape(virtualservice([affinity_routes(90, 10)[0]])) == ({"cookie": "flagger-cookieabc123"}, "/")


# ------------------------------------------------------------------ sessions
def test_session_settings_come_from_annotations_with_defaults():
    assert session_settings({}) == SessionSettings(10, 0.5, 60.0)
    assert session_settings({"lab.progressive.delivery/sessions": "0"}).enabled is False
    custom = session_settings({"lab.progressive.delivery/sessions": "50", "lab.progressive.delivery/session-share": "2",
                               "lab.progressive.delivery/session-seconds": "5"})
    assert custom == SessionSettings(50, 1.0, 5.0)


def test_a_session_remembers_its_workload_and_counts_a_switch_only_between_workloads():
    session = Session(Clock())
    assert session.answered("a", ()).switched_from is None
    assert session.answered(None, ()).switched_from is None
    visit = session.answered("b", (("set-cookie", "k=v; Max-Age=10"),))
    assert (visit.switched_from, visit.workload, [c.name for c in visit.cookies]) == ("a", "b", ["k"])
    assert session.cookie_header() == "k=v"
    assert session.answered("b", ()).switched_from is None


def test_users_leave_after_their_stay_and_new_ones_start_with_an_empty_jar():
    clock = Clock(0.0)
    pool = SessionPool(SessionSettings(users=1, share=1.0, mean_seconds=1.0), clock)
    rng = random.Random(5)
    first = pool.pick(rng)
    first.jar.store(["k=v"])
    assert pool.pick(rng) is first
    clock.now = first.leaves_at
    second = pool.pick(rng)
    assert second is not first and second.cookie_header() is None and pool.started == 2
    pool.reconfigure(SessionSettings(users=3, share=1.0, mean_seconds=1.0))
    assert len(pool.sessions()) == 1
    pool.reconfigure(SessionSettings(users=0, share=1.0, mean_seconds=1.0))
    assert pool.pick(rng) is None


def test_sticky_users_never_switch_while_the_weights_move_and_leave_the_canary_on_promotion():
    clock = Clock()
    annotations = {"lab.progressive.delivery/rps": "400", "lab.progressive.delivery/sessions": "20",
                   "lab.progressive.delivery/session-share": "1", "lab.progressive.delivery/session-seconds": "100000"}
    store, mesh = lab_mesh(affinity_routes(90, 10), annotations, clock)
    run(mesh, 3, clock)
    for canary in (20, 30, 50):
        set_routes(store, affinity_routes(100 - canary, canary))
        run(mesh, 3, clock)
    # Every user drew the canary at some point, got the cookie and stayed there: nobody sticky ever switched.
    assert total(mesh, "lab_session_switches_total", sticky="true") == 0
    # Users start on the primary unless their first draw was the canary; either way they end on the canary.
    assert 10 <= total(mesh, "lab_session_switches_total", sticky="false", from_workload="podinfo-primary",
                       to_workload="podinfo-canary") <= 20
    assert total(mesh, "lab_session_switches_total", to_workload="podinfo-primary") == 0
    assert total(mesh, "lab_sessions_started_total", namespace=NS) == 20
    pool = mesh._sources[0].sessions  # pylint: disable=protected-access
    assert all(user.jar.cookies() == {"flagger-cookie": "abc123"} for user in pool.sessions())
    assert total(mesh, "lab_session_requests_total", sticky="true", destination_workload="podinfo-primary") == 0
    assert total(mesh, "lab_set_cookie_total", destination_workload="podinfo-primary") == 0
    assert total(mesh, "lab_set_cookie_total", destination_workload="podinfo-canary", cookie="flagger-cookie",
                 action="set") == 20
    # Nothing was shaped for the sticky route: the cookie only comes from the mesh.
    assert total(mesh, "lab_requests_total", matched="true") == 0

    set_routes(store, affinity_routes_after_promotion())
    run(mesh, 1, clock)
    assert total(mesh, "lab_session_switches_total", sticky="true", from_workload="podinfo-canary",
                 to_workload="podinfo-primary") == 20
    assert total(mesh, "lab_set_cookie_total", cookie="flagger-cookie", action="delete") == 20
    assert all(user.cookie_header() is None for user in pool.sessions())


def test_cookies_expire_in_mesh_time_and_the_user_draws_again():
    clock = Clock()
    annotations = {"lab.progressive.delivery/rps": "200", "lab.progressive.delivery/sessions": "5",
                   "lab.progressive.delivery/session-share": "1", "lab.progressive.delivery/session-seconds": "100000"}
    _, mesh = lab_mesh(affinity_routes(50, 50, max_age=2), annotations, clock)
    run(mesh, 1, clock)
    pool = mesh._sources[0].sessions  # pylint: disable=protected-access
    assert all(user.cookie_header() for user in pool.sessions())
    clock.now += 2.0
    assert all(user.cookie_header() is None for user in pool.sessions())


def test_sessions_replace_anonymous_requests_without_changing_the_rate_or_the_split():
    clock = Clock()
    route = [{"route": [destination("podinfo-primary", 80), destination("podinfo-canary", 20)]}]
    _, mesh = lab_mesh(route, {"lab.progressive.delivery/rps": "1000"}, clock)
    run(mesh, 10, clock)
    generated = mesh.generated
    assert 10000 - 5 * 100 < generated < 10000 + 5 * 100
    assert total(mesh, "lab_requests_total") == generated
    session_requests = total(mesh, "lab_session_requests_total")
    assert 0.45 < session_requests / generated < 0.55
    # Without Set-Cookie nobody is sticky and every request is a fresh draw over the weights.
    assert total(mesh, "lab_session_requests_total", sticky="true") == 0
    canary = total(mesh, "lab_requests_total", destination_workload="podinfo-canary")
    assert 0.18 < canary / generated < 0.22
    assert total(mesh, "istio_requests_total", reporter="source") == generated

    _, quiet = lab_mesh(route, {"lab.progressive.delivery/rps": "1000", "lab.progressive.delivery/sessions": "0"})
    run(quiet, 1)
    assert quiet._sources[0].sessions is None  # pylint: disable=protected-access
    assert total(quiet, "lab_session_requests_total") == 0 and quiet.generated > 0


def test_users_keep_their_jars_across_route_changes_and_lose_them_with_the_virtualservice():
    store, mesh = lab_mesh(affinity_routes(90, 10))
    mesh.topology()
    pool = mesh._sources[0].sessions  # pylint: disable=protected-access
    set_routes(store, affinity_routes(80, 20))
    mesh.topology()
    assert mesh._sources[0].sessions is pool  # pylint: disable=protected-access
    store.delete("virtualservices", NS, "podinfo")
    mesh.topology()
    assert mesh._sources == [] and mesh._pools == {}  # pylint: disable=protected-access


# ----------------------------------------------------------- matched traffic
def test_matched_requests_only_reach_the_canary_and_plain_ones_never_do():
    clock = Clock()
    annotations = {"lab.progressive.delivery/rps": "1000", "lab.progressive.delivery/match-share": "0.3"}
    _, mesh = lab_mesh(AB_ROUTES, annotations, clock)
    run(mesh, 5, clock)
    matched = total(mesh, "lab_requests_total", matched="true")
    assert total(mesh, "lab_requests_total", matched="true", destination_workload="podinfo-canary") == matched
    assert total(mesh, "lab_requests_total", matched="false", destination_workload="podinfo-canary") == 0
    assert 0.27 < matched / mesh.generated < 0.33


def test_mirrored_copies_are_counted_apart_from_what_clients_got():
    clock = Clock()
    route = [{"route": [destination("podinfo-primary", 100)], "mirror": {"host": "podinfo-canary"}}]
    _, mesh = lab_mesh(route, {"lab.progressive.delivery/rps": "200"}, clock)
    run(mesh, 2, clock)
    assert total(mesh, "lab_requests_total", destination_workload="podinfo-canary") == 0
    assert total(mesh, "lab_mirrored_requests_total", destination_workload="podinfo-canary",
                 matched="false") == mesh.generated


# ---------------------------------------------------------------------- /send
def test_send_as_one_user_carries_and_returns_the_jar():
    _, mesh = lab_mesh(affinity_routes(0, 100), {"lab.progressive.delivery/rps": "0"})
    first = mesh.send("podinfo", NS, count=1, cookies={})
    assert first["workloads"] == {"podinfo-canary": 1}
    assert first["response_headers"] == {"set-cookie": {f"{STICKY}; Max-Age=86400": 1}}
    assert first["cookies"] == {"flagger-cookie": "abc123"} and first["switches"] == 0

    # Back with the cookie after the weights moved away: the sticky route still answers from the canary.
    _, moved = lab_mesh(affinity_routes(100, 0), {"lab.progressive.delivery/rps": "0"})
    again = moved.send("podinfo", NS, count=50, cookies=first["cookies"], headers={"Cookie": "theme=dark"})
    assert again["workloads"] == {"podinfo-canary": 50} and again["switches"] == 0
    assert total(moved, "lab_session_requests_total", sticky="true", destination_workload="podinfo-canary") == 50
    fresh = moved.send("podinfo", NS, count=50, cookies={})
    assert fresh["workloads"] == {"podinfo-primary": 50} and fresh["cookies"] == {}
    assert total(moved, "lab_session_requests_total", sticky="false") == 50

    plain = moved.send("podinfo", NS, count=5)
    assert "cookies" not in plain and plain["response_headers"] == {}


def test_send_reports_switches_and_matched_requests():
    _, mesh = lab_mesh(affinity_routes_after_promotion(), {"lab.progressive.delivery/rps": "0"})
    result = mesh.send("podinfo", NS, count=3, cookies={"flagger-cookie": "abc123"})
    assert result["workloads"] == {"podinfo-primary": 3}
    assert result["cookies"] == {} and result["response_headers"] == {"set-cookie": {f"{STICKY}; Max-Age=-1": 1}}

    _, ab = lab_mesh(AB_ROUTES, {"lab.progressive.delivery/rps": "0"})
    ab.send("podinfo", NS, count=4, headers={"Cookie": "a=1;canary=always"})
    ab.send("podinfo", NS, count=6)
    assert total(ab, "lab_requests_total", matched="true", destination_workload="podinfo-canary") == 4
    assert total(ab, "lab_requests_total", matched="false", destination_workload="podinfo-primary") == 6


def test_send_arguments_validate_the_jar():
    assert _send_arguments({"host": "podinfo", "cookies": {"a": "1"}})["cookies"] == {"a": "1"}
    assert _send_arguments({"host": "podinfo"})["cookies"] is None
    with pytest.raises(ValueError, match="'cookies' must be an object"):
        _send_arguments({"host": "podinfo", "cookies": "a=1"})
    with pytest.raises(ValueError, match="'cookies' must be an object"):
        _send_arguments({"host": "podinfo", "cookies": {"a": {"nested": 1}}})


def test_the_evidence_series_are_exported_with_their_labels():
    registry = CollectorRegistry()
    _, mesh = lab_mesh(affinity_routes(0, 100), {"lab.progressive.delivery/rps": "0"})
    registry.register(mesh.evidence)
    mesh.send("podinfo", NS, count=2, cookies={})
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert set(families) == {"lab_requests", "lab_mirrored_requests", "lab_session_requests", "lab_session_switches",
                             "lab_set_cookie", "lab_sessions_started"}
    samples = {s.labels["sticky"]: s for s in families["lab_session_requests"].samples if s.name.endswith("_total")}
    assert samples["false"].labels == {"namespace": NS, "destination_workload": "podinfo-canary", "sticky": "false"}
    assert samples["false"].value == 1
    assert mesh.evidence.value("lab_session_requests", sticky="true") == 1


def test_an_anchored_cookie_route_tolerating_spaces_is_sticky_and_matches_a_joined_jar():
    regex = r"^(.*?;\s*)?(flagger-cookie=abc123)(;.*)?$"
    http = [{"name": "podinfo-canary-sticky", "match": [{"headers": {"cookie": {"regex": regex}}}],
             "route": [destination("podinfo-canary", 100)]},
            {"name": "podinfo", "route": [destination("podinfo-primary", 100),
                                          destination("podinfo-canary", 0, set_cookie(f"{STICKY}; Max-Age=60"))]}]
    assert ab_match_entries(virtualservice(http)) == []
    _, mesh = lab_mesh(http, {"lab.progressive.delivery/rps": "0"})
    held = mesh.send("podinfo", NS, count=10, cookies={"theme": "dark", "flagger-cookie": "abc123"})
    assert held["workloads"] == {"podinfo-canary": 10}
