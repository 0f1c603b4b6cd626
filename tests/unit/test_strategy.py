"""Each Flagger strategy's routing per step, its gates and labels, and the Flagger event messages of the loop."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import (
    ADVANCE,
    HOLD,
    Move,
    Position,
    Settings,
    gate_type,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import Assessment
from ansible_collections.progressive.delivery.plugins.module_utils.release.narration import flagger_event
from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import (
    AB_TESTING,
    BLUE_GREEN,
    BLUE_GREEN_MIRROR,
    CANARY,
    CONFIRM_PROMOTION,
    CONFIRM_TRAFFIC_INCREASE,
    Strategy,
    sticky_cookie_value,
)

MATCH = ({"headers": {"x-canary": {"exact": "insider"}}},)
PRIMARY_ONLY = {"weight": 0, "mirror": {"enabled": False}, "match": {"state": "absent"}}


def plan(**values):
    base = {"name": "podinfo", "namespace": "test", "target": "podinfo", "strategy": CANARY, "steps": [10, 20]}
    base.update(values)
    return base


def test_canary_steps_move_the_weight_and_leave_nothing_else():
    strategy = Strategy.from_plan(plan())
    assert strategy.route(0) == {"weight": 10, "mirror": {"enabled": False}, "match": {"state": "absent"}}
    assert strategy.route(-1) == PRIMARY_ONLY
    assert [strategy.gate_before_leaving(i) for i in (-1, 0, 1)] == [CONFIRM_TRAFFIC_INCREASE] * 2 + [CONFIRM_PROMOTION]
    assert strategy.label(1) == "weight 20%" and strategy.label(-1) == "pre-rollout checks"


def test_ab_testing_routes_the_match_to_the_canary_at_every_iteration_and_removes_it_at_the_end():
    strategy = Strategy.from_plan(plan(strategy=AB_TESTING, steps=[0, 0, 0], match=list(MATCH)))
    for index in range(3):
        assert strategy.route(index) == {"weight": 0, "mirror": {"enabled": False},
                                         "match": {"state": "present", "headers": [dict(MATCH[0])]}}
    assert strategy.primary_only() == PRIMARY_ONLY
    assert [strategy.gate_before_leaving(i) for i in (-1, 0, 1, 2)] == [None, None, None, CONFIRM_PROMOTION]
    assert strategy.label(1) == "iteration 2/3"


def test_ab_testing_without_match_is_refused():
    with pytest.raises(ValueError, match="match"):
        Strategy.from_plan(plan(strategy=AB_TESTING, steps=[0, 0]))


def test_blue_green_gives_the_canary_no_traffic_then_all_of_it_in_its_last_step():
    strategy = Strategy.from_plan(plan(strategy=BLUE_GREEN, steps=[0, 0, 100]))
    assert strategy.switches_to_canary and strategy.iteration_count == 2
    assert strategy.route(0)["weight"] == 0 and strategy.route(1)["weight"] == 0
    assert strategy.route(2) == {"weight": 100, "mirror": {"enabled": False}, "match": {"state": "absent"}}
    # The promotion gate is asked before the traffic moves, as Flagger asks it before routing all to the canary.
    assert [strategy.gate_before_leaving(i) for i in (-1, 0, 1, 2)] == [None, None, CONFIRM_PROMOTION, None]
    assert [strategy.label(i) for i in range(3)] == ["iteration 1/2", "iteration 2/2", "all traffic on the canary"]


def test_blue_green_mirror_copies_mirror_weight_during_the_iterations_and_stops_at_the_switch():
    strategy = Strategy.from_plan(plan(strategy=BLUE_GREEN_MIRROR, steps=[0, 0, 100], mirror_weight=40))
    assert strategy.route(0)["mirror"] == {"enabled": True, "percentage": 40.0}
    assert strategy.route(2)["mirror"] == {"enabled": False} and strategy.route(2)["weight"] == 100
    assert strategy.label(0) == "iteration 1/2, mirroring 40%"


def test_canary_with_mirror_mirrors_only_its_leading_step():
    strategy = Strategy.from_plan(plan(steps=[0, 10, 20], mirror_weight=100))
    assert strategy.route(0) == {"weight": 0, "mirror": {"enabled": True, "percentage": 100.0}, "match": {"state": "absent"}}
    assert strategy.route(1)["mirror"] == {"enabled": False}
    assert strategy.label(0) == "mirroring 100%"


def test_session_affinity_is_present_while_the_canary_has_weight_and_absent_on_the_primary():
    affinity = {"cookie_name": "flagger-cookie", "max_age": 120, "primary_cookie_name": "primary-cookie"}
    strategy = Strategy.from_plan(plan(session_affinity=affinity, interval_seconds=0.5), checksum="abc")
    value = sticky_cookie_value(plan(), "abc")
    assert strategy.route(1)["session_affinity"] == {"state": "present", "cookie": "flagger-cookie=" + value,
                                                     "max_age": 120, "primary_cookie": "primary-cookie=%s-2" % value,
                                                     "primary_max_age": 1}
    assert strategy.primary_only()["session_affinity"] == {"state": "absent", "expire": False}
    assert strategy.route(-1)["session_affinity"] == {"state": "absent", "expire": False}


def test_the_cookie_value_is_the_same_for_one_release_and_differs_between_releases():
    assert sticky_cookie_value(plan(), "rev1") == sticky_cookie_value(plan(), "rev1")
    assert sticky_cookie_value(plan(), "rev1") != sticky_cookie_value(plan(), "rev2")


def test_decision_asks_no_traffic_increase_gate_between_iterations():
    strategy = Strategy.from_plan(plan(strategy=BLUE_GREEN, steps=[0, 0, 100]))
    settings = Settings(steps=strategy.steps, threshold=1, interval=1.0, strategy=strategy)
    assert gate_type(settings, Position(index=0)) is None
    assert gate_type(settings, Position(index=1)) == CONFIRM_PROMOTION


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="strategy must be one of"):
        Strategy.from_plan(plan(strategy="shadow"))


def assessment(failed=False, causes=()):
    return Assessment(failed=failed, causes=tuple(causes), hard_breaches=(), metrics=(), webhooks=(), samples=(),
                      summary="s", time="t")


@pytest.mark.parametrize("strategy, index, expected", [
    (Strategy.from_plan(plan()), 1, "Advance podinfo.test canary weight 20"),
    (Strategy.from_plan(plan(strategy=BLUE_GREEN, steps=[0, 0, 100])), 1, "Advance podinfo.test canary iteration 2/2"),
    (Strategy.from_plan(plan(strategy=BLUE_GREEN, steps=[0, 0, 100])), 2, "Routing all traffic to canary"),
    (Strategy.from_plan(plan(strategy=BLUE_GREEN_MIRROR, steps=[0, 100], mirror_weight=50)), 1,
     "Stop traffic mirroring and route all traffic to canary"),
])
def test_flagger_wording_after_a_shift(strategy, index, expected):
    move = Move(ADVANCE, Position(index=index), strategy.steps[index], "Progressing", 0.0)
    assert flagger_event("podinfo", "podinfo", "test", strategy, move, index, None) == (expected, False)


def test_flagger_wording_of_holds_and_the_start():
    strategy = Strategy.from_plan(plan())
    held = Move(HOLD, Position(index=1), 20, "WaitingPromotion", 1.0, waiting_for=CONFIRM_PROMOTION)
    assert flagger_event("podinfo", "podinfo", "test", strategy, held, 1, assessment(), ("approve",)) == (
        "Halt podinfo.test advancement waiting for approval approve", True)
    failed = Move(HOLD, Position(index=1, failed_checks=1), 20, "Progressing", 1.0)
    assert flagger_event("podinfo", "podinfo", "test", strategy, failed, 1, assessment(True, ["rate 50 < 99"])) == (
        "Halt podinfo.test advancement rate 50 < 99", True)
    started = Move(ADVANCE, Position(index=0), 10, "Progressing", 0.0)
    assert flagger_event("podinfo", "backend", "test", strategy, started, -1, assessment()) == (
        "Starting canary analysis for backend.test", False)
