# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``lock`` and ``unlock``: take and give back the canary's Lease; nothing else changes."""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.kube.access import (
    access_message,
    checked_access,
    required_access,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import LeaseView, LockHeld

LOCK_RETRY_SECONDS = 2.0


class Lock(CanaryAction):
    """Take or renew the Lease for this run; refuse while another live run holds it."""

    def run(self) -> dict:
        # Before the state is even read: every missing permission is named at once, and nothing has changed yet.
        self._check_access()
        if self.params.target:
            # A run for a Deployment that does not exist stops here, before a Lease is left behind for nothing.
            self._read_target()
        return super().run()

    def hold_lock(self) -> None:
        deadline = self.clock() + self.params.lock_wait
        while True:
            try:
                with self.store.api("acquire", "Lease", self.lock.name):
                    decision, self.lease = self.lock.acquire(self.check_mode)
                break
            except LockHeld as exc:
                # The result describes the Lease as it is: held by the other run, with its own duration.
                self.lease = dict(exc.lease) if exc.lease is not None else None
                left = deadline - self.clock()
                if left <= 0:
                    raise self.fail(str(exc)) from None
                # Only a lock another run holds is waited for; any other failure ends the call at once.
                self.sleep(min(LOCK_RETRY_SECONDS, left))
        if decision != "renew":
            verb = decision.replace("_", " ")
            self.changelog.add("%s Lease %s/%s for %s" % (verb, self.ns, self.lock.name, self.params.holder))
        self.message = {"acquire": "lock acquired", "renew": "lock renewed",
                        "take_over": "lock taken over from a run that stopped renewing it"}[decision]

    def apply(self, rule: st.Rule) -> None:
        """Nothing beyond the lock."""

    def _check_access(self) -> None:
        """Name every missing permission before the release changes anything; check mode only warns."""
        missing, warning = checked_access(self.client, self.ns, required_access(self.params.provider))
        if warning:
            self.changelog.warnings.append(warning)
        if not missing:
            return
        message = access_message(missing, self.ns)
        if not self.check_mode:
            raise self.fail(message)
        self.changelog.warnings.append(message)


class Unlock(CanaryAction):
    """Give the Lease back when this run holds it; another run's Lease is left alone."""

    def hold_lock(self) -> None:
        with self.store.api("release", "Lease", self.lock.name):
            changed, self.lease = self.lock.release(self.check_mode)
        if changed:
            self.changelog.add("release Lease %s/%s" % (self.ns, self.lock.name))
            self.message = "lock released"
        else:
            self.message = "this run did not hold the lock; nothing to release"
            other = LeaseView.of(self.lease)
            if other.run_id and other.run_id != self.params.run_id:
                self.changelog.warnings.append(
                    "Lease %s/%s is held by another run: %s (run id %s)%s; this run (%s) left it alone" % (
                        self.ns, self.lock.name, other.holder or "unknown holder", other.run_id,
                        ", which stopped renewing it" if other.is_free(self.clock()) else "", self.params.run_id))

    def apply(self, rule: st.Rule) -> None:
        """Nothing beyond the lock."""
