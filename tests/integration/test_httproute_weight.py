"""httproute_weight against the lab's real kube-apiserver with the Gateway API v1 CRDs: real validation and defaulting."""

from __future__ import annotations

import copy
import json

import pytest

from tests.support.modules import run_module

GROUP = "gateway.networking.k8s.io"
NAME = "backend"


def backend(name, weight):
    return {"name": name, "port": 80, "weight": weight}


def user_owned_spec():
    """parentRefs, hostnames, a user rule, a weighted rule with a filter and timeouts, and a third backend."""
    return {
        "parentRefs": [{"name": "public", "namespace": "infra", "sectionName": "https"}],
        "hostnames": ["api.example.com"],
        "rules": [
            {"name": "health", "matches": [{"path": {"type": "Exact", "value": "/healthz"}}],
             "backendRefs": [backend(NAME + "-primary", 1)]},
            {"name": "api", "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
             "filters": [{"type": "RequestHeaderModifier",
                          "requestHeaderModifier": {"set": [{"name": "x-team", "value": "payments"}]}}],
             "timeouts": {"request": "10s"},
             "backendRefs": [backend(NAME + "-primary", 80), backend(NAME + "-canary", 0), backend("legacy", 20)]},
        ],
    }


@pytest.fixture
def custom(lab_api_client):
    from kubernetes import client

    return client.CustomObjectsApi(lab_api_client)


def create_route(custom, namespace):
    body = {"apiVersion": GROUP + "/v1", "kind": "HTTPRoute",
            "metadata": {"name": NAME, "namespace": namespace, "labels": {"team": "payments"}},
            "spec": user_owned_spec()}
    return custom.create_namespaced_custom_object(GROUP, "v1", namespace, "httproutes", body)


def read_route(custom, namespace):
    return custom.get_namespaced_custom_object(GROUP, "v1", namespace, "httproutes", NAME)


def spec_without_weights(obj):
    spec = copy.deepcopy(obj["spec"])
    for rule in spec["rules"]:
        for entry in rule.get("backendRefs") or []:
            entry.pop("weight", None)
    return json.dumps(spec, sort_keys=True)


def rule_names(obj):
    return [rule.get("name") for rule in obj["spec"]["rules"]]


def test_weights_mirror_match_and_sticky_rules_on_a_user_owned_route(lab, namespace, k8s_auth, custom):
    created = create_route(custom, namespace)
    call = dict(k8s_auth, name=NAME, namespace=namespace)

    result = run_module("httproute_weight", dict(call, weight=30))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["route"] == "api"
    assert result["api_version"] == GROUP + "/v1"
    assert [w["weight"] for w in result["weights"]] == [50, 30, 20]
    after = read_route(custom, namespace)
    assert [e["weight"] for e in after["spec"]["rules"][1]["backendRefs"]] == [50, 30, 20]
    assert spec_without_weights(after) == spec_without_weights(created)
    assert after["metadata"]["labels"] == {"team": "payments"}
    assert run_module("httproute_weight", dict(call, weight=30))["changed"] is False

    mirrored = run_module("httproute_weight", dict(call, mirror={"enabled": True, "percentage": 50}))
    assert not mirrored.get("failed"), mirrored.get("msg")
    assert mirrored["mirror"] == {"enabled": True, "name": NAME + "-canary", "port": 80, "percentage": 50.0}
    filters = read_route(custom, namespace)["spec"]["rules"][1]["filters"]
    assert filters[1]["requestMirror"]["percent"] == 50
    unmirrored = run_module("httproute_weight", dict(call, mirror={"enabled": False}))
    assert unmirrored["changed"] is True
    assert read_route(custom, namespace)["spec"] == after["spec"]

    owned = dict(call, weight=10, match={"headers": [{"headers": {"x-canary": {"prefix": "insider"}}}]},
                 session_affinity={"cookie": "flagger-cookie=abc123", "primary_cookie": "primary-cookie=s1",
                                   "primary_max_age": 60})
    planned = run_module("httproute_weight", owned, check_mode=True, diff=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True and planned["diff"]["before_header"] == "HTTPRoute %s/%s rule 'api'" % (
        namespace, NAME)
    assert read_route(custom, namespace)["metadata"]["resourceVersion"] == \
        unmirrored["resource_version"], "check mode writes nothing"

    applied = run_module("httproute_weight", owned)
    assert not applied.get("failed"), applied.get("msg")
    assert {k: planned[k] for k in ("weights", "match", "session_affinity")} == \
        {k: applied[k] for k in ("weights", "match", "session_affinity")}
    live = read_route(custom, namespace)
    assert rule_names(live) == ["health", NAME + "-canary-match", NAME + "-canary-sticky", NAME + "-primary-sticky",
                                "api"]
    assert live["spec"]["rules"][1]["backendRefs"][0]["name"] == NAME + "-canary"
    assert applied["session_affinity"]["set_cookie"]["canary"] == "flagger-cookie=abc123; Max-Age=86400"
    # Written as the server stores it: a second run is a no-op.
    assert run_module("httproute_weight", owned)["changed"] is False

    ended = run_module("httproute_weight", dict(call, weight=0, match={"state": "absent"},
                                                session_affinity={"state": "absent"}))
    assert not ended.get("failed"), ended.get("msg")
    assert ended["session_affinity"]["state"] == "expiring"
    assert rule_names(read_route(custom, namespace)) == ["health", NAME + "-canary-sticky", "api"]
    gone = run_module("httproute_weight", dict(call, session_affinity={"state": "absent", "expire": False}))
    assert gone["changed"] is True
    final = read_route(custom, namespace)
    assert spec_without_weights(final) == spec_without_weights(created)


def test_refusals_name_the_reason_and_write_nothing(namespace, k8s_auth, custom):
    created = create_route(custom, namespace)
    call = dict(k8s_auth, name=NAME, namespace=namespace)
    refused = run_module("httproute_weight", dict(call, match={"headers": [{"sourceLabels": {"app": "web"}}]}))
    assert refused["failed"] is True and "not the workload that sends them" in refused["msg"]
    missing = run_module("httproute_weight", dict(call, rule="nope", weight=10))
    assert missing["failed"] is True and "no rule named 'nope'" in missing["msg"] and "'health'" in missing["msg"]
    assert read_route(custom, namespace)["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_the_lab_serves_both_versions_and_validates_as_the_gateway_api_crds_do(namespace, custom, version):
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    def route(name, rules):
        return {"apiVersion": "%s/%s" % (GROUP, version), "kind": "HTTPRoute", "metadata": {"name": name},
                "spec": {"parentRefs": [{"name": "public"}], "rules": rules}}

    created = custom.create_namespaced_custom_object(GROUP, version, namespace, "httproutes",
                                                     route("ok", [{"backendRefs": [backend("a", 1_000_000)]}]))
    assert created["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1_000_000
    refused = {
        "weight-too-big": [{"backendRefs": [backend("a", 1_000_001)]}],
        "negative-weight": [{"backendRefs": [backend("a", -1)]}],
        "too-many-rules": [{"backendRefs": [backend("a", 1)]}] * 17,
        "too-many-backends": [{"backendRefs": [backend("b%d" % i, 1) for i in range(17)]}],
    }
    for name, rules in refused.items():
        with pytest.raises(ApiException) as caught:
            custom.create_namespaced_custom_object(GROUP, version, namespace, "httproutes", route(name, rules))
        assert caught.value.status == 422, (name, caught.value.body)
