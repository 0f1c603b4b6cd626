# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``start``: scale the canary up for a new revision (or resume, or restart, an analysis) and wait for it."""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import DEPLOYMENTS, HPAS
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import primary_name
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339


class Start(CanaryAction):
    """Begin the analysis of the target's revision: state Progressing, canary scaled up and ready."""

    def apply(self, rule: st.Rule) -> None:  # pylint: disable=too-many-locals
        params = self.params
        target, _label, _value, _tracked, _found = self._target_revision()
        checksum = self.checksum or ""
        state = self.state
        if state.phase == st.FAILED and checksum == state.failed_spec:
            self.revision, reason = st.revision_status(state, checksum)
            raise self.fail("Cannot start canary %s/%s: %s." % (self.ns, params.name, reason))
        if state.phase not in st.IN_PROGRESS and checksum == state.last_promoted_spec:
            self.revision = st.NOTHING_TO_DO
            self.message = "nothing to do: the primary already runs revision %s" % checksum
            return
        now = self.clock()
        restart = state.phase in st.ANALYSING and checksum != state.last_applied_spec
        self.restarted = restart
        fresh = state.phase not in st.IN_PROGRESS or restart
        if fresh:
            message = "New revision detected! Scaling up %s.%s" % (params.target_name, self.ns)
            if restart:
                message = "New revision detected during the analysis of %s, restarting it! Scaling up %s.%s" % (
                    state.last_applied_spec, params.target_name, self.ns)
            self._update_state(self._transition(
                "start", st.PROGRESSING, message, now, canary_weight=0, failed_checks=0, iterations=0, step_index=-1,
                last_applied_spec=checksum, tracked_configs=self.tracked_configs, started_at=format_rfc3339(now),
                failed_spec=None, reason="", primary_template_before_promotion=None,
                primary_configs_before_promotion=None))
            self._event(message)
        elif state.run_id != params.run_id:
            message = "Run %s resumed the analysis of %s.%s at canary weight %s" % (
                params.run_id, params.target_name, self.ns, state.canary_weight)
            self._update_state(self._transition("start", state.phase, message, now))
            self._event(message)
        self.revision = st.NEW_REVISION if fresh else st.IN_PROGRESS_REVISION
        primary = self.store.get(DEPLOYMENTS, "Deployment", primary_name(params.target_name))
        hpa = self.store.get(HPAS, "HorizontalPodAutoscaler", params.autoscaler) if params.autoscaler else None
        replicas = wl.canary_replicas(target, primary, hpa)
        current = (target.get("spec") or {}).get("replicas") or 0
        if current < 1:
            self.store.scale(params.target_name, replicas)
        if self.check_mode:
            self.changelog.changes.append("wait for Deployment %s/%s to be ready" % (self.ns, params.target_name))
            return
        if params.wait_timeout == 0:
            self.message = "Deployment %s/%s scaled up; not waiting for it (wait_timeout=0)" % (self.ns, params.target_name)
            return
        readiness = self._wait_ready(params.target_name, params.wait_seconds, "Canary Deployment",
                                     params.canary_ready_threshold)
        if readiness.ready:
            self.message = readiness.message
            return
        reason = "canary not ready: %s" % readiness.message
        message = "Canary failed! Scaling down %s.%s: %s" % (params.target_name, self.ns, reason)
        self.store.scale(params.target_name, 0)
        self._update_state(self._transition("start", st.FAILED, message, self.clock(), failed_spec=checksum,
                                            canary_weight=0, reason=reason))
        self._event(message, warning=True)
        raise self.fail("Canary Deployment %s/%s never became ready (%s); it was scaled to 0 and the release of revision "
                        "%s is Failed. Fix the workload, or run playbooks/retry.yml (canary_step action=retry) to analyse this revision again."
                        % (self.ns, params.target_name, readiness.message, checksum))
