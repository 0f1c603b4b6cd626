"""Drift: the live route and replicas against the recorded position, and what a run does about it."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release import drift
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st

CANARY = "prod/app"


def assess(phase, recorded=0, live=None, replicas=0, ready=0, action="none", revision=st.NOTHING_TO_DO, step=None):
    state = st.CanaryState(phase=phase, canary_weight=recorded, step_index=step, run_id="run-1")
    view = drift.LiveView(primary_weight=None if live is None else 100 - live, canary_weight=live,
                          route="VirtualService prod/app", canary_replicas=replicas, canary_ready=ready)
    return drift.assess(state, view, {"action": action}, revision, CANARY)


@pytest.mark.parametrize("phase", [st.FAILED, st.SUCCEEDED, st.INITIALIZED])
def test_a_finished_release_with_traffic_on_a_scaled_down_canary_goes_back_to_the_primary(phase):
    found = assess(phase, live=30)
    assert found["found"] and found["route_to_primary"] and found["next"] == "repair"
    assert not found["scale_down"]
    assert found["message"] == (
        "Drift on canary prod/app: the state says %s at 0%% (run run-1) but the route VirtualService prod/app sends "
        "30%% of the requests to the canary, which has 0 of 0 replicas ready. Repair: all traffic to the primary." % phase)
    assert found["live"]["canary_weight"] == 30 and found["recorded"]["phase"] == phase


def test_a_failed_release_still_serving_a_share_is_routed_back_then_scaled_down():
    found = assess(st.FAILED, live=20, replicas=2, ready=2)
    assert found["route_to_primary"] and found["scale_down"]
    assert found["problems"] == ["the route VirtualService prod/app sends 20% of the requests to the canary although "
                                 "the release is Failed", "the canary has 2 replicas although the release is Failed"]
    assert found["message"].endswith("Repair: all traffic to the primary, then the canary scaled to 0.")


def test_a_finished_release_with_idle_canary_replicas_only_scales_down():
    found = assess(st.SUCCEEDED, live=0, replicas=3, ready=3)
    assert found["found"] and not found["route_to_primary"] and found["scale_down"]


def test_a_new_revision_keeps_its_replicas_for_start_but_not_its_traffic():
    found = assess(st.SUCCEEDED, live=40, replicas=2, ready=2, revision=st.NEW_REVISION)
    assert found["route_to_primary"] and not found["scale_down"]
    assert not assess(st.SUCCEEDED, live=0, replicas=2, ready=2, revision=st.NEW_REVISION)["found"]


def test_an_unreadable_route_never_leads_to_a_scale_down():
    found = assess(st.FAILED, live=None, replicas=2, ready=2)
    assert not found["found"] and not found["scale_down"]


def test_the_safe_position_is_no_drift():
    for phase in (st.FAILED, st.SUCCEEDED, st.INITIALIZED):
        quiet = assess(phase, live=0)
        assert not quiet["found"] and quiet["next"] == "none" and quiet["message"] == ""


def test_a_release_in_progress_on_a_dead_canary_goes_to_the_primary_first_then_resumes():
    found = assess(st.PROGRESSING, recorded=20, live=30, replicas=0, action="resume", step=0)
    assert found["route_to_primary"] and not found["scale_down"] and found["next"] == "resume"
    assert "the state says Progressing at 20% (step 1)" in found["message"]
    assert "gives the canary 30% but the state recorded 20%" in found["message"]
    assert found["message"].endswith("Repair: all traffic to the primary first, then the release resumes at the "
                                     "recorded 20% once the canary is ready.")


def test_a_release_in_progress_ahead_of_its_record_is_reported_and_resumed_where_recorded():
    found = assess(st.PROGRESSING, recorded=20, live=40, replicas=2, ready=2, action="rollback")
    assert found["found"] and not found["route_to_primary"] and found["next"] == "rollback"
    assert found["problems"] == ["the route VirtualService prod/app gives the canary 40% but the state recorded 20%"]
    assert "rolled back (canary_on_resume=rollback)" in found["message"]


def test_a_live_run_owns_its_traffic():
    found = assess(st.PROGRESSING, recorded=20, live=40, replicas=0, action="wait")
    assert not found["found"] and found["next"] == "wait" and "holds the lock" in found["message"]


def test_deployment_replicas_read_the_api_shape():
    assert drift.deployment_replicas(None) == (0, 0)
    assert drift.deployment_replicas({"spec": {}}) == (1, 0)
    assert drift.deployment_replicas({"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}) == (3, 2)


def test_a_finished_release_with_its_match_route_left_goes_back_to_the_primary():
    state = st.CanaryState(phase=st.FAILED, run_id="run-1")
    view = drift.LiveView(primary_weight=100, canary_weight=0, route="VirtualService prod/app",
                          match_route="app-canary-match")
    found = drift.assess(state, view, {"action": "none"}, st.NOTHING_TO_DO, CANARY)
    assert found["route_to_primary"] and found["next"] == "repair"
    assert found["problems"] == ["the route VirtualService prod/app still has the A/B match route 'app-canary-match', "
                                 "which sends matching requests to the canary"]
