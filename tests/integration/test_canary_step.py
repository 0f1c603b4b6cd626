"""canary_step against the lab: real HTTPS API emulator, workload controller, the module run as Ansible runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from lab.testing import wait_for
from tests.support.cluster_objects import config_map_names
from tests.support.modules import MODULE_PACKAGE, _environment, run_module, run_playbook

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client  # noqa: E402

NAME = "backend"
ISTIO = ("networking.istio.io", "v1")
READY_ANNOTATION = "lab.progressive.delivery/ready"
# Short, so a "dead" run's lock expires quickly; long enough for a few module calls in a row.
LEASE_TTL = 4


def poll(predicate, timeout=15.0, interval=0.1):
    """Return the first truthy value of ``predicate``; fail with the last one after ``timeout``."""
    return wait_for(predicate, timeout=timeout, interval=interval)


def deployment_body(image="backend:1", annotations=None, deadline=30, replicas=2, config="backend-config"):
    container = {"name": "app", "image": image, "ports": [{"containerPort": 8080}]}
    if config:
        container["envFrom"] = [{"configMapRef": {"name": config}}]
    return {
        "metadata": {"name": NAME, "labels": {"app": NAME}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {"metadata": {"labels": {"app": NAME}, "annotations": dict(annotations or {})},
                         "spec": {"containers": [container]}},
        },
    }


@pytest.fixture
def app(kube, namespace):
    """A target Deployment reading a ConfigMap, as a user would deploy it."""
    kube.core.create_namespaced_config_map(namespace, {"metadata": {"name": "backend-config"}, "data": {"greeting": "hello"}})
    kube.apps.create_namespaced_deployment(namespace, deployment_body())
    return namespace


@pytest.fixture
def step(k8s_auth, namespace):
    """Run one canary_step task; ``run`` names the playbook run (its run_id)."""

    def call(action, run="run-a", check_mode=False, diff=False, **args):
        params = dict(k8s_auth, action=action, name=NAME, namespace=namespace, run_id=run, holder="job of " + run,
                      progress_deadline_seconds=20, lease_ttl=LEASE_TTL)
        params.update(args)
        return run_module("canary_step", params, check_mode=check_mode, diff=diff)

    return call


SERVICE = {"port": 80, "targetPort": 8080, "hosts": ["api.example.com"],
           "gateways": ["public-gateway.istio-system.svc.cluster.local"]}


def ok(result):
    assert not result.get("failed"), result.get("msg")
    return result


def unless_failed(result):
    """``result`` when the step succeeded, else None: a ``poll`` predicate that waits for a step to succeed."""
    return None if result.get("failed") else result


def stored_state(kube, namespace):
    configmap = kube.core.read_namespaced_config_map(NAME + "-canary-state", namespace)
    return json.loads(configmap.data["state.json"])


def replicas(kube, namespace, name=NAME):
    return kube.apps.read_namespaced_deployment(name, namespace).spec.replicas


def set_image(kube, namespace, image, annotations=None):
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    if annotations:
        patch["spec"]["template"]["metadata"] = {"annotations": annotations}
    kube.apps.patch_namespaced_deployment(NAME, namespace, patch)


def events(kube, namespace):
    return [e.message for e in kube.core.list_namespaced_event(namespace).items if e.involved_object.name == NAME]


def initialized(step):
    ok(step("lock"))
    return ok(step("initialize", service=SERVICE))


def test_initialize_creates_the_canary_objects_and_is_idempotent(kube, app, step):
    namespace = app
    first = initialized(step)
    assert first["changed"] and first["phase"] == "Initialized"

    primary = kube.apps.read_namespaced_deployment(NAME + "-primary", namespace)
    assert primary.spec.selector.match_labels == {"app": "backend-primary"}
    assert primary.spec.template.metadata.labels["app"] == "backend-primary"
    assert primary.spec.template.spec.containers[0].env_from[0].config_map_ref.name == "backend-config-primary"
    assert primary.metadata.labels["app.kubernetes.io/managed-by"] == "progressive.delivery"
    copied = kube.core.read_namespaced_config_map("backend-config-primary", namespace)
    assert copied.data == {"greeting": "hello"}

    apex = kube.core.read_namespaced_service(NAME, namespace)
    assert apex.spec.selector == {"app": "backend-primary"}
    assert kube.core.read_namespaced_service(NAME + "-canary", namespace).spec.selector == {"app": "backend"}
    assert apex.spec.ports[0].port == 80 and apex.spec.ports[0].target_port == 8080
    for suffix in ("-primary", "-canary"):
        rule = kube.custom.get_namespaced_custom_object(ISTIO[0], ISTIO[1], namespace, "destinationrules", NAME + suffix)
        assert rule["spec"] == {"host": NAME + suffix}
    vs = kube.custom.get_namespaced_custom_object(ISTIO[0], ISTIO[1], namespace, "virtualservices", NAME)
    assert vs["spec"]["hosts"] == ["api.example.com", NAME]
    assert vs["spec"]["gateways"] == SERVICE["gateways"]
    assert [(d["destination"]["host"], d["weight"]) for d in vs["spec"]["http"][0]["route"]] == [
        ("backend-primary", 100), ("backend-canary", 0)]
    assert replicas(kube, namespace) == 0
    state = stored_state(kube, namespace)
    assert state["phase"] == "Initialized" and state["lastPromotedSpec"] == first["checksum"]
    assert "configmap/backend-config" in state["trackedConfigs"]
    assert any("Initialization done!" in message for message in events(kube, namespace))

    second = ok(step("initialize", service=SERVICE))
    assert second["changed"] is False, second["actions"]
    assert second["actions"] == []
    detected = ok(step("detect"))
    assert detected["revision"] == "nothing_to_do"


def test_check_mode_initialize_plans_and_writes_nothing(kube, app, step):
    namespace = app
    plan = ok(step("initialize", service=SERVICE, check_mode=True, diff=True))
    assert plan["changed"] is True
    assert "create Deployment %s/backend-primary" % namespace in plan["actions"]
    assert "scale Deployment %s/backend from 2 to 0" % namespace in plan["actions"]
    assert plan["diff"]["after"]["Deployment/backend-primary"]["spec"]["selector"] == {"matchLabels": {"app": "backend-primary"}}
    assert [d.metadata.name for d in kube.apps.list_namespaced_deployment(namespace).items] == [NAME]
    assert [s.metadata.name for s in kube.core.list_namespaced_service(namespace).items] == []
    assert replicas(kube, namespace) == 2
    assert config_map_names(kube.core, namespace) == ["backend-config"]


def test_release_end_to_end_promotes_template_and_config(kube, app, step):
    namespace = app
    initialized(step)
    set_image(kube, namespace, "backend:2")
    kube.core.patch_namespaced_config_map("backend-config", namespace, {"data": {"greeting": "bonjour"}})
    detected = ok(step("detect"))
    assert detected["revision"] == "new_revision"

    started = ok(step("start"))
    assert started["phase"] == "Progressing" and started["revision"] == "new_revision"
    assert replicas(kube, namespace) == 2
    assert kube.apps.read_namespaced_deployment(NAME, namespace).status.available_replicas == 2
    assert ok(step("start"))["changed"] is False  # a repeated start resumes, it does not restart

    for iteration, weight in enumerate((10, 20), start=1):
        recorded = ok(step("record", analysis={"weight": weight, "iteration": iteration, "failed_checks": 0, "metrics": [
            {"name": "request-success-rate", "value": 99.9, "result": "pass"}]}))
        assert recorded["canary_weight"] == weight and recorded["iterations"] == iteration
    repeated = ok(step("record", analysis={"weight": 20, "iteration": 2, "failed_checks": 0}))
    assert repeated["changed"] is False
    assert ok(step("detect"))["revision"] == "in_progress"

    promoted = ok(step("promote"))
    assert promoted["phase"] == "Finalising"
    primary = kube.apps.read_namespaced_deployment(NAME + "-primary", namespace)
    assert primary.spec.template.spec.containers[0].image == "backend:2"
    assert kube.core.read_namespaced_config_map("backend-config-primary", namespace).data == {"greeting": "bonjour"}
    assert replicas(kube, namespace) == 2  # traffic may still be on the canary until it is routed to the primary

    finalized = ok(step("finalize"))
    assert finalized["phase"] == "Succeeded" and finalized["canary_weight"] == 0
    assert replicas(kube, namespace) == 0
    assert ok(step("detect"))["revision"] == "nothing_to_do"
    assert ok(step("promote"))["changed"] is False
    state = ok(step("status"))["state"]
    assert state["lastPromotedSpec"] == state["lastAppliedSpec"] == promoted["checksum"]
    assert [entry.get("action") or entry["weight"] for entry in state["history"]] == [
        "initialize", "start", 10, 20, "promote", "promote", "finalize"]
    story = events(kube, namespace)
    for fragment in ("New revision detected! Scaling up", "Advance backend.%s canary weight 20" % namespace,
                     "Copying backend.%s template spec" % namespace, "Promotion completed!"):
        assert any(fragment in message for message in story), (fragment, story)


def test_update_target_changes_only_image_and_annotations(kube, app, step):
    namespace = app
    initialized(step)
    planned = ok(step("update_target", image="backend:3", check_mode=True))
    assert planned["changed"] and kube.apps.read_namespaced_deployment(NAME, namespace).spec.template.spec.containers[0].image == "backend:1"
    updated = ok(step("update_target", image="backend:3", pod_annotations={"lab.progressive.delivery/error-rate": "0.2"}))
    assert updated["changed"]
    target = kube.apps.read_namespaced_deployment(NAME, namespace)
    assert target.spec.template.spec.containers[0].image == "backend:3"
    assert target.spec.template.metadata.annotations == {"lab.progressive.delivery/error-rate": "0.2"}
    assert target.spec.template.spec.containers[0].env_from[0].config_map_ref.name == "backend-config"
    assert target.spec.replicas == 0
    assert ok(step("update_target", image="backend:3"))["changed"] is False
    assert ok(step("detect"))["revision"] == "new_revision"


def test_rollback_is_not_retried_until_retry_rearms_it(kube, app, step):
    namespace = app
    initialized(step)
    set_image(kube, namespace, "backend:bad")
    ok(step("start"))
    ok(step("record", analysis={"weight": 10, "failed_checks": 1, "metrics": [
        {"name": "request-success-rate", "value": 80.0, "result": "fail", "reason": "below 99"}]}))
    rolled = ok(step("rollback", reason="failed checks threshold reached 2", analysis={"failed_checks": 2}))
    assert rolled["failed_checks"] == 2 and stored_state(kube, namespace)["failedChecks"] == 2
    assert rolled["phase"] == "Failed" and rolled["state"]["reason"] == "failed checks threshold reached 2"
    assert replicas(kube, namespace) == 0
    assert kube.apps.read_namespaced_deployment(NAME + "-primary", namespace).spec.template.spec.containers[0].image == "backend:1"

    detected = ok(step("detect"))
    assert detected["revision"] == "nothing_to_do" and "retry" in detected["message"]
    refused = step("start")
    assert refused["failed"] and "retry" in refused["msg"]
    assert ok(step("rollback"))["changed"] is False

    assert ok(step("retry"))["phase"] == "Initialized"
    assert ok(step("detect"))["revision"] == "new_revision"


def test_canary_that_never_becomes_ready_fails_with_the_reason(kube, app, step):
    namespace = app
    initialized(step)
    # Scaling a complete Deployment up is a scaling event for the deployment controller, which then never
    # reports ProgressDeadlineExceeded: the canary's own progress deadline has to end the wait.
    kube.apps.patch_namespaced_deployment(NAME, namespace, {"spec": {"progressDeadlineSeconds": 2, "template": {
        "metadata": {"annotations": {READY_ANNOTATION: "false"}}}}})
    started = time.monotonic()
    result = step("start", progress_deadline_seconds=4)
    elapsed = time.monotonic() - started
    assert result["failed"]
    assert "never became ready" in result["msg"] and "did not become ready within 4s" in result["msg"], result["msg"]
    assert "0 of 2 updated replicas are available" in result["msg"], result["msg"]
    assert elapsed < 15, "the canary's progress deadline ends the wait"
    assert result["phase"] == "Failed"
    assert replicas(kube, namespace) == 0
    assert stored_state(kube, namespace)["failedSpec"] == result["checksum"]


def test_promote_with_a_primary_that_never_becomes_ready_keeps_traffic_and_rolls_back(kube, app, step):
    namespace = app
    initialized(step)
    kube.apps.patch_namespaced_deployment(NAME, namespace, {"spec": {"progressDeadlineSeconds": 2, "template": {
        "metadata": {"annotations": {READY_ANNOTATION: "false"}}}}})
    ok(step("start", wait_timeout=0))
    ok(step("record", analysis={"weight": 50, "failed_checks": 0}))

    result = step("promote", wait_timeout=10)
    assert result["failed"]
    assert "is not ready after the promotion" in result["msg"] and "Traffic stays on the canary" in result["msg"]
    assert result["phase"] == "Promoting"
    assert replicas(kube, namespace) > 0, "the canary keeps serving while the primary is broken"
    assert stored_state(kube, namespace)["phase"] == "Promoting"
    assert step("finalize")["failed"]

    rolled = ok(step("rollback", reason="primary not ready"))
    assert rolled["phase"] == "Failed"
    primary = kube.apps.read_namespaced_deployment(NAME + "-primary", namespace)
    assert READY_ANNOTATION not in (primary.spec.template.metadata.annotations or {})
    poll(lambda: (kube.apps.read_namespaced_deployment(NAME + "-primary", namespace).status.available_replicas or 0) >= 2)
    assert replicas(kube, namespace) == 0


def test_rollback_after_promotion_puts_the_primary_configs_back(kube, app, step):
    """A config-only release whose primary breaks: the rollback restores the ConfigMap and Secret data too."""
    namespace = app
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": "backend-secret"}, "type": "Opaque",
                                                   "stringData": {"token": "good-token"}})
    kube.core.patch_namespaced_config_map("backend-config", namespace, {"data": {"greeting": "v1-good"}})
    kube.apps.patch_namespaced_deployment(NAME, namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "backend-secret", "key": "token"}}}]}]}}}})
    initialized(step)
    template_before = kube.apps.read_namespaced_deployment(NAME + "-primary", namespace).to_dict()["spec"]["template"]
    secret_before = kube.core.read_namespaced_secret("backend-secret-primary", namespace).data

    kube.core.patch_namespaced_config_map("backend-config", namespace, {"data": {"greeting": "v2-bad"}})
    kube.core.patch_namespaced_secret("backend-secret", namespace, {"stringData": {"token": "bad-token"}})
    assert ok(step("start"))["revision"] == "new_revision"
    promoting = step("promote", wait_timeout=0, diff=True)
    assert promoting["failed"] and promoting["phase"] == "Promoting", promoting.get("msg")
    assert kube.core.read_namespaced_config_map("backend-config-primary", namespace).data == {"greeting": "v2-bad"}
    assert kube.core.read_namespaced_secret("backend-secret-primary", namespace).data != secret_before
    saved = stored_state(kube, namespace)["primaryConfigsBeforePromotion"]
    assert saved == {"configMaps": {"backend-config-primary": {"data": {"greeting": "v1-good"}}},
                     "secrets": ["backend-secret-primary"]}
    # The Secret's previous data is kept in a Secret of the canary, never in the state, the result or the diff.
    for text in (json.dumps(stored_state(kube, namespace)), json.dumps(promoting)):
        assert secret_before["token"] not in text and "good-token" not in text
    assert kube.core.read_namespaced_secret("backend-canary-previous-secrets", namespace).metadata.labels[
        "app.kubernetes.io/managed-by"] == "progressive.delivery"

    rolled = ok(step("rollback", reason="primary broken"))
    assert rolled["phase"] == "Failed"
    assert kube.core.read_namespaced_config_map("backend-config-primary", namespace).data == {"greeting": "v1-good"}
    assert kube.core.read_namespaced_secret("backend-secret-primary", namespace).data == secret_before
    primary = kube.apps.read_namespaced_deployment(NAME + "-primary", namespace).to_dict()["spec"]["template"]
    assert primary["metadata"]["annotations"] == template_before["metadata"]["annotations"]
    assert primary["spec"]["containers"] == template_before["spec"]["containers"]
    assert stored_state(kube, namespace)["primaryConfigsBeforePromotion"] is None
    assert not kube.core.read_namespaced_secret("backend-canary-previous-secrets", namespace).data
    assert secret_before["token"] not in json.dumps(rolled)
    assert ok(step("detect"))["revision"] == "nothing_to_do"


def test_prepare_locks_initializes_and_detects_in_one_call(kube, app, step):
    namespace = app
    first = ok(step("prepare", service=SERVICE))
    assert first["steps"] == ["lock", "initialize", "detect"]
    assert first["initialized"] and first["initialize_changed"] and first["changed"]
    assert first["route_api_version"].startswith("networking.istio.io/")
    assert first["revision"] == "nothing_to_do" and first["lock"]["ours"]
    assert first["decision"]["path"] == "nothing" and first["decision"]["result"] == "Initialized"
    assert kube.apps.read_namespaced_deployment(NAME + "-primary", namespace).spec.template.spec.containers[0].image == "backend:1"

    # A new revision given to the call itself: the target is updated before detect compares it.
    second = ok(step("prepare", service=SERVICE, image="backend:2"))
    assert second["steps"] == ["lock", "initialize", "update_target", "detect"]
    assert not second["initialized"] and not second["initialize_changed"]
    assert second["revision"] == "new_revision" and second["checksum"] != first["checksum"]
    assert second["decision"] == {"path": "new", "result": "", "reason": "", "message": (
        "New revision %s of %s/%s: starting the canary analysis" % (second["checksum"], namespace, NAME))}
    assert kube.apps.read_namespaced_deployment(NAME, namespace).spec.template.spec.containers[0].image == "backend:2"

    # A later step's failure ends the call there, with the lock still this run's and nothing after it done.
    broken = step("prepare", service={"targetPort": 8080}, image="backend:3")
    assert broken["failed"] and broken["steps"] == ["lock", "initialize"], broken
    assert "port" in broken["msg"] and broken["lock"]["ours"]
    assert kube.apps.read_namespaced_deployment(NAME, namespace).spec.template.spec.containers[0].image == "backend:2"

    # A suspended canary: the lock, and nothing else, not even the image the call was given.
    suspended = ok(step("prepare", service=SERVICE, image="backend:4", suspended=True))
    assert suspended["steps"] == ["lock"] and suspended["lock"]["ours"]
    assert suspended["decision"]["path"] == "suspended" and suspended["decision"]["result"] == "NothingToDo"
    assert kube.apps.read_namespaced_deployment(NAME, namespace).spec.template.spec.containers[0].image == "backend:2"
    refused = step("detect", suspended=True)
    assert refused["failed"] and "suspended applies to action=prepare only" in refused["msg"]


def test_prepare_prints_its_decision_in_the_controller_and_as_a_module(k8s_auth, app, tmp_path):
    """The role prints no decision of its own: the task does, whether it runs in the controller or as a module."""
    namespace = app
    options = dict(k8s_auth, action="prepare", name=NAME, namespace=namespace, run_id="run-a", holder="job of run-a",
                   lease_ttl=LEASE_TTL, service=SERVICE)
    playbook = tmp_path / "prepare.yml"
    playbook.write_text(json.dumps([{"name": "prepare twice", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "in the controller's process", "progressive.delivery.canary_step": options},
        # A task environment makes the action plugin run the module instead, as on a remote host.
        {"name": "as a module", "progressive.delivery.canary_step": options, "environment": {"LANG": "C.UTF-8"}},
    ]}]))
    ran = run_playbook(playbook)
    assert ran.returncode == 0, ran.stdout[-3000:]
    # The first call initializes, the second finds nothing new: each line comes from its own task.
    assert "Initialized %s/%s: primary and routing created" % (namespace, NAME) in ran.stdout, ran.stdout[-3000:]
    assert "No new revision of %s/%s: nothing changes" % (namespace, NAME) in ran.stdout, ran.stdout[-3000:]


def test_prepare_waits_for_the_lock_only_as_long_as_it_is_told(kube, app, step):
    ok(step("lock", run="run-a"))
    refused = step("prepare", run="run-b", service=SERVICE)
    assert refused["failed"] and refused["steps"] == ["lock"]
    assert "locked by another run: job of run-a (run id run-a)" in refused["msg"]
    # run-a stops renewing: a run told to wait longer than its TTL takes the lock over, then prepares.
    started = time.monotonic()
    waited = ok(step("prepare", run="run-b", service=SERVICE, lock_wait=LEASE_TTL * 5))
    assert time.monotonic() - started >= 1.0
    assert waited["lock"]["ours"] and waited["initialized"] and waited["steps"] == ["lock", "initialize", "detect"]


def test_second_run_is_refused_while_the_first_holds_the_lock(kube, app, step):
    namespace = app
    ok(step("lock", run="run-a"))
    refused = step("lock", run="run-b", lease_ttl=LEASE_TTL * 10)
    assert refused["failed"]
    assert "locked by another run: job of run-a (run id run-a)" in refused["msg"]
    # The result describes the Lease as it is: run-a's, with run-a's duration, not the one run-b asked for.
    lock = refused["lock"]
    assert (lock["held"], lock["ours"], lock["run_id"], lock["lease_duration_seconds"]) == (True, False, "run-a", LEASE_TTL)
    writing = step("initialize", run="run-b", service=SERVICE)
    assert writing["failed"] and "job of run-a" in writing["msg"]
    assert kube.apps.list_namespaced_deployment(namespace).items[0].metadata.name == NAME
    assert len(kube.apps.list_namespaced_deployment(namespace).items) == 1
    assert ok(step("status", run="run-b"))["lock"]["holder"] == "job of run-a"

    # run-a stops renewing: once its TTL passes, run-b takes over.
    taken = poll(lambda: unless_failed(step("lock", run="run-b")), timeout=15, interval=0.5)
    assert taken["lock"]["ours"] and taken["message"].startswith("lock taken over")
    lease = kube.coordination.read_namespaced_lease(NAME + "-canary-lock", namespace)
    assert lease.spec.holder_identity == "run-b" and lease.spec.lease_transitions == 1
    stale = ok(step("unlock", run="run-a"))
    assert stale["changed"] is False
    assert any("held by another run: job of run-b (run id run-b)" in str(w) for w in stale.get("warnings", [])), stale.get("warnings")
    assert ok(step("unlock", run="run-b"))["changed"] is True
    assert kube.coordination.read_namespaced_lease(NAME + "-canary-lock", namespace).spec.holder_identity is None


def test_run_killed_during_analysis_is_resumed_at_the_recorded_weight(kube, app, step):
    namespace = app
    ok(step("lock"))
    ok(step("initialize", service=SERVICE))
    set_image(kube, namespace, "backend:2")
    ok(step("start"))
    ok(step("record", analysis={"weight": 20, "iteration": 1, "failed_checks": 0}))
    # run-a dies here: no unlock, no more renewals.

    taken = poll(lambda: unless_failed(step("lock", run="run-b")), timeout=15, interval=0.5)
    assert taken["resume"] == {"needed": True, "action": "resume", "phase": "Progressing", "weight": 20,
                               "iterations": 1, "failed_checks": 0, "previous_run": "run-a", "step_index": -1}
    detected = ok(step("detect", run="run-b"))
    assert detected["revision"] == "in_progress" and detected["resume"]["action"] == "resume"
    assert ok(step("start", run="run-b"))["phase"] == "Progressing"
    recorded = ok(step("record", run="run-b", analysis={"weight": 30, "iteration": 2, "failed_checks": 0}))
    assert recorded["iterations"] == 2 and recorded["state"]["runId"] == "run-b"
    ok(step("promote", run="run-b"))
    assert ok(step("finalize", run="run-b"))["phase"] == "Succeeded"
    assert kube.apps.read_namespaced_deployment(NAME + "-primary", namespace).spec.template.spec.containers[0].image == "backend:2"


def test_run_killed_during_analysis_restarts_when_the_target_changed(kube, app, step, k8s_auth, namespace):
    """The dead run's weight and failed checks judged the previous revision: a new one starts from nothing."""
    ok(step("lock"))
    ok(step("initialize", service=SERVICE))
    set_image(kube, namespace, "backend:2")
    analysed = ok(step("start"))["checksum"]
    ok(run_module("vs_weight", dict(k8s_auth, name=NAME, namespace=namespace, weight=30)))
    ok(step("record", analysis={"weight": 30, "iteration": 3, "failed_checks": 2}))
    # run-a dies here; meanwhile the target gets another revision.
    set_image(kube, namespace, "backend:3")

    poll(lambda: ok(step("status", run="run-b"))["lock"]["held"] is False, timeout=15, interval=0.5)
    detected = ok(step("detect", run="run-b"))
    assert detected["revision"] == "in_progress"
    resume = detected["resume"]
    assert (resume["action"], resume["weight"], resume["failed_checks"], resume["iterations"]) == ("restart", 0, 0, 0), resume
    assert "replaced revision %s" % analysed in resume["message"]
    ok(step("lock", run="run-b"))
    started = ok(step("start", run="run-b"))
    assert started["restarted"] is True and started["checksum"] != analysed
    assert (started["canary_weight"], started["failed_checks"], started["iterations"]) == (0, 0, 0)
    assert started["phase"] == "Progressing" and started["resume"]["action"] == "continue"
    assert stored_state(kube, namespace)["lastAppliedSpec"] == started["checksum"]
    assert ok(step("start", run="run-b"))["restarted"] is False


