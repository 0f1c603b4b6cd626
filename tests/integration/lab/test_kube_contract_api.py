"""Contract of the emulated API server, written from the Kubernetes API conventions.

Each error case asserts the HTTP status and the Status body a real API server sends.
"""
from __future__ import annotations

import base64
import json
import threading

import pytest

kubernetes = pytest.importorskip("kubernetes")
ApiException = kubernetes.client.ApiException

ISTIO = "networking.istio.io"


def status_of(error: ApiException) -> dict:
    body = json.loads(error.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == error.status
    assert body["metadata"] == {}
    return body


def api_error(call, *args, **kwargs) -> tuple[int, dict]:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    return caught.value.status, status_of(caught.value)


def configmap(name: str, labels: dict | None = None, data: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data or {"k": "v"}}


def deployment(name: str, replicas: int = 1, annotations: dict | None = None) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels, "annotations": annotations or {}},
                                  "spec": {"containers": [{"name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.7.0",
                                                           "ports": [{"name": "http", "containerPort": 9898}]}]}}}}


def virtual_service(name: str, version: str = "v1") -> dict:
    return {"apiVersion": f"{ISTIO}/{version}", "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": f"{name}-primary"}, "weight": 100},
                                                          {"destination": {"host": f"{name}-canary"}, "weight": 0}]}]}}


# ------------------------------------------------------------------ discovery
def test_version_and_core_discovery_have_real_shapes(kube_lab):
    session = kube_lab.session()
    version = session.get(f"{kube_lab.url}/version").json()
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    api = session.get(f"{kube_lab.url}/api").json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    core = session.get(f"{kube_lab.url}/api/v1").json()
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    names = {entry["name"]: entry for entry in core["resources"]}
    assert {"namespaces", "services", "configmaps", "secrets", "events", "pods"} <= set(names)
    assert names["namespaces"]["namespaced"] is False and names["services"]["shortNames"] == ["svc"]
    assert names["pods"]["verbs"] == ["get", "list", "watch"]


def test_group_discovery_lists_subresources_and_both_istio_versions(kube_lab):
    session = kube_lab.session()
    groups = {group["name"]: group for group in session.get(f"{kube_lab.url}/apis").json()["groups"]}
    assert {"apps", "coordination.k8s.io", "autoscaling", ISTIO} <= set(groups)
    assert [v["version"] for v in groups[ISTIO]["versions"]] == ["v1", "v1beta1"]
    assert groups[ISTIO]["preferredVersion"]["version"] == "v1"
    apps = {entry["name"]: entry for entry in session.get(f"{kube_lab.url}/apis/apps/v1").json()["resources"]}
    assert apps["deployments/scale"]["kind"] == "Scale" and apps["deployments/scale"]["group"] == "autoscaling"
    assert apps["deployments/status"]["kind"] == "Deployment"
    assert sorted(apps["deployments"]["verbs"]) == sorted(
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"])
    for version in ("v1", "v1beta1"):
        istio = session.get(f"{kube_lab.url}/apis/{ISTIO}/{version}").json()
        assert {entry["name"] for entry in istio["resources"]} >= {"virtualservices", "destinationrules"}
    missing = session.get(f"{kube_lab.url}/apis/{ISTIO}/v1alpha3")
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"


def test_dynamic_client_discovers_every_kind(api_client):
    dynamic = kubernetes.dynamic.DynamicClient(api_client)
    for api_version, kind in (("v1", "Pod"), ("apps/v1", "Deployment"), ("coordination.k8s.io/v1", "Lease"),
                              ("autoscaling/v2", "HorizontalPodAutoscaler"), (f"{ISTIO}/v1", "VirtualService"),
                              (f"{ISTIO}/v1beta1", "DestinationRule")):
        resource = dynamic.resources.get(api_version=api_version, kind=kind)
        assert resource.kind == kind


# ---------------------------------------------------------------------- auth
@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_missing_or_invalid_token_is_unauthorized(kube_lab, token):
    response = kube_lab.session(token=token or "").get(f"{kube_lab.url}/api/v1/namespaces")
    assert response.status_code == 401
    body = response.json()
    assert (body["kind"], body["reason"], body["code"], body["status"]) == ("Status", "Unauthorized", 401, "Failure")


def test_readonly_token_reads_but_every_write_is_forbidden(readonly_client, custom, ns):
    custom.create_namespaced_custom_object(ISTIO, "v1", ns, "virtualservices", virtual_service("api"))
    readonly = kubernetes.client.CustomObjectsApi(readonly_client)
    assert readonly.get_namespaced_custom_object(ISTIO, "v1", ns, "virtualservices", "api")["metadata"]["name"] == "api"
    code, body = api_error(readonly.replace_namespaced_custom_object, ISTIO, "v1", ns, "virtualservices", "api",
                           virtual_service("api"))
    assert code == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        f'virtualservices.{ISTIO} "api" is forbidden: User "system:serviceaccount:lab:readonly" cannot update '
        f'resource "virtualservices" in API group "{ISTIO}" in the namespace "{ns}"')
    assert body["details"] == {"name": "api", "group": ISTIO, "kind": "virtualservices"}
    readonly_core = kubernetes.client.CoreV1Api(readonly_client)
    code, body = api_error(readonly_core.create_namespaced_config_map, ns, configmap("x"))
    assert code == 403 and 'cannot create resource "configmaps" in API group ""' in body["message"]
    code, body = api_error(readonly.delete_namespaced_custom_object, ISTIO, "v1", ns, "virtualservices", "api")
    assert code == 403 and "cannot delete" in body["message"]


