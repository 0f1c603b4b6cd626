"""Drift repair: a run puts back what a failed or killed run left before it decides anything, and says so.

The drift is made by hand through the Kubernetes API after a normal failed release (the route moved back to 70/30
while the canary stays at 0 replicas), or by killing a run mid-analysis.
"""

from __future__ import annotations

import pytest

from lab.testing import wait_for
from tests.support.modules import REPO_ROOT, run_playbook
from tests.support.releases import Release, assert_safe, short_manifest

pytestmark = pytest.mark.slow

TICKS = {"canary_interval_override": "1s", "canary_metric_interval_override": "10s", "canary_poll": 0.5}
STATUS = REPO_ROOT / "playbooks" / "status.yml"


def set_weights(release: Release, canary: int) -> None:
    """Write the generated VirtualService's weights as a run killed half way through a shift would leave them."""
    route = release.route()
    for destination in route["spec"]["http"][0]["route"]:
        destination["weight"] = canary if destination["destination"]["host"].endswith("-canary") else 100 - canary
    release.custom.replace_namespaced_custom_object("networking.istio.io", "v1", release.namespace, "virtualservices",
                                                    route["metadata"]["name"], route)


def status(release: Release):
    return run_playbook(STATUS, {"canary_kubeconfig": release.lab.kubeconfig, "canary_manifest": str(release.manifest_path)},
                        timeout=120)


def test_a_failed_release_left_on_a_scaled_down_canary_is_repaired_by_a_plain_rerun(lab, namespace, tmp_path):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace))
    assert release.run(**TICKS).returncode == 0
    release.set_template(annotations={"lab.progressive.delivery/latency-ms": "900"})
    failed = release.run(**TICKS)
    assert failed.returncode != 0 and release.state()["phase"] == "Failed", failed.stdout[-3000:]
    assert_safe(release)
    set_weights(release, 30)
    assert release.weights() == {"app-primary": 70, "app-canary": 30} and release.replicas() == 0

    shown = status(release)
    assert shown.returncode == 0, shown.stdout[-3000:]
    assert "DRIFT: Drift on canary %s/app" % namespace in shown.stdout, shown.stdout[-3000:]
    assert "sends 30% of the requests to the canary, which has 0 of 0 replicas ready" in shown.stdout
    assert "primary 70% / canary 30% (recorded: canary 0%)" in shown.stdout
    assert "Repair: all traffic to the primary" in shown.stdout
    # status only reads.
    assert release.weights() == {"app-primary": 70, "app-canary": 30}

    rerun = release.run(**TICKS)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert "Drift repaired by run" in rerun.stdout and "all traffic is on the primary" in rerun.stdout
    assert "nothing changes" not in rerun.stdout
    assert_safe(release)
    state = release.state()
    assert state["phase"] == "Failed" and state["message"].startswith("Drift repaired by run")
    assert "latency" in state["reason"] or "request-duration" in state["reason"]
    assert [entry for entry in release.report()["timeline"] if entry["kind"] == "drift"]

    # Repaired, the next run finds nothing to do and says so.
    quiet = release.run(**TICKS)
    assert quiet.returncode == 0 and "nothing changes" in quiet.stdout and "Drift" not in quiet.stdout
    assert "no drift" in status(release).stdout


def test_rollback_on_resume_names_the_weight_the_dead_run_left(lab, namespace, tmp_path):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace, stepWeights=[20, 40, 60]))
    assert release.run(canary_lease_ttl=5, **TICKS).returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    process = release.popen(canary_lease_ttl=5, **dict(TICKS, canary_interval_override="5s"))
    try:
        wait_for(lambda: release.state().get("phase") == "Progressing" and release.state().get("canaryWeight", 0) > 0,
                 timeout=60, interval=0.1, message="analysis at a weight > 0")
    finally:
        process.kill()
        process.communicate(timeout=10)
    recorded = release.state()["canaryWeight"]
    # The dead run had shifted the route one step further but died before recording it.
    left = recorded + 20
    set_weights(release, left)
    again = release.run(canary_lease_ttl=5, canary_lock_wait=20, canary_on_resume="rollback", **TICKS)
    assert again.returncode != 0
    assert "gives the canary %d%% but the state recorded %d%%" % (left, recorded) in again.stdout, again.stdout[-3000:]
    assert "stopped while the release was Progressing at weight %d%%" % left in again.stdout, again.stdout[-3000:]
    assert release.state()["reason"].startswith("rolled back on resume: run ")
    assert release.state()["phase"] == "Failed"
    assert_safe(release)
