"""vs_weight against the lab: real HTTPS API emulator, real kubernetes client, the module run as Ansible runs it."""

from __future__ import annotations

import copy
import json
import threading

import pytest

from lab.testing import wait_for

from tests.support.modules import run_module
from tests.support.routes import dest

GROUP = "networking.istio.io"
NAME = "backend"


def user_owned_spec(namespace):
    """Several routes, other hosts, retries, timeouts, headers, an extra destination, and a TCP route."""
    return {
        "hosts": ["api.example.com", NAME],
        "gateways": ["public-gateway.istio-system.svc.cluster.local", "mesh"],
        "exportTo": ["."],
        "http": [
            {"name": "health", "match": [{"uri": {"exact": "/healthz"}}],
             "route": [dest(NAME + "-primary")], "timeout": "1s"},
            {"name": "api", "match": [{"uri": {"prefix": "/api"}}, {"headers": {"x-api": {"exact": "1"}}}],
             "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset,connect-failure"},
             "timeout": "10s",
             "headers": {"request": {"set": {"x-team": "payments"}}, "response": {"remove": ["server"]}},
             "route": [dest("%s-primary.%s.svc.cluster.local" % (NAME, namespace), 80, port=80),
                       dest(NAME + "-canary", 0, port=80),
                       dest("legacy", 20, port=80)]},
            {"name": "static", "route": [dest("static-site", 100)],
             "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}], "maxAge": "24h"}},
        ],
        "tcp": [{"match": [{"port": 5432}], "route": [{"destination": {"host": "db", "port": {"number": 5432}}}]}],
    }


@pytest.fixture
def custom(lab_api_client):
    from kubernetes import client

    return client.CustomObjectsApi(lab_api_client)


def create_vs(custom, namespace, spec, version="v1", name=NAME):
    body = {"apiVersion": "%s/%s" % (GROUP, version), "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace, "labels": {"team": "payments"},
                         "annotations": {"argocd.argoproj.io/tracking-id": "shop:networking.istio.io/VirtualService"}},
            "spec": spec}
    return custom.create_namespaced_custom_object(GROUP, version, namespace, "virtualservices", body)


def read_vs(custom, namespace, version="v1", name=NAME):
    return custom.get_namespaced_custom_object(GROUP, version, namespace, "virtualservices", name)


def route_by_name(obj, name):
    return next(route for route in obj["spec"]["http"] if route.get("name") == name)


def all_but_weights(obj, route_name):
    """JSON (order kept) of the object without the server-maintained metadata and one route's weights."""
    obj = copy.deepcopy(obj)
    for key in ("resourceVersion", "generation", "managedFields"):
        obj["metadata"].pop(key, None)
    for entry in route_by_name(obj, route_name)["route"]:
        entry.pop("weight")
    return json.dumps(obj)


def weights_of(obj, route_name):
    return [entry.get("weight") for entry in route_by_name(obj, route_name)["route"]]


def test_user_owned_virtual_service_keeps_everything_but_the_route_weights(lab, namespace, k8s_auth, custom):
    created = create_vs(custom, namespace, user_owned_spec(namespace))

    result = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=30))

    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert result["route"] == "api"
    assert [w["weight"] for w in result["previous_weights"]] == [80, 0, 20]
    assert [w["weight"] for w in result["weights"]] == [50, 30, 20]
    assert (result["primary_weight"], result["canary_weight"]) == (50, 30)
    assert result["api_version"] == "networking.istio.io/v1"
    after = read_vs(custom, namespace)
    assert weights_of(after, "api") == [50, 30, 20]
    assert all_but_weights(after, "api") == all_but_weights(created, "api")
    assert result["resource_version"] == after["metadata"]["resourceVersion"]
    assert after["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]

    again = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=30))
    assert again["changed"] is False
    assert read_vs(custom, namespace)["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]


def test_read_only_call_reports_the_split_of_a_named_route(namespace, k8s_auth, custom):
    create_vs(custom, namespace, user_owned_spec(namespace))
    result = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, route="static"))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert result["weights"] == [{"host": "static-site", "subset": None, "port": None, "weight": 100}]
    assert result["canary_weight"] is None and result["primary_weight"] is None