# ------------------------------------------------------------ object metadata
def test_create_sets_server_fields_and_resource_versions_increase(core, apps, ns):
    first = core.create_namespaced_config_map(ns, configmap("one"))
    second = core.create_namespaced_config_map(ns, configmap("two"))
    assert first.metadata.uid and first.metadata.uid != second.metadata.uid
    assert first.metadata.creation_timestamp is not None
    assert isinstance(first.metadata.resource_version, str)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert first.metadata.generation is None
    created = apps.create_namespaced_deployment(ns, deployment("web"))
    assert created.metadata.generation == 1


def test_generation_moves_with_spec_changes_only(apps, ns):
    created = apps.create_namespaced_deployment(ns, deployment("web"))
    labelled = apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"team": "a"}}})
    assert labelled.metadata.generation == 1
    assert int(labelled.metadata.resource_version) > int(created.metadata.resource_version)
    respecified = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 3}})
    assert respecified.metadata.generation == 2


def test_create_in_missing_namespace_is_not_found(core):
    code, body = api_error(core.create_namespaced_config_map, "no-such-namespace", configmap("x"))
    assert code == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'namespaces "no-such-namespace" not found'
    assert body["details"] == {"name": "no-such-namespace", "kind": "namespaces"}


def test_create_existing_is_already_exists(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("web"))
    code, body = api_error(apps.create_namespaced_deployment, ns, deployment("web"))
    assert code == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'deployments.apps "web" already exists'
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_get_missing_is_not_found(apps, custom, ns):
    code, body = api_error(apps.read_namespaced_deployment, "ghost", ns)
    assert code == 404 and body["reason"] == "NotFound" and body["message"] == 'deployments.apps "ghost" not found'
    code, body = api_error(custom.get_namespaced_custom_object, ISTIO, "v1beta1", ns, "virtualservices", "ghost")
    assert code == 404 and body["details"] == {"name": "ghost", "group": ISTIO, "kind": "virtualservices"}


def test_put_with_stale_resource_version_conflicts_and_without_is_unconditional(core, ns):
    created = core.create_namespaced_config_map(ns, configmap("cm"))
    current = core.replace_namespaced_config_map("cm", ns, {
        "metadata": {"name": "cm", "resourceVersion": created.metadata.resource_version}, "data": {"k": "2"}})
    stale = {"metadata": {"name": "cm", "resourceVersion": created.metadata.resource_version}, "data": {"k": "3"}}
    code, body = api_error(core.replace_namespaced_config_map, "cm", ns, stale)
    assert code == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on configmaps "cm": the object has been modified; '
                               'please apply your changes to the latest version and try again')
    unconditional = core.replace_namespaced_config_map("cm", ns, {"metadata": {"name": "cm"}, "data": {"k": "4"}})
    assert unconditional.data == {"k": "4"}
    assert int(unconditional.metadata.resource_version) > int(current.metadata.resource_version)