def test_run_killed_during_analysis_can_be_rolled_back_instead(kube, app, step):
    namespace = app
    ok(step("lock"))
    ok(step("initialize", service=SERVICE))
    set_image(kube, namespace, "backend:2")
    ok(step("start"))
    ok(step("record", analysis={"weight": 40, "failed_checks": 1}))

    taken = poll(lambda: unless_failed(step("lock", run="run-b", on_resume="rollback")), timeout=15, interval=0.5)
    assert taken["resume"]["action"] == "rollback" and taken["resume"]["weight"] == 0
    rolled = ok(step("rollback", run="run-b", reason="the previous run died"))
    assert rolled["phase"] == "Failed" and replicas(kube, namespace) == 0
    assert kube.apps.read_namespaced_deployment(NAME + "-primary", namespace).spec.template.spec.containers[0].image == "backend:1"


def test_run_killed_during_promote_is_finished_by_the_next_run(kube, app, step, lab, faulty_k8s_auth):
    namespace = app
    ok(step("lock"))
    ok(step("initialize", service=SERVICE))
    set_image(kube, namespace, "backend:2")
    ok(step("start"))
    ok(step("record", analysis={"weight": 50, "failed_checks": 0}))

    # Hold the primary's update in the API server so the run can be killed in the middle of the promotion.
    fault = lab.inject_fault("PUT", r"/namespaces/%s/deployments/backend-primary$" % namespace, delay=20)
    args = dict(faulty_k8s_auth, action="promote", name=NAME, namespace=namespace, run_id="run-a", holder="job of run-a",
                lease_ttl=LEASE_TTL)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    process = subprocess.Popen([sys.executable, "-m", MODULE_PACKAGE + ".canary_step", handle.name],
                               env=_environment(None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Killed once its PUT of the primary is held by the API server: the state already says Promoting.
        poll(lambda: [f for f in lab.faults() if f["id"] == fault and f["matched"]], timeout=15, interval=0.05)
        assert stored_state(kube, namespace)["phase"] == "Promoting"
    finally:
        process.kill()
        process.wait()
        os.unlink(handle.name)
    lab.remove_fault(fault)

    taken = poll(lambda: unless_failed(step("lock", run="run-b")), timeout=15, interval=0.5)
    assert taken["resume"]["action"] == "promote" and taken["resume"]["phase"] == "Promoting"
    assert step("start", run="run-b")["failed"], "a half-done promotion is never started over"
    promoted = ok(step("promote", run="run-b"))
    assert promoted["phase"] == "Finalising"
    assert kube.apps.read_namespaced_deployment(NAME + "-primary", namespace).spec.template.spec.containers[0].image == "backend:2"
    finished = ok(step("finalize", run="run-b"))
    assert finished["phase"] == "Succeeded" and replicas(kube, namespace) == 0
    history = [entry.get("action") for entry in finished["state"]["history"] if entry.get("action")]
    assert history == ["initialize", "start", "promote", "promote", "finalize"]


def test_bad_input_fails_clearly_and_creates_nothing(kube, namespace, step, lab, k8s_auth):
    missing = step("initialize", service=SERVICE)
    assert missing["failed"] and "Deployment %s/backend (the target of canary backend) was not found" % namespace in missing["msg"]

    body = deployment_body(config=None)
    body["spec"]["selector"]["matchLabels"] = {"tier": "web"}
    body["spec"]["template"]["metadata"]["labels"] = {"tier": "web"}
    kube.apps.create_namespaced_deployment(namespace, body)
    unusable = step("initialize", service=SERVICE)
    assert unusable["failed"] and "no usable selector label" in unusable["msg"] and "app, name, app.kubernetes.io/name" in unusable["msg"]
    kube.apps.delete_namespaced_deployment(NAME, namespace, _preload_content=False)

    kube.apps.create_namespaced_deployment(namespace, deployment_body(config=None))
    not_a_deployment = step("initialize", service=SERVICE, target_kind="DaemonSet")
    assert not_a_deployment["failed"] and "only Deployments are supported" in not_a_deployment["msg"]

    no_port = step("initialize", service={"hosts": ["x"]})
    assert no_port["failed"] and "service.port is required" in no_port["msg"]

    foreign = deployment_body(config=None)
    foreign["metadata"]["name"] = NAME + "-primary"
    kube.apps.create_namespaced_deployment(namespace, foreign)
    kube.core.create_namespaced_service(namespace, {"metadata": {"name": NAME}, "spec": {"ports": [{"port": 80}]}})
    owned = step("initialize", service=SERVICE)
    assert owned["failed"], owned
    assert "Deployment %s/backend-primary exists but was not created by progressive.delivery" % namespace in owned["msg"]
    assert "Service %s/backend exists but was not created by progressive.delivery" % namespace in owned["msg"]
    assert "delete it or adopt it" in owned["msg"]
    kube.apps.delete_namespaced_deployment(NAME + "-primary", namespace, _preload_content=False)
    kube.core.delete_namespaced_service(NAME, namespace, _preload_content=False)

    kube.custom.create_namespaced_custom_object(ISTIO[0], ISTIO[1], namespace, "virtualservices", {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "edge"},
        "spec": {"hosts": ["edge"], "http": [{"name": "web", "route": [{"destination": {"host": "backend-primary"}}]}]}})
    no_route = step("initialize", service=SERVICE, virtual_service={"adopt": "edge", "route": "api"})
    assert no_route["failed"] and "VirtualService %s/edge has no HTTP route named 'api' (routes: web)" % namespace in no_route["msg"]

    readonly = run_module("canary_step", dict(kubeconfig=lab.readonly_kubeconfig, action="initialize", name=NAME,
                                              namespace=namespace, run_id="ro", service=SERVICE))
    assert readonly["failed"] and "403" in readonly["msg"] and "docs/rbac.yml" in readonly["msg"], readonly["msg"]
    # Nothing was written: the result says so, and reports the canary as it is stored (never initialized).
    assert readonly["changed"] is False and readonly["phase"] != "Initializing", (readonly["changed"], readonly["phase"])
    assert readonly["actions"] == []

    assert [d.metadata.name for d in kube.apps.list_namespaced_deployment(namespace).items] == [NAME]
    assert [s.metadata.name for s in kube.core.list_namespaced_service(namespace).items] == []
    assert config_map_names(kube.core, namespace) == []
    assert replicas(kube, namespace) == 2


def test_adopted_virtual_service_is_recorded_and_left_alone(kube, app, step):
    namespace = app
    spec = {"hosts": ["edge.example.com"], "http": [
        {"name": "health", "route": [{"destination": {"host": "health"}}]},
        {"name": "api", "route": [{"destination": {"host": "backend-primary"}, "weight": 100},
                                  {"destination": {"host": "backend-canary"}, "weight": 0}]}]}
    kube.custom.create_namespaced_custom_object(ISTIO[0], ISTIO[1], namespace, "virtualservices", {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "edge"}, "spec": spec})
    result = ok(step("initialize", service=SERVICE, virtual_service={"adopt": "edge", "route": "api"}))
    assert result["state"]["virtualService"] == {"name": "edge", "route": "api", "adopted": True,
                                                 "apiVersion": "networking.istio.io/v1"}
    names = [vs["metadata"]["name"] for vs in kube.custom.list_namespaced_custom_object(
        ISTIO[0], ISTIO[1], namespace, "virtualservices")["items"]]
    assert names == ["edge"]
    assert kube.custom.get_namespaced_custom_object(ISTIO[0], ISTIO[1], namespace, "virtualservices", "edge")["spec"] == spec


def test_autoscaler_gets_a_primary_copy_scaling_the_primary(kube, app, step, lab):
    namespace = app
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": NAME},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
                    "minReplicas": 2, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                  "target": {"type": "Utilization", "averageUtilization": 80}}}]}}
    autoscaling = client.AutoscalingV2Api(lab.kube_client())
    autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, hpa)

    ok(step("lock"))
    first = ok(step("initialize", service=SERVICE, autoscaler=NAME))
    assert first["changed"]
    copy = autoscaling.read_namespaced_horizontal_pod_autoscaler(NAME + "-primary", namespace)
    assert copy.spec.scale_target_ref.name == NAME + "-primary"
    assert (copy.spec.min_replicas, copy.spec.max_replicas) == (2, 5)
    assert copy.spec.metrics[0].resource.target.average_utilization == 80
    assert copy.metadata.labels["app.kubernetes.io/managed-by"] == "progressive.delivery"
    user_owned = autoscaling.read_namespaced_horizontal_pod_autoscaler(NAME, namespace)
    assert user_owned.spec.scale_target_ref.name == NAME

    again = ok(step("initialize", service=SERVICE, autoscaler=NAME))
    assert again["changed"] is False, again["actions"]
