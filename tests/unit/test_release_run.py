"""The release along each path detect can give: start, analysis, promotion or rollback, in order, with fake ports."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import (
    ADVANCE,
    PROMOTE,
    ROLLBACK,
    Move,
    Position,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.release_run import (
    ROLLBACK_HINT,
    Recovery,
    ReleaseRun,
    ReleaseRunError,
    resume_position,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_loop import (
    GATE_OPEN,
    GATE_TIMED_OUT,
    StepOutcome,
)

PLAN = {"name": "app", "namespace": "prod", "target": "app", "primary": "app-primary", "steps": [10, 20, 30],
        "interval_seconds": 2.0, "promotion_steps": [100], "metrics": [{"name": "request-success-rate"}],
        "webhooks": {}, "skip_analysis": False}


class FakePorts:
    """Records every call; ``fail`` makes an action raise (``times`` times), as the cluster would."""

    def __init__(self, fail: dict[str, tuple[DeliveryError, int]] | None = None, gate: str = GATE_OPEN,
                 preflight: list[str] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = dict(fail or {})
        self.gate = gate
        self.preflight = preflight or []
        self.now = 0.0
        self.lines: list[str] = []
        self.params: dict[str, dict[str, Any]] = {}

    def deciding_analysis(self) -> dict[str, Any]:
        return {"metrics": [{"name": "request-success-rate", "value": 90.0, "result": "fail"}]}

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            error, times = self.fail[name]
            if times > 0:
                self.fail[name] = (error, times - 1)
                raise error

    def manage(self, action: str, **params: Any) -> dict[str, Any]:
        self.calls.append(("manage", action))
        self.params[action] = params
        self._maybe_fail(action)
        return {"message": "%s done" % action, "checksum": "abc" if action == "start" else None}

    def route_to(self, where: str, index: int = -1, weight: int | None = None) -> None:
        self.calls.append(("route", where, index if where == "step" else weight))
        self._maybe_fail("route")

    def notify(self, phase: str, message: str, warning: bool = False) -> None:
        self.calls.append(("notify", phase))

    def post_rollout(self, phase: str) -> list[dict[str, Any]]:
        self.calls.append(("post-rollout", phase))
        return [{"item": {"name": "smoke"}, "failed": phase == "Failed", "msg": "503"}]

    def confirm_rollout(self) -> tuple[str, float]:
        self.calls.append(("confirm-rollout",))
        return self.gate, 30.0

    def preflight_errors(self) -> list[str]:
        self.calls.append(("preflight",))
        return self.preflight

    def keep_lock(self) -> None:
        pass

    def say(self, line: str) -> None:
        self.lines.append(line)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def analysis(action: str, reason: str = "", failed_checks: int = 0):
    seen: list[Position] = []

    def analyse(position: Position) -> StepOutcome:
        seen.append(position)
        move = Move(action, Position(index=2, failed_checks=failed_checks), 30, "Progressing", 0.0, reason=reason)
        return StepOutcome(move=move, analyses=4, timeline=[{"kind": "check", "message": "ok"}])

    return analyse, seen


def names(ports: FakePorts) -> list[tuple[Any, ...]]:
    return [call for call in ports.calls if call[0] != "notify"]


def test_a_good_release_starts_analyses_then_promotes_in_flaggers_order():
    ports = FakePorts()
    analyse, seen = analysis(PROMOTE)
    outcome = ReleaseRun(PLAN, ports, analyse, "new", checksum="abc").run()
    assert names(ports) == [("preflight",), ("manage", "start"), ("manage", "promote"), ("route", "primary", None),
                            ("manage", "finalize"), ("post-rollout", "Succeeded")]
    assert [c[1] for c in ports.calls if c[0] == "notify"] == ["Progressing", "Promoting", "Finalising", "Succeeded"]
    assert seen == [Position()]
    assert (outcome.result, outcome.weight, outcome.touched, outcome.analyses) == ("Succeeded", 0, True, 4)
    assert outcome.reason.startswith("analysis passed at every step up to 30%")
    assert [e["kind"] for e in outcome.timeline] == ["start", "check", "promotion"]


def test_a_failing_analysis_routes_to_the_primary_before_the_canary_is_scaled_down():
    ports = FakePorts()
    analyse, _seen = analysis(ROLLBACK, reason="failed checks threshold reached 5", failed_checks=5)
    outcome = ReleaseRun(PLAN, ports, analyse, "new").run()
    assert names(ports)[-3:] == [("route", "primary", None), ("manage", "rollback"), ("post-rollout", "Failed")]
    assert (outcome.result, outcome.reason, outcome.hint, outcome.failed_checks) == (
        "Failed", "failed checks threshold reached 5", ROLLBACK_HINT, 5)
    assert outcome.timeline[-1]["kind"] == "rollback" and outcome.timeline[-1]["failed_checks"] == 5
    # The analysis that decided the rollback goes with it, so the state and the metrics show the failing values.
    assert ports.params["rollback"]["analysis"] == {
        "failed_checks": 5, "metrics": [{"name": "request-success-rate", "value": 90.0, "result": "fail"}]}
    assert any("post-rollout webhook smoke failed" in line for line in ports.lines)


def test_an_unanswering_prometheus_stops_before_anything_is_touched():
    ports = FakePorts(preflight=["request-success-rate: connection refused"])
    with pytest.raises(ReleaseRunError) as raised:
        ReleaseRun(PLAN, ports, analysis(PROMOTE)[0], "new").run()
    assert "the canary was not started: request-success-rate: connection refused" in raised.value.message
    assert raised.value.result["touched"] is False
    assert names(ports) == [("preflight",)]


def test_a_closed_confirm_rollout_gate_starts_nothing():
    plan = dict(PLAN, webhooks={"confirm-rollout": [{"name": "gate"}]})
    ports = FakePorts(gate=GATE_TIMED_OUT)
    outcome = ReleaseRun(plan, ports, analysis(PROMOTE)[0], "new").run()
    assert (outcome.result, outcome.touched) == ("NothingToDo", False)
    assert "stayed closed for 30 s" in outcome.reason
    assert ("manage", "start") not in ports.calls


def test_a_canary_that_never_becomes_ready_is_failed_by_the_start_and_traffic_stays_on_the_primary():
    ports = FakePorts(fail={"start": (DeliveryError("never became ready", result={"phase": "Failed"}), 1)})
    analyse, seen = analysis(PROMOTE)
    outcome = ReleaseRun(PLAN, ports, analyse, "new").run()
    assert (outcome.result, outcome.reason) == ("Failed", "never became ready")
    assert seen == [] and ("manage", "rollback") not in ports.calls
    assert names(ports)[-1] == ("route", "primary", None)


def test_a_start_that_fails_otherwise_fails_the_run_with_what_it_touched():
    ports = FakePorts(fail={"start": (DeliveryError("403 forbidden"), 1)})
    with pytest.raises(ReleaseRunError) as raised:
        ReleaseRun(PLAN, ports, analysis(PROMOTE)[0], "new").run()
    assert raised.value.message == "403 forbidden" and raised.value.result["touched"] is True


def test_a_resumed_release_puts_traffic_back_at_its_step_and_goes_on_from_there():
    ports = FakePorts()
    analyse, seen = analysis(PROMOTE)
    resume = {"weight": 20, "step_index": None, "failed_checks": 2, "phase": "Progressing"}
    ReleaseRun(PLAN, ports, analyse, "resume", resume=resume).run()
    assert names(ports)[:2] == [("manage", "start"), ("route", "step", 1)]
    assert seen == [Position(index=1, failed_checks=2)]


def test_a_restarted_release_first_puts_all_traffic_on_the_primary():
    ports = FakePorts()
    ReleaseRun(PLAN, ports, analysis(PROMOTE)[0], "restart").run()
    assert names(ports)[:2] == [("route", "primary", None), ("manage", "start")]


def test_skip_analysis_promotes_without_analysing():
    ports = FakePorts()
    analyse, seen = analysis(ROLLBACK)
    outcome = ReleaseRun(dict(PLAN, skip_analysis=True), ports, analyse, "new").run()
    assert seen == [] and outcome.result == "Succeeded"
    assert outcome.reason == "promoted without analysis (spec.skipAnalysis)"
    assert ("preflight",) not in ports.calls


def test_step_weight_promotion_walks_the_share_down_one_interval_at_a_time():
    ports = FakePorts()
    ReleaseRun(dict(PLAN, promotion_steps=[30, 60, 100]), ports, analysis(PROMOTE)[0], "new").run()
    routes = [call for call in ports.calls if call[0] == "route"]
    assert routes == [("route", "weight", 30), ("route", "weight", 60), ("route", "primary", None)]
    assert ports.now == pytest.approx(2 * PLAN["interval_seconds"])


def test_finalize_finishes_a_promotion_without_copying_the_template_again():
    ports = FakePorts()
    outcome = ReleaseRun(PLAN, ports, analysis(ROLLBACK)[0], "finalize").run()
    assert ("manage", "promote") not in ports.calls and ("manage", "finalize") in ports.calls
    assert outcome.result == "Succeeded" and outcome.touched


def test_the_rollback_keeps_trying_while_the_api_server_fails_then_gives_up():
    flaky = DeliveryError("timed out", result={"retryable": True})
    ports = FakePorts(fail={"route": (flaky, 2)})
    outcome = ReleaseRun(PLAN, ports, analysis(ROLLBACK)[0], "rollback", rollback_reason="left by a dead run",
                         recovery=Recovery(timeout=10, delay=1)).run()
    assert outcome.result == "Failed" and outcome.reason == "left by a dead run"
    assert [c for c in ports.calls if c[0] == "route"] == [("route", "primary", None)] * 3
    always = FakePorts(fail={"route": (flaky, 100)})
    with pytest.raises(ReleaseRunError):
        ReleaseRun(PLAN, always, analysis(ROLLBACK)[0], "rollback", recovery=Recovery(timeout=3, delay=1)).run()
    assert len([c for c in always.calls if c[0] == "route"]) == Recovery(timeout=3, delay=1).attempts == 4
    assert ("manage", "rollback") not in always.calls


def test_a_refused_route_is_not_tried_again():
    ports = FakePorts(fail={"route": (DeliveryError("forbidden", result={"retryable": False}), 100)})
    with pytest.raises(ReleaseRunError) as raised:
        ReleaseRun(PLAN, ports, analysis(ROLLBACK)[0], "rollback", recovery=Recovery(timeout=60, delay=1)).run()
    assert len([c for c in ports.calls if c[0] == "route"]) == 1
    assert raised.value.result["touched"] is True


def test_an_unknown_path_is_refused():
    with pytest.raises(ReleaseRunError, match="path 'sideways' is not one of"):
        ReleaseRun(PLAN, FakePorts(), analysis(PROMOTE)[0], "sideways")


@pytest.mark.parametrize("path, resume, expected", [
    ("new", {"weight": 20}, Position()),
    ("resume", {"weight": 20}, Position(index=1)),
    ("continue", {"weight": 25, "failed_checks": 1}, Position(index=-1, failed_checks=1)),
    ("resume", {"weight": 30, "step_index": 2, "phase": "WaitingPromotion"}, Position(index=2, held_for_promotion=True)),
])
def test_resume_position(path, resume, expected):
    assert resume_position(path, resume, [10, 20, 30]) == expected


def test_advance_is_not_an_end():
    # The step loop only returns promote or rollback; anything else ends the run with no result, touching nothing more.
    ports = FakePorts()
    outcome = ReleaseRun(PLAN, ports, analysis(ADVANCE)[0], "new").run()
    assert outcome.result == "" and ("manage", "promote") not in ports.calls
