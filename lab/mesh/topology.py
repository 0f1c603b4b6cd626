"""A read-only snapshot of what the mesh routes to: services, serving pods by workload, subsets.

Built from the objects in the store (plain dicts), so it is rebuilt cheaply
whenever the store changes and tested with hand-written objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from lab.mesh.outcomes import Behaviour, behaviour_from_annotations
from lab.mesh.httproute import accepts_host, listener_hostnames, route_parents, service_host_matches
from lab.mesh.routing import MESH_GATEWAY, normalize_gateway, resolve_host, service_fqdn, vs_gateways


@dataclass(frozen=True)
class Workload:
    """A Deployment as the mesh sees it: its pods' labels, behaviour and ready count."""

    name: str
    namespace: str
    ready_replicas: int
    labels: Mapping[str, str] = field(default_factory=dict)
    behaviour: Behaviour = Behaviour()
    service_account: str = "default"

    @property
    def app(self) -> str:
        return self.labels.get("app") or self.labels.get("app.kubernetes.io/name") or "unknown"

    @property
    def version(self) -> str:
        return self.labels.get("version") or self.labels.get("app.kubernetes.io/version") or "unknown"

    @property
    def canonical_service(self) -> str:
        # Istio's order: explicit canonical name, then the recommended label, then app, then the workload.
        return (self.labels.get("service.istio.io/canonical-name") or self.labels.get("app.kubernetes.io/name")
                or self.labels.get("app") or self.name)

    @property
    def canonical_revision(self) -> str:
        return (self.labels.get("service.istio.io/canonical-revision") or self.labels.get("app.kubernetes.io/version")
                or self.labels.get("version") or "latest")

    @property
    def principal(self) -> str:
        return f"spiffe://cluster.local/ns/{self.namespace}/sa/{self.service_account}"


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    selector: Mapping[str, str] = field(default_factory=dict)

    @property
    def fqdn(self) -> str:
        return service_fqdn(self.name, self.namespace)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def pod_is_serving(pod: Mapping[str, Any]) -> bool:
    """Ready and not terminating: what an EndpointSlice lists as ready."""
    if _meta(pod).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_workload_name(pod: Mapping[str, Any]) -> str:
    """The workload Istio reports for a pod: a ReplicaSet owner minus its pod-template-hash, else the owner or pod."""
    meta = _meta(pod)
    owners = meta.get("ownerReferences") or []
    if not owners:
        return meta.get("name", "")
    owner = owners[0].get("name", "")
    pod_hash = (meta.get("labels") or {}).get("pod-template-hash")
    if owners[0].get("kind") == "ReplicaSet" and pod_hash and owner.endswith("-" + pod_hash):
        return owner[: -len(pod_hash) - 1]
    return owner


