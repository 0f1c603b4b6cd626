"""A CI-sized subset of the chaos suite (benchmarks/chaos.py runs all of it): one killed playbook and one release
whose route writes fail, each ending where its outcome says, with no request routed to a canary without a pod and the
webhook token in no output."""

from __future__ import annotations

import random

import pytest

from tests.support.chaos import fault_trial, kill_trial

pytestmark = pytest.mark.slow


def test_a_playbook_killed_mid_release_converges_on_rerun(lab, namespace, tmp_path):
    trial = kill_trial(lab, namespace, tmp_path, random.Random(7))
    assert trial.converged, trial.as_dict()
    assert trial.unsafe_moments == 0 and trial.no_upstream_requests == 0, trial.as_dict()
    assert trial.secret_leaks == 0, trial.as_dict()


def test_a_release_whose_route_writes_fail_ends_safe(lab, namespace, tmp_path):
    trial = fault_trial(lab, namespace, tmp_path, random.Random(3), "route-writes-500")
    assert trial.converged, trial.as_dict()
    assert trial.unsafe_moments == 0 and trial.no_upstream_requests == 0, trial.as_dict()
    assert trial.secret_leaks == 0, trial.as_dict()
