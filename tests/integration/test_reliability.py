"""Traffic never goes to a canary that is not serving: a route that cannot be written back leaves the canary up.

The release reaches the API through the lab's fault front; once the canary serves its first step, every write of the
VirtualService fails with HTTP 500 (beyond the routers' retries), so the next shift and the rescue's move back to the
primary both fail.
"""

from __future__ import annotations

import pytest

from lab.testing import wait_for
from tests.support.releases import Release, assert_safe, short_manifest

pytestmark = pytest.mark.slow

TICKS = {"canary_interval_override": "1s", "canary_metric_interval_override": "10s", "canary_poll": 0.5}
PATIENT = 60


def run_failing_route_writes(lab, release, namespace, extra_vars, **fault):
    """Run a release through the fault proxy; once it is at its first step, its route writes answer 500."""
    process = release.popen(**extra_vars)
    fault_id = None
    try:
        wait_for(lambda: release.weights()["app-canary"] == 30, timeout=120, interval=0.1, message="the first step")
        fault_id = lab.inject_fault("PUT", r"/namespaces/%s/virtualservices/app$" % namespace, status=500, **fault)
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        if fault_id is not None:
            lab.remove_fault(fault_id)
    return process, output


def test_a_route_that_cannot_be_moved_back_leaves_the_canary_serving_and_the_next_run_finishes(lab, namespace, tmp_path):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace, threshold=PATIENT))
    # The route stays broken for good here: the recovery gives up after 2 s instead of the default minute.
    through_faults = dict(TICKS, canary_kubeconfig=lab.fault_kubeconfig, canary_recovery_timeout=2, canary_recovery_delay=0.5)
    assert release.run(**through_faults).returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    process, output = run_failing_route_writes(lab, release, namespace, through_faults)
    assert process.returncode != 0
    assert "so the canary was left running to serve its share of the users" in output, output[-3000:]
    # The canary still has its 30 % and the pods to answer it: no user gets a 503 from a scaled-down canary.
    assert release.weights() == {"app-primary": 70, "app-canary": 30}
    assert release.replicas() > 0
    assert release.state()["phase"] == "Progressing"

    # With the API healthy again, a normal run takes the release over where the state says it is.
    finished = release.run(**TICKS)
    assert finished.returncode == 0, finished.stdout[-3000:]
    assert release.state()["phase"] == "Succeeded"
    assert_safe(release)


def test_the_recovery_outlasts_an_api_outage_and_then_scales_the_canary_down(lab, namespace, tmp_path):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace, threshold=PATIENT))
    through_faults = dict(TICKS, canary_kubeconfig=lab.fault_kubeconfig, canary_recovery_timeout=30,
                          canary_recovery_delay=0.5)
    assert release.run(**through_faults).returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    # Twelve writes fail: more than the router's own retries of the shift and of the first recovery attempt.
    process, output = run_failing_route_writes(lab, release, namespace, through_faults, count=12)
    assert process.returncode != 0
    assert release.state()["phase"] == "Failed", output[-3000:]
    # Once the API answered again, the route went back to the primary, and only then was the canary scaled down.
    assert_safe(release)
