"""Simulated users, response headers and the lab series, as a real Prometheus scrapes them from the running lab."""

from __future__ import annotations

import requests

from lab.testing import wait_for

COOKIE = "flagger-cookie=abc123"
USERS = {"lab.progressive.delivery/rps": "200", "lab.progressive.delivery/sessions": "20",
         "lab.progressive.delivery/session-share": "1", "lab.progressive.delivery/session-seconds": "100000"}


def canary_pair(lab_objects):
    lab_objects.workload("podinfo-primary", replicas=2)
    lab_objects.workload("podinfo-canary")
    lab_objects.wait_ready("podinfo-primary")
    lab_objects.wait_ready("podinfo-canary")


def affinity_routes(primary: int, canary: int) -> list[dict]:
    """Flagger's session-affinity routes during a rollout: the sticky route first, then the weighted one."""
    return [{"name": "sticky-route", "match": [{"headers": {"cookie": {"regex": ".*flagger-cookie.*abc123.*"}}}],
             "route": [{"destination": {"host": "podinfo-primary"}, "weight": 0},
                       {"destination": {"host": "podinfo-canary"}, "weight": 100}]},
            {"name": "podinfo",
             "route": [{"destination": {"host": "podinfo-primary"}, "weight": primary},
                       {"destination": {"host": "podinfo-canary"}, "weight": canary,
                        "headers": {"response": {"add": {"Set-Cookie": f"{COOKIE}; Max-Age=86400"}}}}]}]


def value(lab, promql: str) -> float:
    """An instant query's single value; no series (a counter never incremented) reads as 0."""
    return lab.query_value(promql) or 0.0


def test_sticky_users_stay_on_the_canary_while_the_weights_move(lab, namespace, lab_objects):
    canary_pair(lab_objects)
    lab_objects.virtualservice("podinfo", ["podinfo"], affinity_routes(80, 20), annotations=USERS)
    ns = f'namespace="{namespace}"'
    wait_for(lambda: value(lab, f'sum(lab_set_cookie_total{{{ns},cookie="flagger-cookie",action="set"}})') >= 20,
             timeout=30, message="every simulated user to get the sticky cookie from the canary")
    lab_objects.patch_virtualservice("podinfo", {"spec": {"http": affinity_routes(50, 50)}})
    before = value(lab, f'sum(lab_session_requests_total{{{ns},sticky="true"}})')
    wait_for(lambda: value(lab, f'sum(lab_session_requests_total{{{ns},sticky="true"}})') >= before + 200,
             timeout=30, message="200 more sticky requests after the weight change")
    assert value(lab, f'sum(lab_session_switches_total{{{ns},sticky="true"}})') == 0
    assert value(lab, f'sum(lab_session_requests_total{{{ns},sticky="true",destination_workload!="podinfo-canary"}})') == 0
    assert value(lab, f'sum(lab_set_cookie_total{{{ns},destination_workload="podinfo-primary"}})') == 0
    assert value(lab, f'sum(lab_sessions_started_total{{{ns}}})') == 20
    assert value(lab, f'sum(lab_requests_total{{{ns},matched="true"}})') == 0


def test_matched_requests_reach_the_canary_and_plain_ones_never_do(lab, namespace, lab_objects):
    canary_pair(lab_objects)
    http = [{"match": [{"headers": {"x-canary": {"exact": "insider"}}}],
             "route": [{"destination": {"host": "podinfo-canary"}}]},
            {"route": [{"destination": {"host": "podinfo-primary"}}]}]
    lab_objects.virtualservice("podinfo", ["podinfo"], http,
                               annotations={"lab.progressive.delivery/rps": "200",
                                            "lab.progressive.delivery/match-share": "0.3"})
    ns = f'namespace="{namespace}"'
    wait_for(lambda: value(lab, f'sum(lab_requests_total{{{ns}}})') >= 600, timeout=30,
             message="600 generated requests in Prometheus")
    matched = value(lab, f'sum(lab_requests_total{{{ns},matched="true",destination_workload="podinfo-canary"}})')
    assert matched > 0
    assert value(lab, f'sum(lab_requests_total{{{ns},matched="true",destination_workload!="podinfo-canary"}})') == 0
    assert value(lab, f'sum(lab_requests_total{{{ns},matched="false",destination_workload="podinfo-canary"}})') == 0


def test_send_acts_as_one_user_with_a_cookie_jar(lab, namespace, lab_objects):
    canary_pair(lab_objects)
    lab_objects.virtualservice("podinfo", ["podinfo"], affinity_routes(0, 100),
                               annotations={"lab.progressive.delivery/rps": "0"})

    def send(body):
        response = requests.post(lab.mesh_url + "/send", json={"host": "podinfo", "namespace": namespace, **body},
                                 timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    first = send({"count": 1, "cookies": {}})
    assert first["workloads"] == {"podinfo-canary": 1}
    assert first["response_headers"] == {"set-cookie": {f"{COOKIE}; Max-Age=86400": 1}}
    assert first["cookies"] == {"flagger-cookie": "abc123"}
    lab_objects.patch_virtualservice("podinfo", {"spec": {"http": affinity_routes(100, 0)}})
    again = send({"count": 20, "cookies": first["cookies"]})
    assert again["workloads"] == {"podinfo-canary": 20} and again["switches"] == 0
    assert send({"count": 20, "cookies": {}})["workloads"] == {"podinfo-primary": 20}
    bad = requests.post(lab.mesh_url + "/send", json={"host": "podinfo", "cookies": "a=1"}, timeout=10)
    assert bad.status_code == 400 and "'cookies' must be an object" in bad.json()["error"]
