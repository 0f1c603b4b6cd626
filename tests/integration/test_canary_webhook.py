"""canary_webhook against the lab's hooks server, which speaks the API of Flagger's load tester."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests

from lab.testing import wait_for as lab_wait_for
from kubernetes import client as k8s

from tests.support.modules import run_module

FLAGGER_PAYLOAD_FIELDS = {"name", "namespace", "phase", "checksum", "metadata"}


def unique_canary():
    return "wh-" + uuid.uuid4().hex[:10]


def hooks_post(lab, path, name, namespace):
    response = requests.post(lab.hooks_url.rstrip("/") + path, json={"name": name, "namespace": namespace}, timeout=5)
    response.raise_for_status()


def recorded_calls(lab, path, name):
    calls = requests.get(lab.hooks_url.rstrip("/") + "/calls", timeout=5).json()
    return [call for call in calls if call["path"] == path and isinstance(call.get("body"), dict) and call["body"].get("name") == name]


def wait_for(condition, timeout, what):
    return lab_wait_for(condition, timeout=timeout, message=what)


def hook(lab, path, name, namespace="test", **overrides):
    args = {"url": lab.hooks_url.rstrip("/") + path, "name": name, "namespace": namespace, "timeout": 20}
    args.update(overrides)
    return run_module("canary_webhook", args)


# ---------------------------------------------------------------- smoke tests through the mesh


def make_workload(api_client, namespace, name, error_rate):
    labels = {"app": name}
    apps = k8s.AppsV1Api(api_client)
    core = k8s.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"lab.progressive.delivery/error-rate": str(error_rate)}},
                "spec": {"containers": [{"name": "app", "image": "podinfo:6.0.0", "ports": [{"containerPort": 9898}]}]},
            },
        },
    })
    core.create_namespaced_service(namespace, {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 9898, "targetPort": 9898}]},
    })

    def ready():
        status = apps.read_namespaced_deployment(name, namespace).status
        return status is not None and (status.ready_replicas or 0) >= 1

    wait_for(ready, 30, f"deployment {namespace}/{name} to be ready")


@pytest.fixture
def smoke_services(lab, namespace):
    api_client = lab.kube_client()
    make_workload(api_client, namespace, "healthy", 0)
    make_workload(api_client, namespace, "broken", 1)
    return namespace


def test_smoke_test_passes_for_a_healthy_service(lab, smoke_services):
    result = hook(lab, "/smoke", "healthy", smoke_services, type="pre-rollout",
                  metadata={"host": "healthy", "namespace": smoke_services, "count": 20})
    assert result.get("failed") is not True, result
    assert result["passed"] is True
    assert result["status"] == 200
    assert '"failed": 0' in result["body"]


def test_smoke_test_fails_for_a_broken_service_with_the_summary(lab, smoke_services):
    result = hook(lab, "/smoke", "broken", smoke_services, type="pre-rollout",
                  metadata={"host": "broken", "namespace": smoke_services, "count": 20})
    assert result["failed"] is True
    assert result["status"] == 500
    assert "pre-rollout webhook for canary broken." + smoke_services in result["msg"]
    assert '"failed": 20' in result["msg"]


def test_blocking_bash_task_passes_and_fails_like_flaggers_load_tester(lab):
    name = unique_canary()
    passed = hook(lab, "/", name, type="pre-rollout", metadata={"type": "bash", "cmd": "test 2 -gt 1"})
    assert passed.get("failed") is not True, passed
    assert passed["status"] == 200
    failed = hook(lab, "/", name, type="pre-rollout", metadata={"type": "bash", "cmd": "echo acceptance failed: 2 of 9; exit 3"})
    assert failed["failed"] is True
    assert failed["status"] == 500
    assert "acceptance failed: 2 of 9" in failed["msg"]


def test_background_load_is_accepted_at_once(lab):
    result = hook(lab, "/", unique_canary(), type="rollout", metadata={"type": "cmd", "cmd": "sleep 2"})
    assert result.get("failed") is not True, result
    assert result["status"] == 202
    assert result["elapsed"] < 2


# ---------------------------------------------------------------- gates


def test_a_gate_closed_then_opened_while_the_module_waits(lab):
    name = unique_canary()
    outcome = {}

    def wait_for_gate():
        outcome["result"] = hook(lab, "/gate/check", name, type="confirm-promotion", wait=True, gate_timeout=60, gate_poll=0.2)

    waiter = threading.Thread(target=wait_for_gate)
    waiter.start()
    try:
        wait_for(lambda: len(recorded_calls(lab, "/gate/check", name)) >= 3, 30, "the module to ask the closed gate three times")
        hooks_post(lab, "/gate/open", name, "test")
    finally:
        waiter.join(90)
    result = outcome["result"]
    assert result.get("failed") is not True, result
    assert result["passed"] is True
    assert result["outcome"] == "passed"
    assert result["polls"] >= 4
    assert result["gate_waited"] > 0.4
    assert result["body"] == "Approved"
    answers = [call["status"] for call in recorded_calls(lab, "/gate/check", name)]
    assert answers[-1] == 200 and set(answers[:-1]) == {403}


@pytest.mark.parametrize(
    ("on_timeout", "failed", "outcome", "rollback"),
    [("fail", True, "timeout", False), ("rollback", False, "rollback", True), ("wait", False, "waiting", False)],
)
def test_a_gate_timeout_means_what_on_gate_timeout_says(lab, on_timeout, failed, outcome, rollback):
    name = unique_canary()
    result = hook(lab, "/gate/check", name, type="confirm-rollout", wait=True, gate_timeout="1s", gate_poll="200ms",
                  on_gate_timeout=on_timeout)
    assert bool(result.get("failed")) is failed
    assert result["outcome"] == outcome
    assert result["gate_timed_out"] is True
    assert result["rollback_requested"] is rollback
    assert result["gate_waited"] >= 1.0
    assert result["status"] == 403
    if failed:
        assert "/gate/open" in result["msg"]
        assert name in result["msg"]
    assert len(recorded_calls(lab, "/gate/check", name)) == result["polls"]


def test_rollback_hook_follows_the_load_testers_rollback_switch(lab):
    name = unique_canary()
    quiet = hook(lab, "/rollback/check", name, type="rollback")
    assert quiet["rollback_requested"] is False
    assert quiet["outcome"] == "closed"
    hooks_post(lab, "/rollback/open", name, "test")
    asked = hook(lab, "/rollback/check", name, type="rollback")
    assert asked["rollback_requested"] is True
    assert asked["outcome"] == "rollback"


def test_a_rollback_requested_while_a_gate_waits_ends_the_wait(lab):
    name = unique_canary()
    outcome = {}

    def wait_for_gate():
        outcome["result"] = hook(lab, "/gate/check", name, type="confirm-promotion", wait=True, gate_timeout=60, gate_poll=0.2,
                                 rollback_url=lab.hooks_url.rstrip("/") + "/rollback/check")

    waiter = threading.Thread(target=wait_for_gate)
    waiter.start()
    try:
        wait_for(lambda: len(recorded_calls(lab, "/rollback/check", name)) >= 2, 30, "the module to check for rollback while waiting")
        hooks_post(lab, "/rollback/open", name, "test")
    finally:
        waiter.join(90)
    result = outcome["result"]
    assert result.get("failed") is not True, result
    assert result["outcome"] == "rollback"
    assert result["rollback_requested"] is True
    assert result["gate_timed_out"] is False
    assert {call["body"]["phase"] for call in recorded_calls(lab, "/rollback/check", name)} == {"Waiting"}


# ---------------------------------------------------------------- the payload on the wire


def test_recorded_payloads_use_flaggers_field_names(lab):
    name = unique_canary()
    secret = "lab-secret-" + uuid.uuid4().hex
    rollout = hook(lab, "/", name, type="rollout", checksum="5f5697644f", headers={"X-Api-Key": secret},
                   metadata={"type": "cmd", "cmd": "sleep 0.1"})
    event = hook(lab, "/gate/approve", name, type="event", phase="Succeeded",
                 metadata={"eventMessage": "Promotion completed!", "eventType": "Normal"})
    assert rollout.get("failed") is not True, rollout
    assert event.get("failed") is not True, event

    [task_call] = recorded_calls(lab, "/", name)
    assert task_call["method"] == "POST"
    assert set(task_call["body"]) == FLAGGER_PAYLOAD_FIELDS
    assert task_call["body"] == {
        "name": name,
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "5f5697644f",
        "metadata": {"type": "cmd", "cmd": "sleep 0.1"},
    }
    headers = {key.lower(): value for key, value in task_call["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-api-key"] == "<redacted>"
    assert secret not in str(rollout)

    [event_call] = recorded_calls(lab, "/gate/approve", name)
    assert set(event_call["body"]) == FLAGGER_PAYLOAD_FIELDS
    assert event_call["body"]["phase"] == "Succeeded"
    metadata = event_call["body"]["metadata"]
    assert metadata["eventMessage"] == "Promotion completed!"
    assert metadata["eventType"] == "Normal"
    assert metadata["timestamp"].isdigit() and abs(int(metadata["timestamp"]) / 1000 - time.time()) < 120
