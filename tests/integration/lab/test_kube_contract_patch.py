"""PATCH contract of the emulated API server: merge, JSON and strategic merge patches."""
from __future__ import annotations

import json

import pytest

kubernetes = pytest.importorskip("kubernetes")

ISTIO = "networking.istio.io"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def deployment(name: str) -> dict:
    labels = {"app": name}
    return {"metadata": {"name": name}, "spec": {
        "replicas": 1, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [
            {"name": "app", "image": "podinfo:6.7.0", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 9898, "name": "http"}]},
            {"name": "sidecar", "image": "envoy:1"}]}}}}


def patch(kube_lab, path: str, body: object, content_type: str):
    return kube_lab.session().patch(f"{kube_lab.url}{path}", data=json.dumps(body),
                                    headers={"Content-Type": content_type})


def assert_status(response, code: int, reason: str) -> dict:
    assert response.status_code == code, response.text
    body = response.json()
    assert (body["kind"], body["apiVersion"], body["status"], body["code"], body["reason"]) == (
        "Status", "v1", "Failure", code, reason)
    return body


@pytest.fixture()
def configmap_path(core, ns) -> str:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm", "labels": {"keep": "yes", "drop": "yes"}},
                                           "data": {"a": "1", "b": "2"}})
    return f"/api/v1/namespaces/{ns}/configmaps/cm"


def test_merge_patch_sets_and_removes_keys(kube_lab, configmap_path):
    response = patch(kube_lab, configmap_path, {"metadata": {"labels": {"drop": None, "new": "x"}},
                                                "data": {"a": None, "c": "3"}}, MERGE)
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"]["labels"] == {"keep": "yes", "new": "x"} and body["data"] == {"b": "2", "c": "3"}


def test_merge_patch_with_stale_resource_version_conflicts(kube_lab, core, configmap_path, ns):
    stale = core.read_namespaced_config_map("cm", ns).metadata.resource_version
    core.patch_namespaced_config_map("cm", ns, {"data": {"a": "changed"}})
    body = assert_status(patch(kube_lab, configmap_path, {"metadata": {"resourceVersion": stale}, "data": {"a": "x"}},
                               MERGE), 409, "Conflict")
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "cm"')
    assert core.read_namespaced_config_map("cm", ns).data["a"] == "changed"


def test_json_patch_operations(kube_lab, configmap_path):
    response = patch(kube_lab, configmap_path, [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "add", "path": "/data/c", "value": "3"},
        {"op": "remove", "path": "/data/b"},
        {"op": "replace", "path": "/data/a", "value": "one"},
        {"op": "copy", "from": "/data/a", "path": "/data/d"},
        {"op": "move", "from": "/data/c", "path": "/data/e"},
        {"op": "add", "path": "/metadata/labels/x~1y", "value": "slash"},
    ], JSON_PATCH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"a": "one", "d": "one", "e": "3"}
    assert body["metadata"]["labels"]["x/y"] == "slash"


def test_json_patch_failed_test_is_invalid_and_changes_nothing(kube_lab, core, configmap_path, ns):
    before = core.read_namespaced_config_map("cm", ns)
    body = assert_status(patch(kube_lab, configmap_path, [{"op": "replace", "path": "/data/a", "value": "x"},
                                                          {"op": "test", "path": "/data/b", "value": "nope"}],
                               JSON_PATCH), 422, "Invalid")
    assert "test" in body["message"]
    after = core.read_namespaced_config_map("cm", ns)
    assert after.data == before.data and after.metadata.resource_version == before.metadata.resource_version


def test_json_patch_test_on_resource_version_guards_a_write(kube_lab, core, configmap_path, ns):
    current = core.read_namespaced_config_map("cm", ns).metadata.resource_version
    guarded = [{"op": "test", "path": "/metadata/resourceVersion", "value": current},
               {"op": "replace", "path": "/data/a", "value": "guarded"}]
    assert patch(kube_lab, configmap_path, guarded, JSON_PATCH).status_code == 200
    assert_status(patch(kube_lab, configmap_path, guarded, JSON_PATCH), 422, "Invalid")


