"""canary_step's entry point: one class per action, each in a file of its own, on one base."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.manager import (
    ACTION_CLASSES,
    ACTIONS,
    CanaryManager,
    CanaryParams,
)


def test_every_action_has_its_class():
    # delete works in every phase, outside the phase table of state.ACTIONS; prepare runs actions of that table, each
    # under its own rule.
    assert set(ACTION_CLASSES) - set(st.ACTIONS) <= {"delete", "prepare"} and set(st.ACTIONS) <= set(ACTION_CLASSES)
    assert "delete" in ACTIONS and "prepare" in ACTIONS
    assert all(issubclass(action, CanaryAction) and action is not CanaryAction for action in ACTION_CLASSES.values())
    composed = {ACTION_CLASSES["prepare"]}
    assert all(action.apply is not CanaryAction.apply for action in set(ACTION_CLASSES.values()) - composed)
    assert all(action.run is not CanaryAction.run for action in composed)


def test_an_unknown_action_is_refused_before_any_request():
    params = CanaryParams(action="launch", name="web", namespace="prod", run_id="run-a", holder="host h")
    with pytest.raises(CanaryFailure, match="unknown action 'launch', expected one of initialize, detect"):
        CanaryManager(client=None, params=params).run()


def test_params_name_the_target_and_the_wait():
    params = CanaryParams(action="start", name="web", namespace="prod", run_id="r", holder="h", target=None,
                          progress_deadline_seconds=300)
    assert (params.target_name, params.wait_seconds) == ("web", 300)
    assert CanaryParams(action="start", name="web", namespace="prod", run_id="r", holder="h", target="api",
                        wait_timeout=0).wait_seconds == 0


def test_ready_thresholds_default_to_every_replica():
    params = CanaryParams(action="start", name="web", namespace="prod", run_id="r", holder="h")
    assert (params.primary_ready_threshold, params.canary_ready_threshold) == (100, 100)