def test_put_of_missing_object_is_not_found(core, ns):
    code, body = api_error(core.replace_namespaced_config_map, "ghost", ns, configmap("ghost"))
    assert code == 404 and body["reason"] == "NotFound"


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("mutate, field, reason", [
    (lambda d: d["metadata"].pop("name"), "metadata.name", "FieldValueRequired"),
    (lambda d: d["metadata"].update(name="Not_A_Name"), "metadata.name", "FieldValueInvalid"),
    (lambda d: d["spec"].pop("selector"), "spec.selector", "FieldValueRequired"),
    (lambda d: d["spec"]["template"]["metadata"].update(labels={"app": "other"}), "spec.template.metadata.labels",
     "FieldValueInvalid"),
    (lambda d: d["spec"].update(replicas=-1), "spec.replicas", "FieldValueInvalid"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("image"), "spec.template.spec.containers[0].image",
     "FieldValueRequired"),
])
def test_malformed_deployment_is_invalid_with_causes(kube_lab, ns, mutate, field, reason):
    body = deployment("web")
    mutate(body)
    response = kube_lab.session().post(f"{kube_lab.url}/apis/apps/v1/namespaces/{ns}/deployments", json=body)
    assert response.status_code == 422
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Invalid", 422)
    assert status["details"]["kind"] == "Deployment" and status["details"]["group"] == "apps"
    assert {"field": field, "reason": reason} in [{"field": c["field"], "reason": c["reason"]}
                                                  for c in status["details"]["causes"]]
    assert status["message"].startswith(f'Deployment.apps "{body["metadata"].get("name", "")}" is invalid: ')


@pytest.mark.parametrize("change, fragment", [
    (lambda d: d["metadata"].update(name="other"), "does not match the name on the URL"),
    (lambda d: d.update(apiVersion="apps/v1beta1"), "the API version in the data (apps/v1beta1) does not match"),
    (lambda d: d.update(kind="StatefulSet"), "the kind in the data (StatefulSet) does not match"),
    (lambda d: d["spec"].update(replicas="two"), "cannot unmarshal string"),
])
def test_mismatched_or_undecodable_body_is_bad_request(kube_lab, apps, ns, change, fragment):
    apps.create_namespaced_deployment(ns, deployment("web"))
    body = deployment("web")
    change(body)
    response = kube_lab.session().put(f"{kube_lab.url}/apis/apps/v1/namespaces/{ns}/deployments/web", json=body)
    assert response.status_code == 400
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "BadRequest", 400)
    assert fragment in status["message"]


def test_unknown_content_type_is_unsupported_media_type(kube_lab, ns):
    response = kube_lab.session().post(f"{kube_lab.url}/api/v1/namespaces/{ns}/configmaps",
                                       data=json.dumps(configmap("x")), headers={"Content-Type": "text/csv"})
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType" and response.json()["code"] == 415


# ------------------------------------------------------------------ dry run
def test_dry_run_validates_and_persists_nothing(kube_lab, core, ns):
    before = core.list_namespaced_config_map(ns).metadata.resource_version
    would_be = core.create_namespaced_config_map(ns, configmap("dry"), dry_run="All")
    assert would_be.metadata.name == "dry" and would_be.metadata.uid
    assert would_be.metadata.resource_version is None
    code, _ = api_error(core.read_namespaced_config_map, "dry", ns)
    assert code == 404
    assert core.list_namespaced_config_map(ns).metadata.resource_version == before
    real = core.create_namespaced_config_map(ns, configmap("real"))
    patched = core.patch_namespaced_config_map("real", ns, {"data": {"k": "dry"}}, dry_run="All")
    assert patched.data == {"k": "dry"} and patched.metadata.resource_version == real.metadata.resource_version
    assert core.read_namespaced_config_map("real", ns).data == {"k": "v"}
    response = kube_lab.session().post(f"{kube_lab.url}/api/v1/namespaces/{ns}/configmaps?dryRun=All",
                                       json={"metadata": {"name": "BAD"}})
    assert response.status_code == 422 and response.json()["reason"] == "Invalid"


# --------------------------------------------------------------- selectors
@pytest.mark.parametrize("selector, expected", [
    ("tier=web", {"a", "b"}),
    ("tier==web,track=stable", {"a"}),
    ("tier!=web", {"c", "d"}),
    ("track in (stable, canary)", {"a", "b"}),
    ("track notin (canary)", {"a", "c", "d"}),
    ("track", {"a", "b"}),
    ("!track", {"c", "d"}),
    ("", {"a", "b", "c", "d"}),
])
def test_list_by_label_selector(core, ns, selector, expected):
    for name, labels in (("a", {"tier": "web", "track": "stable"}), ("b", {"tier": "web", "track": "canary"}),
                         ("c", {"tier": "db"}), ("d", {})):
        core.create_namespaced_config_map(ns, configmap(name, labels))
    listed = core.list_namespaced_config_map(ns, label_selector=selector)
    assert {item.metadata.name for item in listed.items} == expected


