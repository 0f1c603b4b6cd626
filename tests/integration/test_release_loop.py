"""Long releases through the real ansible-playbook: gates closed for a thousand polls, fifty steps, gate timeouts.

Intervals and polls are sub-second so each release takes seconds; the loop's cost per round does not depend on them.
"""

from __future__ import annotations

import time

import pytest

from lab.testing import wait_for
from tests.support.releases import Release, assert_safe, gate_answers, hook_bodies, post, short_manifest

pytestmark = pytest.mark.slow

FAST_TICKS = {"canary_interval_override": "200ms", "canary_metric_interval_override": "10s", "canary_poll": 0.2,
              "canary_webhook_gate_poll": 0.01}
FLAGGER_TICKS = {**FAST_TICKS, "canary_interval_override": "1s", "canary_analysis_mode": "flagger"}
LEASE_TTL = 3
HELD_POLLS = 1000
# A fresh canary has no telemetry for its first seconds; sub-second analyses count that as failed checks.
PATIENT = 100


def gated_release(lab, namespace, tmp_path, gate: str, **analysis) -> tuple[Release, dict]:
    hooks = [{"name": "approval", "type": gate, "url": lab.hooks_url + "/gate/check"},
             {"name": "notify", "type": "event", "url": lab.hooks_url + "/gate/approve"}]
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace, webhooks=hooks, threshold=PATIENT, **analysis))
    canary = {"name": release.name, "namespace": namespace}
    post(lab.hooks_url + "/gate/open", canary)
    assert release.run(**FAST_TICKS).returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    return release, canary


def hold_then_open(lab, release: Release, canary: dict, process, weight: int) -> str:
    """Wait for a thousand closed answers, check that nobody else can take the canary meanwhile, then open the gate."""
    try:
        wait_for(lambda: gate_answers(lab, release.namespace).count(403) >= 1, timeout=120, message="the gate asked")
        held_since = time.monotonic()
        wait_for(lambda: gate_answers(lab, release.namespace).count(403) >= HELD_POLLS, timeout=300,
                 message="%d closed gate answers" % HELD_POLLS)
        assert release.weights()[release.name + "-canary"] == weight
        intruder = release.run(**FAST_TICKS, canary_run_id="intruder")
        # The hold outlasted the lease TTL several times over, so only renewals kept the lock.
        assert time.monotonic() - held_since > 2 * LEASE_TTL
        assert intruder.returncode != 0 and "locked by another run" in intruder.stdout, intruder.stdout[-2000:]
        assert release.weights()[release.name + "-canary"] == weight
        assert post(lab.hooks_url + "/gate/open", canary) in (200, 202)
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    return output


def assert_promoted(release: Release) -> None:
    assert release.state()["phase"] == "Succeeded"
    assert release.template(release.name + "-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
    assert_safe(release)


def test_confirm_promotion_gate_closed_for_a_thousand_polls_then_opened(lab, namespace, tmp_path):
    release, canary = gated_release(lab, namespace, tmp_path, "confirm-promotion")
    post(lab.hooks_url + "/gate/close", canary)
    process = release.popen(**FAST_TICKS, canary_lease_ttl=LEASE_TTL)
    output = hold_then_open(lab, release, canary, process, weight=60)
    # The opened gate is seen by a poll during the wait, or by the next analysis when it opened during one.
    assert "waiting for confirm-promotion" in output and "-> promoting" in output
    assert_promoted(release)
    # Event webhooks hear of every phase the release went through, in order.
    bodies = hook_bodies(lab, release.namespace, "/gate/approve")
    phases = [body["phase"] for body in bodies]
    distinct = [phase for index, phase in enumerate(phases) if index == 0 or phases[index - 1] != phase]
    assert distinct == ["Initialized", "Progressing", "WaitingPromotion", "Promoting", "Finalising", "Succeeded"], distinct
    assert all(body["metadata"]["eventMessage"] for body in bodies)


def test_confirm_traffic_increase_gate_holds_at_an_intermediate_step(lab, namespace, tmp_path):
    release, canary = gated_release(lab, namespace, tmp_path, "confirm-traffic-increase", stepWeights=[30, 60, 90])
    # Flagger mode waits an interval (1 s) at 30 % before asking again: time enough to close the gate there.
    process = release.popen(**FLAGGER_TICKS, canary_lease_ttl=LEASE_TTL)
    wait_for(lambda: release.weights()["app-canary"] == 30, timeout=120, interval=0.02, message="weight 30%")
    post(lab.hooks_url + "/gate/close", canary)
    output = hold_then_open(lab, release, canary, process, weight=30)
    assert "waiting for confirm-traffic-increase" in output and "-> weight 60%" in output
    assert_promoted(release)


def test_fifty_steps_are_promoted(lab, namespace, tmp_path):
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(
        namespace, stepWeights=None, stepWeight=2, maxWeight=100, threshold=PATIENT))
    assert release.run(**FAST_TICKS).returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    result = release.run(**{**FAST_TICKS, "canary_interval_override": "100ms", "canary_poll": 0.05})
    assert result.returncode == 0, result.stdout[-3000:]
    for step in (1, 25, 50):
        assert "step %d/50 weight %d%%: request-success-rate" % (step, 2 * step) in result.stdout
    assert_promoted(release)
    report = release.report()
    assert report["steps"] == list(range(2, 101, 2)) and report["result"] == "Succeeded"
    assert sorted({entry["weight"] for entry in report["timeline"] if entry["kind"] == "weight"}) == list(range(2, 101, 2))


def test_gate_closed_past_its_timeout_rolls_back(lab, namespace, tmp_path):
    release, canary = gated_release(lab, namespace, tmp_path, "confirm-promotion")
    post(lab.hooks_url + "/gate/close", canary)
    result = release.run(**FAST_TICKS, canary_webhook_gate_timeout=1)
    assert result.returncode != 0
    report = release.report()
    assert report["result"] == "Failed"
    assert "the confirm-promotion gate stayed closed longer than 1 s (canary_webhook_gate_timeout)" in report["reason"]
    assert release.state()["phase"] == "Failed"
    assert release.template("app-primary")["spec"]["containers"][0]["image"].endswith(":6.7.0")
    assert_safe(release)
