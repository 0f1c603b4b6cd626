# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One canary action against the cluster: read, validate and plan everything, then write.

Decisions live in ``workload``, ``state``, ``lease`` and ``canary_objects``; how an
object is read and written (ownership, conflicts, check mode) lives in ``canary_store``.
This file only sequences the reads and writes of each action.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_api
from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_objects as objects
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import (
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    HPAS,
    SECRETS,
    SERVICES,
    CanaryFailure,
    CanaryStore,
    Plan,
)
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import LeaseLock, LeaseView, LockHeld
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import (
    previous_secrets_name,
    primary_name,
    service_names,
    state_name,
)
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    mark,
    ownership_problem,
)

EVENT_SOURCE = "progressive.delivery"


@dataclass
class CanaryParams:  # pylint: disable=too-many-instance-attributes
    action: str
    name: str
    namespace: str
    run_id: str
    holder: str
    target: str | None = None
    target_kind: str = "Deployment"
    service: dict[str, Any] | None = None
    virtual_service: dict[str, Any] | None = None
    autoscaler: str | None = None
    progress_deadline_seconds: int = 600
    lease_ttl: int = 120
    analysis: dict[str, Any] | None = None
    phase: str | None = None
    reason: str | None = None
    on_resume: str = "resume"
    wait_timeout: int | None = None
    history_limit: int = st.HISTORY_LIMIT
    image: str | None = None
    container: str | None = None
    pod_annotations: dict[str, str] | None = None
    poll_interval: float = 0.5

    @property
    def target_name(self) -> str:
        return self.target or self.name

    @property
    def wait_seconds(self) -> int:
        return self.wait_timeout if self.wait_timeout is not None else self.progress_deadline_seconds


