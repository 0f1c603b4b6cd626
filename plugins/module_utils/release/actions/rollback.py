# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``rollback``: scale the canary to 0 and, during a promotion, put the primary back as it was."""

from __future__ import annotations

import copy
from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import ownership_problem
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CONFIGMAPS, DEPLOYMENTS, SECRETS
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import (
    previous_secrets_name,
    primary_name,
)


class Rollback(CanaryAction):
    """End the release in Failed with a reason; the same revision is not started again until retry."""

    def apply(self, rule: st.Rule) -> None:
        params = self.params
        if params.phase and params.phase != st.FAILED:
            raise self.fail("action=rollback ends in phase Failed; phase=%s is not supported" % params.phase)
        self._read_target()
        if self.state.phase not in st.IN_PROGRESS:
            self._settle()
            return
        reason = params.reason or "rolled back"
        primary_deployment = primary_name(params.target_name)
        backup = self.state.primary_template_before_promotion
        configs_before = self.state.primary_configs_before_promotion
        if self.state.phase in (st.PROMOTING, st.FINALISING):
            # The primary already carries the failed revision. Its configs go back first, so the pods the
            # restored template starts read the previous data and not the failed revision's.
            self._restore_primary_configs(configs_before)
            if backup:
                self.store.ensure(DEPLOYMENTS, "Deployment", primary_deployment,
                                  lambda cur: None if cur is None or not wl.template_differs(cur, backup) else wl.with_template(cur, backup))
        self.store.scale(params.target_name, 0)
        self._forget_previous_secrets(configs_before)
        message = "Canary failed! Scaling down %s.%s: %s" % (params.target_name, self.ns, reason)
        # The check that decided the rollback is not recorded on its own: the caller passes its count here.
        counted = (params.analysis or {}).get("failed_checks")
        extra = {"failed_checks": counted} if counted is not None else {}
        mutate = self._transition("rollback", rule.to or st.FAILED, message, self.clock(), canary_weight=0, **extra,
                                  reason=reason, failed_spec=self.state.last_applied_spec,
                                  primary_template_before_promotion=None, primary_configs_before_promotion=None)
        self._update_state(_with_deciding_analysis(mutate, params.analysis or {}))
        self._event(message, warning=True)
        self.message = message

    def _settle(self) -> None:
        """A release that is over keeps its phase; a canary a failed run left with replicas goes to 0.

        The caller routed all traffic to the primary first (the role's drift repair, playbooks/rollback.yml).
        ``reason`` becomes the state's message, so the state tells what the last run found and did.
        """
        params = self.params
        phase = self.state.phase
        replicas = ((self.target or {}).get("spec") or {}).get("replicas")
        scaled = replicas is None or replicas > 0
        if scaled:
            self.store.scale(params.target_name, 0)
        if not scaled and (not params.reason or params.reason == self.state.message):
            self.message = "no release is in progress (phase %s)" % phase
            return
        message = params.reason or "Scaled %s.%s down: the release is %s" % (params.target_name, self.ns, phase)
        self._update_state(self._transition("repair", phase, message, self.clock(), canary_weight=0))
        self._event(message, warning=scaled)
        self.message = message

    def _restore_primary_configs(self, saved: dict[str, Any] | None) -> None:
        """Put the ``-primary`` configs' data back as ``_save_primary_configs`` found it."""
        if not saved:
            return
        for name, content in sorted((saved.get("configMaps") or {}).items()):
            self.store.ensure(CONFIGMAPS, "ConfigMap", name,
                              lambda cur, content=content: None if cur is None else wl.with_config_content(cur, content))
        names = saved.get("secrets") or []
        if not names:
            return
        backup_name = previous_secrets_name(self.params.name)
        backup = self.store.get(SECRETS, "Secret", backup_name)
        problem = ownership_problem(backup, "Secret", self.ns, self.params.name)
        contents = wl.read_config_backup(backup) if backup is not None and not problem else {}
        for name in names:
            if name not in contents:
                self.changelog.warnings.append(
                    "Secret %s/%s keeps the promoted revision's data: its previous data was not found in Secret %s/%s%s. "
                    "Put the previous data back by hand." % (self.ns, name, self.ns, backup_name, " (%s)" % problem if problem else ""))
                continue
            self.store.ensure(SECRETS, "Secret", name,
                              lambda cur, content=contents[name]: None if cur is None else wl.with_config_content(cur, content))


def _with_deciding_analysis(mutate: Callable[[st.CanaryState], bool],
                            analysis: dict[str, Any]) -> Callable[[st.CanaryState], bool]:
    """The rollback's history entry also holds the analysis that decided it, which is recorded nowhere else: the
    status, the report and the ``flagger_canary_metric_analysis`` series then show the values that failed."""
    deciding = {key: copy.deepcopy(analysis[key]) for key in ("metrics", "webhooks") if analysis.get(key)}
    if not deciding:
        return mutate

    def with_analysis(state: st.CanaryState) -> bool:
        changed = mutate(state)
        if state.history:
            state.history[-1].update(copy.deepcopy(deciding))
        return changed
    return with_analysis