def test_list_by_field_selector_and_list_shape(kube_lab, core, ns):
    for name in ("a", "b"):
        core.create_namespaced_config_map(ns, configmap(name))
    assert [i.metadata.name for i in core.list_namespaced_config_map(ns, field_selector="metadata.name=b").items] == ["b"]
    everywhere = core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={ns},metadata.name!=a")
    assert [(i.metadata.namespace, i.metadata.name) for i in everywhere.items] == [(ns, "b")]
    raw = kube_lab.session().get(f"{kube_lab.url}/api/v1/namespaces/{ns}/configmaps").json()
    assert raw["kind"] == "ConfigMapList" and raw["apiVersion"] == "v1"
    assert int(raw["metadata"]["resourceVersion"]) >= max(int(i["metadata"]["resourceVersion"]) for i in raw["items"])
    bad = kube_lab.session().get(f"{kube_lab.url}/api/v1/namespaces/{ns}/configmaps?fieldSelector=data.k%3Dv")
    assert bad.status_code == 400 and bad.json()["reason"] == "BadRequest"
    bad = kube_lab.session().get(f"{kube_lab.url}/api/v1/namespaces/{ns}/configmaps?labelSelector=a%20in%20(b")
    assert bad.status_code == 400 and bad.json()["reason"] == "BadRequest"


# ------------------------------------------------------------------ delete
def test_delete_with_stale_precondition_conflicts(core, ns):
    created = core.create_namespaced_config_map(ns, configmap("cm"))
    core.patch_namespaced_config_map("cm", ns, {"data": {"k": "changed"}})
    options = kubernetes.client.V1DeleteOptions(
        preconditions=kubernetes.client.V1Preconditions(resource_version=created.metadata.resource_version))
    code, body = api_error(core.delete_namespaced_config_map, "cm", ns, body=options)
    assert code == 409 and body["reason"] == "Conflict"
    assert core.read_namespaced_config_map("cm", ns).data == {"k": "changed"}


def test_deleting_a_namespace_deletes_its_objects(kube_lab, core, apps, custom, wait_until):
    name = "cascade-" + base64.b32encode(__import__("os").urandom(5)).decode().lower()
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, configmap("cm"))
    apps.create_namespaced_deployment(name, deployment("web"))
    custom.create_namespaced_custom_object(ISTIO, "v1", name, "virtualservices", virtual_service("api"))
    wait_until(lambda: core.list_namespaced_pod(name).items)
    answer = core.delete_namespace(name)
    assert answer["kind"] == "Namespace" and answer["status"]["phase"] == "Terminating"
    code, body = api_error(core.read_namespace, name)
    assert code == 404 and body["message"] == f'namespaces "{name}" not found'
    assert core.list_namespaced_config_map(name).items == []
    assert apps.list_namespaced_deployment(name).items == []
    assert custom.list_namespaced_custom_object(ISTIO, "v1", name, "virtualservices")["items"] == []
    wait_until(lambda: not core.list_namespaced_pod(name).items)


# ------------------------------------------------------- served versions
def test_istio_objects_are_one_object_served_at_v1_and_v1beta1(custom, ns):
    created = custom.create_namespaced_custom_object(ISTIO, "v1beta1", ns, "virtualservices",
                                                     virtual_service("api", "v1beta1"))
    assert created["apiVersion"] == f"{ISTIO}/v1beta1"
    at_v1 = custom.get_namespaced_custom_object(ISTIO, "v1", ns, "virtualservices", "api")
    assert at_v1["apiVersion"] == f"{ISTIO}/v1"
    assert (at_v1["metadata"]["uid"], at_v1["metadata"]["resourceVersion"]) == (
        created["metadata"]["uid"], created["metadata"]["resourceVersion"])
    listed = custom.list_namespaced_custom_object(ISTIO, "v1beta1", ns, "virtualservices")
    assert listed["kind"] == "VirtualServiceList" and listed["items"][0]["apiVersion"] == f"{ISTIO}/v1beta1"
    code, body = api_error(custom.create_namespaced_custom_object, ISTIO, "v1", ns, "virtualservices",
                           virtual_service("other", "v1beta1"))
    assert code == 400 and "does not match the expected API version" in body["message"]


