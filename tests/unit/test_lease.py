"""Lease expiry arithmetic and the lock decisions built on it."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release import lease as ls
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339

NOW = 1_700_000_000.0


def lease(run_id="run-a", acquired=NOW - 30, renewed=NOW - 10, duration=60, holder="AWX job 7 on host h pid 1"):
    spec = {"leaseDurationSeconds": duration}
    if run_id:
        spec["holderIdentity"] = run_id
    if acquired is not None:
        spec["acquireTime"] = format_rfc3339(acquired)
    if renewed is not None:
        spec["renewTime"] = format_rfc3339(renewed)
    return {"metadata": {"name": "backend-canary-lock", "annotations": {ls.HOLDER_ANNOTATION: holder}}, "spec": spec}


@pytest.mark.parametrize("renewed_ago, duration, free", [
    (10, 60, False),
    (59.9, 60, False),
    (60, 60, True),
    (61, 60, True),
])
def test_lease_expires_duration_after_last_renewal(renewed_ago, duration, free):
    view = ls.LeaseView.of(lease(renewed=NOW - renewed_ago, duration=duration))
    assert view.is_free(NOW) is free
    assert view.expires_at() == pytest.approx(NOW - renewed_ago + duration)


def test_lease_without_renew_time_counts_from_acquire_time():
    view = ls.LeaseView.of(lease(acquired=NOW - 100, renewed=None, duration=60))
    assert view.is_free(NOW)
    assert not ls.LeaseView.of(lease(acquired=NOW - 10, renewed=None, duration=60)).is_free(NOW)


def test_lease_without_holder_or_times_is_free():
    assert ls.LeaseView.of(None).is_free(NOW)
    assert ls.LeaseView.of(lease(run_id=None)).is_free(NOW)
    assert ls.LeaseView.of(lease(acquired=None, renewed=None)).is_free(NOW)


@pytest.mark.parametrize("existing, run_id, decision", [
    (None, "me", ls.ACQUIRE),
    (lease(run_id=None), "me", ls.ACQUIRE),
    (lease(run_id="me"), "me", ls.RENEW),
    (lease(run_id="me", renewed=NOW - 1000), "me", ls.RENEW),
    (lease(run_id="other"), "me", ls.REFUSE),
    (lease(run_id="other", renewed=NOW - 61), "me", ls.TAKE_OVER),
])
def test_lock_decision(existing, run_id, decision):
    assert ls.lock_decision(existing, run_id, NOW) == decision


def test_held_message_names_holder_age_and_expiry():
    text = ls.held_message("prod", "backend", lease(acquired=NOW - 35, renewed=NOW - 5, duration=120), NOW)
    assert "AWX job 7 on host h pid 1" in text and "run-a" in text
    assert "for 35s" in text and "renewed 5s ago" in text and "expires in 115s" in text
    assert "prod/backend-canary-lock" in text


def test_desired_lease_acquire_renew_and_take_over():
    acquired = ls.desired_lease(None, "prod", "backend", "me", "host h", 90, NOW)
    assert acquired["spec"]["holderIdentity"] == "me"
    assert acquired["spec"]["leaseDurationSeconds"] == 90
    assert acquired["spec"]["acquireTime"] == acquired["spec"]["renewTime"] == format_rfc3339(NOW)
    assert acquired["spec"]["leaseTransitions"] == 0
    assert acquired["metadata"]["annotations"][ls.HOLDER_ANNOTATION] == "host h"

    renewed = ls.desired_lease(acquired, "prod", "backend", "me", "host h", 90, NOW + 20)
    assert renewed["spec"]["acquireTime"] == format_rfc3339(NOW)
    assert renewed["spec"]["renewTime"] == format_rfc3339(NOW + 20)
    assert renewed["spec"]["leaseTransitions"] == 0

    taken = ls.desired_lease(renewed, "prod", "backend", "other", "host i", 90, NOW + 500)
    assert taken["spec"]["holderIdentity"] == "other"
    assert taken["spec"]["acquireTime"] == format_rfc3339(NOW + 500)
    assert taken["spec"]["leaseTransitions"] == 1


def test_released_lease_has_no_holder():
    released = ls.released_lease(lease())
    assert "holderIdentity" not in released["spec"]
    assert ls.LeaseView.of(released).is_free(NOW)
    assert ls.HOLDER_ANNOTATION not in released["metadata"]["annotations"]


def test_describe_reports_age_and_expiry():
    described = ls.LeaseView.of(lease(acquired=NOW - 30, renewed=NOW - 10, duration=60)).describe(NOW)
    assert described["held"] is True
    assert described["age_seconds"] == 30.0 and described["expires_in_seconds"] == 50.0


def test_default_run_id_prefers_awx_job_then_playbook_process():
    assert ls.default_run_id({"JOB_ID": "42"}, "h", (10, "99")) == "awx-job-42"
    assert ls.default_run_id({}, "h", (10, "99")) == "h-10-99"
    assert "AWX job 42" in ls.default_holder({"JOB_ID": "42"}, "h", (10, "99"))
    assert ls.default_holder({}, "h", (10, "99")) == "host h pid 10"


def test_playbook_ancestor_is_the_outermost_ansible_playbook_process(tmp_path):
    # A fake /proc: 300 (module) -> 200 (per-task worker) -> 100 (ansible-playbook) -> 50 (bash).
    tree = ((300, 200, "python module"), (200, 100, "python ansible-playbook site.yml"),
            (100, 50, "python ansible-playbook site.yml"), (50, 1, "bash"))
    for pid, parent, cmd in tree:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(cmd.replace(" ", "\0").encode())
        fields = ["S", str(parent)] + ["0"] * 17 + ["%d777" % pid]
        (tmp_path / str(pid) / "stat").write_text("%d (py thon) %s" % (pid, " ".join(fields)))
    assert ls.ansible_playbook_ancestor(str(tmp_path), start_pid=300) == (100, "100777")
    assert ls.ansible_playbook_ancestor(str(tmp_path), start_pid=50) is None
    assert ls.ansible_playbook_ancestor(str(tmp_path), start_pid=999) is None
