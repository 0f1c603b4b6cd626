# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``detect``: is there a new revision of the target to release, and are traffic and the workloads where the state
says they are?"""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import DEPLOYMENTS
from ansible_collections.progressive.delivery.plugins.module_utils.release import drift
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.actions.canary_action import CanaryAction
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import canary_name, primary_name
from ansible_collections.progressive.delivery.plugins.module_utils.routing.release_router import (
    HTTP_ROUTE,
    VIRTUAL_SERVICE,
    release_router,
)


def route_record(state: st.CanaryState) -> dict[str, Any]:
    """The route the release drives as the state recorded it; states older than ``route`` only know the VirtualService."""
    if state.route.get("name"):
        return state.route
    vs = state.virtual_service or {}
    if not vs.get("name"):
        return {}
    return {"kind": VIRTUAL_SERVICE, "apiVersion": vs.get("apiVersion"), "name": vs["name"], "rule": vs.get("route"),
            "adopted": bool(vs.get("adopted"))}


def observe(action: CanaryAction, target: dict[str, Any] | None) -> drift.LiveView:
    """Read the route's weights and the workloads' replicas; a read that fails is reported, never raised."""
    state, ns = action.state, action.ns
    target_name = action.params.target_name
    record = route_record(state)
    primary = action.store.get(DEPLOYMENTS, "Deployment", primary_name(target_name))
    primary_replicas, primary_ready = drift.deployment_replicas(primary) if primary else (None, None)
    canary_replicas, canary_ready = drift.deployment_replicas(target)
    view: dict[str, Any] = {"canary_replicas": canary_replicas, "canary_ready": canary_ready,
                            "primary_replicas": primary_replicas, "primary_ready": primary_ready}
    if not record:
        return drift.LiveView(route_error="the state records no route", **view)
    kind = record.get("kind") or VIRTUAL_SERVICE
    view["route"] = "%s %s/%s" % (kind, ns, record["name"])
    service = state.service or action.params.target_name
    plan = {"namespace": ns, "service_name": service, "primary_service": primary_name(service),
            "canary_service": canary_name(service), "provider": "gatewayapi" if kind == HTTP_ROUTE else "istio",
            "service": {}}
    options = {"name": record["name"], "route": record.get("rule"), "api_version": record.get("apiVersion")}
    try:
        # A request that changes nothing, in check mode: the router's own read and route selection, no write.
        edit = release_router(action.client, plan, options).apply({}, check_mode=True).edit
    except (DeliveryError, KubeApiError) as exc:
        return drift.LiveView(route_error=str(getattr(exc, "message", None) or exc), **view)
    match = edit.match or {}
    return drift.LiveView(primary_weight=edit.primary_weight, canary_weight=edit.canary_weight,
                          match_route=match.get("route") if match.get("state") == "present" else None, **view)


class ComparesWithCluster(CanaryAction):
    """An action that also says how the live route and workloads compare with the state (its ``drift`` result)."""

    drift: dict[str, Any] | None = None

    def _assess_drift(self, target: dict[str, Any] | None, revision: str | None) -> None:
        resume = st.resume_plan(self.state, self.params.run_id, self._lock_free_for_us(), self.params.on_resume,
                                self.checksum)
        self.drift = drift.assess(self.state, observe(self, target), resume, revision,
                                  "%s/%s" % (self.ns, self.params.name))

    def _result(self) -> dict[str, Any]:
        result = super()._result()
        if self.drift is not None:
            result["drift"] = self.drift
        return result


class Detect(ComparesWithCluster):
    """Hash the target's revision and compare it with the recorded ones; compare the cluster with the state."""

    def apply(self, rule: st.Rule) -> None:
        target, _label, _value, _tracked, _found = self._target_revision()
        self.revision, self.message = st.revision_status(self.state, self.checksum or "")
        self._assess_drift(target, self.revision)
