"""The step loop with fake ports: long holds, gates opening and timing out, failed checks, the confirm-rollout wait."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import (
    ADVANCE,
    FAST,
    FLAGGER,
    PROMOTE,
    ROLLBACK,
    Position,
    Settings,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_loop import (
    GATE_OPEN,
    GATE_TIMED_OUT,
    ROLLBACK_REQUESTED,
    Checks,
    StepLoop,
    wait_for_confirm_rollout,
)

PLAN = {"name": "app", "namespace": "prod", "steps": [10, 20, 30], "threshold": 3,
        "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}


def metric_result(value: float | None) -> dict:
    result = "pass" if value is not None and value >= 99 else ("no_data" if value is None else "fail")
    return {"metrics": [{"name": "request-success-rate", "value": value, "result": result, "ok": result == "pass",
                         "reason": "r"}], "evaluated_at": "2025-01-01T00:00:00Z"}


@dataclass
class FakePorts:
    """Scripted answers and a fake clock; records what the loop did."""

    values: list = field(default_factory=list)        # success rate per analysis; the last one repeats
    gate: list = field(default_factory=list)          # gate answers per ask; the last one repeats (None: no gate)
    rollback_after: int | None = None                 # ask number from which a rollback webhook says yes
    now: float = 0.0
    analyses: int = 0
    asks: int = 0
    rollback_asks: int = 0
    lines: list = field(default_factory=list)
    records: list = field(default_factory=list)
    shifts: list = field(default_factory=list)
    lock_checks: int = 0

    def rollback_requested(self):
        self.rollback_asks += 1
        return ("manual",) if self.rollback_after is not None and self.rollback_asks > self.rollback_after else ()

    def run_checks(self, index, weight):
        value = self.values[min(self.analyses, len(self.values) - 1)] if self.values else 100.0
        self.analyses += 1
        return Checks(gate=metric_result(value) if index >= 0 else None)

    def gate_open(self, gate):
        answer = self.gate[min(self.asks, len(self.gate) - 1)] if self.gate else None
        self.asks += 1
        return answer

    def shift(self, index):
        self.shifts.append(PLAN["steps"][index])

    def record(self, move, index, summary, assessment):
        self.records.append((move.action, index, move.position.failed_checks, move.phase))

    def keep_lock(self):
        self.lock_checks += 1

    def say(self, line):
        self.lines.append(line)

    def clock(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.now += seconds


def loop(ports: FakePorts, mode: str = FAST, gate_timeout: float = 0.0) -> StepLoop:
    settings = Settings(steps=(10, 20, 30), threshold=3, interval=60.0, mode=mode, poll=5.0, gate_timeout=gate_timeout)
    return StepLoop(PLAN, settings, ports, gate_poll=1.0)


def test_a_passing_step_advances_and_shifts_the_traffic():
    ports = FakePorts()
    outcome = loop(ports).run(Position(index=0))
    assert outcome.move.action == ADVANCE and outcome.move.weight == 20 and ports.shifts == [20]
    assert outcome.analyses == 1 and ports.lines == [
        "step 1/3 weight 10%: request-success-rate 100 (min 99) ok -> weight 20%"]
    assert [entry["kind"] for entry in outcome.timeline] == ["check", "weight"]


@pytest.mark.parametrize("mode, waited", [(FLAGGER, 60.0), (FAST, 0.0)])
def test_flagger_mode_waits_an_interval_at_the_new_weight_before_its_check(mode, waited):
    # Flagger checks a weight one interval after moving to it; fast mode's next check watches through the interval.
    ports = FakePorts()
    outcome = loop(ports, mode=mode).run(Position(index=0))
    assert outcome.move.action == ADVANCE and ports.shifts == [20]
    assert ports.now == waited and ports.analyses == 1
    assert ports.lock_checks >= (60 if mode == FLAGGER else 1)


def test_a_closed_gate_holds_for_a_thousand_asks_then_promotes():
    ports = FakePorts(gate=[False] * 1000 + [True])
    outcome = loop(ports, FLAGGER).run(Position(index=2))
    assert outcome.move.action == PROMOTE and ports.asks == 1001 and outcome.gate_asks == 1001
    # Flagger mode analyses once per interval while the gate is asked every second in between.
    assert outcome.analyses == 1000 // 60 + 1
    assert ports.lines[0].endswith("; waiting for confirm-promotion")
    assert ports.lines[-1] == "confirm-promotion gate open -> promoting"
    assert ports.lock_checks >= 1000 and ports.shifts == []
    assert all(phase == "WaitingPromotion" for _action, _index, _failed, phase in ports.records[:-1])


def test_a_closed_traffic_gate_holds_at_an_intermediate_step_then_advances():
    ports = FakePorts(gate=[False] * 50 + [True])
    outcome = loop(ports).run(Position(index=1))
    assert outcome.move.action == ADVANCE and ports.shifts == [30]
    assert outcome.move.phase == "Progressing"


def test_a_gate_closed_past_its_timeout_rolls_back_during_the_wait():
    ports = FakePorts(gate=[False])
    outcome = loop(ports, gate_timeout=30).run(Position(index=2))
    assert outcome.move.action == ROLLBACK and 30 <= ports.now < 32
    assert "stayed closed longer than 30 s" in outcome.move.reason


def test_a_canary_that_fails_while_held_is_rolled_back():
    ports = FakePorts(values=[100.0, 100.0, 98.0], gate=[False])
    outcome = loop(ports).run(Position(index=2))
    assert outcome.move.action == ROLLBACK and outcome.move.position.failed_checks == 3
    assert outcome.move.reason.startswith("failed checks threshold reached 3/3 at weight 30%")
    assert [r[:3] for r in ports.records[-2:]] == [("hold", 2, 2), ("rollback", 2, 3)]


def test_failed_checks_hold_then_pass():
    ports = FakePorts(values=[None, 98.0, 100.0])
    outcome = loop(ports).run(Position(index=0))
    assert outcome.move.action == ADVANCE and outcome.move.position.failed_checks == 2
    assert [r[2] for r in ports.records] == [1, 2, 2, 2]
    assert ports.now == pytest.approx(10.0)


def test_a_rollback_webhook_stops_the_hold():
    ports = FakePorts(gate=[False], rollback_after=3)
    outcome = loop(ports).run(Position(index=2))
    assert outcome.move.action == ROLLBACK and "rollback webhook manual" in outcome.move.reason


def test_a_release_runs_every_step_from_the_pre_rollout_checks_to_the_promotion():
    ports = FakePorts()
    outcome = loop(ports).run_release(Position(index=-1))
    assert outcome.move.action == PROMOTE and outcome.move.weight == 30
    assert ports.shifts == [10, 20, 30] and outcome.analyses == 4 == ports.analyses
    assert [entry["kind"] for entry in outcome.timeline] == ["check", "weight"] * 3 + ["check"]
    assert len(outcome.samples) == 3


def test_a_release_resumed_mid_way_stops_at_the_first_rollback():
    ports = FakePorts(values=[100.0, 98.0])
    outcome = loop(ports).run_release(Position(index=1, failed_checks=1))
    assert outcome.move.action == ROLLBACK and outcome.move.position.index == 2
    assert ports.shifts == [30] and outcome.move.position.failed_checks == 3
    assert "3/3 at weight 30%" in outcome.move.reason


@pytest.mark.parametrize("gate, rollback_after, timeout, expected", [
    ([None], None, 0, GATE_OPEN),
    ([False, False, True], None, 0, GATE_OPEN),
    ([False], 2, 0, ROLLBACK_REQUESTED),
    ([False], None, 10, GATE_TIMED_OUT),
])
def test_confirm_rollout_wait(gate, rollback_after, timeout, expected):
    ports = FakePorts(gate=gate, rollback_after=rollback_after)
    outcome, waited, asks = wait_for_confirm_rollout(ports, 1.0, timeout)
    assert outcome == expected and asks == ports.asks
    if expected == GATE_TIMED_OUT:
        assert waited == pytest.approx(10.0)
