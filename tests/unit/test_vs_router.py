"""vs_router.py against a small but real HTTP API server: request count, 409 retries, v1beta1 fallback, errors.

The server keeps one VirtualService, bumps resourceVersion on every write and
refuses a PUT whose resourceVersion is stale with 409, as the API server does.
"""

from __future__ import annotations

import json
import re

import pytest
from werkzeug.wrappers import Response

from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import DestinationRef, RouteRequest
from ansible_collections.progressive.delivery.plugins.module_utils.routing.virtual_service import (
    RouterError,
    VirtualServiceRouter,
    is_kind_not_served,
    module_result,
    retry_delay,
)
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.routing.route_router import is_transient
from tests.support.kube_api import client_for, json_response, status_body

NS = "prod"


class FakeIstioApi:
    """Serves one VirtualService under the served API versions with optimistic concurrency."""

    def __init__(self, httpserver, served=("v1", "v1beta1")):
        self.served = served
        self.obj = {
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "backend", "namespace": NS, "resourceVersion": "1"},
            "spec": {"hosts": ["backend"], "http": [{"name": "main", "retries": {"attempts": 2},
                                                    "route": [{"destination": {"host": "backend-primary"}, "weight": 100},
                                                              {"destination": {"host": "backend-canary"}, "weight": 0}]}]},
        }
        self.calls = []
        self.conflicts_left = 0
        self.forbid_put = False
        self.writer_after_put = None
        httpserver.expect_request(
            re.compile(r"^/apis/networking\.istio\.io/\w+/namespaces/prod/virtualservices/\w+$")
        ).respond_with_handler(self.handle)

    def handle(self, request):
        version, name = request.path.split("/")[3], request.path.rsplit("/", 1)[1]
        self.calls.append((request.method, version))
        if version not in self.served:
            return Response("404 page not found\n", status=404, content_type="text/plain")
        if name != self.obj["metadata"]["name"]:
            return json_response(status_body(404, "NotFound", 'virtualservices.networking.istio.io "%s" not found' % name,
                                             name=name, group="networking.istio.io", kind="virtualservices"), 404)
        if request.method == "GET":
            return json_response(self.obj)
        if self.forbid_put:
            return json_response(status_body(403, "Forbidden", 'virtualservices.networking.istio.io "backend" is forbidden: '
                                             'User "viewer" cannot update resource "virtualservices"'), 403)
        body = json.loads(request.data)
        if self.conflicts_left:
            self.conflicts_left -= 1
            self.bump(self.obj)  # someone else wrote in between
        if body["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
            return json_response(status_body(409, "Conflict", "the object has been modified; please apply your changes to "
                                             "the latest version and try again"), 409)
        self.obj = body
        self.bump(self.obj)
        if self.writer_after_put:
            self.writer_after_put(self.obj)
            self.bump(self.obj)
        return json_response(self.obj)

    @staticmethod
    def bump(obj):
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)


@pytest.fixture
def api(httpserver):
    return FakeIstioApi(httpserver)


def make_router(httpserver, name="backend", sleeps=None, api_version=None):
    return VirtualServiceRouter(client_for(httpserver), name, NS, api_version=api_version,
                                sleep=(sleeps.append if sleeps is not None else lambda _s: None), rng=lambda: 0.5)


def request(**kwargs):
    return RouteRequest(name="backend", namespace=NS, primary=DestinationRef("backend-primary"),
                        canary=DestinationRef("backend-canary"), **kwargs)


def weights(obj):
    return [entry["weight"] for entry in obj["spec"]["http"][0]["route"]]


def test_change_costs_get_put_and_verifying_get(httpserver, api):
    router = make_router(httpserver)
    result = router.apply(request(weight=20))
    assert api.calls == [("GET", "v1"), ("PUT", "v1"), ("GET", "v1")]
    assert router.client.request_count == 3
    assert weights(api.obj) == [80, 20]
    assert result.written and result.attempts == 1
    assert result.resource_version == "2" and result.api_version == "networking.istio.io/v1"
    assert api.obj["spec"]["http"][0]["retries"] == {"attempts": 2}


def test_no_change_is_one_get(httpserver, api):
    router = make_router(httpserver)
    result = router.apply(request(weight=0))
    assert api.calls == [("GET", "v1")]
    assert not result.written and not result.edit.changed