def test_explicit_weights_and_a_missing_destination(namespace, k8s_auth, custom):
    create_vs(custom, namespace, user_owned_spec(namespace))
    result = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weights=[
        {"host": NAME + "-primary", "weight": 40}, {"host": NAME + "-canary", "weight": 40},
        {"host": "legacy.%s.svc.cluster.local" % namespace, "weight": 20}]))
    assert not result.get("failed"), result.get("msg")
    assert weights_of(read_vs(custom, namespace), "api") == [40, 40, 20]

    before = read_vs(custom, namespace)
    missing = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, route="api", weights=[
        {"host": NAME + "-primary", "weight": 50}, {"host": "nowhere", "weight": 50}]))
    assert missing["failed"] is True
    assert "destination nowhere is not in route 'api'" in missing["msg"]
    assert "legacy" in missing["msg"], "the message lists the destinations the route has"
    assert read_vs(custom, namespace)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


@pytest.mark.parametrize("args, expected", [
    ({"weight": 101}, "from 0 to 100"),
    ({"weight": 90}, "does not fit route 'api'"),
    ({"route": "nope", "weight": 10}, "no http route named 'nope'"),
    ({"weights": [{"host": NAME + "-primary", "weight": 60}, {"host": NAME + "-canary", "weight": 60}]}, "total"),
])
def test_bad_input_writes_nothing(namespace, k8s_auth, custom, args, expected):
    created = create_vs(custom, namespace, user_owned_spec(namespace))
    result = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, **args))
    assert result["failed"] is True
    assert expected in result["msg"]
    assert read_vs(custom, namespace)["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_missing_virtual_service(namespace, k8s_auth):
    result = run_module("vs_weight", dict(k8s_auth, name="absent", namespace=namespace, weight=10))
    assert result["failed"] is True
    assert "VirtualService %s/absent not found" % namespace in result["msg"]
    assert "Traceback" not in result["msg"] and "exception" not in result


def test_ambiguous_route_lists_the_routes(namespace, k8s_auth, custom):
    spec = user_owned_spec(namespace)
    spec["http"].append({"name": "api-v2", "route": [dest(NAME + "-primary", 100), dest(NAME + "-canary", 0)]})
    create_vs(custom, namespace, spec)
    result = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=10))
    assert result["failed"] is True
    assert "2 http routes send traffic" in result["msg"]
    assert "'api', 'api-v2'" in result["msg"] and "give route: <name>" in result["msg"]


def test_conflicts_are_retried_and_the_final_state_is_right(lab, namespace, faulty_k8s_auth, custom):
    create_vs(custom, namespace, user_owned_spec(namespace))
    fault_id = lab.inject_fault("PUT", r"/namespaces/%s/virtualservices/%s$" % (namespace, NAME), status=409, count=2)
    try:
        result = run_module("vs_weight", dict(faulty_k8s_auth, name=NAME, namespace=namespace, weight=25))
    finally:
        lab.remove_fault(fault_id)
    assert not result.get("failed"), result.get("msg")
    assert result["attempts"] == 3
    assert weights_of(read_vs(custom, namespace), "api") == [55, 25, 20]


def fault_matched(lab, fault_id):
    return next(fault["matched"] for fault in lab.faults() if fault["id"] == fault_id)


