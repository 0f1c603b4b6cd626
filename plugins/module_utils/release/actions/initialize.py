# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``initialize``: the primary, its configs and autoscaler, the Services, and the routing.

The routing is Istio's (DestinationRules and a VirtualService) or the Gateway API's (an HTTPRoute), generated or
adopted, as the ``provider`` option says.
"""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import ownership_problem
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import (
    CONFIGMAPS,
    DEPLOYMENTS,
    HPAS,
    SECRETS,
    SERVICES,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release import flagger_adoption as flagger
from ansible_collections.progressive.delivery.plugins.module_utils.release import workload as wl
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import primary_name, service_names
from ansible_collections.progressive.delivery.plugins.module_utils.routing import gateway_objects as gateway
from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_api
from ansible_collections.progressive.delivery.plugins.module_utils.routing import istio_objects as objects


class Initialize(CanaryAction):
    """Create (or adopt) everything the canary routes through, then point the apex Service at the primary."""

    def apply(self, rule: st.Rule) -> None:  # pylint: disable=too-many-locals,too-many-statements
        params = self.params
        first_time = self.state.phase in (st.NONE, st.INITIALIZING)
        target, label, value, tracked, found = self._target_revision()
        try:
            spec = objects.ServiceSpec.from_option(params.service, params.target_name)
        except objects.ServiceSpecError as exc:
            raise self.fail("Canary %s/%s: %s" % (self.ns, params.name, exc)) from None
        apex, primary_svc, canary_svc = service_names(spec.name)
        provider = getattr(params, "provider", None) or "istio"
        primary_deployment = primary_name(params.target_name)
        if provider == "gatewayapi":
            routing = self._gateway_routing(spec, primary_svc, canary_svc)
            istio_version, istio, vs_api = "", ("", ""), ("", "")
        else:
            routing = {}
            istio_version = self._istio_version()
            istio = (istio_api.group_version(istio_version), istio_api.DESTINATION_RULE_PLURAL)
            vs_api = (istio_api.group_version(istio_version), istio_api.VIRTUAL_SERVICE_PLURAL)

        # Everything is read and judged before the first write, so bad input leaves nothing behind.
        existing = {
            ("Deployment", primary_deployment): self.store.get(DEPLOYMENTS, "Deployment", primary_deployment),
            ("Service", apex): self.store.get(SERVICES, "Service", apex),
            ("Service", primary_svc): self.store.get(SERVICES, "Service", primary_svc),
            ("Service", canary_svc): self.store.get(SERVICES, "Service", canary_svc),
        }
        if provider != "gatewayapi":
            for name in (primary_svc, canary_svc):
                existing[("DestinationRule", name)] = self.store.get(istio, "DestinationRule", name)
        for key in sorted(found):
            kind = "ConfigMap" if key.startswith("configmap/") else "Secret"
            name = primary_name(key.split("/", 1)[1])
            existing[(kind, name)] = self.store.get(CONFIGMAPS if kind == "ConfigMap" else SECRETS, kind, name)
        adopt = (params.virtual_service or {}).get("adopt")
        route_name = (params.virtual_service or {}).get("route")
        vs_record: dict[str, Any]
        if provider == "gatewayapi":
            vs_record = {}
            if not adopt:
                existing[(gateway.HTTP_ROUTE_KIND, apex)] = routing["current"]
        elif adopt:
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
            if spec.delegation:
                self.changelog.warnings.append(
                    "service.delegation has no effect on the adopted VirtualService %s/%s: it only shapes the "
                    "VirtualService the canary generates; the adopted one keeps its own hosts and gateways" % (self.ns, adopt))
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
        adopting = self._adoption(apex, label, primary_name(value))
        problems = [p for p in (self._ownership_problem(kind, obj, adopting)
                                for (kind, _name), obj in sorted(existing.items(), key=lambda i: i[0])) if p]
        flagger_primary = existing[("Deployment", primary_deployment)]
        if adopting is None or adopting("Deployment", flagger_primary) is None:
            flagger_primary = None
        else:
            problems.extend(p for p in [flagger.primary_problem(flagger_primary, self.ns, label, primary_name(value))] if p)
        if problems:
            raise self.fail("Cannot initialize canary %s/%s, nothing was changed: %s" % (self.ns, params.name, "; ".join(problems)))
        self.store.adopt = adopting

        now = self.clock()
        desired_primary = wl.build_primary(target, self.ns, params.name, label, value, tracked, self.checksum or "")
        extra_ports = {}
        if spec.port_discovery:
            extra_ports = objects.discovered_ports(((target["spec"].get("template") or {}).get("spec") or {}).get("containers") or [], spec)
        if provider == "gatewayapi":
            route_record = routing["record"]
        else:
            route_record = {"kind": "VirtualService", "apiVersion": vs_api[0], "name": vs_record["name"],
                            "rule": vs_record["route"], "adopted": vs_record["adopted"]}
        settings = {"target": params.target_name, "service": spec.name, "virtual_service": vs_record,
                    "route": route_record}

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
        for name, selector, which in ((canary_svc, value, "canary"), (primary_svc, primary_name(value), "primary")):
            desired_svc = objects.build_service(name, self.ns, params.name, label, selector, spec, extra_ports, which)
            self.store.ensure(SERVICES, "Service", name,
                              lambda cur, d=desired_svc: d if cur is None else objects.service_update(cur, d))
        for name in (primary_svc, canary_svc) if provider != "gatewayapi" else ():
            desired_rule = objects.build_destination_rule(name, self.ns, params.name, istio_version, spec.traffic_policy)
            self.store.ensure(istio, "DestinationRule", name,
                              lambda cur, d=desired_rule: d if cur is None else objects.spec_update(cur, d))

        if first_time and not self.check_mode:
            readiness = self._wait_ready(primary_deployment, params.wait_seconds, "Primary Deployment",
                                         params.primary_ready_threshold)
            if not readiness.ready:
                message = ("Primary Deployment %s/%s is not ready, so traffic was not moved to it and %s/%s keeps its "
                           "replicas: %s. Fix the workload and run initialize again." % (
                               self.ns, primary_deployment, self.ns, params.target_name, readiness.message))
                self._event(message, warning=True)
                raise self.fail(message)
        elif first_time:
            self.changelog.changes.append("wait for Deployment %s/%s to be ready" % (self.ns, primary_deployment))

        desired_apex = objects.build_service(apex, self.ns, params.name, label, primary_name(value), spec, extra_ports, "apex")
        self.store.ensure(SERVICES, "Service", apex, lambda cur: desired_apex if cur is None else objects.service_update(cur, desired_apex))
        if provider == "gatewayapi":
            if routing["desired"] is not None:
                desired_route = routing["desired"]
                self.store.ensure(routing["api"], gateway.HTTP_ROUTE_KIND, apex,
                                  lambda cur: desired_route if cur is None else gateway.http_route_update(cur, desired_route))
        elif not adopt:
            desired_vs = objects.build_virtual_service(self.ns, params.name, istio_version, spec)
            self.store.ensure(vs_api, "VirtualService", apex,
                              lambda cur: desired_vs if cur is None else objects.virtual_service_update(cur, desired_vs))

        if first_time:
            self.store.scale(params.target_name, 0)
            promoted = (((primary or {}).get("spec") or {}).get("template") or {}).get("metadata", {}).get(
                "annotations", {}).get(wl.REVISION_ANNOTATION, self.checksum)
            if flagger_primary is not None and not flagger.runs_target(flagger_primary, desired_primary):
                # What Flagger's primary runs is not the target's revision: the next run releases the target.
                promoted = "flagger-" + wl.stable_hash(((flagger_primary.get("spec") or {}).get("template") or {}))
                self.changelog.warnings.append(
                    "Deployment %s/%s adopted from Flagger runs another pod spec than %s/%s: the next run releases "
                    "the target's revision through the analysis" % (self.ns, primary_deployment, self.ns,
                                                                    params.target_name))
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

    def _adoption(self, apex: str, label: str, primary_value: str) -> Any:
        """With adopt_flagger, what turns an object Flagger generated for this Canary into the canary's; else None."""
        if not getattr(self.params, "adopt_flagger", False):
            return None
        namespace, canary = self.ns, self.params.name

        def adopt(kind: str, obj: dict[str, Any] | None) -> dict[str, Any] | None:
            if not flagger.adoptable(obj, kind, canary, apex, label, primary_value):
                return None
            return flagger.adopted(obj or {}, namespace, canary)
        return adopt

    def _ownership_problem(self, kind: str, obj: dict[str, Any] | None, adopting: Any) -> str | None:
        adopted = adopting(kind, obj) if adopting is not None else None
        if adopted is not None:
            return ownership_problem(adopted, kind, self.ns, self.params.name)
        return (flagger.flagger_problem(obj, kind, self.ns, self.params.name)
                or ownership_problem(obj, kind, self.ns, self.params.name))

    def _istio_version(self) -> str:
        with self.store.api("discover", "API group", istio_api.ISTIO_GROUP):
            version = istio_api.pick_istio_version(self.client.served_versions(istio_api.ISTIO_GROUP))
        if version is None:
            raise self.fail("The cluster does not serve the Istio networking API (%s, versions %s): install Istio "
                            "before initializing canary %s/%s, or set provider=gatewayapi to route with an HTTPRoute"
                            % (istio_api.ISTIO_GROUP, ", ".join(istio_api.ISTIO_VERSIONS), self.ns, self.params.name))
        return version

    def _gateway_routing(self, spec: objects.ServiceSpec, primary_svc: str, canary_svc: str) -> dict[str, Any]:
        """The HTTPRoute this canary drives: read, checked, and (unless adopted) its desired form; nothing written.

        Returns ``api`` (the API version and plural), ``current`` (the generated route as it is, or None),
        ``desired`` (None for an adopted route, which the canary only reads here) and ``record`` (the state's
        ``route`` entry).
        """
        params = self.params
        wanted = gateway.version_of(getattr(params, "route_api_version", None))
        with self.store.api("discover", "API group", gateway.GATEWAY_GROUP):
            served = self.client.served_versions(gateway.GATEWAY_GROUP)
        version = gateway.pick_version(served, wanted)
        if version is None:
            raise self.fail("The cluster does not serve the Gateway API (%s, versions %s; served: %s): install the "
                            "Gateway API CRDs and an implementation before initializing canary %s/%s"
                            % (gateway.GATEWAY_GROUP, ", ".join(gateway.GATEWAY_VERSIONS), ", ".join(served) or "none",
                               self.ns, params.name))
        if wanted and version != wanted:
            self.changelog.warnings.append("The cluster does not serve %s/%s; canary %s/%s routes with HTTPRoute %s "
                                           "instead" % (gateway.GATEWAY_GROUP, wanted, self.ns, params.name,
                                                        gateway.group_version(version)))
        api = (gateway.group_version(version), gateway.HTTP_ROUTE_PLURAL)
        adopt = (params.virtual_service or {}).get("adopt")
        rule = (params.virtual_service or {}).get("route")
        try:
            if adopt:
                current = self.store.get(api, gateway.HTTP_ROUTE_KIND, adopt)
                rule = gateway.adopted_rule(current, self.ns, adopt, primary_svc, canary_svc, rule)
                desired = None
            else:
                name = spec.name
                current = self.store.get(api, gateway.HTTP_ROUTE_KIND, name)
                desired = gateway.build_http_route(self.ns, params.name, version, spec, params.service or {})
        except gateway.GatewayRouteError as exc:
            raise self.fail("Canary %s/%s: %s" % (self.ns, params.name, exc)) from None
        return {"api": api, "current": current, "desired": desired,
                "record": {"kind": gateway.HTTP_ROUTE_KIND, "apiVersion": api[0], "name": adopt or spec.name,
                           "rule": rule, "adopted": bool(adopt)}}