def test_check_mode_reads_only_and_reports_the_plan(httpserver, api):
    router = make_router(httpserver)
    result = router.apply(request(weight=30), check_mode=True)
    assert api.calls == [("GET", "v1")]
    assert weights(api.obj) == [100, 0]
    output = module_result(result, "backend", NS, diff=True)
    assert output["changed"] is True and output["canary_weight"] == 30 and output["primary_weight"] == 70
    assert output["diff"]["before"]["route"]["route"][1]["weight"] == 0
    assert output["diff"]["after"]["route"]["route"][1]["weight"] == 30
    assert output["api_version"] == "networking.istio.io/v1"
    assert output["diff"]["before_header"] == "VirtualService prod/backend route 'main'"


def test_conflicts_are_retried_with_backoff(httpserver, api):
    api.conflicts_left = 2
    sleeps = []
    router = make_router(httpserver, sleeps=sleeps)
    result = router.apply(request(weight=40))
    assert [c[0] for c in api.calls] == ["GET", "PUT", "GET", "PUT", "GET", "PUT", "GET"]
    assert result.attempts == 3 and weights(api.obj) == [60, 40]
    assert sleeps == [0.5 * 0.05, 0.5 * 0.1]


def test_conflicts_beyond_max_retries_fail_with_a_reason(httpserver, api):
    api.conflicts_left = 10
    router = make_router(httpserver)
    with pytest.raises(RouterError) as caught:
        router.apply(request(weight=40), max_retries=2)
    assert "3 writes in a row were refused with HTTP 409 Conflict" in caught.value.message
    assert "VirtualService prod/backend" in caught.value.message
    assert [c[0] for c in api.calls].count("PUT") == 3


def test_v1beta1_fallback_when_v1_is_not_served(httpserver):
    api = FakeIstioApi(httpserver, served=("v1beta1",))
    router = make_router(httpserver)
    result = router.apply(request(weight=10))
    assert api.calls == [("GET", "v1"), ("GET", "v1beta1"), ("PUT", "v1beta1"), ("GET", "v1beta1")]
    assert result.api_version == "networking.istio.io/v1beta1" and weights(api.obj) == [90, 10]


def test_a_given_api_version_is_used_with_no_discovery(httpserver):
    api = FakeIstioApi(httpserver, served=("v1beta1",))
    router = make_router(httpserver, api_version="networking.istio.io/v1beta1")
    result = router.apply(request(weight=10))
    assert api.calls == [("GET", "v1beta1"), ("PUT", "v1beta1"), ("GET", "v1beta1")]
    assert result.api_version == "networking.istio.io/v1beta1" and weights(api.obj) == [90, 10]


def test_a_given_api_version_the_cluster_does_not_serve_is_not_a_fallback(httpserver):
    api = FakeIstioApi(httpserver, served=("v1beta1",))
    with pytest.raises(RouterError) as caught:
        make_router(httpserver, api_version="networking.istio.io/v1").apply(request(weight=10))
    assert "does not serve VirtualServices as networking.istio.io/v1 (api_version)" in caught.value.message
    assert api.calls == [("GET", "v1")]


def test_every_version_the_collection_speaks_is_tried_newest_first(httpserver):
    api = FakeIstioApi(httpserver, served=("v1alpha3",))
    result = make_router(httpserver).apply(request())
    assert api.calls == [("GET", "v1"), ("GET", "v1beta1"), ("GET", "v1alpha3")]
    assert result.api_version == "networking.istio.io/v1alpha3"


def test_no_istio_api_at_all(httpserver):
    FakeIstioApi(httpserver, served=())
    with pytest.raises(RouterError, match="serves no VirtualService API") as caught:
        make_router(httpserver).apply(request())
    assert "networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3" in caught.value.message


def test_missing_virtual_service_is_not_a_fallback(httpserver, api):
    with pytest.raises(RouterError) as caught:
        make_router(httpserver, name="other").apply(request(weight=10))
    assert "VirtualService prod/other not found" in caught.value.message
    assert api.calls == [("GET", "v1")]


def test_forbidden_names_the_permission(httpserver, api):
    api.forbid_put = True
    with pytest.raises(RouterError) as caught:
        make_router(httpserver).apply(request(weight=10))
    message = caught.value.message
    assert "Permission denied to update VirtualService prod/backend" in message
    assert "'virtualservices.networking.istio.io' in namespace prod" in message
    assert "verbs: [get, update]" in message


