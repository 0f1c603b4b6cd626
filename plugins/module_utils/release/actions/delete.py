# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``delete``: Flagger's ``revertOnDeletion`` — give the service back to the target, then remove what the canary made.

There is no Canary object whose deletion could trigger this, so it is an action. The order keeps traffic on
ready pods at every moment: the target is scaled up and ready before the apex Service selects it and the routes
point at the apex host, and only then do the primary and the other generated objects go.
"""

from __future__ import annotations

from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.kube.access import (
    DELETE_ACCESS,
    DELETE_ROLE,
    access_message,
    checked_access,
)
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import resource_path
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import owner_of, ownership_problem
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import (
    CONFIGMAPS,
    DEPLOYMENTS,
    HPAS,
    SECRETS,
    SERVICES,
    owned_view,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import LEASE_API, LEASE_PLURAL
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import (
    PRIMARY_SUFFIX,
    lease_name,
    previous_secrets_name,
    primary_name,
    service_names,
    state_name,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing import gateway_objects as gateway
from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_api
from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_objects as objects

DELETE_ATTEMPTS = 3


class Delete(CanaryAction):
    """Restore the target as the service's workload and remove the canary's objects; a second call changes nothing."""

    def run(self) -> dict[str, Any]:
        # Any phase: a canary is taken down whatever its release was doing; the revision check below keeps
        # an unanalysed or failed revision from getting the traffic.
        self._check_delete_access()
        self._load_state()
        self.hold_lock()
        self.apply(st.Rule("apply"))
        return self._result()

    def _check_delete_access(self) -> None:
        missing, warning = checked_access(self.client, self.ns, DELETE_ACCESS)
        if warning:
            self.changelog.warnings.append(warning)
        if not missing:
            return
        message = access_message(missing, self.ns, DELETE_ROLE)
        if not self.check_mode:
            raise self.fail(message)
        self.changelog.warnings.append(message)

    def apply(self, rule: st.Rule) -> None:  # pylint: disable=too-many-locals
        params = self.params
        target, label, value, _tracked, _found = self._target_revision()
        service_name = (params.service or {}).get("name") or self.state.service or params.target_name
        apex, primary_svc, canary_svc = service_names(service_name)
        primary_deployment = primary_name(params.target_name)
        primary = self.store.get(DEPLOYMENTS, "Deployment", primary_deployment)
        apex_service = self.store.get(SERVICES, "Service", apex)

        # Everything is judged before the first write, so a refusal leaves the canary as it was.
        problems = [p for p in (ownership_problem(primary, "Deployment", self.ns, params.name),
                                ownership_problem(apex_service, "Service", self.ns, params.name)) if p]
        if problems:
            raise self.fail("Cannot delete canary %s/%s, nothing was changed: %s" % (self.ns, params.name, "; ".join(problems)))
        running = ((((primary or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
            "annotations", {}).get(wl.REVISION_ANNOTATION)
        if primary is not None and running and running != self.checksum:
            raise self.fail(
                "Cannot delete canary %s/%s, nothing was changed: the target %s runs revision %s but the primary %s, "
                "which serves the traffic now, runs %s (phase %s). Deleting would send all traffic to a revision that "
                "was not promoted. Promote it first (playbooks/promote.yml), or put the target back to the primary's "
                "revision, then delete." % (self.ns, params.name, params.target_name, self.checksum, primary_deployment,
                                            running, self.state.phase or "unknown"))
        desired_apex = self._desired_apex(apex_service, apex, label, value, target)
        gateway_api = ((self.state.route or {}).get("kind") or params.provider) in (gateway.HTTP_ROUTE_KIND, "gatewayapi")
        if gateway_api:
            route_api, route_object, route_name, adopted = self._http_route_ref(apex)
            route_kind = gateway.HTTP_ROUTE_KIND
        else:
            route_api, route_object, route_name, adopted = self._virtual_service_ref(apex)
            route_kind = "VirtualService"

        self._restore_target(target, primary)
        self.store.ensure(SERVICES, "Service", apex, lambda cur: desired_apex if cur is None else self._selecting(cur, label, value))
        if gateway_api:
            self._route_to_apex(route_api, route_kind, route_object, adopted,
                                lambda cur: gateway.http_route_to_apex(cur, apex, primary_svc, canary_svc, route_name))
        elif route_api is not None:
            self._route_to_apex(route_api, route_kind, route_object, adopted,
                                lambda cur: objects.routed_to_apex(cur, apex, primary_svc, canary_svc, route_name))

        if params.autoscaler:
            self._delete(HPAS, "HorizontalPodAutoscaler", primary_name(params.autoscaler))
        self._delete(DEPLOYMENTS, "Deployment", primary_deployment)
        for name in (primary_svc, canary_svc):
            self._delete(SERVICES, "Service", name)
        if not gateway_api and route_api is not None:
            rules = (route_api[0], istio_api.DESTINATION_RULE_PLURAL)
            for name in (primary_svc, canary_svc):
                self._delete(rules, "DestinationRule", name)
        for kind, api, name in self._primary_configs(primary):
            self._delete(api, kind, name)
        self._delete(SECRETS, "Secret", previous_secrets_name(params.name))
        self._delete(CONFIGMAPS, "ConfigMap", state_name(params.name))
        # Last: the lock kept other runs out until everything else was gone (hold_lock refused a live holder).
        self._delete((LEASE_API, LEASE_PLURAL), "Lease", lease_name(params.name))
        self.state = st.CanaryState()
        self.lease = None
        if self.changelog.writes:
            self.message = ("Canary %s.%s deleted: Service %s selects the pods of %s.%s again and the canary's "
                            "objects are removed" % (params.name, self.ns, apex, params.target_name, self.ns))
            self._event(self.message)
        else:
            self.message = "nothing to delete: canary %s.%s has no objects left" % (params.name, self.ns)

    # ------------------------------------------------------------------ steps

    def _desired_apex(self, existing: dict[str, Any] | None, apex: str, label: str, value: str,
                      target: dict[str, Any]) -> dict[str, Any] | None:
        """The apex Service to create when it is missing (built from ``service``), else None."""
        if existing is not None:
            return None
        if not self.params.service:
            raise self.fail("Cannot delete canary %s/%s, nothing was changed: Service %s/%s, which must select the "
                            "target's pods afterwards, does not exist and 'service' is not given to create it: pass "
                            "the canary's service settings (playbooks/delete.yml does)" % (self.ns, self.params.name, self.ns, apex))
        try:
            spec = objects.ServiceSpec.from_option(self.params.service, self.params.target_name)
        except objects.ServiceSpecError as exc:
            raise self.fail("Canary %s/%s: %s" % (self.ns, self.params.name, exc)) from None
        extra_ports = {}
        if spec.port_discovery:
            extra_ports = objects.discovered_ports(
                (((target.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [], spec)
        return objects.build_service(apex, self.ns, self.params.name, label, value, spec, extra_ports, "apex")

    @staticmethod
    def _selecting(service: dict[str, Any], label: str, value: str) -> dict[str, Any] | None:
        if ((service.get("spec") or {}).get("selector") or {}) == {label: value}:
            return None
        updated = dict(service)
        updated["spec"] = dict(service.get("spec") or {}, selector={label: value})
        return updated

    def _virtual_service_ref(self, apex: str) -> tuple[tuple[str, str] | None, str, str | None, bool]:
        """(API, name, route, adopted) of the VirtualService the canary drives; API None when Istio is not served."""
        record = self.state.virtual_service or {}
        adopt = (self.params.virtual_service or {}).get("adopt") or (record.get("name") if record.get("adopted") else None)
        route = (self.params.virtual_service or {}).get("route") or record.get("route")
        version = record.get("apiVersion")
        if not version:
            with self.store.api("discover", "API group", istio_api.ISTIO_GROUP):
                picked = istio_api.pick_istio_version(self.client.served_versions(istio_api.ISTIO_GROUP))
            if picked is None:
                return None, apex, None, False
            version = istio_api.group_version(picked)
        if adopt and not route:
            raise self.fail("Cannot delete canary %s/%s, nothing was changed: the adopted VirtualService %s has no "
                            "route recorded: set virtual_service.route" % (self.ns, self.params.name, adopt))
        return (version, istio_api.VIRTUAL_SERVICE_PLURAL), adopt or apex, route if adopt else None, bool(adopt)

    def _http_route_ref(self, apex: str) -> tuple[tuple[str, str], str, str | None, bool]:
        """(API, name, rule, adopted) of the HTTPRoute the canary drives, as initialize recorded it."""
        record = self.state.route or {}
        adopt = (self.params.virtual_service or {}).get("adopt") or (record.get("name") if record.get("adopted") else None)
        rule = (self.params.virtual_service or {}).get("route") or record.get("rule")
        version = record.get("apiVersion") or self.params.route_api_version or gateway.group_version(gateway.GATEWAY_VERSIONS[0])
        return (version, gateway.HTTP_ROUTE_PLURAL), adopt or apex, rule if adopt else None, bool(adopt)

    def _restore_target(self, target: dict[str, Any], primary: dict[str, Any] | None) -> None:
        """Scale the target as the primary is scaled and wait until it can take all the traffic."""
        replicas = wl.canary_replicas(target, primary, None)
        if ((target.get("spec") or {}).get("replicas") or 0) < 1:
            self.store.scale(self.params.target_name, replicas)
        if self.check_mode:
            self.changelog.changes.append("wait for Deployment %s/%s to be ready" % (self.ns, self.params.target_name))
            return
        readiness = self._wait_ready(self.params.target_name, self.params.wait_seconds, "Deployment",
                                     self.params.primary_ready_threshold)
        if not readiness.ready:
            message = ("Cannot delete canary %s/%s: the target is not ready to take the traffic back (%s). Traffic "
                       "stays on the primary and nothing else was changed; the target keeps its replicas. Fix the "
                       "workload and run the deletion again." % (self.ns, self.params.name, readiness.message))
            self._event(message, warning=True)
            raise self.fail(message)

    def _route_to_apex(self, api: tuple[str, str], kind: str, name: str, adopted: bool,
                       to_apex: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        """Point the route (VirtualService or HTTPRoute) that sent traffic to the primary and the canary at the apex."""
        existing = self.store.get(api, kind, name)
        if existing is None:
            return
        if not adopted and owner_of(existing) is None:
            self.changelog.warnings.append("%s %s/%s was not created by this canary and is left as it is"
                                           % (kind, self.ns, name))
            return
        # An adopted route is the user's: only the canary's route or rule changes, and it is never marked.
        self.store.ensure(api, kind, name, lambda cur: None if cur is None else to_apex(cur), owned=not adopted)

    def _primary_configs(self, primary: dict[str, Any] | None) -> list[tuple[str, tuple[str, str], str]]:
        """The ``-primary`` ConfigMaps and Secrets the primary reads or the state tracked."""
        pod_spec = (((primary or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
        refs = wl.collect_config_refs(pod_spec)
        configmaps = {name for name in refs.configmaps if name.endswith(PRIMARY_SUFFIX)}
        secrets = {name for name in refs.secrets if name.endswith(PRIMARY_SUFFIX)}
        for key in self.state.tracked_configs or {}:
            kind, name = key.split("/", 1) if "/" in key else (key, "")
            if name:
                (configmaps if kind == "configmap" else secrets).add(primary_name(name))
        return ([("ConfigMap", CONFIGMAPS, name) for name in sorted(configmaps)]
                + [("Secret", SECRETS, name) for name in sorted(secrets)])

    def _delete(self, api: tuple[str, str], kind: str, name: str) -> None:
        """Delete an object this canary owns; anything else is left with a warning. Gone already is fine."""
        for _attempt in range(DELETE_ATTEMPTS):
            existing = self.store.get(api, kind, name)
            if existing is None:
                return
            problem = ownership_problem(existing, kind, self.ns, self.params.name)
            if problem:
                self.changelog.warnings.append("%s %s/%s was left in place: %s" % (kind, self.ns, name, problem))
                return
            metadata = existing.get("metadata") or {}
            self.changelog.add("delete %s %s/%s" % (kind, self.ns, name), "%s/%s" % (kind, name), owned_view(existing), None)
            if self.check_mode:
                return
            # Preconditions: if someone changed it since it was judged ours, the API refuses and it is judged again.
            options = {"propagationPolicy": "Background",
                       "preconditions": {"uid": metadata.get("uid"), "resourceVersion": metadata.get("resourceVersion")}}
            try:
                self.client.request("DELETE", resource_path(api[0], api[1], name, self.ns), body=options)
                return
            except KubeApiError as exc:
                if exc.status == 404:
                    return
                self.changelog.changes.pop()
                self.changelog.writes -= 1
                if exc.status != 409:
                    raise self.fail(exc.explain("delete", kind, name, self.ns)) from None
        raise self.fail("%s %s/%s kept changing while the canary was being deleted: another controller is writing it; "
                        "stop it and run the deletion again" % (kind, self.ns, name))
