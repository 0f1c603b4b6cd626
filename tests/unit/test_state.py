"""The canary state model, its phase x action table, history bounding and resume decisions."""

from __future__ import annotations

import json

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339

NOW = 1_700_000_000.0

# The whole table, written out independently of the code: (action, phase) -> (kind, to).
APPLY, NOOP, REFUSE = "apply", "noop", "refuse"
EXPECTED = {
    "initialize": {p: (APPLY, st.INITIALIZED if p in (st.NONE, st.INITIALIZING) else None) for p in st.PHASES},
    "status": {p: (APPLY, None) for p in st.PHASES},
    "lock": {p: (APPLY, None) for p in st.PHASES},
    "unlock": {p: (APPLY, None) for p in st.PHASES},
    # Keeping a run's report in the cluster changes no phase, whatever the release is doing.
    "store_report": {p: (APPLY, None) for p in st.PHASES},
    "update_target": {p: (REFUSE, None) if p in (st.PROMOTING, st.FINALISING) else (APPLY, None) for p in st.PHASES},
    "detect": {p: (REFUSE, None) if p in (st.NONE, st.INITIALIZING) else (APPLY, None) for p in st.PHASES},
    "start": {
        st.NONE: (REFUSE, None), st.INITIALIZING: (REFUSE, None), st.INITIALIZED: (APPLY, st.PROGRESSING),
        st.WAITING: (APPLY, None), st.PROGRESSING: (APPLY, None), st.WAITING_PROMOTION: (APPLY, None),
        st.PROMOTING: (REFUSE, None), st.FINALISING: (REFUSE, None), st.SUCCEEDED: (APPLY, st.PROGRESSING),
        st.FAILED: (APPLY, st.PROGRESSING),
    },
    "record": {
        st.NONE: (REFUSE, None), st.INITIALIZING: (REFUSE, None), st.INITIALIZED: (REFUSE, None),
        st.WAITING: (APPLY, None), st.PROGRESSING: (APPLY, None), st.WAITING_PROMOTION: (APPLY, None),
        st.PROMOTING: (REFUSE, None), st.FINALISING: (REFUSE, None), st.SUCCEEDED: (REFUSE, None),
        st.FAILED: (REFUSE, None),
    },
    "promote": {
        st.NONE: (REFUSE, None), st.INITIALIZING: (REFUSE, None), st.INITIALIZED: (REFUSE, None),
        st.WAITING: (APPLY, st.FINALISING), st.PROGRESSING: (APPLY, st.FINALISING),
        st.WAITING_PROMOTION: (APPLY, st.FINALISING), st.PROMOTING: (APPLY, st.FINALISING),
        st.FINALISING: (NOOP, None), st.SUCCEEDED: (NOOP, None), st.FAILED: (REFUSE, None),
    },
    "finalize": {
        st.NONE: (REFUSE, None), st.INITIALIZING: (REFUSE, None), st.INITIALIZED: (REFUSE, None),
        st.WAITING: (REFUSE, None), st.PROGRESSING: (REFUSE, None), st.WAITING_PROMOTION: (REFUSE, None),
        st.PROMOTING: (REFUSE, None), st.FINALISING: (APPLY, st.SUCCEEDED), st.SUCCEEDED: (NOOP, None),
        st.FAILED: (REFUSE, None),
    },
    "rollback": {
        st.NONE: (NOOP, None), st.INITIALIZING: (NOOP, None), st.INITIALIZED: (APPLY, None),
        st.WAITING: (APPLY, st.FAILED), st.PROGRESSING: (APPLY, st.FAILED), st.WAITING_PROMOTION: (APPLY, st.FAILED),
        st.PROMOTING: (APPLY, st.FAILED), st.FINALISING: (APPLY, st.FAILED), st.SUCCEEDED: (APPLY, None),
        st.FAILED: (APPLY, None),
    },
    "retry": {
        st.NONE: (REFUSE, None), st.INITIALIZING: (REFUSE, None), st.INITIALIZED: (NOOP, None),
        st.WAITING: (REFUSE, None), st.PROGRESSING: (REFUSE, None), st.WAITING_PROMOTION: (REFUSE, None),
        st.PROMOTING: (REFUSE, None), st.FINALISING: (REFUSE, None), st.SUCCEEDED: (NOOP, None),
        st.FAILED: (APPLY, st.INITIALIZED),
    },
}


