"""python -m lab up/status/down/fault/prometheus on a lab of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from lab import control
from lab.testing import wait_for

REPO = control.REPO_ROOT


def run_cli(state_dir, *args, timeout=120):
    env = dict(os.environ, LAB_STATE_DIR=str(state_dir), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def state_dir(tmp_path):
    directory = tmp_path / "lab"
    yield directory
    # Whatever a failed assertion left behind must not outlive the test.
    control.stop_lab(directory)


def test_up_status_down_leaves_no_process(state_dir):
    up = run_cli(state_dir, "up", "--no-seed")
    assert up.returncode == 0, up.stderr
    assert "lab up in" in up.stdout
    info = json.loads((state_dir / "lab.json").read_text())
    pids = info["pids"]
    assert control.process_alive(pids["lab"], "lab") and control.process_alive(pids["prometheus"], "prometheus")
    assert control.process_alive(pids["pushgateway"], "pushgateway") and info["pushgateway_url"]
    assert oct((state_dir / "lab.json").stat().st_mode & 0o777) == "0o600"

    again = run_cli(state_dir, "up")
    assert again.returncode == 0
    assert "lab already up" in again.stdout
    assert json.loads((state_dir / "lab.json").read_text())["pids"] == pids

    status = run_cli(state_dir, "status", "--json")
    assert status.returncode == 0
    report = json.loads(status.stdout)
    assert report["healthy"] is True
    assert report["health"] == {"kube": None, "mesh": None, "hooks": None, "prometheus": None, "pushgateway": None,
                                **({"control_plane": None} if info["backend"] == "cluster" else {})}

    down = run_cli(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert [name for name, pid in pids.items() if control.process_alive(pid)] == []
    assert not (state_dir / "lab.json").exists()

    after = run_cli(state_dir, "status")
    assert after.returncode == 1
    assert "not running" in after.stdout
    assert run_cli(state_dir, "down").returncode == 0


def test_prometheus_stop_start_and_faults_from_the_cli(state_dir):
    assert run_cli(state_dir, "up", "--no-seed").returncode == 0
    port = json.loads((state_dir / "lab.json").read_text())["prometheus_url"]

    stopped = run_cli(state_dir, "prometheus", "stop")
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["running"] is False
    degraded = run_cli(state_dir, "status", "--json")
    assert degraded.returncode == 1
    assert json.loads(degraded.stdout)["health"]["prometheus"] is not None

    started = run_cli(state_dir, "prometheus", "start")
    assert started.returncode == 0 and json.loads(started.stdout)["ready"] is True
    info = json.loads((state_dir / "lab.json").read_text())
    assert info["prometheus_url"] == port
    assert control.process_alive(info["pids"]["prometheus"], "prometheus")

    added = run_cli(state_dir, "fault", "add", "--method", "GET", "--path", "/api/v1/namespaces$", "--status", "500")
    assert added.returncode == 0, added.stderr
    fault_id = added.stdout.strip()
    listed = json.loads(run_cli(state_dir, "fault", "list").stdout)
    assert [f["id"] for f in listed] == [fault_id]
    assert run_cli(state_dir, "fault", "clear").returncode == 0
    assert json.loads(run_cli(state_dir, "fault", "list").stdout) == []

    bad = run_cli(state_dir, "fault", "add", "--path", "x", "--ratio", "2", "--status", "500")
    assert bad.returncode == 1
    assert "ratio" in bad.stderr

    assert run_cli(state_dir, "down").returncode == 0
    assert not control.process_alive(info["pids"]["prometheus"])


def test_commands_on_a_lab_that_is_not_running_say_so(state_dir):
    result = run_cli(state_dir, "prometheus", "stop")
    assert result.returncode == 1
    assert "not running" in result.stderr


def test_a_killed_lab_takes_its_children_along_and_down_cleans_up(state_dir):
    assert run_cli(state_dir, "up", "--no-seed").returncode == 0
    pids = json.loads((state_dir / "lab.json").read_text())["pids"]
    os.kill(pids["lab"], signal.SIGKILL)
    # Prometheus and, on the real control plane, etcd, kube-apiserver and the rest die with their lab.
    wait_for(lambda: [name for name, pid in pids.items() if control.process_alive(pid, name)] == [], timeout=15,
             message="every child to exit after its lab was killed")
    down = run_cli(state_dir, "down")
    assert down.returncode == 0
    assert not (state_dir / "lab.json").exists()
    up = run_cli(state_dir, "up", "--no-seed")
    assert up.returncode == 0, up.stderr
    assert run_cli(state_dir, "down").returncode == 0
