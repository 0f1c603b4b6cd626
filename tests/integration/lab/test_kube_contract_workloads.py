"""The workload controller, pods derived from deployments, and the /scale and /status subresources."""
from __future__ import annotations

import json

import pytest

kubernetes = pytest.importorskip("kubernetes")
ApiException = kubernetes.client.ApiException


def deployment(name: str, replicas: int = 2, annotations: dict | None = None, deadline: int | None = None) -> dict:
    labels = {"app": name}
    spec = {"replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": dict(labels, version="v1"), "annotations": annotations or {}},
                         "spec": {"containers": [{"name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.7.0"}]}}}
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return {"metadata": {"name": name}, "spec": spec}


def conditions(dep) -> dict:
    return {c.type: c for c in (dep.status.conditions or [])}


def rolled_out(apps, ns: str, name: str):
    dep = apps.read_namespaced_deployment(name, ns)
    status = dep.status
    progressing = conditions(dep).get("Progressing")
    if (status.observed_generation == dep.metadata.generation and progressing is not None
            and progressing.reason == "NewReplicaSetAvailable"):
        return dep
    return None


def test_controller_reports_a_complete_rollout(apps, ns, wait_until):
    created = apps.create_namespaced_deployment(ns, deployment("web", replicas=3))
    assert created.status.replicas is None and created.status.observed_generation is None
    dep = wait_until(lambda: rolled_out(apps, ns, "web"))
    status = dep.status
    assert (status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3, 3)
    assert status.unavailable_replicas is None
    available = conditions(dep)["Available"]
    assert (available.status, available.reason) == ("True", "MinimumReplicasAvailable")
    progressing = conditions(dep)["Progressing"]
    assert progressing.status == "True" and progressing.message.startswith('ReplicaSet "web-')


def test_pods_are_derived_from_the_deployment(core, apps, ns, wait_until):
    apps.create_namespaced_deployment(ns, deployment("web", annotations={"lab.progressive.delivery/error-rate": "0.1"}))
    pods = wait_until(lambda: core.list_namespaced_pod(ns, label_selector="app=web").items)
    assert len(pods) == 2
    owner = pods[0].metadata.owner_references[0]
    assert owner.kind == "ReplicaSet" and owner.controller is True
    for pod in pods:
        template_hash = pod.metadata.labels["pod-template-hash"]
        assert pod.metadata.name.startswith(f"web-{template_hash}-")
        assert pod.metadata.labels["version"] == "v1"
        assert pod.metadata.annotations["lab.progressive.delivery/error-rate"] == "0.1"
        assert pod.status.phase == "Running"
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        assert owner.name == f"web-{template_hash}"


def test_pods_are_read_only(kube_lab, core, apps, ns, wait_until):
    apps.create_namespaced_deployment(ns, deployment("web", replicas=1))
    pod = wait_until(lambda: core.list_namespaced_pod(ns).items)[0]
    response = kube_lab.session().delete(f"{kube_lab.url}/api/v1/namespaces/{ns}/pods/{pod.metadata.name}")
    assert response.status_code == 405
    assert response.json()["reason"] == "MethodNotAllowed" and response.json()["kind"] == "Status"


def test_template_change_replaces_pods_and_is_observed(core, apps, ns, wait_until):
    apps.create_namespaced_deployment(ns, deployment("web"))
    wait_until(lambda: rolled_out(apps, ns, "web"))
    old_hash = core.list_namespaced_pod(ns).items[0].metadata.labels["pod-template-hash"]
    changed = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"metadata": {
        "annotations": {"lab.progressive.delivery/latency-ms": "250"}}}}})
    assert changed.metadata.generation == 2
    dep = wait_until(lambda: rolled_out(apps, ns, "web"))
    assert dep.status.observed_generation == 2 and dep.status.updated_replicas == 2
    pods = core.list_namespaced_pod(ns).items
    assert len(pods) == 2 and all(p.metadata.labels["pod-template-hash"] != old_hash for p in pods)
    assert all(p.metadata.annotations["lab.progressive.delivery/latency-ms"] == "250" for p in pods)