def test_a_writer_right_after_us_fails_verification(httpserver, api):
    def revert(obj):
        obj["spec"]["http"][0]["route"][0]["weight"] = 100
        obj["spec"]["http"][0]["route"][1]["weight"] = 0
    api.writer_after_put = revert
    with pytest.raises(RouterError, match="does not hold the requested state"):
        make_router(httpserver).apply(request(weight=10))


def test_kind_not_served_is_told_apart_from_object_missing():
    assert is_kind_not_served(KubeApiError(404, "NotFound", "404 page not found"))
    assert is_kind_not_served(KubeApiError(404, "NotFound", "the server could not find the requested resource",
                                           body=status_body(404, "NotFound", "x")))
    assert not is_kind_not_served(KubeApiError(404, "NotFound", "not found", body=status_body(404, "NotFound", "x", name="b")))
    assert not is_kind_not_served(KubeApiError(403, "Forbidden", "no"))


def test_retry_delay_grows_and_is_capped():
    assert [retry_delay(n, lambda: 1.0) for n in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert retry_delay(3, lambda: 0.0) == 0.0


def test_session_affinity_round_trip_writes_once_and_verifies(httpserver, api):
    from ansible_collections.progressive.delivery.plugins.module_utils.routing.sticky import session_affinity_from_params

    affinity = session_affinity_from_params({"state": "present", "cookie": "flagger-cookie=a1b2c3", "max_age": 600})
    router = make_router(httpserver)
    result = router.apply(request(weight=10, session_affinity=affinity))
    assert api.calls == [("GET", "v1"), ("PUT", "v1"), ("GET", "v1")]
    assert [route.get("name") for route in api.obj["spec"]["http"]] == ["backend-canary-sticky", "main"]
    output = module_result(result, "backend", NS)
    assert output["session_affinity"]["state"] == "present"
    assert output["session_affinity"]["set_cookie"]["canary"] == "flagger-cookie=a1b2c3; Max-Age=600"

    again = make_router(httpserver).apply(request(weight=10, session_affinity=affinity))
    assert not again.written and not again.edit.changed


class FlakyIstioApi(FakeIstioApi):
    """Fails the first requests of one method with a server-side error, then behaves."""

    def __init__(self, httpserver, method, failures, status=503):
        self.failing = {"method": method, "left": failures, "status": status}
        super().__init__(httpserver)

    def handle(self, request):
        if request.method == self.failing["method"] and self.failing["left"]:
            self.failing["left"] -= 1
            self.calls.append((request.method, "failed"))
            return json_response(status_body(self.failing["status"], "ServiceUnavailable", "etcdserver: leader changed"),
                                 self.failing["status"])
        return super().handle(request)


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_transient_server_errors_are_sent_again_with_growing_pauses(httpserver, method):
    api = FlakyIstioApi(httpserver, method, failures=2)
    sleeps = []
    router = make_router(httpserver, sleeps=sleeps)
    result = router.apply(request(weight=30))
    assert weights(api.obj) == [70, 30] and result.written
    assert [call for call in api.calls if call[1] == "failed"] == [(method, "failed")] * 2
    assert sleeps == [0.2 * 0.75, 0.4 * 0.75] and router.transient_failures == 2


def test_a_server_that_keeps_failing_is_reported_after_a_bounded_number_of_tries(httpserver):
    api = FlakyIstioApi(httpserver, "PUT", failures=100, status=500)
    router = make_router(httpserver, sleeps=[])
    with pytest.raises(RouterError, match="HTTP 500 .* sent 5 times over a few seconds"):
        router.apply(request(weight=30))
    assert [call for call in api.calls if call[1] == "failed"] == [("PUT", "failed")] * 5
    assert weights(api.obj) == [100, 0]


def test_a_client_error_is_not_sent_again(httpserver, api):
    api.forbid_put = True
    router = make_router(httpserver, sleeps=[])
    with pytest.raises(RouterError, match="Permission denied"):
        router.apply(request(weight=30))
    assert [c[0] for c in api.calls].count("PUT") == 1 and router.transient_failures == 0


def test_what_counts_as_transient():
    assert is_transient(KubeApiError(None, "ConnectionError", "timed out"))
    assert all(is_transient(KubeApiError(code, "", "")) for code in (429, 500, 502, 503, 504))
    assert not any(is_transient(KubeApiError(code, "", "")) for code in (400, 403, 404, 409, 422))
