"""HTTPRouteRouter against a small but real HTTP API server: request count, 409 retries, v1beta1 fallback, errors.

The server keeps one HTTPRoute, bumps resourceVersion on every write, refuses
a PUT with a stale resourceVersion with 409 and, like a cluster whose CRDs
predate Gateway API v1.2, can prune requestMirror.percent.
"""

from __future__ import annotations

import json
import re

import pytest
from werkzeug.wrappers import Response

from ansible_collections.progressive.delivery.plugins.module_utils.routing.http_route import (
    HTTPRouteRouter,
    RouterError,
    httproute_request_from_params,
    module_result,
)
from tests.support.kube_api import client_for, json_response, status_body

NS = "prod"


class FakeGatewayApi:
    def __init__(self, httpserver, served=("v1", "v1beta1")):
        self.served = served
        self.obj = {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "backend", "namespace": NS, "resourceVersion": "1"},
            "spec": {"parentRefs": [{"name": "public"}], "rules": [{"name": "main", "timeouts": {"request": "5s"},
                     "backendRefs": [{"name": "backend-primary", "port": 80, "weight": 100},
                                     {"name": "backend-canary", "port": 80, "weight": 0}]}]},
        }
        self.calls = []
        self.conflicts_left = 0
        self.forbid_put = False
        self.prune_percent = False
        httpserver.expect_request(
            re.compile(r"^/apis/gateway\.networking\.k8s\.io/\w+/namespaces/prod/httproutes/\w+$")
        ).respond_with_handler(self.handle)

    def handle(self, request):
        version, name = request.path.split("/")[3], request.path.rsplit("/", 1)[1]
        self.calls.append((request.method, version))
        if version not in self.served:
            return Response("404 page not found\n", status=404, content_type="text/plain")
        if name != self.obj["metadata"]["name"]:
            return json_response(status_body(404, "NotFound", 'httproutes.gateway.networking.k8s.io "%s" not found'
                                             % name, name=name, group="gateway.networking.k8s.io",
                                             kind="httproutes"), 404)
        if request.method == "GET":
            return json_response(self.obj)
        if self.forbid_put:
            return json_response(status_body(403, "Forbidden", 'httproutes.gateway.networking.k8s.io "backend" is '
                                             'forbidden: User "viewer" cannot update resource "httproutes"'), 403)
        body = json.loads(request.data)
        if self.conflicts_left:
            self.conflicts_left -= 1
            self.bump(self.obj)
        if body["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
            return json_response(status_body(409, "Conflict", "the object has been modified; please apply your "
                                             "changes to the latest version and try again"), 409)
        if self.prune_percent:
            for rule in body["spec"]["rules"]:
                for filter_ in rule.get("filters") or []:
                    (filter_.get("requestMirror") or {}).pop("percent", None)
        self.obj = body
        self.bump(self.obj)
        return json_response(self.obj)

    @staticmethod
    def bump(obj):
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)


@pytest.fixture
def api(httpserver):
    return FakeGatewayApi(httpserver)


def make_router(httpserver, name="backend", sleeps=None, api_version=None):
    return HTTPRouteRouter(client_for(httpserver), name, NS, api_version=api_version,
                           sleep=(sleeps.append if sleeps is not None else lambda _s: None), rng=lambda: 0.5)


def request(**params):
    return httproute_request_from_params(dict({"name": "backend", "namespace": NS}, **params))


def weights(obj):
    return [entry["weight"] for entry in obj["spec"]["rules"][-1]["backendRefs"]]


def test_change_costs_get_put_and_verifying_get(httpserver, api):
    router = make_router(httpserver)
    result = router.apply(request(weight=20))
    assert api.calls == [("GET", "v1"), ("PUT", "v1"), ("GET", "v1")]
    assert weights(api.obj) == [80, 20] and api.obj["spec"]["rules"][0]["timeouts"] == {"request": "5s"}
    assert result.written and result.attempts == 1
    assert result.resource_version == "2" and result.api_version == "gateway.networking.k8s.io/v1"


