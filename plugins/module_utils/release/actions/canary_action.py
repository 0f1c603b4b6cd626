# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every canary action shares: the state, the lock, events, the target and its configs, the result.

Each action is a subclass in a file of its own (``initialize.py``, ``start.py``, ...) that implements
:meth:`CanaryAction.apply`; ``manager.py`` picks the class for ``params.action``. Decisions live in
``workload``, ``state``, ``lease`` and ``istio_objects``; how an object is read and written (ownership,
conflicts, check mode) lives in ``kube/store.py``.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.alerts.delivery import send as send_alerts
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    mark,
    ownership_problem,
)
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import (
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    SECRETS,
    CanaryFailure,
    CanaryStore,
    ChangeLog,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import LeaseLock, LeaseView, LockHeld
from ansible_collections.progressive.delivery.plugins.module_utils.release.release_metrics import push_release_metrics
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import (
    previous_secrets_name,
    state_name,
)
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.progressive.delivery.plugins.module_utils.release.manager import CanaryParams

EVENT_SOURCE = "progressive.delivery"


class CanaryAction:  # pylint: disable=too-many-instance-attributes
    """One action on one canary: read, validate and plan everything, then write."""

    def __init__(self, client: Any, params: CanaryParams, check_mode: bool = False,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.changelog = ChangeLog()
        self.ns = params.namespace
        self.store = CanaryStore(client, self.ns, params.name, self.changelog, check_mode, self.fail)
        self.lock = LeaseLock(client, self.ns, params.name, params.run_id, params.holder, params.lease_ttl, clock)
        self.lease: dict[str, Any] | None = None
        self.state = st.CanaryState()
        self.state_cm: dict[str, Any] | None = None
        self.target: dict[str, Any] | None = None
        self.checksum: str | None = None
        self.tracked_configs: dict[str, str] = {}
        self.revision: str | None = None
        self.restarted = False
        self.initialized = False
        self.message = ""
        # The state as read at the start, for the result of an action that fails before writing anything.
        self.loaded_state: st.CanaryState | None = None

    def fail(self, message: str) -> CanaryFailure:
        if self.changelog.writes == 0 and self.loaded_state is not None:
            # Nothing was written: the result reports the canary as it is stored, not the phase the action was
            # moving it to.
            self.state = self.loaded_state
        return CanaryFailure(message, self._result())

    def run(self) -> dict[str, Any]:
        """Load the state, hold the lock as the action needs, apply the action where its phase allows it."""
        self._load_state()
        self.hold_lock()
        rule = st.transition(self.params.action, self.state.phase)
        if rule.kind == "refuse":
            raise self.fail("Cannot %s canary %s/%s: %s." % (self.params.action, self.ns, self.params.name, rule.reason))
        if rule.kind == "noop":
            self.message = rule.reason
        else:
            self.apply(rule)
        return self._result()

    def hold_lock(self) -> None:
        """Renew this run's lease, refusing to go on while another live run holds it; only read it to read."""
        if self.params.action in st.READ_ONLY_ACTIONS:
            self._read_lock()
        else:
            self._renew_lock()

    def apply(self, rule: st.Rule) -> None:
        """The action itself, in a phase the transition table allows it (``rule.to`` is the phase it ends in)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ waiting

    def _wait_ready(self, name: str, seconds: float, what: str, threshold: int = 100) -> wl.Readiness:
        """Poll a Deployment until its rollout completes, fails its progress deadline, or ``seconds`` pass.

        ``threshold`` is the percent of updated replicas that must be available (primary/canaryReadyThreshold).
        """
        deadline = self.clock() + seconds
        last_renew = self.clock()
        while True:
            deployment = self.store.get(DEPLOYMENTS, "Deployment", name)
            if deployment is None:
                return wl.Readiness(False, True, "Deployment %s/%s does not exist" % (self.ns, name))
            readiness = wl.evaluate_readiness(deployment, threshold)
            if readiness.ready or readiness.failed:
                return readiness
            now = self.clock()
            if now >= deadline:
                return wl.Readiness(False, True, "%s %s/%s did not become ready within %ss: %s"
                                    % (what, self.ns, name, int(seconds), readiness.message))
            # Waits can outlast the lease TTL; the run is alive, so it keeps the lock.
            if now - last_renew > self.params.lease_ttl / 3.0:
                self._renew_lock()
                last_renew = now
            self.sleep(min(self.params.poll_interval, max(0.0, deadline - now)))

    # ------------------------------------------------------------------ lock

    def _renew_lock(self) -> None:
        try:
            with self.store.api("renew", "Lease", self.lock.name):
                self.lease = self.lock.renew_if_held(self.check_mode)
        except LockHeld as exc:
            raise self.fail(str(exc)) from None

    def _read_lock(self) -> None:
        with self.store.api("get", "Lease", self.lock.name):
            self.lease = self.lock.read()

    def _lock_free_for_us(self) -> bool:
        view = LeaseView.of(self.lease)
        return view.run_id == self.params.run_id or view.is_free(self.clock())

    # ------------------------------------------------------------------ state

    def _load_state(self) -> None:
        name = state_name(self.params.name)
        self.state_cm = self.store.get(CONFIGMAPS, "ConfigMap", name)
        problem = ownership_problem(self.state_cm, "ConfigMap", self.ns, self.params.name)
        if problem:
            raise self.fail(problem)
        text = ((self.state_cm or {}).get("data") or {}).get(st.STATE_KEY)
        try:
            self.state = st.parse_state(text, "ConfigMap %s/%s" % (self.ns, name))
        except ValueError as exc:
            raise self.fail(str(exc)) from None
        self.loaded_state = copy.deepcopy(self.state)

    def _update_state(self, mutate: Callable[[st.CanaryState], bool]) -> None:
        """Apply ``mutate`` to the freshest stored state and write it with its resourceVersion.

        Every write of the state goes through here, so this is where the release's metrics are pushed and its alerts
        sent.
        """
        name = state_name(self.params.name)
        written: list[bool] = []
        phases_before: list[str] = []

        def compute(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            where = "ConfigMap %s/%s" % (self.ns, name)
            try:
                current = st.parse_state(((existing or {}).get("data") or {}).get(st.STATE_KEY), where)
            except ValueError as exc:
                raise self.fail(str(exc)) from None
            candidate = current.copy()
            # The phase before this write: a change of phase is what an alert announces.
            phases_before.append(current.phase)
            if not mutate(candidate):
                self.state = current
                return None
            candidate.run_id = self.params.run_id
            candidate.last_update_time = format_rfc3339(self.clock())
            self.state = candidate
            body = copy.deepcopy(existing) if existing else {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": self.ns}}
            body = mark(body, self.ns, self.params.name)
            body["data"] = dict(body.get("data") or {})
            body["data"][st.STATE_KEY] = st.dump_state(candidate)
            # Readable with plain kubectl (custom-columns, jsonpath) and selectable by label: docs/status.md.
            body["data"].update(st.summary_data(candidate))
            body["metadata"]["labels"] = dict(body["metadata"].get("labels") or {}, **{st.KIND_LABEL: st.STATE_KIND})
            written.append(True)
            return body

        self.state_cm = self.store.ensure(CONFIGMAPS, "ConfigMap", name, compute)
        if written and not self.check_mode:
            self._push_metrics()
            self._send_alerts(phases_before[-1] if phases_before else "")

    def _push_metrics(self) -> None:
        """Flagger's flagger_canary_* series of the state just written; a failed push is a warning, never a failure."""
        warning = push_release_metrics(self.params.pushgateway, self.state, self.ns,
                                       self.state.target or self.params.target_name, self.clock())
        if warning:
            self.changelog.warnings.append(warning)

    def _send_alerts(self, before: str) -> None:
        """The Canary's alerts for the phase just written (docs/alerts.md); a failed delivery is a warning only."""
        self.changelog.warnings.extend(send_alerts(self.params.alerts, self.client, self.params.name, self.ns, before,
                                                   self.state, self.clock))

    def _event(self, message: str, warning: bool = False, reason: str = "Synced") -> None:
        """A core/v1 Event on the target, so ``kubectl describe`` tells the release's story."""
        self.changelog.changes.append("event on Deployment %s/%s: %s" % (self.ns, self.params.target_name, message))
        if self.check_mode:
            return
        target = self.target or {}
        now = format_rfc3339(self.clock())
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "%s.%x" % (self.params.target_name, time.time_ns()), "namespace": self.ns},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.params.target_name,
                               "namespace": self.ns, "uid": (target.get("metadata") or {}).get("uid")},
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": EVENT_SOURCE},
            "reportingComponent": EVENT_SOURCE,
            "firstTimestamp": now[:19] + "Z",
            "lastTimestamp": now[:19] + "Z",
            "count": 1,
        }
        try:
            self.client.create(EVENTS[0], EVENTS[1], event, self.ns)
        except KubeApiError as exc:
            # The release itself succeeded; a missing event must not undo it.
            self.changelog.warnings.append(exc.explain("create", "Event", None, self.ns))

    def _transition(self, action: str, to_phase: str, message: str, now: float, **changes: Any) -> Callable[[st.CanaryState], bool]:
        def mutate(state: st.CanaryState) -> bool:
            for key, value in changes.items():
                setattr(state, key, copy.deepcopy(value))
            state.set_phase(to_phase, now, message=message, reason=changes.get("reason", state.reason if to_phase == st.FAILED else ""))
            state.run_id = self.params.run_id
            state.history = st.append_history(state.history, st.transition_entry(action, state, now, message),
                                              self.params.history_limit)
            return True
        return mutate

    # ------------------------------------------------------------------ target and configs

    def _read_target(self) -> dict[str, Any]:
        params = self.params
        if params.target_kind != "Deployment":
            raise self.fail("Canary %s/%s targets a %s, but only Deployments are supported: point target at a "
                            "Deployment" % (self.ns, params.name, params.target_kind))
        target = self.store.get(DEPLOYMENTS, "Deployment", params.target_name)
        if target is None:
            raise self.fail("Deployment %s/%s (the target of canary %s) was not found: create it first, or set "
                            "'target' to the Deployment's name" % (self.ns, params.target_name, params.name))
        if ((target.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE:
            raise self.fail("Deployment %s/%s was generated by progressive.delivery (a primary copy) and cannot be "
                            "a canary target: target the original Deployment" % (self.ns, params.target_name))
        self.target = target
        return target

    def _read_configs(self, pod_spec: dict[str, Any]) -> tuple[wl.ConfigRefs, dict[str, dict[str, Any]]]:
        """The ConfigMaps and Secrets the pod reads that exist and are tracked, by ``kind/name``."""
        refs = wl.collect_config_refs(pod_spec)
        tracked = wl.ConfigRefs()
        found: dict[str, dict[str, Any]] = {}
        for kind, api, names, kept in (("ConfigMap", CONFIGMAPS, refs.configmaps, tracked.configmaps),
                                       ("Secret", SECRETS, refs.secrets, tracked.secrets)):
            for name in sorted(names):
                obj = self.store.get(api, kind, name)
                if obj is None:
                    self.changelog.warnings.append("%s %s/%s referenced by the target does not exist; it is not tracked"
                                                   % (kind, self.ns, name))
                    continue
                if kind == "Secret" and not wl.is_tracked_secret(obj):
                    continue
                kept.add(name)
                found[kind.lower() + "/" + name] = obj
        return tracked, found

    def _target_revision(self) -> tuple[dict[str, Any], str, str, wl.ConfigRefs, dict[str, dict[str, Any]]]:
        target = self._read_target()
        try:
            label, value = wl.selector_label(target)
        except wl.WorkloadError as exc:
            raise self.fail(str(exc)) from None
        template = (target.get("spec") or {}).get("template") or {}
        template_labels = (template.get("metadata") or {}).get("labels") or {}
        if template_labels.get(label) != value:
            raise self.fail("Deployment %s/%s selects pods by %s=%s but its pod template labels have %s=%s: make them "
                            "match" % (self.ns, self.params.target_name, label, value, label, template_labels.get(label)))
        tracked, found = self._read_configs(template.get("spec") or {})
        configmaps = [obj for key, obj in found.items() if key.startswith("configmap/")]
        secrets = [obj for key, obj in found.items() if key.startswith("secret/")]
        self.tracked_configs = wl.config_checksums(configmaps, secrets)
        self.checksum = wl.revision_checksum(template, self.tracked_configs)
        return target, label, value, tracked, found

    def _sync_primary_configs(self, found: dict[str, dict[str, Any]], update_existing: bool) -> None:
        for key in sorted(found):
            obj = found[key]
            kind = "ConfigMap" if key.startswith("configmap/") else "Secret"
            api = CONFIGMAPS if kind == "ConfigMap" else SECRETS
            desired = wl.primary_config_copy(obj, kind, self.ns, self.params.name)

            def compute(existing: dict[str, Any] | None, desired: dict[str, Any] = desired) -> dict[str, Any] | None:
                if existing is None:
                    return desired
                if not update_existing:
                    return None
                return wl.with_config_content(existing, wl.config_content(desired))

            self.store.ensure(api, kind, desired["metadata"]["name"], compute)

    def _forget_previous_secrets(self, saved: dict[str, Any] | None) -> None:
        """Empty the saved Secrets once the release is over: no copy of secret data outlives its use.

        Emptied rather than deleted, so the canary needs no ``delete`` permission on Secrets.
        """
        if not (saved or {}).get("secrets"):
            return
        self.store.ensure(SECRETS, "Secret", previous_secrets_name(self.params.name),
                          lambda cur: None if cur is None else wl.with_config_content(cur, {}))

    # ------------------------------------------------------------------ result

    def _result(self) -> dict[str, Any]:
        state = self.state
        lock = LeaseView.of(self.lease).describe(self.clock())
        lock["ours"] = LeaseView.of(self.lease).run_id == self.params.run_id and bool(lock["held"])
        result: dict[str, Any] = {
            "changed": self.changelog.writes > 0,
            "phase": state.phase,
            "state": state.to_dict(),
            "canary_weight": state.canary_weight,
            "failed_checks": state.failed_checks,
            "iterations": state.iterations,
            "checksum": self.checksum or state.last_applied_spec,
            "tracked_configs": self.tracked_configs or state.tracked_configs,
            "lock": lock,
            "resume": st.resume_plan(state, self.params.run_id, self._lock_free_for_us(), self.params.on_resume,
                                     self.checksum),
            "run_id": self.params.run_id,
            "actions": list(self.changelog.changes),
            "message": self.message,
            "warnings_list": list(self.changelog.warnings),
            "diff": {"before": self.changelog.before, "after": self.changelog.after},
        }
        if self.revision:
            result["revision"] = self.revision
        if self.params.action == "start":
            result["restarted"] = self.restarted
        if self.params.action == "initialize":
            result["initialized"] = self.initialized
        return result
