"""The cluster mirror lists Gateway API kinds at the version the API serves, and stays in sync without their CRDs."""

from __future__ import annotations

import json
import time

from werkzeug import Response

from lab.cluster.api import Api
from lab.cluster.mirror import ClusterMirror, Watched

GROUP = "gateway.networking.k8s.io"
ROUTE = {"apiVersion": f"{GROUP}/v1beta1", "kind": "HTTPRoute",
         "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "7"}, "spec": {"rules": []}}


def _wait(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _serve(httpserver):
    not_found = {"kind": "Status", "code": 404, "message": "the server could not find the requested resource"}
    httpserver.expect_request(f"/apis/{GROUP}/v1/httproutes").respond_with_json(not_found, status=404)

    def routes(request):
        if request.args.get("watch") == "true":
            # A watch that ends at once with nothing new: the mirror lists again, as after a server timeout.
            return Response("", status=200)
        return Response(json.dumps({"kind": "HTTPRouteList", "metadata": {"resourceVersion": "7"}, "items": [ROUTE]}),
                        status=200, content_type="application/json")
    httpserver.expect_request(f"/apis/{GROUP}/v1beta1/httproutes").respond_with_handler(routes)
    for version in ("v1", "v1beta1"):
        httpserver.expect_request(f"/apis/{GROUP}/{version}/gateways").respond_with_json(not_found, status=404)


def test_httproutes_are_listed_at_v1beta1_when_v1_is_not_served_and_absent_gateways_count_as_synced(httpserver):
    _serve(httpserver)
    resources = (Watched("httproutes", GROUP, ("v1", "v1beta1"), optional=True),
                 Watched("gateways", GROUP, ("v1", "v1beta1"), optional=True))
    mirror = ClusterMirror(lambda: Api(httpserver.url_for(""), "token", ca_cert=""), resources)
    mirror.start()
    try:
        _wait(mirror.synced)
        assert [r["metadata"]["name"] for r in mirror.list("httproutes")] == ["podinfo"]
        assert mirror.list("gateways") == []
    finally:
        mirror.stop()


def test_a_required_kind_without_a_served_version_keeps_the_mirror_out_of_sync(httpserver):
    _serve(httpserver)
    mirror = ClusterMirror(lambda: Api(httpserver.url_for(""), "token", ca_cert=""),
                           (Watched("gateways", GROUP, ("v1", "v1beta1")),))
    mirror.start()
    try:
        time.sleep(0.3)
        assert not mirror.synced()
    finally:
        mirror.stop()
