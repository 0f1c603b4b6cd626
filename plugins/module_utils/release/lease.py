# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run per canary: a coordination.k8s.io/v1 Lease named ``<canary>-canary-lock``.

``holderIdentity`` is the run id; the human-readable holder (AWX job, host,
pid) is an annotation so a refused run can say who is in the way.  A module is
a process per task, so the lease is renewed by each call of the holding run and
its TTL must outlast the longest gap between two calls.
"""

from __future__ import annotations

import copy
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.optimistic import (
    ConflictRetriesExhausted,
    optimistic_update,
)
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import mark
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import lease_name
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339, parse_rfc3339_epoch

LEASE_API = "coordination.k8s.io/v1"
LEASE_PLURAL = "leases"
HOLDER_ANNOTATION = "progressive.delivery/holder"
DEFAULT_TTL = 120
CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class LeaseView:
    """The parts of a Lease that matter for locking."""

    run_id: str | None
    holder: str | None
    acquired: float | None
    renewed: float | None
    duration: int

    @classmethod
    def of(cls, lease: Mapping[str, Any] | None) -> "LeaseView":
        spec = (lease or {}).get("spec") or {}
        annotations = ((lease or {}).get("metadata") or {}).get("annotations") or {}
        acquired = parse_rfc3339_epoch(spec.get("acquireTime"))
        renewed = parse_rfc3339_epoch(spec.get("renewTime")) or acquired
        return cls(run_id=spec.get("holderIdentity") or None, holder=annotations.get(HOLDER_ANNOTATION),
                   acquired=acquired, renewed=renewed, duration=int(spec.get("leaseDurationSeconds") or DEFAULT_TTL))

    def expires_at(self) -> float | None:
        if self.renewed is None:
            return None
        return self.renewed + self.duration

    def is_free(self, now: float) -> bool:
        """Nobody holds it, or the holder stopped renewing for longer than the lease duration."""
        if not self.run_id:
            return True
        expires = self.expires_at()
        # A lease without times was written by something else; treat it as expired
        # rather than locking the canary forever.
        return expires is None or now >= expires

    def age(self, now: float) -> float | None:
        return None if self.acquired is None else max(0.0, now - self.acquired)

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "held": bool(self.run_id) and not self.is_free(now),
            "run_id": self.run_id,
            "holder": self.holder,
            "acquired": format_rfc3339(self.acquired) if self.acquired is not None else None,
            "renewed": format_rfc3339(self.renewed) if self.renewed is not None else None,
            "age_seconds": None if self.age(now) is None else round(self.age(now) or 0.0, 1),
            "lease_duration_seconds": self.duration,
            "expires_in_seconds": None if self.expires_at() is None else round((self.expires_at() or 0.0) - now, 1),
        }


ACQUIRE = "acquire"      # free lease: take it
RENEW = "renew"          # this run holds it: extend it
TAKE_OVER = "take_over"  # the holder stopped renewing: take it
REFUSE = "refuse"        # another live run holds it


def lock_decision(lease: Mapping[str, Any] | None, run_id: str, now: float) -> str:
    view = LeaseView.of(lease)
    if view.run_id == run_id:
        return RENEW
    if not view.run_id:
        return ACQUIRE
    if view.is_free(now):
        return TAKE_OVER
    return REFUSE


def held_message(namespace: str, canary: str, lease: Mapping[str, Any] | None, now: float) -> str:
    view = LeaseView.of(lease)
    age = view.age(now)
    renewed = view.renewed
    expires = view.expires_at()
    return ("Canary %s/%s is locked by another run: %s (run id %s), holding Lease %s/%s for %s, last renewed %s ago; "
            "it expires in %s unless renewed. Wait for that run to finish; if it died, the next run may take over once "
            "the lease expires (or delete the Lease after checking nothing is running)."
            % (namespace, canary, view.holder or "unknown holder", view.run_id, namespace, lease_name(canary),
               _seconds(age), _seconds(None if renewed is None else now - renewed),
               _seconds(None if expires is None else expires - now)))


def _seconds(value: float | None) -> str:
    return "an unknown time" if value is None else "%ds" % max(0, round(value))


def desired_lease(existing: Mapping[str, Any] | None, namespace: str, canary: str, run_id: str, holder: str,
                  ttl: int, now: float) -> dict[str, Any]:
    """The Lease after this run acquires, renews or takes it over."""
    view = LeaseView.of(existing)
    lease = copy.deepcopy(dict(existing)) if existing else {
        "apiVersion": LEASE_API, "kind": "Lease", "metadata": {"name": lease_name(canary), "namespace": namespace},
        "spec": {},
    }
    lease = mark(lease, namespace, canary)
    lease["metadata"]["annotations"][HOLDER_ANNOTATION] = holder
    spec = lease.setdefault("spec", {})
    if view.run_id != run_id:
        spec["acquireTime"] = format_rfc3339(now)
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if view.run_id else 0)
    spec["holderIdentity"] = run_id
    spec["leaseDurationSeconds"] = int(ttl)
    spec["renewTime"] = format_rfc3339(now)
    return lease


def released_lease(existing: Mapping[str, Any]) -> dict[str, Any]:
    lease = copy.deepcopy(dict(existing))
    spec = lease.setdefault("spec", {})
    for key in ("holderIdentity", "acquireTime", "renewTime"):
        spec.pop(key, None)
    lease.get("metadata", {}).get("annotations", {}).pop(HOLDER_ANNOTATION, None)
    return lease


class LockHeld(DeliveryError):
    """Another live run holds the canary's lease; ``lease`` is that Lease as it was read."""

    def __init__(self, message: str, lease: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.lease = lease


class LeaseLock:
    """Acquire, renew and release one canary's Lease through a KubeClient."""

    def __init__(self, client: Any, namespace: str, canary: str, run_id: str, holder: str, ttl: int = DEFAULT_TTL,
                 clock: Callable[[], float] | None = None) -> None:
        self.client = client
        self.namespace = namespace
        self.canary = canary
        self.run_id = run_id
        self.holder = holder
        self.ttl = ttl
        self.clock = clock or _time

    @property
    def name(self) -> str:
        return lease_name(self.canary)

    def read(self) -> dict[str, Any] | None:
        return self.client.get_or_none(LEASE_API, LEASE_PLURAL, self.name, self.namespace)

    def _write(self, lease: Mapping[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
        if lease is None:
            return self.client.create(LEASE_API, LEASE_PLURAL, desired, self.namespace)
        return self.client.replace(LEASE_API, LEASE_PLURAL, self.name, desired, self.namespace)

    def _decide(self, lease: Mapping[str, Any] | None) -> tuple[str, float]:
        """The lock decision on fresh data; raise :class:`LockHeld` when another live run has the lease."""
        now = self.clock()
        decision = lock_decision(lease, self.run_id, now)
        if decision == REFUSE:
            raise LockHeld(held_message(self.namespace, self.canary, lease, now), lease)
        return decision, now

    def acquire(self, check_mode: bool = False) -> tuple[str, dict[str, Any] | None]:
        """Take or renew the lease; raise :class:`LockHeld` when another live run has it."""
        decided: list[str] = []

        def change(lease: dict[str, Any] | None) -> dict[str, Any]:
            decision, now = self._decide(lease)
            decided[:] = [decision]
            return desired_lease(lease, self.namespace, self.canary, self.run_id, self.holder, self.ttl, now)

        def write(lease: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
            return desired if check_mode else self._write(lease, desired)

        try:
            # Someone else wrote the lease between our read and write: decide again on fresh data.
            lease = optimistic_update(self.read, change, write, attempts=CONFLICT_RETRIES)
        except ConflictRetriesExhausted:
            held = self.read()
            raise LockHeld(held_message(self.namespace, self.canary, held, self.clock()), held) from None
        return decided[0], lease

    def renew_if_held(self, check_mode: bool = False) -> dict[str, Any] | None:
        """Extend the lease when this run holds it; refuse when another live run does; else leave it alone."""
        def change(lease: dict[str, Any] | None) -> dict[str, Any] | None:
            decision, now = self._decide(lease)
            if decision != RENEW or check_mode:
                return None
            return desired_lease(lease, self.namespace, self.canary, self.run_id, self.holder, self.ttl, now)

        try:
            return optimistic_update(self.read, change, self._write, attempts=CONFLICT_RETRIES)
        except ConflictRetriesExhausted:
            raise KubeApiError(status=409, reason="Conflict",
                               message="the lease %s/%s kept changing while this run renewed it (%d attempts)"
                               % (self.namespace, self.name, CONFLICT_RETRIES)) from None

    def release(self, check_mode: bool = False) -> tuple[bool, dict[str, Any] | None]:
        """Give the lease up if this run holds it; returns (changed, lease)."""
        released: list[bool] = []

        def change(lease: dict[str, Any] | None) -> dict[str, Any] | None:
            if lease is None or LeaseView.of(lease).run_id != self.run_id:
                return None
            return released_lease(lease)

        def write(lease: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
            answer = desired if check_mode else self._write(lease, desired)
            released.append(True)
            return answer

        try:
            lease = optimistic_update(self.read, change, write, attempts=CONFLICT_RETRIES)
        except ConflictRetriesExhausted:
            return False, self.read()
        return bool(released), lease


def _time() -> float:
    import time

    return time.time()


def ansible_playbook_ancestor(proc_root: str = "/proc", start_pid: int | None = None, depth: int = 12) -> tuple[int, str] | None:
    """(pid, start time) of the ansible-playbook process this module runs under, when it is on this host.

    Ansible forks a worker per task with the same command line, so the outermost
    matching ancestor is the one that lives as long as the playbook run.
    """
    pid = start_pid if start_pid is not None else os.getppid()
    found = None
    for _level in range(depth):
        if pid <= 1:
            break
        try:
            with open(os.path.join(proc_root, str(pid), "cmdline"), "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(os.path.join(proc_root, str(pid), "stat"), "r", encoding="utf-8") as handle:
                stat = handle.read()
        except OSError:
            break
        # Fields after the command name (which may hold spaces) start after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if "ansible-playbook" in cmdline or "ansible-runner" in cmdline:
            found = (pid, fields[19] if len(fields) > 19 else "0")
        elif found:
            break
        pid = int(fields[1]) if len(fields) > 1 else 1
    return found


def default_run_id(environ: Mapping[str, str], hostname: str, ancestor: tuple[int, str] | None) -> str:
    """A run id that stays the same for every task of one playbook run."""
    if environ.get("JOB_ID"):
        return "awx-job-%s" % environ["JOB_ID"]
    if ancestor:
        return "%s-%s-%s" % (hostname, ancestor[0], ancestor[1])
    return "%s-%s" % (hostname, os.getppid())


def default_holder(environ: Mapping[str, str], hostname: str, ancestor: tuple[int, str] | None) -> str:
    pid = ancestor[0] if ancestor else os.getppid()
    who = "host %s pid %s" % (hostname, pid)
    if environ.get("JOB_ID"):
        who = "AWX job %s%s on %s" % (environ["JOB_ID"], " (%s)" % environ["AWX_HOST"] if environ.get("AWX_HOST") else "", who)
    return who


def run_identity(run_id: str | None, holder: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The (run_id, holder) pair for this task, filling in whichever was not given."""
    environ = os.environ if environ is None else environ
    ancestor = None if run_id and holder else ansible_playbook_ancestor()
    hostname = socket.gethostname()
    return run_id or default_run_id(environ, hostname, ancestor), holder or default_holder(environ, hostname, ancestor)