@pytest.mark.parametrize("action", st.ACTIONS)
@pytest.mark.parametrize("phase", st.PHASES)
def test_transition_table_every_phase_and_action(action, phase):
    rule = st.transition(action, phase)
    assert (rule.kind, rule.to) == EXPECTED[action][phase]
    if rule.kind != APPLY:
        assert rule.reason, "a refused or skipped action must say why"


def test_refusals_tell_what_to_run_next():
    assert "initialize" in st.transition("start", st.NONE).reason
    assert "start" in st.transition("record", st.SUCCEEDED).reason
    assert "promote" in st.transition("finalize", st.PROMOTING).reason


def test_unknown_action_or_phase_is_an_error():
    with pytest.raises(ValueError, match="unknown action"):
        st.transition("explode", st.NONE)
    with pytest.raises(ValueError, match="unknown phase"):
        st.transition("start", "Terminating")


def test_state_round_trips_through_json_with_camel_case_keys():
    state = st.CanaryState(phase=st.PROGRESSING, canary_weight=20, failed_checks=1, iterations=3,
                           last_applied_spec="abc", tracked_configs={"configmap/x": "1"}, run_id="run-1")
    text = st.dump_state(state)
    data = json.loads(text)
    assert data["canaryWeight"] == 20 and data["lastAppliedSpec"] == "abc" and data["runId"] == "run-1"
    assert st.parse_state(text, "here") == state


def test_parse_state_rejects_broken_json_and_unknown_phase_with_the_location():
    with pytest.raises(ValueError, match="ConfigMap prod/x-canary-state is not valid JSON"):
        st.parse_state("{", "ConfigMap prod/x-canary-state")
    with pytest.raises(ValueError, match="unknown phase 'Exploding'"):
        st.parse_state('{"phase": "Exploding"}', "here")
    assert st.parse_state(None, "here") == st.CanaryState()


def test_history_keeps_only_the_newest_entries():
    history = []
    for index in range(60):
        history = st.append_history(history, {"i": index}, limit=50)
    assert len(history) == 50
    assert history[0] == {"i": 10} and history[-1] == {"i": 59}
    assert st.append_history([{"i": 1}], {"i": 2}, limit=0) == []


def test_record_stores_the_analysis_and_bounds_history():
    state = st.CanaryState(phase=st.PROGRESSING, run_id="r")
    for step in range(1, 8):
        changed = st.apply_record(state, {"weight": step * 10, "metrics": [{"name": "m", "value": 99.0, "result": "pass"}]},
                                  NOW + step, limit=5)
        assert changed
    assert state.iterations == 7 and state.canary_weight == 70
    assert len(state.history) == 5 and state.history[-1]["weight"] == 70 and state.history[0]["iteration"] == 3
    assert state.history[-1]["metrics"][0]["value"] == 99.0


def test_record_of_the_same_iteration_twice_changes_nothing():
    state = st.CanaryState(phase=st.PROGRESSING)
    analysis = {"iteration": 1, "weight": 10, "failed_checks": 0}
    assert st.apply_record(state, analysis, NOW)
    assert not st.apply_record(state, analysis, NOW + 1)
    assert len(state.history) == 1
    assert st.apply_record(state, dict(analysis, failed_checks=1), NOW + 2)


def test_record_validates_phase_and_weight():
    state = st.CanaryState(phase=st.PROGRESSING)
    with pytest.raises(ValueError, match="analysis.phase"):
        st.apply_record(state, {"phase": st.SUCCEEDED}, NOW)
    with pytest.raises(ValueError, match="between 0 and 100"):
        st.apply_record(state, {"weight": 120}, NOW)
    assert st.apply_record(state, {"weight": 50, "phase": st.WAITING_PROMOTION}, NOW)
    assert state.phase == st.WAITING_PROMOTION and state.last_transition_time == format_rfc3339(NOW)


@pytest.mark.parametrize("phase, applied, promoted, failed, checksum, expected", [
    (st.INITIALIZED, "a", "a", None, "a", st.NOTHING_TO_DO),
    (st.INITIALIZED, "a", "a", None, "b", st.NEW_REVISION),
    (st.SUCCEEDED, "b", "b", None, "c", st.NEW_REVISION),
    (st.FAILED, "b", "a", "b", "b", st.NOTHING_TO_DO),
    (st.FAILED, "b", "a", "b", "c", st.NEW_REVISION),
    (st.FAILED, "b", "a", None, "b", st.NEW_REVISION),
    (st.FAILED, "b", "a", "b", "a", st.NOTHING_TO_DO),
    (st.PROGRESSING, "b", "a", None, "b", st.IN_PROGRESS_REVISION),
    (st.PROMOTING, "b", "a", None, "c", st.IN_PROGRESS_REVISION),
])
def test_revision_status(phase, applied, promoted, failed, checksum, expected):
    state = st.CanaryState(phase=phase, last_applied_spec=applied, last_promoted_spec=promoted, failed_spec=failed)
    revision, reason = st.revision_status(state, checksum)
    assert revision == expected
    assert reason


