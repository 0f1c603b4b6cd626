"""The path a run takes from what prepare found, and the line that says why."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.run_decision import (
    RELEASE_PATHS,
    decide_run,
)

CANARY, TARGET = "prod/backend", "prod/backend-app"


def decide(detected, suspended=False):
    return decide_run(detected, suspended, CANARY, TARGET)


def test_a_suspended_canary_ends_the_run_whatever_was_found():
    decision = decide({"revision": st.NEW_REVISION, "checksum": "abc"}, suspended=True)
    assert (decision.path, decision.result) == ("suspended", "NothingToDo")
    assert decision.message == "Canary is suspended (spec.suspend): nothing changes, the target included"
    assert decision.reason == "spec.suspend is true: the canary is suspended"


def test_a_new_revision_starts_the_analysis_and_ends_nothing():
    decision = decide({"revision": st.NEW_REVISION, "checksum": "6d5f7c9b8"})
    assert decision.path == "new" and decision.path in RELEASE_PATHS
    assert decision.message == "New revision 6d5f7c9b8 of prod/backend-app: starting the canary analysis"
    assert (decision.result, decision.reason) == ("", "")


def test_no_new_revision_says_why_from_what_detect_found():
    decision = decide({"revision": st.NOTHING_TO_DO, "message": "revision abc is what the primary runs"})
    assert (decision.path, decision.result) == ("nothing", "NothingToDo")
    assert decision.reason == "revision abc is what the primary runs"
    assert decision.message == ("No new revision of prod/backend-app: nothing changes "
                                "(revision abc is what the primary runs)")


def test_a_drift_to_repair_is_never_called_nothing_changes():
    decision = decide({"revision": st.NOTHING_TO_DO, "message": "revision abc is what the primary runs",
                       "drift": {"found": True, "problems": ["the route sends 30% to the canary", "0 ready"]}})
    assert decision.reason == ("revision abc is what the primary runs; drift repaired: "
                               "the route sends 30% to the canary; 0 ready")
    assert "nothing changes" not in decision.message
    assert decision.message.startswith("No new revision of prod/backend-app: putting traffic and replicas back")


def test_a_canary_just_initialized_ends_initialized():
    decision = decide({"revision": st.NOTHING_TO_DO, "initialized": True, "message": "ignored"})
    assert (decision.path, decision.result) == ("nothing", "Initialized")
    assert decision.message == ("Initialized prod/backend: primary and routing created; the next revision of "
                                "prod/backend-app will be analysed")


@pytest.mark.parametrize("action, expected", [
    ("resume", "Resuming the release left by run run-1 at weight 30% (phase Progressing)"),
    ("restart", "Restarting the analysis from step 1: a new revision abc replaced revision def"),
    ("promote", "Finishing the promotion left by run run-1"),
    ("finalize", "Finishing the promotion left by run run-1"),
    ("rollback", "Rolling back the release left by run run-1 (canary_on_resume=rollback)"),
    ("continue", "Continuing the release of this run at weight 30%"),
    # Anything resume_plan may add later is this run's own release, as before.
    ("none", "Continuing the release of this run at weight 30%"),
])
def test_a_release_in_progress_follows_the_resume_plan(action, expected):
    decision = decide({"revision": st.IN_PROGRESS_REVISION, "resume": {
        "action": action, "previous_run": "run-1", "weight": 30, "phase": "Progressing",
        "message": "a new revision abc replaced revision def"}})
    assert decision.message == expected
    assert decision.path == ("continue" if action == "none" else action)
    assert decision.path in RELEASE_PATHS and decision.result == ""


def test_what_is_missing_reads_as_unknown_never_as_none():
    decision = decide({"revision": st.IN_PROGRESS_REVISION, "resume": {"action": "resume"}})
    assert decision.message == "Resuming the release left by run ? at weight 0% (phase ?)"