def workloads_from_pods(pods: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """Serving pods grouped by workload and template: old and new pods of a rollout answer differently."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for pod in pods:
        if not pod_is_serving(pod):
            continue
        meta = _meta(pod)
        template = (meta.get("labels") or {}).get("pod-template-hash", meta.get("name", ""))
        groups.setdefault((meta.get("namespace", ""), pod_workload_name(pod), template), []).append(pod)
    workloads = []
    for (namespace, name, _template), members in groups.items():
        meta = _meta(members[0])
        workloads.append(Workload(
            name=name, namespace=namespace, ready_replicas=len(members), labels=dict(meta.get("labels") or {}),
            behaviour=behaviour_from_annotations(meta.get("annotations")),
            service_account=(members[0].get("spec") or {}).get("serviceAccountName") or "default"))
    return workloads


def _endpoint_ready(endpoint: Mapping[str, Any]) -> bool:
    # The EndpointSlice API: an unset `ready` means ready.
    return (endpoint.get("conditions") or {}).get("ready") is not False


def sliced_workloads(endpointslices: Iterable[Mapping[str, Any]],
                     pods: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[Workload]]:
    """Per Service (namespace, name): the workloads of the ready pods its EndpointSlices list."""
    pods_by_name = {(_meta(pod).get("namespace", ""), _meta(pod).get("name", "")): pod for pod in pods}
    listed: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for endpoint_slice in endpointslices:
        meta = _meta(endpoint_slice)
        service = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if not service:
            continue
        namespace = meta.get("namespace", "")
        members = listed.setdefault((namespace, service), [])
        for endpoint in endpoint_slice.get("endpoints") or []:
            target = endpoint.get("targetRef") or {}
            pod = pods_by_name.get((target.get("namespace") or namespace, target.get("name", "")))
            if target.get("kind") == "Pod" and pod is not None and _endpoint_ready(endpoint):
                members.append(pod)
    return {key: workloads_from_pods(members) for key, members in listed.items()}


def workload_from_deployment(deployment: Mapping[str, Any]) -> Workload:
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    template_meta = template.get("metadata") or {}
    status = deployment.get("status") or {}
    return Workload(
        name=_meta(deployment).get("name", ""),
        namespace=_meta(deployment).get("namespace", ""),
        ready_replicas=int(status.get("readyReplicas") or 0),
        labels=dict(template_meta.get("labels") or {}),
        behaviour=behaviour_from_annotations(template_meta.get("annotations")),
        service_account=(template.get("spec") or {}).get("serviceAccountName") or "default",
    )


class Topology:
    """Index of services, workloads, DestinationRule subsets and VirtualServices by host."""

    def __init__(self, virtualservices: Iterable[Mapping[str, Any]] = (), services: Iterable[Mapping[str, Any]] = (),
                 deployments: Iterable[Mapping[str, Any]] = (), destinationrules: Iterable[Mapping[str, Any]] = (),
                 pods: Iterable[Mapping[str, Any]] = (), endpointslices: Iterable[Mapping[str, Any]] | None = None,
                 httproutes: Iterable[Mapping[str, Any]] = (), gateways: Iterable[Mapping[str, Any]] = ()):
        self.virtualservices = list(virtualservices)
        self.httproutes = list(httproutes)
        self.gateways = {f"{_meta(g).get('namespace', '')}/{_meta(g).get('name', '')}": g for g in gateways}
        services, deployments, destinationrules = list(services), list(deployments), list(destinationrules)
        pods = list(pods)
        endpointslices = None if endpointslices is None else list(endpointslices)
        # The namespaces the mesh knows of: those holding any object it routes by. A deleted namespace
        # drops out once its last object is gone; one whose workloads are scaled to 0 stays.
        self.namespaces: frozenset[str] = frozenset(
            _meta(obj).get("namespace", "") for objects in (self.virtualservices, services, deployments, destinationrules,
                                                            pods, endpointslices or (), self.httproutes)
            for obj in objects) - {""}
        self._services: dict[tuple[str, str], Service] = {}
        for svc in services:
            meta = _meta(svc)
            selector = (svc.get("spec") or {}).get("selector") or {}
            self._services[(meta.get("namespace", ""), meta.get("name", ""))] = Service(
                meta.get("name", ""), meta.get("namespace", ""), dict(selector))
        # Endpoints are the serving pods, as in a real mesh. A Deployment without any pod
        # object (objects written without the workload controller) is read from its
        # template and readyReplicas instead.
        owned = {(_meta(p).get("namespace", ""), pod_workload_name(p)) for p in pods}
        self._workloads: dict[str, list[Workload]] = {}
        for workload in workloads_from_pods(pods):
            self._workloads.setdefault(workload.namespace, []).append(workload)
        for deployment in deployments:
            if (_meta(deployment).get("namespace", ""), _meta(deployment).get("name", "")) in owned:
                continue
            workload = workload_from_deployment(deployment)
            self._workloads.setdefault(workload.namespace, []).append(workload)
        # With EndpointSlices (a real control plane), a Service's endpoints are the ready pods its slices list,
        # as Envoy's are; without them (the emulator) they are the ready pods its selector picks.
        self._sliced: dict[tuple[str, str], list[Workload]] | None = None
        if endpointslices is not None:
            self._sliced = sliced_workloads(endpointslices, pods)
        self._subsets: dict[tuple[str, str], dict[str, Mapping[str, str]]] = {}
        for rule in destinationrules:
            namespace = _meta(rule).get("namespace", "")
            resolved = resolve_host((rule.get("spec") or {}).get("host", ""), namespace)
            if resolved is None:
                continue
            subsets = {s.get("name", ""): dict(s.get("labels") or {}) for s in (rule.get("spec") or {}).get("subsets") or []}
            self._subsets[(resolved[1], resolved[0])] = subsets

    def service(self, name: str, namespace: str) -> Service | None:
        return self._services.get((namespace, name))

    def service_for_host(self, host: str, namespace: str) -> Service | None:
        resolved = resolve_host(host, namespace)
        if resolved is None:
            return None
        return self.service(*resolved)

    def workloads(self, namespace: str) -> list[Workload]:
        return list(self._workloads.get(namespace, []))

    def endpoints(self, service: Service, subset: str | None = None) -> list[Workload]:
        """Workloads with ready pods that the Service's selector (and the subset's labels) pick.

        A Service without a selector has no endpoints the mesh can know about.
        """
        if not service.selector:
            return []
        wanted = {} if self._sliced is not None else dict(service.selector)
        if subset:
            labels = self._subsets.get((service.namespace, service.name), {}).get(subset)
            if labels is None:
                return []
            wanted.update(labels)
        if self._sliced is not None:
            candidates = self._sliced.get((service.namespace, service.name), [])
        else:
            candidates = self._workloads.get(service.namespace, [])
        return [w for w in candidates if w.ready_replicas > 0 and all(w.labels.get(k) == v for k, v in wanted.items())]

    def virtualservice_for(self, host: str, client_namespace: str, gateway: str = MESH_GATEWAY) -> Mapping[str, Any] | None:
        """The VirtualService that routes a request for `host` arriving through `gateway`."""
        wanted_service = resolve_host(host, client_namespace)
        for vs in self.virtualservices:
            vs_namespace = _meta(vs).get("namespace", "")
            if normalize_gateway(gateway, client_namespace) not in vs_gateways(vs):
                continue
            for vs_host in (vs.get("spec") or {}).get("hosts") or []:
                # A service name in `hosts` is read in the VirtualService's namespace, as Istio does: a short
                # "podinfo" in namespace a is not the "podinfo" a client in namespace b asks for.
                vs_service = resolve_host(vs_host, vs_namespace)
                if vs_service is None and vs_host == host:
                    return vs
                if vs_service is not None and vs_service == wanted_service:
                    return vs
        return None

    def gateway_hostnames(self, gateway: str) -> list[str]:
        """The hostnames a parent Gateway's listeners accept; none when it accepts any (or is not there)."""
        return listener_hostnames(self.gateways.get(gateway))

    def httproutes_for(self, host: str, client_namespace: str, gateway: str = MESH_GATEWAY) -> list[Mapping[str, Any]]:
        """The HTTPRoutes whose rules compete for a request for `host` arriving through `gateway`.

        Through a Gateway: the routes attached to it whose hostnames (or the
        listeners') accept the host, keeping only those with the most specific
        hostname, as a proxy picks one virtual host before it looks at paths.
        Inside the mesh: the routes whose parent is the Service asked for.
        """
        gateway = normalize_gateway(gateway, client_namespace)
        if gateway == MESH_GATEWAY:
            return [r for r in self.httproutes
                    if MESH_GATEWAY in route_parents(r) and service_host_matches(r, host, client_namespace)]
        ranked = []
        for route in self.httproutes:
            if gateway not in route_parents(route):
                continue
            rank = accepts_host(route, host, self.gateway_hostnames(gateway))
            if rank is not None:
                ranked.append((rank, route))
        if not ranked:
            return []
        best = max(rank for rank, _ in ranked)
        return [route for rank, route in ranked if rank == best]
