"""canary_step action=delete against the lab: Flagger's revertOnDeletion, traffic always on ready pods."""

from __future__ import annotations

import pytest

from tests.integration.test_canary_step import ISTIO, NAME, SERVICE, deployment_body, ok, replicas, set_image
from tests.support.cluster_objects import config_map_names
from tests.support.modules import run_module

DELETE_SERVICE = dict(SERVICE, appProtocol="http", apex={"labels": {"tier": "edge"}, "annotations": {"team": "payments"}})


@pytest.fixture
def step(k8s_auth, namespace, kube):
    kube.core.create_namespaced_config_map(namespace, {"metadata": {"name": "backend-config"}, "data": {"greeting": "hello"}})
    kube.apps.create_namespaced_deployment(namespace, deployment_body())

    def call(action, check_mode=False, diff=False, **args):
        params = dict(k8s_auth, action=action, name=NAME, namespace=namespace, run_id="run-delete", holder="delete test",
                      progress_deadline_seconds=20)
        params.update(args)
        return run_module("canary_step", params, check_mode=check_mode, diff=diff)

    ok(step_lock := call("lock"))
    assert step_lock["lock"]["ours"]
    ok(call("initialize", service=DELETE_SERVICE))
    return call


def istio_names(kube, namespace, plural):
    return sorted(item["metadata"]["name"] for item in
                  kube.custom.list_namespaced_custom_object(ISTIO[0], ISTIO[1], namespace, plural)["items"])


def test_delete_gives_the_service_back_to_the_target_and_removes_only_what_the_canary_made(kube, namespace, step):
    apex = kube.core.read_namespaced_service(NAME, namespace)
    assert apex.spec.ports[0].app_protocol == "http" and apex.metadata.labels["tier"] == "edge"
    assert apex.metadata.annotations["team"] == "payments"
    assert kube.custom.get_namespaced_custom_object(ISTIO[0], ISTIO[1], namespace, "virtualservices",
                                                    NAME)["metadata"]["labels"]["tier"] == "edge"
    # A Secret with the canary's name for saved Secrets that the canary did not create.
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": NAME + "-canary-previous-secrets"}, "data": {}})

    plan = ok(step("delete", service=DELETE_SERVICE, check_mode=True, diff=True))
    assert plan["changed"] and "scale Deployment %s/%s from 0 to 2" % (namespace, NAME) in plan["actions"]
    assert "delete Deployment %s/%s-primary" % (namespace, NAME) in plan["actions"]
    assert plan["diff"]["after"]["Deployment/%s-primary" % NAME] is None
    assert replicas(kube, namespace) == 0 and replicas(kube, namespace, NAME + "-primary") == 2

    deleted = ok(step("delete", service=DELETE_SERVICE))
    assert deleted["changed"] and deleted["phase"] == ""
    actions = deleted["actions"]
    # Traffic only moves once the target is ready, and the primary goes only after it moved.
    assert actions.index("scale Deployment %s/%s from 0 to 2" % (namespace, NAME)) < actions.index(
        "update Service %s/%s" % (namespace, NAME)) < actions.index(
        "update VirtualService %s/%s" % (namespace, NAME)) < actions.index("delete Deployment %s/%s-primary" % (namespace, NAME))
    target = kube.apps.read_namespaced_deployment(NAME, namespace)
    assert target.spec.replicas == 2 and target.status.available_replicas == 2
    assert kube.core.read_namespaced_service(NAME, namespace).spec.selector == {"app": NAME}
    vs = kube.custom.get_namespaced_custom_object(ISTIO[0], ISTIO[1], namespace, "virtualservices", NAME)
    assert vs["spec"]["http"][0]["route"] == [{"destination": {"host": NAME}, "weight": 100}]
    assert vs["spec"]["hosts"] == ["api.example.com", NAME]

    assert [d.metadata.name for d in kube.apps.list_namespaced_deployment(namespace).items] == [NAME]
    assert sorted(s.metadata.name for s in kube.core.list_namespaced_service(namespace).items) == [NAME]
    assert istio_names(kube, namespace, "destinationrules") == []
    assert config_map_names(kube.core, namespace) == ["backend-config"]
    assert [s.metadata.name for s in kube.core.list_namespaced_secret(namespace).items
            if s.metadata.name.startswith(NAME)] == [NAME + "-canary-previous-secrets"]
    assert "was left in place" in str(deleted.get("warnings")), deleted.get("warnings")
    assert kube.coordination.list_namespaced_lease(namespace).items == []

    again = ok(step("delete", service=DELETE_SERVICE))
    assert again["changed"] is False and again["actions"] == [], again["actions"]
    assert "nothing to delete" in again["message"]
    # The canary can be set up again on the same service.
    ok(step("lock"))
    assert ok(step("initialize", service=DELETE_SERVICE))["phase"] == "Initialized"
    assert kube.core.read_namespaced_service(NAME, namespace).spec.selector == {"app": NAME + "-primary"}


def test_delete_refuses_to_hand_the_traffic_to_an_unpromoted_revision(kube, namespace, step):
    set_image(kube, namespace, "backend:2")
    refused = step("delete", service=DELETE_SERVICE)
    assert refused["failed"] and "nothing was changed" in refused["msg"] and "Promote it first" in refused["msg"]
    assert replicas(kube, namespace) == 0 and replicas(kube, namespace, NAME + "-primary") == 2
    assert kube.core.read_namespaced_service(NAME, namespace).spec.selector == {"app": NAME + "-primary"}
    assert istio_names(kube, namespace, "destinationrules") == [NAME + "-canary", NAME + "-primary"]