def test_json_patch_missing_path_and_malformed_body(kube_lab, configmap_path):
    assert_status(patch(kube_lab, configmap_path, [{"op": "remove", "path": "/data/zzz"}], JSON_PATCH), 422, "Invalid")
    assert_status(patch(kube_lab, configmap_path, {"data": {"a": "x"}}, JSON_PATCH), 400, "BadRequest")


def test_strategic_merge_merges_containers_env_and_ports_by_key(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("web"))
    patched = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "podinfo:6.8.0", "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
         "ports": [{"containerPort": 9797, "name": "metrics"}]}]}}}})
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"app", "sidecar"}
    assert containers["app"].image == "podinfo:6.8.0"
    assert [(e.name, e.value) for e in containers["app"].env] == [("A", "1"), ("B", "two"), ("C", "3")]
    assert sorted(p.container_port for p in containers["app"].ports) == [9797, 9898]
    assert patched.metadata.generation == 2


def test_strategic_merge_delete_and_replace_directives(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("web"))
    deleted = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "$patch": "delete"},
        {"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}}}})
    containers = deleted.spec.template.spec.containers
    assert [c.name for c in containers] == ["app"] and [e.name for e in containers[0].env] == ["B"]
    replaced = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "x:1"}, {"$patch": "replace"}]}}}})
    assert [c.name for c in replaced.spec.template.spec.containers] == ["only"]


def test_strategic_merge_on_service_ports_uses_port_as_key(core, ns):
    core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 9898}]}})
    patched = core.patch_namespaced_service("web", ns, {"spec": {"ports": [
        {"name": "grpc", "port": 9999, "targetPort": 9999}]}})
    assert sorted(p.port for p in patched.spec.ports) == [80, 9999]
    assert patched.spec.cluster_ip == core.read_namespaced_service("web", ns).spec.cluster_ip


def test_strategic_merge_on_custom_resources_is_unsupported_media_type(kube_lab, custom, ns):
    custom.create_namespaced_custom_object(ISTIO, "v1", ns, "virtualservices", {
        "apiVersion": f"{ISTIO}/v1", "kind": "VirtualService", "metadata": {"name": "api"}, "spec": {"hosts": ["api"]}})
    path = f"/apis/{ISTIO}/v1beta1/namespaces/{ns}/virtualservices/api"
    body = assert_status(patch(kube_lab, path, {"spec": {"hosts": ["x"]}}, STRATEGIC), 415, "UnsupportedMediaType")
    assert STRATEGIC not in body["message"] and MERGE in body["message"]
    merged = patch(kube_lab, path, {"spec": {"gateways": ["mesh"]}}, MERGE)
    assert merged.status_code == 200 and merged.json()["spec"] == {"hosts": ["api"], "gateways": ["mesh"]}
    assert merged.json()["metadata"]["generation"] == 2


def test_unknown_patch_types_are_unsupported_media_type(kube_lab, configmap_path):
    assert_status(patch(kube_lab, configmap_path, {"data": {}}, "application/json"), 415, "UnsupportedMediaType")
    assert_status(patch(kube_lab, configmap_path, {"data": {}}, "application/apply-patch+yaml"), 415,
                  "UnsupportedMediaType")


def test_patch_of_missing_object_is_not_found(kube_lab, ns):
    body = assert_status(patch(kube_lab, f"/api/v1/namespaces/{ns}/configmaps/ghost", {"data": {}}, MERGE), 404,
                         "NotFound")
    assert body["message"] == 'configmaps "ghost" not found'


def test_patch_cannot_change_identity_or_status_of_main_resource(kube_lab, apps, ns):
    apps.create_namespaced_deployment(ns, deployment("web"))
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    assert_status(patch(kube_lab, path, {"metadata": {"name": "other"}}, MERGE), 400, "BadRequest")
    ignored = patch(kube_lab, path, {"status": {"replicas": 42}}, MERGE)
    assert ignored.status_code == 200 and ignored.json()["status"].get("replicas") != 42
    assert ignored.json()["metadata"]["generation"] == 1