def test_a_concurrent_writer_is_not_overwritten(lab, namespace, faulty_k8s_auth, custom):
    """A real interleaved write: ours is held at the server while another lands, so the API itself answers 409."""
    create_vs(custom, namespace, user_owned_spec(namespace))
    fault_id = lab.inject_fault("PUT", r"/namespaces/%s/virtualservices/%s$" % (namespace, NAME), delay=2.0, count=1)
    results = []
    worker = threading.Thread(target=lambda: results.append(
        run_module("vs_weight", dict(faulty_k8s_auth, name=NAME, namespace=namespace, weight=10))))
    try:
        worker.start()
        wait_for(lambda: fault_matched(lab, fault_id) >= 1, interval=0.02, message="the module's PUT to reach the API")
        other = read_vs(custom, namespace)
        other["metadata"]["annotations"]["edited-by"] = "someone-else"
        custom.replace_namespaced_custom_object(GROUP, "v1", namespace, "virtualservices", NAME, other)
        worker.join(timeout=60)
    finally:
        lab.remove_fault(fault_id)
    assert results and not results[0].get("failed"), results and results[0].get("msg")
    assert results[0]["attempts"] == 2
    after = read_vs(custom, namespace)
    assert after["metadata"]["annotations"]["edited-by"] == "someone-else"
    assert weights_of(after, "api") == [70, 10, 20]


def test_conflicts_beyond_max_retries_fail_clearly(lab, namespace, faulty_k8s_auth, custom):
    created = create_vs(custom, namespace, user_owned_spec(namespace))
    fault_id = lab.inject_fault("PUT", r"/namespaces/%s/virtualservices/%s$" % (namespace, NAME), status=409)
    try:
        result = run_module("vs_weight", dict(faulty_k8s_auth, name=NAME, namespace=namespace, weight=25, max_retries=2))
    finally:
        lab.remove_fault(fault_id)
    assert result["failed"] is True
    assert "3 writes in a row were refused with HTTP 409 Conflict" in result["msg"]
    assert read_vs(custom, namespace)["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_check_mode_and_diff_write_nothing(namespace, k8s_auth, custom):
    created = create_vs(custom, namespace, user_owned_spec(namespace))
    result = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=40,
                                          mirror={"enabled": True, "percentage": 10}),
                        check_mode=True, diff=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert result["canary_weight"] == 40 and result["primary_weight"] == 40
    assert result["mirror"]["enabled"] is True and result["mirror"]["host"] == NAME + "-canary"
    assert result["changes"] == [
        "weight of %s-primary.%s.svc.cluster.local port 80: 80 -> 40" % (NAME, namespace),
        "weight of %s-canary port 80: 0 -> 40" % NAME,
        "mirror: none -> %s-canary port 80" % NAME,
        "mirror percentage: unset (100) -> 10.0",
    ]
    assert weights_of({"spec": {"http": [result["diff"]["before"]["route"]]}}, "api") == [80, 0, 20]
    assert weights_of({"spec": {"http": [result["diff"]["after"]["route"]]}}, "api") == [40, 40, 20]
    assert "mirror" not in result["diff"]["before"]["route"]
    assert result["diff"]["after"]["route"]["mirrorPercentage"] == {"value": 10.0}
    assert read_vs(custom, namespace)["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_v1beta1_objects_are_edited_in_place(namespace, k8s_auth, custom):
    created = create_vs(custom, namespace, user_owned_spec(namespace), version="v1beta1")
    result = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=5))
    assert not result.get("failed"), result.get("msg")
    after = read_vs(custom, namespace, version="v1beta1")
    assert after["apiVersion"] == "networking.istio.io/v1beta1"
    assert weights_of(after, "api") == [75, 5, 20]
    assert all_but_weights(after, "api") == all_but_weights(created, "api")


