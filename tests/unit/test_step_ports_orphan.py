"""A step whose ansible-playbook died stops instead of holding the canary's lock on."""

from __future__ import annotations

import os

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release.step_ports import ClusterPorts, Run, StepError

PLAN = {"name": "app", "namespace": "prod", "target": "app", "steps": [10, 20], "primary_service": "app-primary",
        "canary_service": "app-canary"}


def ports(parent_pid):
    run = Run(run_id="run-1", holder="me", lease_ttl=30, checksum="abc", parent_pid=parent_pid)
    # Nothing is due yet (the lease was renewed just now), so no call reaches the cluster.
    return ClusterPorts(PLAN, run, kube=None, prometheus=None, gate_builder=lambda: None,
                        router=None, say=lambda line: None, clock=lambda: 0.0)


def test_a_step_goes_on_while_its_playbook_lives():
    ports(os.getppid()).keep_lock()


def test_a_step_stops_once_its_playbook_is_gone():
    with pytest.raises(StepError, match="ansible-playbook process that ran this analysis .* is gone"):
        ports(os.getppid() + 1_000_000).keep_lock()
