# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Services, DestinationRules and VirtualService a canary routes through.

Pure functions: desired objects from the canary's ``service`` settings, and the
smallest update of an existing object that touches only what a canary owns.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import (
    mark,
    merged_metadata,
    metadata_differs,
    with_owned_metadata,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_api import group_version
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import service_names

MESH_GATEWAY = "mesh"
SIDECAR_CONTAINERS = frozenset(["istio-proxy", "envoy"])
HTTP_ROUTE_FIELDS = ("match", "rewrite", "timeout", "retries", "corsPolicy", "headers")
# Flagger's spec.service.apex / primary / canary: labels and annotations for the generated objects.
CUSTOM_METADATA_KEYS = ("apex", "primary", "canary")
# Annotations that describe how an object was applied; Flagger never copies them onto what it generates.
UNCOPIED_ANNOTATIONS = frozenset(["kubectl.kubernetes.io/last-applied-configuration"])


class ServiceSpecError(DeliveryError, ValueError):
    """The ``service`` settings cannot produce valid objects."""


@dataclass
class ServiceSpec:  # pylint: disable=too-many-instance-attributes
    """Flagger's ``spec.service``, the parts this collection uses."""

    name: str
    port: int
    target_port: int | str
    port_name: str = "http"
    port_discovery: bool = False
    hosts: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    http_route: dict[str, Any] = field(default_factory=dict)
    traffic_policy: dict[str, Any] | None = None
    app_protocol: str | None = None
    delegation: bool = False
    metadata: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def custom_metadata(self, which: str) -> dict[str, dict[str, str]]:
        """``{"labels": ..., "annotations": ...}`` given for the ``apex``, ``primary`` or ``canary`` objects."""
        return self.metadata.get(which) or {"labels": {}, "annotations": {}}

    @classmethod
    def from_option(cls, option: dict[str, Any] | None, default_name: str) -> "ServiceSpec":
        option = option or {}
        port = option.get("port")
        if port is None:
            raise ServiceSpecError("service.port is required to generate the canary's Services (Flagger's spec.service.port)")
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise ServiceSpecError("service.port must be a number, got %r" % (port,)) from None
        if not 0 < port < 65536:
            raise ServiceSpecError("service.port must be between 1 and 65535, got %s" % port)
        target_port = option.get("targetPort")
        if target_port in (None, "", 0, "0"):
            target_port = port
        elif isinstance(target_port, str) and target_port.isdigit():
            target_port = int(target_port)
        http_route = {key: copy.deepcopy(option[key]) for key in HTTP_ROUTE_FIELDS if option.get(key) is not None}
        hosts = list(option.get("hosts") or [])
        gateways = list(option.get("gateways") or [])
        delegation = bool(option.get("delegation"))
        if delegation and (hosts or gateways):
            # Istio only follows a delegate that has neither; Flagger refuses the same combination.
            raise ServiceSpecError(
                "service.delegation makes the generated VirtualService a delegate, and Istio ignores a delegate that "
                "has hosts or gateways (found hosts %s, gateways %s): put them on the root VirtualService that "
                "delegates to this one, or drop service.delegation" % (hosts or "none", gateways or "none"))
        app_protocol = option.get("appProtocol")
        if app_protocol is not None and not isinstance(app_protocol, str):
            raise ServiceSpecError("service.appProtocol must be a string such as 'http' or 'kubernetes.io/h2c', got %r"
                                   % (app_protocol,))
        return cls(
            name=option.get("name") or default_name,
            port=port,
            target_port=target_port,
            port_name=option.get("portName") or "http",
            port_discovery=bool(option.get("portDiscovery")),
            hosts=hosts,
            gateways=gateways,
            http_route=http_route,
            traffic_policy=copy.deepcopy(option.get("trafficPolicy")),
            app_protocol=app_protocol or None,
            delegation=delegation,
            metadata={which: _custom_metadata(option.get(which), which) for which in CUSTOM_METADATA_KEYS},
        )


def _custom_metadata(value: Any, which: str) -> dict[str, dict[str, str]]:
    if value is None:
        value = {}
    if not isinstance(value, dict) or set(value) - {"labels", "annotations"}:
        raise ServiceSpecError("service.%s takes 'labels' and 'annotations' (Flagger's CustomMetadata), got %r"
                               % (which, value))
    result: dict[str, dict[str, str]] = {}
    for kind in ("labels", "annotations"):
        entries = value.get(kind) or {}
        if not isinstance(entries, dict):
            raise ServiceSpecError("service.%s.%s must be a mapping of names to values, got %r" % (which, kind, entries))
        result[kind] = {str(k): str(v) for k, v in entries.items() if not (kind == "annotations" and k in UNCOPIED_ANNOTATIONS)}
    return result


def discovered_ports(containers: list[dict[str, Any]], spec: ServiceSpec) -> dict[str, int]:
    """Extra container ports to expose when ``portDiscovery`` is on, mesh sidecars and the main port excluded."""
    ports: dict[str, int] = {}
    for container in containers or []:
        if container.get("name") in SIDECAR_CONTAINERS:
            continue
        for index, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort")
            if isinstance(spec.target_port, int) and number == spec.target_port:
                continue
            if isinstance(spec.target_port, str) and port.get("name") == spec.target_port:
                continue
            ports[port.get("name") or "tcp-%s-%s" % (container.get("name"), index)] = number
    return ports


def build_service(name: str, namespace: str, canary: str, label: str, selector_value: str, spec: ServiceSpec,
                  extra_ports: dict[str, int] | None = None, which: str = "apex") -> dict[str, Any]:
    """A ClusterIP Service; ``which`` (apex, primary or canary) picks the labels and annotations it gets."""
    main_port: dict[str, Any] = {"name": spec.port_name, "protocol": "TCP", "port": spec.port, "targetPort": spec.target_port}
    if spec.app_protocol:
        main_port["appProtocol"] = spec.app_protocol
    ports = [main_port]
    for port_name in sorted(extra_ports or {}):
        number = (extra_ports or {})[port_name]
        ports.append({"name": port_name, "protocol": "TCP", "port": number, "targetPort": number})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {label: name}},
        "spec": {"type": "ClusterIP", "selector": {label: selector_value}, "ports": ports},
    }
    custom = spec.custom_metadata(which)
    return with_owned_metadata(mark(service, namespace, canary), custom["labels"], custom["annotations"])


