"""DELETE answers as the API server's storage of each resource does.

Storage that returns the deleted object (services, pods, namespaces) answers
it; the others (config maps, secrets, events, deployments, leases, HPAs and
every custom resource) answer a Status Success whose details name the
resource, not the kind. An object that finalizers keep alive is answered as
it now is, with metadata.deletionTimestamp, whatever the resource. The typed
client's delete_namespaced_* calls must parse each answer.
"""
from __future__ import annotations

import json

import pytest

kubernetes = pytest.importorskip("kubernetes")
ApiException = kubernetes.client.ApiException

ISTIO = "networking.istio.io"
HOLD = "lab.progressive.delivery/hold"


def deployment(name: str) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.7.0"}]}}}}


# (typed API class, create method, delete method, body, group of the Status details, resource plural)
STATUS_ANSWERS = [
    ("CoreV1Api", "create_namespaced_config_map", "delete_namespaced_config_map",
     {"metadata": {"name": "gone"}, "data": {"k": "v"}}, "", "configmaps"),
    ("CoreV1Api", "create_namespaced_secret", "delete_namespaced_secret",
     {"metadata": {"name": "gone"}, "stringData": {"k": "v"}}, "", "secrets"),
    ("CoreV1Api", "create_namespaced_event", "delete_namespaced_event",
     {"metadata": {"name": "gone"}, "involvedObject": {"kind": "Deployment", "name": "web"},
      "reason": "Synced", "message": "synced", "type": "Normal"}, "", "events"),
    ("AppsV1Api", "create_namespaced_deployment", "delete_namespaced_deployment", deployment("gone"), "apps",
     "deployments"),
    ("CoordinationV1Api", "create_namespaced_lease", "delete_namespaced_lease",
     {"metadata": {"name": "gone"}, "spec": {"holderIdentity": "runner", "leaseDurationSeconds": 30}},
     "coordination.k8s.io", "leases"),
    ("AutoscalingV2Api", "create_namespaced_horizontal_pod_autoscaler",
     "delete_namespaced_horizontal_pod_autoscaler",
     {"metadata": {"name": "gone"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                "name": "web"}, "minReplicas": 1, "maxReplicas": 3}},
     "autoscaling", "horizontalpodautoscalers"),
]


@pytest.mark.parametrize("api_class,create,delete,body,group,plural", STATUS_ANSWERS,
                         ids=[row[-1] for row in STATUS_ANSWERS])
def test_typed_delete_of_status_resources_answers_status_success(api_client, ns, api_class, create, delete, body,
                                                                 group, plural):
    api = getattr(kubernetes.client, api_class)(api_client)
    created = getattr(api, create)(ns, body)
    answer, code, _headers = getattr(api, delete + "_with_http_info")("gone", ns)
    details = {"name": "gone", "kind": plural, "uid": created.metadata.uid}
    if group:
        details["group"] = group
    assert code == 200
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
    with pytest.raises(ApiException) as gone:
        getattr(api, delete)("gone", ns)
    assert gone.value.status == 404 and json.loads(gone.value.body)["reason"] == "NotFound"


def test_typed_delete_of_a_service_answers_the_service(api_client, ns):
    core = kubernetes.client.CoreV1Api(api_client)
    created = core.create_namespaced_service(ns, {"metadata": {"name": "backend"},
                                                  "spec": {"selector": {"app": "backend"},
                                                           "ports": [{"name": "http", "port": 80}]}})
    answer, code, _headers = core.delete_namespaced_service_with_http_info("backend", ns)
    assert code == 200
    assert isinstance(answer, kubernetes.client.V1Service)
    assert answer.kind == "Service" and answer.api_version == "v1"
    assert answer.metadata.name == "backend" and answer.metadata.uid == created.metadata.uid
    assert answer.metadata.deletion_timestamp is None
    assert answer.spec.cluster_ip == created.spec.cluster_ip
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_service("backend", ns)
    assert gone.value.status == 404


def test_delete_of_a_custom_resource_answers_status_success(kube_lab, custom, ns):
    vs = {"apiVersion": f"{ISTIO}/v1", "kind": "VirtualService", "metadata": {"name": "api"},
          "spec": {"hosts": ["api"], "http": [{"route": [{"destination": {"host": "api"}}]}]}}
    created = custom.create_namespaced_custom_object(ISTIO, "v1", ns, "virtualservices", vs)
    response = kube_lab.session().delete(f"{kube_lab.url}/apis/{ISTIO}/v1beta1/namespaces/{ns}/virtualservices/api")
    assert response.status_code == 200
    assert response.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                               "details": {"name": "api", "group": ISTIO, "kind": "virtualservices",
                                           "uid": created["metadata"]["uid"]}}


