# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``status``: the stored state, and how the live route and workloads compare with it; read only.

With ``watch`` it first follows the release until it ends (``status_watch``); with ``report_run`` it also returns
a report kept in ``<canary>-canary-reports``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CONFIGMAPS, CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.detect import ComparesWithCluster
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import LeaseView
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import reports_name
from ansible_collections.progressive.delivery.plugins.module_utils.release.status_watch import (
    WatchReadError,
    WatchResult,
    follow,
    timeout_message,
)
from ansible_collections.progressive.delivery.plugins.module_utils.report import stored


class Status(ComparesWithCluster):
    """Return the stored state and the drift the next run would repair."""

    watched: WatchResult | None = None
    report: dict[str, Any] | None = None
    report_entry: dict[str, Any] | None = None
    stored_reports: list[dict[str, Any]] | None = None

    def run(self) -> dict[str, Any]:
        options = self.params.watch
        if options is not None:
            self.watched = follow(self._observe, options, self.clock, self.sleep)
            if not self.watched.ended:
                raise self.fail(timeout_message("Canary %s/%s" % (self.ns, self.params.name), self.watched,
                                                options.timeout))
        if self.params.report_run:
            self._read_report(self.params.report_run)
        return super().run()

    def _observe(self) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        try:
            self._load_state()
            self._read_lock()
        except CanaryFailure as exc:
            raise WatchReadError(exc.message) from None
        return self.state.to_dict(), LeaseView.of(self.lease).describe(self.clock())

    def _read_report(self, run: str) -> None:
        name = reports_name(self.params.name)
        where = "ConfigMap %s/%s" % (self.ns, name)
        config_map = self.store.get(CONFIGMAPS, "ConfigMap", name)
        self.stored_reports = stored.parse_index(config_map)
        try:
            self.report, self.report_entry = stored.load_report(config_map, run, where)
        except stored.StoredReportError as exc:
            raise self.fail(str(exc)) from None

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

    def _result(self) -> dict[str, Any]:
        result = super()._result()
        if self.watched is not None:
            result["watch"] = self.watched.to_dict()
        if self.stored_reports is not None:
            result["stored_reports"] = self.stored_reports
        if self.report is not None:
            result["report"] = self.report
            result["report_run"] = (self.report_entry or {}).get("runId")
        return result
