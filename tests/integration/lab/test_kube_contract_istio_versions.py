"""Serving networking.istio.io at fewer versions, as an Istio older than 1.22 does (v1beta1, no v1).

The served versions are a KubeAPIServer argument and can be switched on a
running lab with PUT /lab/v1/istio-versions (admin token). A path of an
unserved version answers what a real API server answers for any unknown
resource path: a NotFound Status with empty details, naming no object.
"""
from __future__ import annotations

import json
import pathlib

import pytest

from lab.kube.server import KubeAPIServer
from lab.store import Store

kubernetes = pytest.importorskip("kubernetes")
ApiException = kubernetes.client.ApiException

ISTIO = "networking.istio.io"
UNKNOWN_PATH = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource", "reason": "NotFound", "details": {},
                "code": 404}


def virtual_service(name: str, version: str) -> dict:
    return {"apiVersion": f"{ISTIO}/{version}", "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name}, "weight": 100}]}]}}


def served_istio_versions(session, url: str) -> list[str]:
    group = session.get(f"{url}/apis/{ISTIO}")
    assert group.status_code == 200
    return [entry["version"] for entry in group.json()["versions"]]


@pytest.fixture()
def switch_istio_versions(kube_lab):
    """Switch the served Istio versions; the defaults come back after the test whatever happens."""
    session = kube_lab.session()
    endpoint = f"{kube_lab.url}/lab/v1/istio-versions"
    before = session.get(endpoint)
    assert before.status_code == 200 and before.json() == {"versions": ["v1", "v1beta1"]}

    def switch(versions: list[str]) -> None:
        response = session.put(endpoint, json={"versions": versions})
        assert response.status_code == 200 and response.json() == {"versions": versions}

    yield switch
    restored = session.put(endpoint, json={"versions": ["v1", "v1beta1"]})
    assert restored.status_code == 200


def test_switching_to_v1beta1_only_hides_v1_and_switching_back_restores_it(kube_lab, custom, ns,
                                                                           switch_istio_versions):
    session = kube_lab.session()
    custom.create_namespaced_custom_object(ISTIO, "v1", ns, "virtualservices", virtual_service("api", "v1"))
    v1_paths = [f"/apis/{ISTIO}/v1", f"/apis/{ISTIO}/v1/namespaces/{ns}/virtualservices",
                f"/apis/{ISTIO}/v1/namespaces/{ns}/virtualservices/api",
                f"/apis/{ISTIO}/v1/namespaces/{ns}/virtualservices/missing", f"/apis/{ISTIO}/v1/virtualservices"]

    switch_istio_versions(["v1beta1"])

    group = session.get(f"{kube_lab.url}/apis/{ISTIO}").json()
    assert group["versions"] == [{"groupVersion": f"{ISTIO}/v1beta1", "version": "v1beta1"}]
    assert group["preferredVersion"] == {"groupVersion": f"{ISTIO}/v1beta1", "version": "v1beta1"}
    listed = {entry["name"]: entry for entry in session.get(f"{kube_lab.url}/apis").json()["groups"]}
    assert [entry["version"] for entry in listed[ISTIO]["versions"]] == ["v1beta1"]
    for path in v1_paths:
        response = session.get(kube_lab.url + path)
        assert (response.status_code, response.json()) == (404, UNKNOWN_PATH), path
    written = session.put(f"{kube_lab.url}/apis/{ISTIO}/v1/namespaces/{ns}/virtualservices/api",
                          json=virtual_service("api", "v1"))
    assert (written.status_code, written.json()) == (404, UNKNOWN_PATH)
    with pytest.raises(ApiException) as caught:
        custom.get_namespaced_custom_object(ISTIO, "v1", ns, "virtualservices", "api")
    assert caught.value.status == 404 and "name" not in json.loads(caught.value.body)["details"]

    # The object itself is untouched: v1beta1 serves it, and writes at v1beta1 work.
    at_v1beta1 = custom.get_namespaced_custom_object(ISTIO, "v1beta1", ns, "virtualservices", "api")
    assert at_v1beta1["apiVersion"] == f"{ISTIO}/v1beta1"
    at_v1beta1["spec"]["hosts"] = ["api", "api.example.com"]
    custom.replace_namespaced_custom_object(ISTIO, "v1beta1", ns, "virtualservices", "api", at_v1beta1)
    resources = session.get(f"{kube_lab.url}/apis/{ISTIO}/v1beta1").json()
    assert {"virtualservices", "destinationrules"} <= {entry["name"] for entry in resources["resources"]}

    # A missing object at a served version still names the object, which is how clients tell the two apart.
    missing = session.get(f"{kube_lab.url}/apis/{ISTIO}/v1beta1/namespaces/{ns}/virtualservices/missing")
    assert missing.status_code == 404 and missing.json()["details"]["name"] == "missing"

    switch_istio_versions(["v1", "v1beta1"])

    assert served_istio_versions(session, kube_lab.url) == ["v1", "v1beta1"]
    at_v1 = custom.get_namespaced_custom_object(ISTIO, "v1", ns, "virtualservices", "api")
    assert at_v1["apiVersion"] == f"{ISTIO}/v1" and at_v1["spec"]["hosts"] == ["api", "api.example.com"]


@pytest.mark.parametrize("body", [{"versions": []}, {"versions": ["v2"]}, {"versions": "v1beta1"},
                                  {"versions": ["v1beta1", "v1beta1"]}, {"served": ["v1"]}, ["v1"]])
def test_invalid_istio_versions_are_refused_with_bad_request(kube_lab, body):
    session = kube_lab.session()
    response = session.put(f"{kube_lab.url}/lab/v1/istio-versions", json=body)
    assert response.status_code == 400
    status = response.json()
    assert status["kind"] == "Status" and status["reason"] == "BadRequest" and status["code"] == 400
    assert "Istio versions" in status["message"]
    assert served_istio_versions(session, kube_lab.url) == ["v1", "v1beta1"]


def test_switching_istio_versions_needs_the_admin_token(kube_lab):
    endpoint = f"{kube_lab.url}/lab/v1/istio-versions"
    refused = kube_lab.session("readonly").put(endpoint, json={"versions": ["v1beta1"]})
    assert refused.status_code == 403 and refused.json()["reason"] == "Forbidden"
    anonymous = kube_lab.session(None).put(endpoint, json={"versions": ["v1beta1"]})
    assert anonymous.status_code == 401 and anonymous.json()["reason"] == "Unauthorized"
    wrong_method = kube_lab.session().post(endpoint, json={"versions": ["v1beta1"]})
    assert wrong_method.status_code == 405 and wrong_method.json()["reason"] == "MethodNotAllowed"
    assert served_istio_versions(kube_lab.session(), kube_lab.url) == ["v1", "v1beta1"]


def test_a_server_started_with_v1beta1_only_serves_only_v1beta1(tmp_path: pathlib.Path):
    with pytest.raises(ValueError):
        KubeAPIServer(Store(), tmp_path / "bad", istio_versions=("v1", "v2"))
    server = KubeAPIServer(Store(), tmp_path / "old-istio", istio_versions=("v1beta1",))
    server.start()
    try:
        client = kubernetes.config.new_client_from_config(str(server.kubeconfig_path))
        dynamic = kubernetes.dynamic.DynamicClient(client)
        assert dynamic.resources.get(group=ISTIO, kind="VirtualService").api_version == "v1beta1"
        with pytest.raises(kubernetes.dynamic.exceptions.ResourceNotFoundError):
            dynamic.resources.get(api_version=f"{ISTIO}/v1", kind="VirtualService")
        custom = kubernetes.client.CustomObjectsApi(client)
        created = custom.create_namespaced_custom_object(ISTIO, "v1beta1", "default", "virtualservices",
                                                         virtual_service("api", "v1beta1"))
        assert created["apiVersion"] == f"{ISTIO}/v1beta1"
        with pytest.raises(ApiException) as caught:
            custom.create_namespaced_custom_object(ISTIO, "v1", "default", "virtualservices",
                                                   virtual_service("web", "v1"))
        assert caught.value.status == 404 and json.loads(caught.value.body) == UNKNOWN_PATH
        client.close()
    finally:
        server.stop()
