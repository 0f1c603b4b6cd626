"""The lab's hooks server speaks the HTTP API of Flagger's load tester."""

from __future__ import annotations

import uuid

import pytest
import requests

from lab.testing import wait_for


@pytest.fixture
def canary():
    """A payload as Flagger sends it, for a canary name no other test uses."""
    return {"name": f"podinfo-{uuid.uuid4().hex[:6]}", "namespace": "test", "phase": "Progressing",
            "checksum": "abc123", "metadata": {}}


def post(lab, path, payload, **kwargs):
    return requests.post(lab.hooks_url + path, json=payload, timeout=30, **kwargs)


def test_approve_and_halt_gates(lab, canary):
    assert post(lab, "/gate/approve", canary).status_code == 200
    assert post(lab, "/gate/halt", canary).status_code == 403


@pytest.mark.parametrize("prefix", ["/gate", "/rollback"])
def test_gates_are_closed_until_opened_and_kept_per_canary(lab, canary, prefix):
    other = dict(canary, name=canary["name"] + "-other")
    assert post(lab, f"{prefix}/check", canary).status_code == 403
    assert post(lab, f"{prefix}/open", canary).status_code == 202
    assert post(lab, f"{prefix}/check", canary).status_code == 200
    assert post(lab, f"{prefix}/check", other).status_code == 403
    assert post(lab, f"{prefix}/close", canary).status_code == 202
    assert post(lab, f"{prefix}/check", canary).status_code == 403


def test_gate_and_rollback_state_are_separate(lab, canary):
    post(lab, "/gate/open", canary)
    assert post(lab, "/rollback/check", canary).status_code == 403


def test_bash_task_blocks_and_reports_the_exit_status(lab, canary, tmp_path):
    marker = tmp_path / "ran"
    ok = post(lab, "/", dict(canary, metadata={"type": "bash", "cmd": f"echo done > {marker} && echo out"}))
    assert ok.status_code == 200
    assert marker.read_text() == "done\n"
    with_output = post(lab, "/", dict(canary, metadata={"type": "bash", "cmd": "echo hello", "returnCmdOutput": "true"}))
    assert with_output.text == "hello\n"
    failed = post(lab, "/", dict(canary, metadata={"type": "bash", "cmd": "echo broken >&2; exit 3"}))
    assert failed.status_code == 500
    assert "exited with code 3" in failed.text and "broken" in failed.text


def test_cmd_task_runs_in_the_background_once_per_command(lab, canary):
    command = "sleep 1.5"
    first = post(lab, "/", dict(canary, metadata={"type": "cmd", "cmd": command}))
    second = post(lab, "/", dict(canary, metadata={"cmd": command}))  # type defaults to cmd
    assert (first.status_code, second.status_code) == (202, 202)

    def runs():
        return [r for r in requests.get(lab.hooks_url + "/tasks", timeout=10).json()
                if r["command"] == command and r["canary"] == f"{canary['name']}.test"]

    assert len(runs()) == 1
    finished = wait_for(lambda: [r for r in runs() if r["finished"]], timeout=10, message="the command to finish")
    assert finished[0]["exit_code"] == 0
    assert post(lab, "/", dict(canary, metadata={"cmd": command})).status_code == 202
    assert len(runs()) == 2


def test_cmd_is_not_run_through_a_shell(lab, canary, tmp_path):
    marker = tmp_path / "should-not-exist"
    command = f"echo safe ; touch {marker}"
    assert post(lab, "/", dict(canary, metadata={"cmd": command})).status_code == 202

    def run():
        return [r for r in requests.get(lab.hooks_url + "/tasks", timeout=10).json()
                if r["command"] == command and r["finished"]]

    finished = wait_for(run, timeout=10, message="the command to finish")
    assert finished[0]["output"].startswith("safe ; touch")
    assert not marker.exists()


@pytest.mark.parametrize("metadata, status, text", [
    ({}, 400, "metadata not found in payload"),
    ({"type": "ngrinder", "cmd": "x"}, 400, "unknown task type ngrinder"),
    ({"type": "cmd"}, 400, "cmd not found in metadata"),
])
def test_bad_task_payloads(lab, canary, metadata, status, text):
    response = post(lab, "/", dict(canary, metadata=metadata))
    assert response.status_code == status
    assert text in response.text


def test_smoke_endpoint_sends_through_the_mesh(lab, namespace, lab_objects):
    lab_objects.workload("good")
    lab_objects.workload("bad", error_rate=1.0)
    lab_objects.wait_ready("good")
    lab_objects.wait_ready("bad")
    payload = {"name": "podinfo", "namespace": namespace, "phase": "Progressing", "metadata": {"host": "good", "count": "20"}}
    ok = post(lab, "/smoke", payload)
    assert ok.status_code == 200
    assert ok.json()["codes"] == {"200": 20}
    failing = post(lab, "/smoke", dict(payload, metadata={"host": f"bad.{namespace}", "count": "5"}))
    assert failing.status_code == 500
    assert failing.json()["failed"] == 5
    by_url = post(lab, "/smoke", dict(payload, metadata={"url": f"http://good.{namespace}:9898/healthz", "count": "3"}))
    assert by_url.status_code == 200
    assert by_url.json()["workloads"] == {"good": 3}
    assert post(lab, "/smoke", dict(payload, metadata={"count": "3"})).status_code == 400


def test_calls_record_every_payload_without_secrets(lab, canary):
    requests.delete(lab.hooks_url + "/calls", timeout=10)
    post(lab, "/gate/check", canary, headers={"Authorization": "Bearer s3cret"})
    calls = requests.get(lab.hooks_url + "/calls", timeout=10).json()
    mine = [c for c in calls if isinstance(c["body"], dict) and c["body"].get("name") == canary["name"]]
    assert len(mine) == 1
    call = mine[0]
    assert (call["method"], call["path"], call["status"]) == ("POST", "/gate/check", 403)
    assert call["body"] == canary
    assert call["headers"]["Authorization"] == "<redacted>"
    assert "s3cret" not in str(calls)
    assert requests.delete(lab.hooks_url + "/calls", timeout=10).status_code == 200
    assert requests.get(lab.hooks_url + "/calls", timeout=10).json() == []


def test_the_server_listens_on_loopback_only():
    from lab.hooks import HooksServer  # pylint: disable=import-outside-toplevel
    with pytest.raises(ValueError, match="loopback"):
        HooksServer(host="0.0.0.0")
