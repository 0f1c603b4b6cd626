# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``store_report``: keep a run's report in the ConfigMap ``<canary>-canary-reports``, beside the state."""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import mark
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CONFIGMAPS, CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import reports_name
from ansible_collections.progressive.delivery.plugins.module_utils.report import stored
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339


class StoreReport(CanaryAction):
    """Store ``params.report`` under this run's id, keeping the last ``params.reports_kept`` runs.

    The report is a record of a release that is already decided: a report that cannot be stored (no RBAC, an API
    server that is down, an object that is not ours) is a warning, never a failure of the run that wrote it.
    """

    stored: dict[str, Any] | None = None

    def run(self) -> dict[str, Any]:
        where = "ConfigMap %s/%s" % (self.ns, reports_name(self.params.name))
        try:
            self._load_state()
            # Read only: the reports ConfigMap is written optimistically, and a run refused the lock still keeps
            # the report that says why.
            self._read_lock()
            self.apply(st.transition("store_report", self.state.phase))
        except CanaryFailure as exc:
            self.changelog.warnings.append("the report of run %s was not kept in %s: %s"
                                           % (self.params.run_id, where, exc.message))
            self.message = "report not stored"
        except stored.StoredReportError as exc:
            self.changelog.warnings.append("the report of run %s was not kept in %s: %s"
                                           % (self.params.run_id, where, exc))
            self.message = "report not stored"
        return self._result()

    def apply(self, rule: st.Rule) -> None:
        if not self.params.report:
            raise self.fail("action=store_report needs report: the report dictionary the role assembles")
        name = reports_name(self.params.name)
        stored_at = format_rfc3339(self.clock())
        entries: list[dict[str, Any]] = []

        def compute(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            parts, entry = stored.with_report(existing, self.params.report or {}, self.params.run_id,
                                              self.params.reports_kept, stored_at)
            entries[:] = [entry]
            previous = stored.parse_index(existing)
            if (previous and previous[-1].get("runId") == self.params.run_id
                    and ((existing or {}).get("binaryData") or {}) == parts["binaryData"]):
                # The same report stored again (a re-run of the task): nothing to write.
                entries[:] = previous[-1:]
                return None
            body = copy.deepcopy(existing) if existing else {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": self.ns}}
            body = mark(body, self.ns, self.params.name)
            body["metadata"]["labels"][st.KIND_LABEL] = stored.KIND
            body.update(parts)
            return body

        self.store.ensure(CONFIGMAPS, "ConfigMap", name, compute)
        self.stored = dict(entries[0], configMap=name) if entries else None
        dropped = (self.stored or {}).get("dropped") or []
        self.message = "report of run %s kept in ConfigMap %s/%s%s" % (
            self.params.run_id, self.ns, name, (" (" + "; ".join(dropped) + ")") if dropped else "")

    def _result(self) -> dict[str, Any]:
        result = super()._result()
        result["stored_report"] = self.stored
        return result