def test_read_only_token_gets_a_clear_403(lab, namespace, custom):
    created = create_vs(custom, namespace, user_owned_spec(namespace))
    auth = {"kubeconfig": lab.readonly_kubeconfig}
    reading = run_module("vs_weight", dict(auth, name=NAME, namespace=namespace))
    assert not reading.get("failed"), reading.get("msg")
    assert reading["canary_weight"] == 0

    result = run_module("vs_weight", dict(auth, name=NAME, namespace=namespace, weight=10))
    assert result["failed"] is True
    message = result["msg"]
    assert "Permission denied to update VirtualService %s/%s" % (namespace, NAME) in message
    assert "HTTP 403" in message
    assert "'virtualservices.networking.istio.io' in namespace %s" % namespace in message
    assert "Traceback" not in message
    assert read_vs(custom, namespace)["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_mirror_and_match_route_round_trip(namespace, k8s_auth, custom):
    created = create_vs(custom, namespace, user_owned_spec(namespace))
    ab = {"state": "present", "headers": [{"headers": {"x-canary": {"exact": "insider"}}}], "cookie": ["canary=always"]}

    added = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, match=ab,
                                         mirror={"enabled": True, "percentage": 50.0}))
    assert not added.get("failed"), added.get("msg")
    assert added["match"]["state"] == "present" and added["match"]["index"] == 1
    obj = read_vs(custom, namespace)
    assert [route.get("name") for route in obj["spec"]["http"]] == ["health", NAME + "-canary-match", "api", "static"]
    owned = obj["spec"]["http"][1]
    assert owned["route"] == [{"destination": {"host": NAME + "-canary", "port": {"number": 80}}, "weight": 100}]
    assert owned["retries"] == created["spec"]["http"][1]["retries"]
    assert len(owned["match"]) == 4, "two route conditions x two A/B conditions"
    assert route_by_name(obj, "api")["mirror"] == {"host": NAME + "-canary", "port": {"number": 80}}

    unchanged = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, match=ab,
                                             mirror={"enabled": True, "percentage": 50.0}))
    assert unchanged["changed"] is False

    removed = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, match={"state": "absent"},
                                           mirror={"enabled": False}))
    assert not removed.get("failed"), removed.get("msg")
    assert_as_created(read_vs(custom, namespace), created)


def assert_as_created(final, created):
    """Byte for byte what the user created, but for the fields the API server changes on every write."""
    for obj_ in (final, created):
        for key in ("resourceVersion", "generation", "managedFields"):
            obj_["metadata"].pop(key, None)
    assert json.dumps(final) == json.dumps(created)


def test_session_affinity_round_trip_meets_the_istio_schema(namespace, k8s_auth, custom):
    created = create_vs(custom, namespace, user_owned_spec(namespace))
    sticky = {"state": "present", "cookie": "flagger-cookie=r1a2b3", "max_age": 600,
              "primary_cookie": "primary-cookie=s1", "primary_max_age": 60}

    added = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=10, session_affinity=sticky))
    assert not added.get("failed"), added.get("msg")
    obj = read_vs(custom, namespace)
    assert [route.get("name") for route in obj["spec"]["http"]] == [
        "health", NAME + "-canary-sticky", NAME + "-primary-sticky", "api", "static"]
    api = route_by_name(obj, "api")
    assert api["route"][1]["headers"] == {"response": {"add": {"Set-Cookie": "flagger-cookie=r1a2b3; Max-Age=600"}}}
    assert api["route"][0]["headers"] == {"response": {"add": {"Set-Cookie": "primary-cookie=s1; Max-Age=60"}}}
    assert added["session_affinity"]["state"] == "present" and added["session_affinity"]["canary_route_index"] == 1

    unchanged = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=10,
                                             session_affinity=sticky))
    assert unchanged["changed"] is False

    expiring = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=0,
                                            session_affinity={"state": "absent"}))
    assert not expiring.get("failed"), expiring.get("msg")
    assert expiring["session_affinity"]["state"] == "expiring"
    expiry = route_by_name(read_vs(custom, namespace), NAME + "-canary-sticky")
    assert expiry["route"][0]["headers"]["response"]["add"] == {"Set-Cookie": "flagger-cookie=r1a2b3; Max-Age=-1"}

    removed = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace,
                                           session_affinity={"state": "absent", "expire": False}))
    assert not removed.get("failed"), removed.get("msg")
    assert_as_created(read_vs(custom, namespace), created)


def test_bad_session_affinity_cookie_is_refused_before_any_write(namespace, k8s_auth, custom):
    created = create_vs(custom, namespace, user_owned_spec(namespace))
    result = run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=10,
                                          session_affinity={"cookie": "my cookie=1"}))
    assert result.get("failed") and "not a valid cookie name" in result["msg"]
    assert read_vs(custom, namespace)["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
