# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``status``: the stored state, and how the live route and workloads compare with it; read only."""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.detect import ComparesWithCluster


class Status(ComparesWithCluster):
    """Return the stored state and the drift the next run would repair."""

    def apply(self, rule: st.Rule) -> None:
        self.message = self.state.message or "phase %s" % (self.state.phase or "not initialized")
        if self.state.phase in (st.NONE, st.INITIALIZING):
            return
        try:
            target: dict[str, Any] | None = self._target_revision()[0]
            revision: str | None = st.revision_status(self.state, self.checksum or "")[0]
        except CanaryFailure:
            # A status is still worth showing when the target is gone or broken; its replicas then count as 0.
            target, revision = None, None
        self._assess_drift(target, revision)
