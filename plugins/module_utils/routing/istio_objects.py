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
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import mark
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_api import group_version
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import service_names

MESH_GATEWAY = "mesh"
SIDECAR_CONTAINERS = frozenset(["istio-proxy", "envoy"])
HTTP_ROUTE_FIELDS = ("match", "rewrite", "timeout", "retries", "corsPolicy", "headers")


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
        return cls(
            name=option.get("name") or default_name,
            port=port,
            target_port=target_port,
            port_name=option.get("portName") or "http",
            port_discovery=bool(option.get("portDiscovery")),
            hosts=list(option.get("hosts") or []),
            gateways=list(option.get("gateways") or []),
            http_route=http_route,
            traffic_policy=copy.deepcopy(option.get("trafficPolicy")),
        )


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
                  extra_ports: dict[str, int] | None = None) -> dict[str, Any]:
    ports = [{"name": spec.port_name, "protocol": "TCP", "port": spec.port, "targetPort": spec.target_port}]
    for port_name in sorted(extra_ports or {}):
        number = (extra_ports or {})[port_name]
        ports.append({"name": port_name, "protocol": "TCP", "port": number, "targetPort": number})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {label: name}},
        "spec": {"type": "ClusterIP", "selector": {label: selector_value}, "ports": ports},
    }
    return mark(service, namespace, canary)


def _port_view(port: dict[str, Any]) -> tuple:
    return (port.get("name") or "", port.get("protocol") or "TCP", port.get("port"), port.get("targetPort", port.get("port")))


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
    current = existing.get("metadata") or {}
    wanted = desired.get("metadata") or {}
    for key in ("labels", "annotations"):
        have = current.get(key) or {}
        if any(have.get(k) != v for k, v in (wanted.get(key) or {}).items()):
            return False
    return True


def _merge_metadata(updated: dict[str, Any], desired: dict[str, Any]) -> None:
    metadata = updated.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        merged = dict(metadata.get(key) or {})
        merged.update((desired.get("metadata") or {}).get(key) or {})
        metadata[key] = merged


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
    hosts = list(spec.hosts)
    if spec.name not in hosts and "*" not in hosts:
        hosts.append(spec.name)
    return hosts


def virtual_service_gateways(spec: ServiceSpec) -> list[str]:
    return list(spec.gateways) if spec.gateways else [MESH_GATEWAY]


def build_virtual_service(namespace: str, canary: str, api_version: str, spec: ServiceSpec) -> dict[str, Any]:
    """The apex VirtualService with one HTTP route: primary 100, canary 0."""
    apex, primary, canary_service = service_names(spec.name)
    route: dict[str, Any] = copy.deepcopy(spec.http_route)
    route["route"] = [
        {"destination": {"host": primary}, "weight": 100},
        {"destination": {"host": canary_service}, "weight": 0},
    ]
    virtual_service = {
        "apiVersion": group_version(api_version),
        "kind": "VirtualService",
        "metadata": {"name": apex, "namespace": namespace},
        "spec": {"hosts": virtual_service_hosts(spec), "gateways": virtual_service_gateways(spec), "http": [route]},
    }
    return mark(virtual_service, namespace, canary)


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