class CanaryManager:  # pylint: disable=too-many-public-methods
    def __init__(self, client: Any, params: CanaryParams, check_mode: bool = False,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.clock = clock
        self.sleep = sleep
        self.plan = Plan()
        self.ns = params.namespace
        self.store = CanaryStore(client, self.ns, params.name, self.plan, check_mode, self.fail)
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

    def fail(self, message: str) -> CanaryFailure:
        return CanaryFailure(message, self._result())

    # ------------------------------------------------------------------ waiting

    def _wait_ready(self, name: str, seconds: float, what: str) -> wl.Readiness:
        """Poll a Deployment until its rollout completes, fails its progress deadline, or ``seconds`` pass."""
        deadline = self.clock() + seconds
        last_renew = self.clock()
        while True:
            deployment = self.store.get(DEPLOYMENTS, "Deployment", name)
            if deployment is None:
                return wl.Readiness(False, True, "Deployment %s/%s does not exist" % (self.ns, name))
            readiness = wl.evaluate_readiness(deployment)
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

    def _update_state(self, mutate: Callable[[st.CanaryState], bool]) -> None:
        """Apply ``mutate`` to the freshest stored state and write it with its resourceVersion."""
        name = state_name(self.params.name)

        def compute(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            where = "ConfigMap %s/%s" % (self.ns, name)
            try:
                current = st.parse_state(((existing or {}).get("data") or {}).get(st.STATE_KEY), where)
            except ValueError as exc:
                raise self.fail(str(exc)) from None
            candidate = current.copy()
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
            return body

        self.state_cm = self.store.ensure(CONFIGMAPS, "ConfigMap", name, compute)

    def _event(self, message: str, warning: bool = False, reason: str = "Synced") -> None:
        """A core/v1 Event on the target, so ``kubectl describe`` tells the release's story."""
        self.plan.changes.append("event on Deployment %s/%s: %s" % (self.ns, self.params.target_name, message))
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
            self.plan.warnings.append(exc.explain("create", "Event", None, self.ns))

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
        for name in sorted(refs.configmaps):
            configmap = self.store.get(CONFIGMAPS, "ConfigMap", name)
            if configmap is None:
                self.plan.warnings.append("ConfigMap %s/%s referenced by the target does not exist; it is not tracked"
                                          % (self.ns, name))
                continue
            tracked.configmaps.add(name)
            found["configmap/" + name] = configmap
        for name in sorted(refs.secrets):
            secret = self.store.get(SECRETS, "Secret", name)
            if secret is None:
                self.plan.warnings.append("Secret %s/%s referenced by the target does not exist; it is not tracked"
                                          % (self.ns, name))
                continue
            if not wl.is_tracked_secret(secret):
                continue
            tracked.secrets.add(name)
            found["secret/" + name] = secret
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

    def _forget_previous_secrets(self, saved: dict[str, Any] | None) -> None:
        """Empty the saved Secrets once the release is over: no copy of secret data outlives its use.

        Emptied rather than deleted, so the canary needs no ``delete`` permission on Secrets.
        """
        if not (saved or {}).get("secrets"):
            return
        self.store.ensure(SECRETS, "Secret", previous_secrets_name(self.params.name),
                          lambda cur: None if cur is None else wl.with_config_content(cur, {}))

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
                self.plan.warnings.append(
                    "Secret %s/%s keeps the promoted revision's data: its previous data was not found in Secret %s/%s%s. "
                    "Put the previous data back by hand." % (self.ns, name, self.ns, backup_name, " (%s)" % problem if problem else ""))
                continue
            self.store.ensure(SECRETS, "Secret", name,
                              lambda cur, content=contents[name]: None if cur is None else wl.with_config_content(cur, content))

    # ------------------------------------------------------------------ actions

    def run(self) -> dict[str, Any]:
        action = self.params.action
        handler = getattr(self, "do_" + action, None)
        if handler is None:
            raise CanaryFailure("unknown action %r" % action)
        self._load_state()
        if action == "lock":
            self._acquire_lock()
        elif action == "unlock":
            self._release_lock()
        elif action in st.READ_ONLY_ACTIONS:
            self._read_lock()
        else:
            self._renew_lock()
        if action not in ("lock", "unlock"):
            rule = st.transition(action, self.state.phase)
            if rule.kind == "refuse":
                raise self.fail("Cannot %s canary %s/%s: %s." % (action, self.ns, self.params.name, rule.reason))
            if rule.kind == "noop":
                self.message = rule.reason
                return self._result()
            handler(rule)
        return self._result()

    def _acquire_lock(self) -> None:
        try:
            with self.store.api("acquire", "Lease", self.lock.name):
                decision, self.lease = self.lock.acquire(self.check_mode)
        except LockHeld as exc:
            raise self.fail(str(exc)) from None
        if decision != "renew":
            verb = decision.replace("_", " ")
            self.plan.add("%s Lease %s/%s for %s" % (verb, self.ns, self.lock.name, self.params.holder))
        self.message = {"acquire": "lock acquired", "renew": "lock renewed",
                        "take_over": "lock taken over from a run that stopped renewing it"}[decision]

    def _release_lock(self) -> None:
        with self.store.api("release", "Lease", self.lock.name):
            changed, self.lease = self.lock.release(self.check_mode)
        if changed:
            self.plan.add("release Lease %s/%s" % (self.ns, self.lock.name))
            self.message = "lock released"
        else:
            self.message = "this run did not hold the lock; nothing to release"
            other = LeaseView.of(self.lease)
            if other.run_id and other.run_id != self.params.run_id:
                self.plan.warnings.append(
                    "Lease %s/%s is held by another run: %s (run id %s)%s; this run (%s) left it alone" % (
                        self.ns, self.lock.name, other.holder or "unknown holder", other.run_id,
                        ", which stopped renewing it" if other.is_free(self.clock()) else "", self.params.run_id))

    def do_lock(self, _rule: st.Rule) -> None:
        """Handled in run(); the handler exists so the action is known."""

    do_unlock = do_lock

    def do_status(self, _rule: st.Rule) -> None:
        self.message = self.state.message or "phase %s" % (self.state.phase or "not initialized")

    def do_detect(self, _rule: st.Rule) -> None:
        self._target_revision()
        self.revision, self.message = st.revision_status(self.state, self.checksum or "")

    def do_initialize(self, rule: st.Rule) -> None:  # pylint: disable=too-many-locals,too-many-statements
        params = self.params
        first_time = self.state.phase in (st.NONE, st.INITIALIZING)
        target, label, value, tracked, found = self._target_revision()
        try:
            spec = objects.ServiceSpec.from_option(params.service, params.target_name)
        except objects.ServiceSpecError as exc:
            raise self.fail("Canary %s/%s: %s" % (self.ns, params.name, exc)) from None
        apex, primary_svc, canary_svc = service_names(spec.name)
        with self.store.api("discover", "API group", istio_api.ISTIO_GROUP):
            istio_version = istio_api.pick_istio_version(self.client.served_versions(istio_api.ISTIO_GROUP))
        if istio_version is None:
            raise self.fail("The cluster does not serve the Istio networking API (%s, versions %s): install Istio "
                            "before initializing canary %s/%s" % (istio_api.ISTIO_GROUP, ", ".join(istio_api.ISTIO_VERSIONS),
                                                                  self.ns, params.name))
        istio = (istio_api.group_version(istio_version), istio_api.DESTINATION_RULE_PLURAL)
        vs_api = (istio_api.group_version(istio_version), istio_api.VIRTUAL_SERVICE_PLURAL)
        primary_deployment = primary_name(params.target_name)

        # Everything is read and judged before the first write, so bad input leaves nothing behind.
        existing = {
            ("Deployment", primary_deployment): self.store.get(DEPLOYMENTS, "Deployment", primary_deployment),
            ("Service", apex): self.store.get(SERVICES, "Service", apex),
            ("Service", primary_svc): self.store.get(SERVICES, "Service", primary_svc),
            ("Service", canary_svc): self.store.get(SERVICES, "Service", canary_svc),
            ("DestinationRule", primary_svc): self.store.get(istio, "DestinationRule", primary_svc),
            ("DestinationRule", canary_svc): self.store.get(istio, "DestinationRule", canary_svc),
        }
        for key in sorted(found):
            kind = "ConfigMap" if key.startswith("configmap/") else "Secret"
            name = primary_name(key.split("/", 1)[1])
            existing[(kind, name)] = self.store.get(CONFIGMAPS if kind == "ConfigMap" else SECRETS, kind, name)
        adopt = (params.virtual_service or {}).get("adopt")
        route_name = (params.virtual_service or {}).get("route")
        vs_record: dict[str, Any]
        if adopt:
            if not route_name:
                raise self.fail("virtual_service.adopt=%s needs virtual_service.route: the name of the HTTP route whose "
                                "destinations the canary drives" % adopt)
            adopted = self.store.get(vs_api, "VirtualService", adopt)
            if adopted is None:
                raise self.fail("VirtualService %s/%s to adopt was not found: create it first, or drop "
                                "virtual_service.adopt to let the canary generate %s" % (self.ns, adopt, apex))
            if objects.find_route(adopted, route_name) is None:
                names = objects.route_names(adopted)
                raise self.fail("VirtualService %s/%s has no HTTP route named '%s' (routes: %s): name the route in "
                                "spec.http[].name or set virtual_service.route to one of them"
                                % (self.ns, adopt, route_name, ", ".join(names) if names else "none named"))
            vs_record = {"name": adopt, "route": route_name, "adopted": True, "apiVersion": vs_api[0]}
        else:
            existing[("VirtualService", apex)] = self.store.get(vs_api, "VirtualService", apex)
            vs_record = {"name": apex, "route": None, "adopted": False, "apiVersion": vs_api[0]}
        hpa = None
        if params.autoscaler:
            hpa = self.store.get(HPAS, "HorizontalPodAutoscaler", params.autoscaler)
            if hpa is None:
                raise self.fail("HorizontalPodAutoscaler %s/%s (autoscaler) was not found: create it or drop the "
                                "autoscaler option" % (self.ns, params.autoscaler))
            existing[("HorizontalPodAutoscaler", primary_name(params.autoscaler))] = self.store.get(
                HPAS, "HorizontalPodAutoscaler", primary_name(params.autoscaler))
        problems = [p for p in (ownership_problem(obj, kind, self.ns, params.name)
                                for (kind, _name), obj in sorted(existing.items(), key=lambda i: i[0])) if p]
        if problems:
            raise self.fail("Cannot initialize canary %s/%s, nothing was changed: %s" % (self.ns, params.name, "; ".join(problems)))

        now = self.clock()
        desired_primary = wl.build_primary(target, self.ns, params.name, label, value, tracked, self.checksum or "")
        extra_ports = {}
        if spec.port_discovery:
            extra_ports = objects.discovered_ports(((target["spec"].get("template") or {}).get("spec") or {}).get("containers") or [], spec)
        settings = {"target": params.target_name, "service": spec.name, "virtual_service": vs_record}

        if first_time:
            def begin(state: st.CanaryState) -> bool:
                if state.phase == st.INITIALIZING and all(getattr(state, k) == v for k, v in settings.items()):
                    return False
                for key, val in settings.items():
                    setattr(state, key, copy.deepcopy(val))
                state.set_phase(st.INITIALIZING, now, message="Initializing canary %s.%s" % (params.name, self.ns))
                return True
            self._update_state(begin)

        self._sync_primary_configs(found, update_existing=False)
        primary = self.store.ensure(DEPLOYMENTS, "Deployment", primary_deployment, lambda cur: desired_primary if cur is None else None)
        if hpa is not None:
            desired_hpa = wl.primary_hpa(hpa, primary_deployment, self.ns, params.name)
            self.store.ensure(HPAS, "HorizontalPodAutoscaler", desired_hpa["metadata"]["name"],
                              lambda cur: desired_hpa if cur is None else None)
        for name, selector in ((canary_svc, value), (primary_svc, primary_name(value))):
            desired_svc = objects.build_service(name, self.ns, params.name, label, selector, spec, extra_ports)
            self.store.ensure(SERVICES, "Service", name,
                              lambda cur, d=desired_svc: d if cur is None else objects.service_update(cur, d))
        for name in (primary_svc, canary_svc):
            desired_rule = objects.build_destination_rule(name, self.ns, params.name, istio_version, spec.traffic_policy)
            self.store.ensure(istio, "DestinationRule", name,
                              lambda cur, d=desired_rule: d if cur is None else objects.spec_update(cur, d))

        if first_time and not self.check_mode:
            readiness = self._wait_ready(primary_deployment, params.wait_seconds, "Primary Deployment")
            if not readiness.ready:
                message = ("Primary Deployment %s/%s is not ready, so traffic was not moved to it and %s/%s keeps its "
                           "replicas: %s. Fix the workload and run initialize again." % (
                               self.ns, primary_deployment, self.ns, params.target_name, readiness.message))
                self._event(message, warning=True)
                raise self.fail(message)
        elif first_time:
            self.plan.changes.append("wait for Deployment %s/%s to be ready" % (self.ns, primary_deployment))

        desired_apex = objects.build_service(apex, self.ns, params.name, label, primary_name(value), spec, extra_ports)
        self.store.ensure(SERVICES, "Service", apex, lambda cur: desired_apex if cur is None else objects.service_update(cur, desired_apex))
        if not adopt:
            desired_vs = objects.build_virtual_service(self.ns, params.name, istio_version, spec)
            self.store.ensure(vs_api, "VirtualService", apex,
                              lambda cur: desired_vs if cur is None else objects.virtual_service_update(cur, desired_vs))

        if first_time:
            self.store.scale(params.target_name, 0)
            promoted = (((primary or {}).get("spec") or {}).get("template") or {}).get("metadata", {}).get(
                "annotations", {}).get(wl.REVISION_ANNOTATION, self.checksum)
            message = "Initialization done! %s.%s" % (params.name, self.ns)

            def done(state: st.CanaryState) -> bool:
                for key, val in settings.items():
                    setattr(state, key, copy.deepcopy(val))
                state.last_promoted_spec = promoted
                state.last_applied_spec = promoted
                state.tracked_configs = dict(self.tracked_configs)
                state.canary_weight = 0
                state.set_phase(rule.to or st.INITIALIZED, now, message=message)
                state.history = st.append_history(state.history, st.transition_entry("initialize", state, now, message),
                                                  params.history_limit)
                return True
            self._update_state(done)
            self._event(message)
            self.initialized = True
        else:
            def settle(state: st.CanaryState) -> bool:
                if all(getattr(state, k) == v for k, v in settings.items()):
                    return False
                for key, val in settings.items():
                    setattr(state, key, copy.deepcopy(val))
                return True
            self._update_state(settle)
        self.message = self.state.message

    def do_start(self, _rule: st.Rule) -> None:  # pylint: disable=too-many-locals
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
            self.plan.changes.append("wait for Deployment %s/%s to be ready" % (self.ns, params.target_name))
            return
        if params.wait_timeout == 0:
            self.message = "Deployment %s/%s scaled up; not waiting for it (wait_timeout=0)" % (self.ns, params.target_name)
            return
        readiness = self._wait_ready(params.target_name, params.wait_seconds, "Canary Deployment")
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

    def do_record(self, _rule: st.Rule) -> None:
        params = self.params
        analysis = dict(params.analysis or {})
        if params.phase and not analysis.get("phase"):
            analysis["phase"] = params.phase
        if not analysis:
            raise self.fail("action=record needs 'analysis' (weight, metrics, webhooks, failed_checks, phase, iteration)")
        before = self.state.copy()
        now = self.clock()
        self._read_target()

        def mutate(state: st.CanaryState) -> bool:
            state.run_id = params.run_id
            return st.apply_record(state, analysis, now, params.history_limit)

        try:
            self._update_state(mutate)
        except ValueError as exc:
            raise self.fail("Cannot record the analysis of canary %s/%s: %s" % (self.ns, params.name, exc)) from None
        after = self.state
        if after.iterations == before.iterations and after.history == before.history:
            self.message = "iteration %s was already recorded" % after.iterations
            return
        if after.failed_checks > before.failed_checks:
            failed = [m.get("name") for m in analysis.get("metrics") or [] if m.get("result") in ("fail", "failed", False)]
            failed += [w.get("name") for w in analysis.get("webhooks") or [] if w.get("result") in ("fail", "failed", False)]
            self._event("Halt %s.%s advancement: %s (failed checks %s)" % (
                params.target_name, self.ns, analysis.get("message") or ", ".join(str(f) for f in failed if f) or
                "a check failed", after.failed_checks), warning=True)
        if after.canary_weight != before.canary_weight:
            self._event("Advance %s.%s canary weight %s" % (params.target_name, self.ns, after.canary_weight))
        if after.phase != before.phase:
            self._event("Canary %s.%s is %s" % (params.target_name, self.ns, after.phase))
        self.message = "recorded iteration %s at weight %s" % (after.iterations, after.canary_weight)

    def do_promote(self, rule: st.Rule) -> None:  # pylint: disable=too-many-locals
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
            self.plan.changes.append("wait for Deployment %s/%s to be ready" % (self.ns, primary_deployment))
            self.plan.changes.append("phase %s" % rule.to)
            return
        readiness = self._wait_ready(primary_deployment, params.wait_seconds, "Primary Deployment")
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

    def do_finalize(self, rule: st.Rule) -> None:
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

    def do_rollback(self, rule: st.Rule) -> None:
        params = self.params
        if params.phase and params.phase != st.FAILED:
            raise self.fail("action=rollback ends in phase Failed; phase=%s is not supported" % params.phase)
        self._read_target()
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
        self._update_state(self._transition("rollback", rule.to or st.FAILED, message, self.clock(), canary_weight=0, **extra,
                                            reason=reason, failed_spec=self.state.last_applied_spec,
                                            primary_template_before_promotion=None,
                                            primary_configs_before_promotion=None))
        self._event(message, warning=True)
        self.message = message

    def do_update_target(self, _rule: st.Rule) -> None:
        """Roll a new image or pod annotations into the target: the next detect sees a new revision."""
        params = self.params
        if not params.image and not params.pod_annotations:
            raise self.fail("action=update_target needs 'image' and/or 'pod_annotations'")
        self._read_target()

        def compute(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                raise self.fail("Deployment %s/%s disappeared: recreate it and re-run" % (self.ns, params.target_name))
            try:
                return wl.updated_target(current, params.image, params.container, params.pod_annotations)
            except wl.WorkloadError as exc:
                raise self.fail(str(exc)) from None

        # The target is the user's object: only its image and pod annotations are changed, nothing is marked.
        writes = self.plan.writes  # a write that the API refused and was redone is not counted twice
        written = self.store.ensure(DEPLOYMENTS, "Deployment", params.target_name, compute, owned=False)
        if self.plan.writes == writes:
            self.message = "Deployment %s/%s already runs this image and these annotations" % (self.ns, params.target_name)
        elif not self.check_mode:
            self.target = written
            self.message = "Deployment %s/%s updated" % (self.ns, params.target_name)

    def do_retry(self, rule: st.Rule) -> None:
        params = self.params
        self._read_target()
        message = "Retry armed for revision %s of %s.%s: the next run analyses it again" % (
            self.state.failed_spec, params.target_name, self.ns)
        self._update_state(self._transition("retry", rule.to or st.INITIALIZED, message, self.clock(), failed_spec=None,
                                            failed_checks=0, iterations=0, canary_weight=0, reason=""))
        self._event(message)
        self.message = message

    # ------------------------------------------------------------------ result

    def _result(self) -> dict[str, Any]:
        state = self.state
        lock = LeaseView.of(self.lease).describe(self.clock())
        lock["ours"] = LeaseView.of(self.lease).run_id == self.params.run_id and bool(lock["held"])
        result: dict[str, Any] = {
            "changed": self.plan.writes > 0,
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
            "actions": list(self.plan.changes),
            "message": self.message,
            "warnings_list": list(self.plan.warnings),
            "diff": {"before": self.plan.before, "after": self.plan.after},
        }
        if self.revision:
            result["revision"] = self.revision
        if self.params.action == "start":
            result["restarted"] = self.restarted
        if self.params.action == "initialize":
            result["initialized"] = self.initialized
        return result