# --------------------------------------------------------- leases, events, HPA, secrets
def lease(name: str, holder: str, resource_version: str | None = None) -> dict:
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30,
                     "renewTime": "2030-01-01T00:00:00.5Z"}}
    if resource_version:
        body["metadata"]["resourceVersion"] = resource_version
    return body


def test_lease_optimistic_concurrency(api_client, ns):
    leases = kubernetes.client.CoordinationV1Api(api_client)
    created = leases.create_namespaced_lease(ns, lease("lock", "run-1"))
    assert created.spec.renew_time.microsecond == 500000
    taken = leases.replace_namespaced_lease("lock", ns, lease("lock", "run-2", created.metadata.resource_version))
    assert taken.spec.holder_identity == "run-2"
    code, body = api_error(leases.replace_namespaced_lease, "lock", ns,
                           lease("lock", "run-3", created.metadata.resource_version))
    assert code == 409 and body["reason"] == "Conflict"
    assert body["details"] == {"name": "lock", "group": "coordination.k8s.io", "kind": "leases"}
    assert leases.read_namespaced_lease("lock", ns).spec.holder_identity == "run-2"
    raw = json.loads(leases.read_namespaced_lease("lock", ns, _preload_content=False).data)
    assert raw["spec"]["renewTime"] == "2030-01-01T00:00:00.500000Z"


def test_concurrent_lease_takeover_has_exactly_one_winner(api_client, ns):
    leases = kubernetes.client.CoordinationV1Api(api_client)
    created = leases.create_namespaced_lease(ns, lease("lock", "nobody"))
    outcomes: list[object] = []

    def take(holder: str) -> None:
        try:
            leases.replace_namespaced_lease("lock", ns, lease("lock", holder, created.metadata.resource_version))
            outcomes.append(holder)
        except ApiException as error:
            outcomes.append(error.status)

    threads = [threading.Thread(target=take, args=(f"run-{index}",)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [outcome for outcome in outcomes if isinstance(outcome, str)]
    assert len(winners) == 1 and outcomes.count(409) == 5
    assert leases.read_namespaced_lease("lock", ns).spec.holder_identity == winners[0]


def test_events_create_and_list_by_involved_object(core, ns):
    for index, target in enumerate(("web", "web", "db")):
        core.create_namespaced_event(ns, {
            "metadata": {"generateName": f"{target}."}, "type": "Normal", "reason": "Synced",
            "message": f"step {index}", "involvedObject": {"kind": "Deployment", "name": target, "namespace": ns},
            "source": {"component": "progressive-delivery"}})
    listed = core.list_namespaced_event(ns, field_selector="involvedObject.name=web,involvedObject.kind=Deployment")
    assert sorted(event.message for event in listed.items) == ["step 0", "step 1"]
    assert all(event.metadata.name.startswith("web.") for event in listed.items)


def test_horizontal_pod_autoscaler_v2_round_trip(api_client, ns):
    hpas = kubernetes.client.AutoscalingV2Api(api_client)
    hpas.create_namespaced_horizontal_pod_autoscaler(ns, {
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 99}}}]}})
    read = hpas.read_namespaced_horizontal_pod_autoscaler("web", ns)
    assert read.spec.max_replicas == 4 and read.spec.metrics[0].resource.target.average_utilization == 99
    code, body = api_error(hpas.create_namespaced_horizontal_pod_autoscaler, ns, {
        "metadata": {"name": "bad"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                                              "minReplicas": 5, "maxReplicas": 2}})
    assert code == 422 and body["details"]["causes"][0]["field"] == "spec.maxReplicas"


def test_secret_string_data_is_stored_as_base64_data(core, ns):
    core.create_namespaced_secret(ns, {"metadata": {"name": "token"}, "stringData": {"token": "s3cret"}})
    secret = core.read_namespaced_secret("token", ns)
    assert secret.type == "Opaque" and base64.b64decode(secret.data["token"]) == b"s3cret"
    assert secret.string_data is None


def test_watch_streams_changes_after_a_resource_version(core, ns):
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("watched"))
    core.patch_namespaced_config_map("watched", ns, {"data": {"k": "2"}})
    core.delete_namespaced_config_map("watched", ns)
    seen = []
    watch = kubernetes.watch.Watch()
    for event in watch.stream(core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=2):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            watch.stop()
    assert seen == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]
