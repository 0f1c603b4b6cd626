"""The live status and the reports kept in the cluster (docs/status.md), on the lab with the real ansible-playbook
and the real kubectl: a watch started while a release runs follows it to its end, and the stored report of that
run renders to HTML after it."""

from __future__ import annotations

import base64
import concurrent.futures
import gzip
import json
import re
import shutil
import subprocess

import pytest

from lab.testing import wait_for
from tests.support.modules import REPO_ROOT, run_playbook
from tests.support.releases import Release, short_manifest

pytestmark = pytest.mark.slow

STATUS = REPO_ROOT / "playbooks" / "status.yml"
LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<phase>[A-Za-z ]+), weight (?P<weight>\d+)%, failed checks (?P<failed>\d+), "
                  r"(?P<rest>.*)$", re.MULTILINE)
ORDER = ["Initialized", "Progressing", "WaitingPromotion", "Promoting", "Finalising", "Succeeded"]


def kubectl(lab, namespace: str, *args: str) -> str:
    return subprocess.run(["kubectl", "--kubeconfig", lab.kubeconfig, "-n", namespace, *args], capture_output=True,
                          text=True, check=True, timeout=60).stdout


def lock_holder(release: Release) -> str:
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    lease = client.CoordinationV1Api(release.api).read_namespaced_lease(release.name + "-canary-lock", release.namespace)
    return lease.spec.holder_identity or ""


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="the documented kubectl commands need kubectl")
def test_a_watch_follows_a_release_to_its_end_and_its_stored_report_renders(lab, namespace, tmp_path):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace, stepWeights=[20, 40, 60, 80]))
    first = release.run(canary_run_id="run-init")
    assert first.returncode == 0, first.stdout[-3000:]

    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    canary = release.popen(canary_run_id="run-watched")
    try:
        # Started once the run holds the lock: a watch of a canary at rest ends at once, as nothing is running.
        wait_for(lambda: lock_holder(release) == "run-watched", timeout=60, message="the release to take the lock")
        status_vars = {"canary_kubeconfig": lab.readonly_kubeconfig, "canary_manifest": str(release.manifest_path),
                       "watch": True, "watch_interval": "200ms", "watch_timeout": "3m"}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            watching = pool.submit(run_playbook, STATUS, status_vars, None, False, 0, 240)
            canary_out, _err = canary.communicate(timeout=240)
            watched = watching.result(timeout=240)
    finally:
        if canary.poll() is None:
            canary.kill()
    assert canary.returncode == 0, canary_out[-3000:]
    assert watched.returncode == 0, watched.stdout[-3000:]

    lines = [match.groupdict() for match in LINE.finditer(watched.stdout)]
    phases = [line["phase"] for number, line in enumerate(lines) if number == 0 or lines[number - 1]["phase"] != line["phase"]]
    # The phases in the order of a release, from where the watch came in to the end.
    assert phases[0] in ("Initialized", "Progressing") and "Progressing" in phases, watched.stdout
    assert phases == sorted(phases, key=ORDER.index) and phases[-1] == "Succeeded", phases
    progressing = [line for line in lines if line["phase"] == "Progressing"]
    weights = [int(line["weight"]) for line in progressing]
    assert weights == sorted(weights) and len(set(weights)) >= 2 and weights[-1] == 80, weights
    assert any("request-success-rate=" in line["rest"] and "lock: " in line["rest"] for line in progressing), progressing
    # It ended by itself once the release was over and the run gave the lock back.
    assert lines[-1]["rest"].endswith(", no lock") and lines[-1]["weight"] == "0", lines[-1]
    assert "watched" in watched.stdout and "until the release ended" in watched.stdout

    # What `kubectl get canaries` shows for a Flagger Canary, with plain kubectl (docs/status.md).
    columns = kubectl(lab, namespace, "get", "configmap", "-l", "progressive.delivery/kind=canary-state", "-o",
                      "custom-columns=CANARY:.metadata.name,PHASE:.data.phase,WEIGHT:.data.canaryWeight,"
                      "FAILED:.data.failedChecks,LAST:.data.lastTransitionTime").splitlines()
    assert re.fullmatch(r"CANARY\s+PHASE\s+WEIGHT\s+FAILED\s+LAST", columns[0])
    assert re.fullmatch(r"app-canary-state\s+Succeeded\s+0\s+0\s+\d{4}-\d\d-\d\dT\S+Z", columns[1]) and len(columns) == 2
    assert kubectl(lab, namespace, "get", "configmap", "app-canary-state", "-o", "jsonpath={.data.phase}") == "Succeeded"
    kubectl(lab, namespace, "wait", "configmap/app-canary-state", "--for=jsonpath={.data.phase}=Succeeded", "--timeout=10s")

    # Both runs' reports are kept; the latest is this release's, readable with kubectl, base64 and gzip.
    index = json.loads(kubectl(lab, namespace, "get", "configmap", "app-canary-reports", "-o", r"jsonpath={.data.index\.json}"))
    assert [entry["runId"] for entry in index] == ["run-init", "run-watched"]
    assert kubectl(lab, namespace, "get", "configmap", "app-canary-reports", "-o", "jsonpath={.data.latest}") == "run-watched"
    packed = kubectl(lab, namespace, "get", "configmap", "app-canary-reports", "-o", "jsonpath={.binaryData.run-watched}")
    kept = json.loads(gzip.decompress(base64.b64decode(packed)))
    assert kept == release.report() and kept["result"] == "Succeeded"

    # status.yml writes the HTML of the stored run, with read-only credentials, after the job's files are gone.
    shutil.rmtree(tmp_path / "reports")
    written = run_playbook(STATUS, {"canary_kubeconfig": lab.readonly_kubeconfig, "canary_manifest": str(release.manifest_path),
                                    "report_run": "latest", "report_dir": str(tmp_path / "out")})
    assert written.returncode == 0, written.stdout[-3000:]
    page = (tmp_path / "out" / "app-run-watched.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "run-watched" in page and "Succeeded" in page
    assert json.loads((tmp_path / "out" / "app-run-watched.json").read_text()) == kept
    assert "runs stored: run-init, run-watched" in written.stdout
