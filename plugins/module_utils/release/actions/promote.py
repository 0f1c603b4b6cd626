# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``promote`` and ``finalize``: copy the analysed revision into the primary, then retire the canary."""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import ownership_problem
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import (
    CONFIGMAPS,
    DEPLOYMENTS,
    HPAS,
    SECRETS,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import (
    previous_secrets_name,
    primary_name,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_objects as objects


class Promote(CanaryAction):
    """Save what the primary runs, then give it the target's template and configs and wait for it."""

    def apply(self, rule: st.Rule) -> None:  # pylint: disable=too-many-locals
        params = self.params
        target, label, value, tracked, found = self._target_revision()
        checksum = self.checksum or ""
        if checksum != self.state.last_applied_spec:
            raise self.fail("Cannot promote canary %s/%s: the target now runs revision %s but the analysis was of %s. "
                            "Run playbooks/canary.yml (canary_step action=start) to analyse the new revision first."
                            % (self.ns, params.name, checksum, self.state.last_applied_spec))
        primary_deployment = primary_name(params.target_name)
        primary = self.store.get(DEPLOYMENTS, "Deployment", primary_deployment)
        if primary is None:
            raise self.fail("Primary Deployment %s/%s is missing: run playbooks/canary.yml (canary_step action=initialize) to recreate it"
                            % (self.ns, primary_deployment))
        problem = ownership_problem(primary, "Deployment", self.ns, params.name)
        if problem:
            raise self.fail(problem)
        now = self.clock()
        if self.state.phase != st.PROMOTING:
            message = "Copying %s.%s template spec to %s.%s" % (params.target_name, self.ns, primary_deployment, self.ns)
            backup = (primary.get("spec") or {}).get("template")
            configs_before = self._save_primary_configs(found)
            self._update_state(self._transition("promote", st.PROMOTING, message, now,
                                                primary_template_before_promotion=backup,
                                                primary_configs_before_promotion=configs_before))
            self._event(message)
        self._sync_primary_configs(found, update_existing=True)
        self.store.ensure(DEPLOYMENTS, "Deployment", primary_deployment, lambda cur: self._promoted(cur, target, label, value, tracked))
        if params.autoscaler:
            hpa = self.store.get(HPAS, "HorizontalPodAutoscaler", params.autoscaler)
            if hpa is not None:
                desired_hpa = wl.primary_hpa(hpa, primary_deployment, self.ns, params.name)
                self.store.ensure(HPAS, "HorizontalPodAutoscaler", desired_hpa["metadata"]["name"],
                                  lambda cur: desired_hpa if cur is None else objects.spec_update(cur, desired_hpa))
        if self.check_mode:
            self.changelog.changes.append("wait for Deployment %s/%s to be ready" % (self.ns, primary_deployment))
            self.changelog.changes.append("phase %s" % rule.to)
            return
        readiness = self._wait_ready(primary_deployment, params.wait_seconds, "Primary Deployment",
                                     params.primary_ready_threshold)
        if not readiness.ready:
            message = ("Primary %s.%s is not ready after the promotion of revision %s: %s. Traffic stays on the canary; "
                       "fix the revision and run promote again, or roll back (the primary's previous template and "
                       "ConfigMap/Secret data are restored)." % (primary_deployment, self.ns, checksum, readiness.message))

            def note(state: st.CanaryState) -> bool:
                state.message = message
                state.reason = "primary not ready"
                return True
            self._update_state(note)
            self._event(message, warning=True)
            raise self.fail(message)
        message = "Routing all traffic to primary: %s.%s runs revision %s" % (primary_deployment, self.ns, checksum)
        self._update_state(self._transition("promote", rule.to or st.FINALISING, message, self.clock(),
                                            last_promoted_spec=checksum))
        self._event(message)
        self.message = message

    def _save_primary_configs(self, found: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """Keep the ``-primary`` configs' data as it is before a promotion overwrites it, for a rollback.

        ConfigMaps go into the state; Secrets into a Secret of our own, so their data never lands in a
        ConfigMap, a result or a diff.
        """
        configmaps: dict[str, dict[str, Any]] = {}
        secrets: dict[str, dict[str, Any]] = {}
        for key in sorted(found):
            kind = "ConfigMap" if key.startswith("configmap/") else "Secret"
            name = primary_name(key.split("/", 1)[1])
            current = self.store.get(CONFIGMAPS if kind == "ConfigMap" else SECRETS, kind, name)
            # A copy that does not exist yet is read only by the new revision: there is nothing to put back.
            if current is None or ownership_problem(current, kind, self.ns, self.params.name):
                continue
            (configmaps if kind == "ConfigMap" else secrets)[name] = wl.config_content(current)
        if secrets:
            backup_name = previous_secrets_name(self.params.name)
            desired = wl.config_backup_secret(backup_name, secrets, self.ns, self.params.name)
            self.store.ensure(SECRETS, "Secret", backup_name, lambda cur: desired if cur is None else wl.with_config_content(
                cur, wl.config_content(desired)))
        if not configmaps and not secrets:
            return None
        return {"configMaps": configmaps, "secrets": sorted(secrets)}

    def _promoted(self, current: dict[str, Any] | None, target: dict[str, Any], label: str, value: str,
                  tracked: wl.ConfigRefs) -> dict[str, Any] | None:
        if current is None:
            raise self.fail("Primary Deployment %s/%s disappeared during the promotion: run playbooks/canary.yml (canary_step action=initialize) to recreate it"
                            % (self.ns, primary_name(self.params.target_name)))
        running = (((current.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
        # The API server fills in defaults, so comparing specs would always differ; the
        # revision annotation says exactly which revision the template carries.
        if running.get(wl.REVISION_ANNOTATION) == self.checksum:
            return None
        return wl.promoted_primary(current, target, label, value, tracked, self.checksum or "")


class Finalize(CanaryAction):
    """After all traffic is on the primary: scale the canary to 0, forget the saved Secrets."""

    def apply(self, rule: st.Rule) -> None:
        params = self.params
        self._read_target()
        self.store.scale(params.target_name, 0)
        self._forget_previous_secrets(self.state.primary_configs_before_promotion)
        message = "Promotion completed! Scaling down %s.%s" % (params.target_name, self.ns)
        self._update_state(self._transition("finalize", rule.to or st.SUCCEEDED, message, self.clock(), canary_weight=0,
                                            failed_checks=0, primary_template_before_promotion=None,
                                            primary_configs_before_promotion=None))
        self._event(message)
        self.message = message
