"""Primary copy, label rewrite, config references, hashing and readiness of canary workloads."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import CANARY_ANNOTATION, MANAGED_BY_LABEL


def deployment(selector=None, template_labels=None, pod_spec=None, replicas=3, **spec_extra):
    selector = {"app": "backend"} if selector is None else selector
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": dict(selector) if template_labels is None else template_labels,
                         "annotations": {"prometheus.io/scrape": "true"}},
            "spec": pod_spec or {"containers": [{"name": "app", "image": "backend:1"}]},
        },
    }
    spec.update(spec_extra)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "backend", "namespace": "prod", "labels": {"app": "backend", "team": "a"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "owner": "x"}},
            "spec": spec}


POD_WITH_CONFIGS = {
    "initContainers": [{"name": "init", "envFrom": [{"configMapRef": {"name": "init-cm"}}]}],
    "containers": [{
        "name": "app",
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "a"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "b"}}},
            {"name": "C", "value": "plain"},
            {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "from-cm"}}, {"secretRef": {"name": "from-secret"}}],
    }],
    "volumes": [
        {"name": "v1", "configMap": {"name": "vol-cm"}},
        {"name": "v2", "secret": {"secretName": "vol-secret"}},
        {"name": "v3", "projected": {"sources": [{"configMap": {"name": "proj-cm"}}, {"secret": {"name": "proj-secret"}},
                                                 {"serviceAccountToken": {"path": "token"}}]}},
        {"name": "v4", "emptyDir": {}},
    ],
}


@pytest.mark.parametrize("selector, expected", [
    ({"app": "backend", "name": "other"}, ("app", "backend")),
    ({"name": "by-name", "app.kubernetes.io/name": "x"}, ("name", "by-name")),
    ({"app.kubernetes.io/name": "k8s-name", "tier": "web"}, ("app.kubernetes.io/name", "k8s-name")),
])
def test_selector_label_takes_the_first_known_label(selector, expected):
    assert wl.selector_label(deployment(selector=selector)) == expected


def test_selector_without_usable_label_names_the_deployment_and_the_labels():
    with pytest.raises(wl.WorkloadError) as error:
        wl.selector_label(deployment(selector={"tier": "web"}))
    text = str(error.value)
    assert "prod/backend" in text and "app, name, app.kubernetes.io/name" in text and '"tier": "web"' in text


def test_primary_labels_rewrite_only_the_selector_label():
    assert wl.primary_labels({"app": "backend", "version": "1"}, "app", "backend-primary") == {
        "app": "backend-primary", "version": "1"}
    assert wl.primary_labels(None, "name", "x-primary") == {"name": "x-primary"}


def test_collect_config_refs_finds_every_kind_of_reference():
    refs = wl.collect_config_refs(POD_WITH_CONFIGS)
    assert refs.configmaps == {"init-cm", "env-cm", "from-cm", "vol-cm", "proj-cm"}
    assert refs.secrets == {"env-secret", "from-secret", "vol-secret", "proj-secret"}


def test_rename_config_refs_renames_tracked_refs_only_and_leaves_the_input_alone():
    original = copy.deepcopy(POD_WITH_CONFIGS)
    tracked = wl.ConfigRefs(configmaps={"env-cm", "vol-cm", "proj-cm", "init-cm"}, secrets={"vol-secret", "proj-secret"})
    renamed = wl.rename_config_refs(POD_WITH_CONFIGS, tracked)
    assert POD_WITH_CONFIGS == original
    container = renamed["containers"][0]
    assert container["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "env-cm-primary"
    assert container["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "env-secret"  # not tracked
    assert container["envFrom"][0]["configMapRef"]["name"] == "from-cm"  # not tracked
    assert renamed["initContainers"][0]["envFrom"][0]["configMapRef"]["name"] == "init-cm-primary"
    assert renamed["volumes"][0]["configMap"]["name"] == "vol-cm-primary"
    assert renamed["volumes"][1]["secret"]["secretName"] == "vol-secret-primary"
    sources = renamed["volumes"][2]["projected"]["sources"]
    assert sources[0]["configMap"]["name"] == "proj-cm-primary"
    assert sources[1]["secret"]["name"] == "proj-secret-primary"
    assert sources[2] == {"serviceAccountToken": {"path": "token"}}


def test_tracked_secret_types_exclude_registry_credentials():
    assert wl.is_tracked_secret({"type": "Opaque"})
    assert wl.is_tracked_secret({})
    assert wl.is_tracked_secret({"type": "kubernetes.io/tls"})
    assert not wl.is_tracked_secret({"type": "kubernetes.io/dockerconfigjson"})


def test_stable_hash_ignores_key_order_and_sees_values():
    assert wl.stable_hash({"a": 1, "b": [1, 2]}) == wl.stable_hash({"b": [1, 2], "a": 1})
    assert wl.stable_hash({"a": 1}) != wl.stable_hash({"a": 2})
    assert len(wl.stable_hash({})) == 16


def test_revision_checksum_changes_with_template_annotations_and_config_data():
    template = deployment()["spec"]["template"]
    base = wl.revision_checksum(template, {"configmap/x": "1"})
    assert base == wl.revision_checksum(copy.deepcopy(template), {"configmap/x": "1"})
    assert base != wl.revision_checksum(template, {"configmap/x": "2"})
    changed = copy.deepcopy(template)
    changed["metadata"]["annotations"]["lab.progressive.delivery/error-rate"] = "0.5"
    assert base != wl.revision_checksum(changed, {"configmap/x": "1"})
    image = copy.deepcopy(template)
    image["spec"]["containers"][0]["image"] = "backend:2"
    assert base != wl.revision_checksum(image, {"configmap/x": "1"})
    # The primary's own revision marker is not part of the identity of a release.
    marked = copy.deepcopy(template)
    marked["metadata"]["annotations"][wl.REVISION_ANNOTATION] = "abc"
    assert base == wl.revision_checksum(marked, {"configmap/x": "1"})


def test_config_checksums_cover_data_and_binary_data():
    cm = {"metadata": {"name": "a"}, "data": {"k": "v"}}
    secret = {"metadata": {"name": "s"}, "data": {"k": "dg=="}}
    checksums = wl.config_checksums([cm], [secret])
    assert set(checksums) == {"configmap/a", "secret/s"}
    binary = {"metadata": {"name": "a"}, "data": {"k": "v"}, "binaryData": {"b": "AA=="}}
    assert wl.config_checksums([binary], [])["configmap/a"] != checksums["configmap/a"]


def test_build_primary_copies_the_target_as_flagger_does():
    target = deployment(pod_spec=POD_WITH_CONFIGS, progressDeadlineSeconds=60, minReadySeconds=5,
                        revisionHistoryLimit=2, strategy={"type": "Recreate"})
    tracked = wl.ConfigRefs(configmaps={"vol-cm"}, secrets=set())
    primary = wl.build_primary(target, "prod", "backend", "app", "backend", tracked, "c0ffee")
    assert primary["metadata"]["name"] == "backend-primary"
    assert primary["metadata"]["labels"]["app"] == "backend-primary"
    assert primary["metadata"]["labels"]["team"] == "a"
    assert primary["metadata"]["labels"][MANAGED_BY_LABEL] == "progressive.delivery"
    assert primary["metadata"]["annotations"][CANARY_ANNOTATION] == "prod/backend"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in primary["metadata"]["annotations"]
    spec = primary["spec"]
    assert spec["replicas"] == 3
    assert spec["selector"] == {"matchLabels": {"app": "backend-primary"}}
    assert spec["template"]["metadata"]["labels"] == {"app": "backend-primary"}
    assert spec["template"]["metadata"]["annotations"][wl.REVISION_ANNOTATION] == "c0ffee"
    assert spec["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert spec["template"]["spec"]["volumes"][0]["configMap"]["name"] == "vol-cm-primary"
    assert (spec["progressDeadlineSeconds"], spec["minReadySeconds"], spec["revisionHistoryLimit"]) == (60, 5, 2)
    assert spec["strategy"] == {"type": "Recreate"}


def test_build_primary_of_a_scaled_down_target_gets_one_replica():
    primary = wl.build_primary(deployment(replicas=0), "prod", "backend", "app", "backend", wl.ConfigRefs(), "x")
    assert primary["spec"]["replicas"] == 1


def test_promoted_primary_takes_template_and_settings_but_keeps_replicas_and_selector():
    primary = wl.build_primary(deployment(), "prod", "backend", "app", "backend", wl.ConfigRefs(), "old")
    primary["spec"]["replicas"] = 7
    primary["spec"]["minReadySeconds"] = 9
    target = deployment(pod_spec={"containers": [{"name": "app", "image": "backend:2"}]}, strategy={"type": "Recreate"})
    promoted = wl.promoted_primary(primary, target, "app", "backend", wl.ConfigRefs(), "new")
    assert promoted["spec"]["replicas"] == 7
    assert "minReadySeconds" not in promoted["spec"]
    assert promoted["spec"]["strategy"] == {"type": "Recreate"}
    assert promoted["spec"]["selector"] == {"matchLabels": {"app": "backend-primary"}}
    assert promoted["spec"]["template"]["spec"]["containers"][0]["image"] == "backend:2"
    assert promoted["spec"]["template"]["metadata"]["annotations"][wl.REVISION_ANNOTATION] == "new"
    assert wl.template_differs(primary, promoted["spec"]["template"])
    assert not wl.template_differs(promoted, promoted["spec"]["template"])


def test_primary_config_copy_is_marked_and_keeps_secret_type():
    secret = {"metadata": {"name": "tls", "labels": {"a": "b"}, "resourceVersion": "5"}, "type": "kubernetes.io/tls",
              "data": {"tls.crt": "eA=="}}
    copied = wl.primary_config_copy(secret, "Secret", "prod", "backend")
    assert copied["metadata"]["name"] == "tls-primary"
    assert "resourceVersion" not in copied["metadata"]
    assert copied["type"] == "kubernetes.io/tls" and copied["data"] == {"tls.crt": "eA=="}
    assert copied["metadata"]["labels"][MANAGED_BY_LABEL] == "progressive.delivery"
    assert wl.config_content_differs(copied, {"data": {"tls.crt": "eQ=="}})
    assert not wl.config_content_differs(copied, {"data": {"tls.crt": "eA=="}})


def test_primary_hpa_scales_the_primary():
    hpa = {"apiVersion": "autoscaling/v2", "metadata": {"name": "backend"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
                    "minReplicas": 2, "maxReplicas": 4}}
    copied = wl.primary_hpa(hpa, "backend-primary", "prod", "backend")
    assert copied["metadata"]["name"] == "backend-primary"
    assert copied["spec"]["scaleTargetRef"]["name"] == "backend-primary"
    assert copied["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["scaleTargetRef"]["name"] == "backend"


@pytest.mark.parametrize("target, primary, hpa, expected", [
    ({"spec": {"replicas": 4}}, {"spec": {"replicas": 2}}, None, 4),
    ({"spec": {"replicas": 0}}, {"spec": {"replicas": 2}}, None, 2),
    ({"spec": {"replicas": 0}}, {"spec": {"replicas": 0}}, {"spec": {"minReplicas": 3}}, 3),
    ({"spec": {}}, None, None, 1),
])
def test_canary_replicas_fall_back_in_order(target, primary, hpa, expected):
    assert wl.canary_replicas(target, primary, hpa) == expected


def status(generation=2, observed=2, replicas=2, updated=2, current=2, available=2, conditions=None, desired=2):
    return {"metadata": {"name": "backend", "namespace": "prod", "generation": generation},
            "spec": {"replicas": desired, "progressDeadlineSeconds": 30},
            "status": {"observedGeneration": observed, "replicas": current, "updatedReplicas": updated,
                       "availableReplicas": available, "conditions": conditions or []}}


def test_readiness_ready_when_all_updated_replicas_are_available():
    readiness = wl.evaluate_readiness(status())
    assert readiness.ready and not readiness.failed


@pytest.mark.parametrize("kwargs, fragment", [
    ({"observed": 1}, "observe generation 2"),
    ({"updated": 1, "current": 1, "available": 1}, "1 out of 2 new replicas"),
    ({"current": 3}, "1 old replicas are pending termination"),
    ({"available": 1}, "1 of 2 updated replicas are available"),
])
def test_readiness_in_progress_says_why(kwargs, fragment):
    readiness = wl.evaluate_readiness(status(**kwargs))
    assert not readiness.ready and not readiness.failed
    assert fragment in readiness.message


def test_readiness_failed_on_progress_deadline():
    condition = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": 'ReplicaSet "backend-1" has timed out progressing.'}
    readiness = wl.evaluate_readiness(status(available=0, conditions=[condition]))
    assert readiness.failed and not readiness.ready
    assert "progress deadline (30s)" in readiness.message and "timed out" in readiness.message


def test_readiness_of_zero_replicas_is_ready():
    assert wl.evaluate_readiness(status(desired=0, replicas=0, updated=0, current=0, available=0)).ready


def test_updated_target_sets_image_and_annotations_only():
    target = deployment(pod_spec={"containers": [{"name": "app", "image": "backend:1"}, {"name": "side", "image": "s:1"}]})
    updated = wl.updated_target(target, "backend:2", None, {"lab.progressive.delivery/error-rate": 0.5})
    assert updated["spec"]["template"]["spec"]["containers"][0]["image"] == "backend:2"
    assert updated["spec"]["template"]["spec"]["containers"][1]["image"] == "s:1"
    assert updated["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "lab.progressive.delivery/error-rate": "0.5"}
    assert target["spec"]["template"]["spec"]["containers"][0]["image"] == "backend:1"
    assert wl.updated_target(updated, "backend:2", "app", {"lab.progressive.delivery/error-rate": "0.5"}) is None
    assert wl.updated_target(target, "s:2", "side", None)["spec"]["template"]["spec"]["containers"][1]["image"] == "s:2"
    with pytest.raises(wl.WorkloadError, match="no container named 'web' \\(containers: app, side\\)"):
        wl.updated_target(target, "x", "web", None)


@pytest.mark.parametrize("desired, available, threshold, ready", [
    (10, 10, 100, True),
    (10, 9, 100, False),
    (10, 5, 50, True),
    (10, 4, 50, False),
    (3, 2, 75, True),   # 3 x 75 % = 2.25, rounded down as Flagger does: 2 are enough
    (3, 1, 75, False),
    (2, 0, 0, True),
])
def test_ready_threshold_is_a_share_of_the_updated_replicas(desired, available, threshold, ready):
    readiness = wl.evaluate_readiness(status(desired=desired, replicas=desired, updated=desired, current=desired,
                                             available=available), threshold)
    assert readiness.ready is ready and not readiness.failed
    if threshold < 100:
        assert "ready threshold %s%%" % threshold in readiness.message


def test_ready_threshold_does_not_skip_the_rollout_itself():
    # Half the pods ready would do, but not while pods of the old template are still running or not yet updated.
    assert not wl.evaluate_readiness(status(desired=4, replicas=5, updated=4, current=5, available=4), 50).ready
    assert not wl.evaluate_readiness(status(desired=4, updated=2, current=2, available=2), 50).ready