def test_failed_revision_reason_mentions_retry():
    state = st.CanaryState(phase=st.FAILED, failed_spec="b", message="error rate 12%")
    assert "retry" in st.revision_status(state, "b")[1] and "error rate 12%" in st.revision_status(state, "b")[1]


@pytest.mark.parametrize("phase, run_id, lock_free, on_resume, action, needed, weight", [
    (st.SUCCEEDED, "other", True, "resume", "none", False, 30),
    (st.PROGRESSING, "me", True, "resume", "continue", False, 30),
    (st.PROGRESSING, "other", False, "resume", "wait", False, 30),
    (st.PROGRESSING, "other", True, "resume", "resume", True, 30),
    (st.WAITING_PROMOTION, "other", True, "resume", "resume", True, 30),
    (st.PROGRESSING, "other", True, "rollback", "rollback", True, 0),
    (st.PROMOTING, "other", True, "resume", "promote", True, 30),
    (st.FINALISING, "other", True, "resume", "finalize", True, 30),
    (st.PROMOTING, "other", True, "rollback", "rollback", True, 0),
])
def test_resume_plan(phase, run_id, lock_free, on_resume, action, needed, weight):
    state = st.CanaryState(phase=phase, run_id=run_id, canary_weight=30, iterations=3)
    plan = st.resume_plan(state, "me", lock_free, on_resume)
    assert (plan["action"], plan["needed"], plan["weight"]) == (action, needed, weight)
    assert plan["previous_run"] == run_id and plan["phase"] == phase


# The target's current checksum against the analysed one ("a"): a changed target in an analysing phase restarts
# from weight 0 whatever on_resume says; a promotion already under way is finished (or rolled back) as before.
@pytest.mark.parametrize("phase, run_id, lock_free, on_resume, checksum, action, weight, failed_checks", [
    (st.PROGRESSING, "other", True, "resume", "a", "resume", 30, 2),
    (st.PROGRESSING, "other", True, "resume", None, "resume", 30, 2),
    (st.PROGRESSING, "other", True, "resume", "b", "restart", 0, 0),
    (st.WAITING, "other", True, "resume", "b", "restart", 0, 0),
    (st.WAITING_PROMOTION, "other", True, "resume", "b", "restart", 0, 0),
    (st.PROGRESSING, "other", True, "rollback", "b", "restart", 0, 0),
    (st.PROGRESSING, "me", True, "resume", "b", "restart", 0, 0),
    (st.PROGRESSING, "me", True, "resume", "a", "continue", 30, 2),
    (st.PROGRESSING, "other", False, "resume", "b", "wait", 30, 2),
    (st.PROMOTING, "other", True, "resume", "b", "promote", 30, 2),
    (st.FINALISING, "other", True, "resume", "b", "finalize", 30, 2),
    (st.PROMOTING, "other", True, "rollback", "b", "rollback", 0, 2),
    (st.SUCCEEDED, "other", True, "resume", "b", "none", 30, 2),
    (st.FAILED, "other", True, "resume", "b", "none", 30, 2),
])
def test_resume_plan_restarts_when_the_target_changed(phase, run_id, lock_free, on_resume, checksum, action, weight,
                                                      failed_checks):
    state = st.CanaryState(phase=phase, run_id=run_id, canary_weight=30, iterations=3, failed_checks=2,
                           last_applied_spec="a")
    plan = st.resume_plan(state, "me", lock_free, on_resume, checksum)
    assert (plan["action"], plan["weight"], plan["failed_checks"]) == (action, weight, failed_checks)
    if action == "restart":
        assert plan["needed"] and plan["iterations"] == 0
        assert "new revision b replaced revision a" in plan["message"] and "weight 30%" in plan["message"]
    else:
        assert "message" not in plan


def test_set_phase_stamps_transition_time_only_on_change():
    state = st.CanaryState(phase=st.PROGRESSING, last_transition_time="earlier")
    state.set_phase(st.PROGRESSING, NOW)
    assert state.last_transition_time == "earlier"
    state.set_phase(st.FAILED, NOW, message="m", reason="r")
    assert (state.phase, state.last_transition_time, state.message, state.reason) == (
        st.FAILED, format_rfc3339(NOW), "m", "r")