def test_delete_of_a_namespace_answers_the_terminating_namespace(api_client):
    core = kubernetes.client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": "delete-answer"}})
    answer, code, _headers = core.delete_namespace_with_http_info("delete-answer")
    assert code == 200
    assert answer["kind"] == "Namespace" and answer["apiVersion"] == "v1"
    assert answer["metadata"]["name"] == "delete-answer" and answer["metadata"]["deletionTimestamp"]
    assert answer["status"]["phase"] == "Terminating"


def test_dry_run_delete_answers_like_a_real_delete_and_keeps_the_object(kube_lab, api_client, ns):
    core = kubernetes.client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map(ns, {"metadata": {"name": "kept"}, "data": {"k": "v"}})
    answer = core.delete_namespaced_config_map("kept", ns, dry_run="All")
    assert answer["status"] == "Success" and answer["details"]["uid"] == created.metadata.uid
    assert core.read_namespaced_config_map("kept", ns).metadata.resource_version == created.metadata.resource_version


# ----------------------------------------------------------------- finalizers
def test_finalizers_delay_deletion_and_the_answer_is_the_marked_object(kube_lab, api_client, ns):
    core = kubernetes.client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map(ns, {"metadata": {"name": "held", "finalizers": [HOLD]},
                                                     "data": {"k": "v"}})
    response = kube_lab.session().delete(f"{kube_lab.url}/api/v1/namespaces/{ns}/configmaps/held")
    assert response.status_code == 200
    answer = response.json()
    assert answer["kind"] == "ConfigMap" and answer["apiVersion"] == "v1"
    meta = answer["metadata"]
    assert meta["finalizers"] == [HOLD] and meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
    assert int(meta["resourceVersion"]) > int(created.metadata.resource_version)

    still_there = core.read_namespaced_config_map("held", ns)
    assert still_there.metadata.deletion_timestamp is not None
    assert still_there.metadata.resource_version == meta["resourceVersion"]
    again = kube_lab.session().delete(f"{kube_lab.url}/api/v1/namespaces/{ns}/configmaps/held")
    assert again.status_code == 200 and again.json()["metadata"] == meta

    # Clients can neither set nor clear deletionTimestamp; an update keeps it.
    edited = core.patch_namespaced_config_map("held", ns, {"metadata": {"deletionTimestamp": None},
                                                           "data": {"k": "changed"}})
    assert edited.metadata.deletion_timestamp == still_there.metadata.deletion_timestamp

    # Removing the last finalizer completes the deletion.
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("held", ns)
    assert gone.value.status == 404
    assert json.loads(gone.value.body)["message"] == 'configmaps "held" not found'


def test_typed_delete_of_a_held_deployment_parses_the_object(api_client, ns):
    apps = kubernetes.client.AppsV1Api(api_client)
    held = deployment("held")
    held["metadata"]["finalizers"] = [HOLD]
    apps.create_namespaced_deployment(ns, held)
    answer, code, _headers = apps.delete_namespaced_deployment_with_http_info("held", ns)
    assert code == 200
    assert answer["kind"] == "Deployment" and answer["metadata"]["deletionTimestamp"]
    assert apps.read_namespaced_deployment("held", ns).metadata.deletion_timestamp is not None
    apps.patch_namespaced_deployment("held", ns, [{"op": "remove", "path": "/metadata/finalizers"}])
    with pytest.raises(ApiException) as gone:
        apps.read_namespaced_deployment("held", ns)
    assert gone.value.status == 404


def test_create_ignores_a_client_supplied_deletion_timestamp(api_client, ns):
    core = kubernetes.client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map(ns, {"metadata": {
        "name": "fresh", "deletionTimestamp": "2020-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30}})
    assert created.metadata.deletion_timestamp is None and created.metadata.deletion_grace_period_seconds is None


def test_deleting_a_namespace_removes_objects_held_by_finalizers(api_client):
    core = kubernetes.client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": "held-contents"}})
    core.create_namespaced_config_map("held-contents", {"metadata": {"name": "held", "finalizers": [HOLD]}})
    core.delete_namespace("held-contents")
    assert core.list_namespaced_config_map("held-contents").items == []