def _port_view(port: dict[str, Any]) -> tuple:
    return (port.get("name") or "", port.get("protocol") or "TCP", port.get("port"), port.get("targetPort", port.get("port")),
            port.get("appProtocol") or "")


def service_update(existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """The existing Service with the selector, ports and marker we own; None when nothing differs."""
    current_spec = existing.get("spec") or {}
    desired_spec = desired["spec"]
    same_ports = sorted(_port_view(p) for p in current_spec.get("ports") or []) == sorted(_port_view(p) for p in desired_spec["ports"])
    same_selector = (current_spec.get("selector") or {}) == desired_spec["selector"]
    same_meta = _metadata_contains(existing, desired)
    if same_ports and same_selector and same_meta:
        return None
    updated = copy.deepcopy(existing)
    spec = updated.setdefault("spec", {})
    node_ports = {p.get("name"): p.get("nodePort") for p in current_spec.get("ports") or [] if p.get("nodePort")}
    ports = copy.deepcopy(desired_spec["ports"])
    for port in ports:
        if node_ports.get(port["name"]):
            port["nodePort"] = node_ports[port["name"]]
    spec["ports"] = ports
    spec["selector"] = copy.deepcopy(desired_spec["selector"])
    _merge_metadata(updated, desired)
    return updated


def _metadata_contains(existing: dict[str, Any], desired: dict[str, Any]) -> bool:
    return not metadata_differs(existing, desired)


def _merge_metadata(updated: dict[str, Any], desired: dict[str, Any]) -> None:
    """Our labels and annotations set, the ones we set before and no longer want removed, everyone else's kept."""
    updated.setdefault("metadata", {}).update(merged_metadata(updated, desired))


def build_destination_rule(name: str, namespace: str, canary: str, api_version: str,
                           traffic_policy: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": name}
    if traffic_policy:
        spec["trafficPolicy"] = copy.deepcopy(traffic_policy)
    rule = {"apiVersion": group_version(api_version), "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    return mark(rule, namespace, canary)


def spec_update(existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """The existing object with the desired spec and marker; None when nothing differs."""
    if (existing.get("spec") or {}) == desired["spec"] and _metadata_contains(existing, desired):
        return None
    updated = copy.deepcopy(existing)
    updated["spec"] = copy.deepcopy(desired["spec"])
    _merge_metadata(updated, desired)
    return updated


def virtual_service_hosts(spec: ServiceSpec) -> list[str]:
    if spec.delegation:
        return []
    hosts = list(spec.hosts)
    if spec.name not in hosts and "*" not in hosts:
        hosts.append(spec.name)
    return hosts


def virtual_service_gateways(spec: ServiceSpec) -> list[str]:
    if spec.delegation:
        return []
    return list(spec.gateways) if spec.gateways else [MESH_GATEWAY]


def build_virtual_service(namespace: str, canary: str, api_version: str, spec: ServiceSpec) -> dict[str, Any]:
    """The apex VirtualService with one HTTP route: primary 100, canary 0.

    A delegate (``service.delegation``) has no hosts and no gateways: a root VirtualService routes to it. The
    apex labels and annotations go on it too, as Flagger puts them there.
    """
    apex, primary, canary_service = service_names(spec.name)
    route: dict[str, Any] = copy.deepcopy(spec.http_route)
    route["route"] = [
        {"destination": {"host": primary}, "weight": 100},
        {"destination": {"host": canary_service}, "weight": 0},
    ]
    vs_spec: dict[str, Any] = {"hosts": virtual_service_hosts(spec), "gateways": virtual_service_gateways(spec), "http": [route]}
    if spec.delegation:
        # The API server drops empty lists; leaving the keys out keeps the next comparison equal.
        del vs_spec["hosts"], vs_spec["gateways"]
    virtual_service = {
        "apiVersion": group_version(api_version),
        "kind": "VirtualService",
        "metadata": {"name": apex, "namespace": namespace},
        "spec": vs_spec,
    }
    custom = spec.custom_metadata("apex")
    return with_owned_metadata(mark(virtual_service, namespace, canary), custom["labels"], custom["annotations"])


def _without_weights(spec: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(spec)
    for route in stripped.get("http") or []:
        for destination in route.get("route") or []:
            destination.pop("weight", None)
    return stripped


def virtual_service_update(existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """The existing VirtualService with the desired hosts, gateways and route settings, its weights kept.

    The weights are the traffic of a release that may be running; only the
    traffic-shifting step changes them.
    """
    current_spec = existing.get("spec") or {}
    if _without_weights(current_spec) == _without_weights(desired["spec"]) and _metadata_contains(existing, desired):
        return None
    current_weights = {}
    for route in current_spec.get("http") or []:
        for destination in route.get("route") or []:
            host = (destination.get("destination") or {}).get("host")
            if host:
                current_weights[host] = destination.get("weight", 0)
    updated = copy.deepcopy(existing)
    new_spec = copy.deepcopy(desired["spec"])
    for route in new_spec.get("http") or []:
        for destination in route.get("route") or []:
            host = destination["destination"]["host"]
            if host in current_weights:
                destination["weight"] = current_weights[host]
    updated["spec"] = new_spec
    _merge_metadata(updated, desired)
    return updated


def route_names(virtual_service: dict[str, Any]) -> list[str]:
    return [route.get("name") for route in (virtual_service.get("spec") or {}).get("http") or [] if route.get("name")]


def find_route(virtual_service: dict[str, Any], route_name: str) -> dict[str, Any] | None:
    for route in (virtual_service.get("spec") or {}).get("http") or []:
        if route.get("name") == route_name:
            return route
    return None


def routed_to_apex(virtual_service: dict[str, Any], apex: str, primary: str, canary: str,
                   route_name: str | None = None) -> dict[str, Any] | None:
    """The VirtualService with the primary and canary destinations replaced by the apex host; None when none are left.

    Used when a canary is deleted: the apex Service then selects the target's pods, so the traffic the primary
    and the canary shared goes to the apex host (their weights summed, the primary's port kept). Only the named
    route is changed when ``route_name`` is given (an adopted VirtualService); a mirror to the canary is dropped.
    """
    updated = copy.deepcopy(virtual_service)
    changed = False
    for route in (updated.get("spec") or {}).get("http") or []:
        if route_name is not None and route.get("name") != route_name:
            continue
        destinations = route.get("route") or []
        ours = [d for d in destinations if (d.get("destination") or {}).get("host") in (primary, canary)]
        if ours:
            kept = [d for d in destinations if d not in ours]
            primary_dest = next((d for d in ours if d["destination"]["host"] == primary), ours[0])
            destination = {key: value for key, value in primary_dest["destination"].items() if key != "subset"}
            destination["host"] = apex
            entry: dict[str, Any] = {"destination": destination}
            weights = [d.get("weight") for d in ours]
            if kept or any(w is not None for w in weights):
                entry["weight"] = sum(w or 0 for w in weights) if kept else 100
            route["route"] = [entry] + kept
            changed = True
        if (route.get("mirror") or {}).get("host") in (primary, canary):
            route.pop("mirror", None)
            route.pop("mirrorPercentage", None)
            route.pop("mirror_percent", None)
            changed = True
    return updated if changed else None