def test_never_ready_template_exceeds_the_progress_deadline(core, apps, ns, wait_until):
    apps.create_namespaced_deployment(ns, deployment("bad", replicas=2, deadline=1,
                                                     annotations={"lab.progressive.delivery/ready": "false"}))

    def stalled():
        dep = apps.read_namespaced_deployment("bad", ns)
        progressing = conditions(dep).get("Progressing")
        return dep if progressing is not None and progressing.reason == "ProgressDeadlineExceeded" else None

    dep = wait_until(stalled, timeout=6)
    assert conditions(dep)["Progressing"].status == "False"
    assert conditions(dep)["Available"].status == "False"
    assert dep.status.ready_replicas is None and dep.status.available_replicas is None
    assert dep.status.unavailable_replicas == 2
    pods = core.list_namespaced_pod(ns).items
    assert pods and all({c.type: c.status for c in p.status.conditions}["Ready"] == "False" for p in pods)


def test_bad_update_keeps_old_ready_pods_within_the_rollout_budget(core, apps, ns, wait_until):
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2, deadline=1))
    wait_until(lambda: rolled_out(apps, ns, "web"))
    apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"metadata": {
        "annotations": {"lab.progressive.delivery/ready": "false"}}}}})

    def exceeded():
        dep = apps.read_namespaced_deployment("web", ns)
        return dep if conditions(dep)["Progressing"].reason == "ProgressDeadlineExceeded" else None

    dep = wait_until(exceeded, timeout=6)
    # maxUnavailable 25% of 2 rounds down to 0 and maxSurge up to 1: two old pods stay, one new pod hangs.
    assert (dep.status.replicas, dep.status.updated_replicas, dep.status.ready_replicas) == (3, 1, 2)
    assert conditions(dep)["Available"].status == "True"


def test_scale_subresource_reads_and_writes_replicas(kube_lab, core, apps, ns, wait_until):
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    wait_until(lambda: rolled_out(apps, ns, "web"))
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert (scale.kind, scale.api_version) == ("Scale", "autoscaling/v1")
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (2, 2, "app=web")
    apps.replace_namespaced_deployment_scale("web", ns, {"metadata": {"name": "web"}, "spec": {"replicas": 0}})
    dep = wait_until(lambda: rolled_out(apps, ns, "web"))
    assert dep.spec.replicas == 0 and dep.status.replicas is None and dep.metadata.generation == 2
    assert core.list_namespaced_pod(ns).items == []
    assert apps.read_namespaced_deployment_scale("web", ns).status.replicas == 0
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 1}})
    wait_until(lambda: len(core.list_namespaced_pod(ns).items) == 1)
    stale = {"metadata": {"name": "web", "resourceVersion": scale.metadata.resource_version}, "spec": {"replicas": 5}}
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment_scale("web", ns, stale)
    body = json.loads(caught.value.body)
    assert caught.value.status == 409 and body["reason"] == "Conflict" and body["kind"] == "Status"
    response = kube_lab.session().put(f"{kube_lab.url}/apis/apps/v1/namespaces/{ns}/deployments/web/scale",
                                      json={"metadata": {"name": "web"}, "spec": {"replicas": -1}})
    assert response.status_code == 422 and response.json()["reason"] == "Invalid"


def test_status_subresource_writes_status_only(kube_lab, apps, ns, wait_until):
    apps.create_namespaced_deployment(ns, deployment("web", replicas=1))
    dep = wait_until(lambda: rolled_out(apps, ns, "web"))
    body = kube_lab.session().get(f"{kube_lab.url}/apis/apps/v1/namespaces/{ns}/deployments/web/status").json()
    body["spec"]["replicas"] = 7
    body["status"]["collisionCount"] = 1
    response = kube_lab.session().put(f"{kube_lab.url}/apis/apps/v1/namespaces/{ns}/deployments/web/status", json=body)
    assert response.status_code == 200
    assert response.json()["spec"]["replicas"] == 1 and response.json()["status"]["collisionCount"] == 1
    assert response.json()["metadata"]["generation"] == dep.metadata.generation
