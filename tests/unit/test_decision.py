"""The release decision as a table: every position x mode x observation, Flagger's rules and ours."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import (
    ADVANCE,
    CONFIRM_PROMOTION,
    CONFIRM_TRAFFIC_INCREASE,
    FAILED,
    FAST,
    FLAGGER,
    HOLD,
    PROGRESSING,
    PROMOTE,
    PROMOTING,
    ROLLBACK,
    WAITING_PROMOTION,
    Observation,
    Position,
    Settings,
    decide,
    gate_type,
)

STEPS = (10, 20, 30)
NOW = 1000.0


def settings(mode: str = FAST, threshold: int = 2, gate_timeout: float = 0.0) -> Settings:
    return Settings(steps=STEPS, threshold=threshold, interval=60.0, mode=mode, poll=5.0, gate_timeout=gate_timeout)


BEFORE, MIDDLE, LAST = Position(index=-1), Position(index=1), Position(index=2)
PASSED = Observation(now=NOW)
FAILED_CHECK = Observation(now=NOW, failed=True, causes=("request-success-rate 98 (min 99) FAILED",))
NO_DATA = Observation(now=NOW, failed=True, causes=("request-success-rate no value (min 99) no data: no requests",))
HOOK_FAILED = Observation(now=NOW, failed=True, causes=("webhook smoke failed: HTTP 500",))
HARD = Observation(now=NOW, failed=True, causes=("request-success-rate 40 (min 99) FAILED",),
                   hard_breaches=("request-success-rate is far outside its range",))
ROLLBACK_ASKED = Observation(now=NOW, rollback_requested_by=("manual",))
GATE_OPEN = Observation(now=NOW, gate_open=True)
GATE_CLOSED = Observation(now=NOW, gate_open=False)

# (mode, position, observation) -> (action, next index, weight after, failed checks after, phase, pause)
TABLE = [
    # The checks pass: advance from anywhere but the last step, promote after the last one.
    (FAST, BEFORE, PASSED, (ADVANCE, 0, 10, 0, PROGRESSING, 0.0)),
    (FAST, MIDDLE, PASSED, (ADVANCE, 2, 30, 0, PROGRESSING, 0.0)),
    (FAST, LAST, PASSED, (PROMOTE, 2, 30, 0, PROMOTING, 0.0)),
    (FLAGGER, BEFORE, PASSED, (ADVANCE, 0, 10, 0, PROGRESSING, 60.0)),
    (FLAGGER, MIDDLE, PASSED, (ADVANCE, 2, 30, 0, PROGRESSING, 60.0)),
    (FLAGGER, LAST, PASSED, (PROMOTE, 2, 30, 0, PROMOTING, 0.0)),
    # An open gate is a pass; no gate at all too.
    (FAST, MIDDLE, GATE_OPEN, (ADVANCE, 2, 30, 0, PROGRESSING, 0.0)),
    (FLAGGER, LAST, GATE_OPEN, (PROMOTE, 2, 30, 0, PROMOTING, 0.0)),
    # A failed check counts and holds below the threshold: re-checked after the poll (fast) or the interval (Flagger).
    (FAST, BEFORE, HOOK_FAILED, (HOLD, -1, 0, 1, PROGRESSING, 5.0)),
    (FAST, MIDDLE, FAILED_CHECK, (HOLD, 1, 20, 1, PROGRESSING, 5.0)),
    (FAST, LAST, NO_DATA, (HOLD, 2, 30, 1, PROGRESSING, 5.0)),
    (FLAGGER, BEFORE, HOOK_FAILED, (HOLD, -1, 0, 1, PROGRESSING, 60.0)),
    (FLAGGER, MIDDLE, FAILED_CHECK, (HOLD, 1, 20, 1, PROGRESSING, 60.0)),
    (FLAGGER, LAST, NO_DATA, (HOLD, 2, 30, 1, PROGRESSING, 60.0)),
    # Failed checks are cumulative: at the threshold the release rolls back.
    (FAST, Position(index=1, failed_checks=1), FAILED_CHECK, (ROLLBACK, 1, 20, 2, FAILED, 0.0)),
    (FLAGGER, Position(index=1, failed_checks=1), NO_DATA, (ROLLBACK, 1, 20, 2, FAILED, 0.0)),
    (FLAGGER, Position(index=-1, failed_checks=1), HOOK_FAILED, (ROLLBACK, -1, 0, 2, FAILED, 0.0)),
    # A pass does not forgive earlier failures.
    (FLAGGER, Position(index=1, failed_checks=1), PASSED, (ADVANCE, 2, 30, 1, PROGRESSING, 60.0)),
    # Hard breaches roll back at once in fast mode only.
    (FAST, MIDDLE, HARD, (ROLLBACK, 1, 20, 1, FAILED, 0.0)),
    (FLAGGER, MIDDLE, HARD, (HOLD, 1, 20, 1, PROGRESSING, 60.0)),
    # A requested rollback wins, whatever the checks, without counting a failed check.
    (FAST, MIDDLE, ROLLBACK_ASKED, (ROLLBACK, 1, 20, 0, FAILED, 0.0)),
    (FLAGGER, LAST, ROLLBACK_ASKED, (ROLLBACK, 2, 30, 0, FAILED, 0.0)),
    (FAST, BEFORE, ROLLBACK_ASKED, (ROLLBACK, -1, 0, 0, FAILED, 0.0)),
    # A closed gate holds: WaitingPromotion at the last step, Progressing before.
    (FAST, MIDDLE, GATE_CLOSED, (HOLD, 1, 20, 0, PROGRESSING, 5.0)),
    (FAST, LAST, GATE_CLOSED, (HOLD, 2, 30, 0, WAITING_PROMOTION, 5.0)),
    (FLAGGER, BEFORE, GATE_CLOSED, (HOLD, -1, 0, 0, PROGRESSING, 60.0)),
    (FLAGGER, LAST, GATE_CLOSED, (HOLD, 2, 30, 0, WAITING_PROMOTION, 60.0)),
]


@pytest.mark.parametrize("mode, position, seen, expected", TABLE)
def test_decision_table(mode, position, seen, expected):
    move = decide(settings(mode), position, seen)
    action, index, weight, failed_checks, phase, pause = expected
    assert (move.action, move.position.index, move.weight, move.position.failed_checks, move.phase, move.pause) == (
        action, index, weight, failed_checks, phase, pause)
    if action == ROLLBACK:
        assert move.reason


def test_rollback_reasons_name_the_cause():
    counted = decide(settings(FLAGGER), Position(index=1, failed_checks=1), FAILED_CHECK)
    assert counted.reason == "failed checks threshold reached 2/2 at weight 20%: request-success-rate 98 (min 99) FAILED"
    hard = decide(settings(FAST), MIDDLE, HARD)
    assert hard.reason == ("hard breach at weight 20%: request-success-rate is far outside its range "
                           "(request-success-rate 40 (min 99) FAILED)")
    asked = decide(settings(FAST), LAST, ROLLBACK_ASKED)
    assert asked.reason == "rollback webhook manual asked for a rollback at weight 30%"


def test_threshold_one_rolls_back_on_the_first_failed_check():
    assert decide(settings(FLAGGER, threshold=1), MIDDLE, FAILED_CHECK).action == ROLLBACK


@pytest.mark.parametrize("position, gate", [(BEFORE, CONFIRM_TRAFFIC_INCREASE), (MIDDLE, CONFIRM_TRAFFIC_INCREASE),
                                            (LAST, CONFIRM_PROMOTION)])
def test_which_gate_guards_leaving_a_step(position, gate):
    assert gate_type(settings(), position) == gate
    held = decide(settings(), position, GATE_CLOSED)
    assert held.waiting_for == gate


def test_closed_gate_remembers_since_when_and_times_out():
    limited = settings(FAST, gate_timeout=600)
    first = decide(limited, LAST, GATE_CLOSED)
    assert first.position.gate_closed_since == NOW and first.position.held_for_promotion
    later = decide(limited, first.position, Observation(now=NOW + 599, gate_open=False))
    assert later.action == HOLD and later.position.gate_closed_since == NOW
    expired = decide(limited, later.position, Observation(now=NOW + 600, gate_open=False))
    assert expired.action == ROLLBACK and expired.phase == FAILED
    assert expired.reason == "the confirm-promotion gate stayed closed longer than 600 s (canary_webhook_gate_timeout)"


def test_without_gate_timeout_a_gate_holds_for_ever():
    held = decide(settings(), MIDDLE, GATE_CLOSED)
    days_later = decide(settings(), held.position, Observation(now=NOW + 30 * 86400, gate_open=False))
    assert days_later.action == HOLD and days_later.waiting_for == CONFIRM_TRAFFIC_INCREASE


def test_an_opened_gate_forgets_when_it_closed():
    held = decide(settings(), MIDDLE, GATE_CLOSED)
    opened = decide(settings(), held.position, Observation(now=NOW + 10, gate_open=True))
    assert opened.action == ADVANCE and opened.position.gate_closed_since is None


def test_once_held_for_promotion_the_phase_stays_waiting_promotion():
    held = decide(settings(), LAST, GATE_CLOSED)
    failed_meanwhile = decide(settings(), held.position, FAILED_CHECK)
    assert failed_meanwhile.action == HOLD and failed_meanwhile.phase == WAITING_PROMOTION


@pytest.mark.parametrize("bad, message", [
    (dict(mode="slow"), "mode must be one of"),
    (dict(steps=()), "at least one weight step"),
    (dict(threshold=0), "threshold must be at least 1"),
])
def test_settings_refuse_bad_values(bad, message):
    values = dict(steps=STEPS, threshold=2, interval=60.0)
    values.update(bad)
    with pytest.raises(ValueError, match=message):
        Settings(**values)


def test_a_sequential_crossing_rolls_back_at_once_and_says_it_is_evidence():
    settings = Settings(steps=(10, 20), threshold=5, interval=10.0, mode="sequential", poll=1.0)
    move = decide(settings, Position(index=0), Observation(
        now=0.0, failed=True, causes=("request-success-rate 96 (min 99) FAILED",),
        hard_breaches=("request-success-rate: a sequential test crossed its boundary",)))
    assert move.action == "rollback" and move.position.failed_checks == 1
    assert move.reason.startswith("evidence of a regression at weight 10%: request-success-rate: a sequential test")