def test_no_change_is_one_get_and_check_mode_writes_nothing(httpserver, api):
    router = make_router(httpserver)
    assert not router.apply(request(weight=0)).written
    result = router.apply(request(weight=30), check_mode=True)
    assert api.calls == [("GET", "v1"), ("GET", "v1")] and weights(api.obj) == [100, 0]
    output = module_result(result, "backend", NS, diff=True)
    assert output["changed"] is True and output["canary_weight"] == 30 and output["primary_weight"] == 70
    assert output["diff"]["before"]["rule"]["backendRefs"][1]["weight"] == 0
    assert output["diff"]["after"]["rule"]["backendRefs"][1]["weight"] == 30
    assert output["diff"]["before_header"] == "HTTPRoute prod/backend rule 'main'"


def test_conflicts_are_retried_with_backoff(httpserver, api):
    api.conflicts_left = 2
    sleeps = []
    result = make_router(httpserver, sleeps=sleeps).apply(request(weight=40))
    assert [c[0] for c in api.calls] == ["GET", "PUT", "GET", "PUT", "GET", "PUT", "GET"]
    assert result.attempts == 3 and weights(api.obj) == [60, 40]
    assert sleeps == [0.5 * 0.05, 0.5 * 0.1]


def test_conflicts_beyond_max_retries_fail_with_a_reason(httpserver, api):
    api.conflicts_left = 10
    with pytest.raises(RouterError) as caught:
        make_router(httpserver).apply(request(weight=40), max_retries=2)
    assert "HTTPRoute prod/backend kept changing under us: 3 writes in a row" in caught.value.message


def test_v1beta1_fallback_when_v1_is_not_served(httpserver):
    api = FakeGatewayApi(httpserver, served=("v1beta1",))
    result = make_router(httpserver).apply(request(weight=10))
    assert api.calls == [("GET", "v1"), ("GET", "v1beta1"), ("PUT", "v1beta1"), ("GET", "v1beta1")]
    assert result.api_version == "gateway.networking.k8s.io/v1beta1" and weights(api.obj) == [90, 10]


def test_a_given_api_version_is_used_with_no_discovery_and_not_a_fallback(httpserver):
    api = FakeGatewayApi(httpserver, served=("v1beta1",))
    make_router(httpserver, api_version="gateway.networking.k8s.io/v1beta1").apply(request(weight=10))
    assert api.calls == [("GET", "v1beta1"), ("PUT", "v1beta1"), ("GET", "v1beta1")]
    with pytest.raises(RouterError, match="does not serve HTTPRoutes as gateway.networking.k8s.io/v1"):
        make_router(httpserver, api_version="gateway.networking.k8s.io/v1").apply(request())


def test_no_gateway_api_at_all(httpserver):
    FakeGatewayApi(httpserver, served=())
    with pytest.raises(RouterError, match="serves no HTTPRoute API .*install the Gateway API CRDs"):
        make_router(httpserver).apply(request())


def test_missing_route_is_not_a_fallback(httpserver, api):
    with pytest.raises(RouterError, match="HTTPRoute prod/other not found .*never creates one"):
        make_router(httpserver, name="other").apply(request(weight=10))
    assert api.calls == [("GET", "v1")]


def test_forbidden_names_the_permission(httpserver, api):
    api.forbid_put = True
    with pytest.raises(RouterError) as caught:
        make_router(httpserver).apply(request(weight=10))
    message = caught.value.message
    assert message.startswith("Permission denied to update HTTPRoute prod/backend (HTTP 403 Forbidden")
    assert "'httproutes.gateway.networking.k8s.io' in namespace prod" in message
    assert "apiGroups: [gateway.networking.k8s.io], resources: [httproutes], verbs: [get, update]" in message


def test_pruned_mirror_percent_is_explained(httpserver, api):
    api.prune_percent = True
    with pytest.raises(RouterError, match="dropped requestMirror.percent/fraction: its Gateway API CRDs predate v1.2"):
        make_router(httpserver).apply(request(mirror={"enabled": True, "percentage": 50}))


def test_edit_errors_become_router_errors(httpserver, api):
    with pytest.raises(RouterError, match="HTTPRoute prod/backend: no rule named 'nope'"):
        make_router(httpserver).apply(request(rule="nope"))
