"""What happens to one request: route selection, faults, the serving workload and its answer.

Response flags follow Envoy's: NR no route, NC no cluster (unknown
service), UH no healthy upstream, FI/DI injected abort/delay, UT upstream
timeout, "-" none.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from lab.mesh.headers import Headers, apply_operations, response_headers
from lab.mesh.httproute import backend_service, backend_weights, filters_of, select_rule
from lab.mesh.httproute import mirrors as httproute_mirrors
from lab.mesh.outcomes import draw_latency, draw_outcome
from lab.mesh.routing import (MESH_GATEWAY, Request, mirror_targets, pick_weighted, resolve_host, route_entries,
                              route_weights, select_route, service_fqdn)
from lab.mesh.topology import Service, Topology, Workload

# What the client-side proxy spends answering on its own (no upstream involved).
LOCAL_REPLY_MEDIAN_MS = 0.3


@dataclass(frozen=True)
class Upstream:
    """A request as it reached (or failed to reach) a destination service."""

    service_fqdn: str
    service_name: str
    service_namespace: str
    workload: Workload | None
    code: int
    latency_ms: float
    flags: str = "-"


@dataclass
class Outcome:
    """The client's view of a request, plus mirrored copies (whose answers nobody waits for)."""

    upstream: Upstream
    route_index: int | None = None
    mirrors: list[Upstream] = field(default_factory=list)
    # (lower-case name, value) pairs the proxies add to the answer, from the route's and destination's headers.response.
    response_headers: Headers = ()
    # The request headers the upstream got, when a route rewrote them (HTTPRoute's RequestHeaderModifier).
    request_headers: Headers | None = None
    # The gateway Envoy's clusters this request (then each mirrored copy) went to, when it entered through a Gateway
    # and an HTTPRoute sent it to a Service backend: ``<namespace>_<service>_<port>``.
    gateway_clusters: tuple[str, ...] = ()

    @property
    def code(self) -> int:
        return self.upstream.code

    @property
    def latency_ms(self) -> float:
        return self.upstream.latency_ms


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)(ms|s|m|h)\s*$")
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def duration_ms(value: Any) -> float | None:
    """Protobuf-style duration ('1.5s', '100ms') in milliseconds; None when unreadable."""
    if value is None:
        return None
    found = _DURATION.match(str(value))
    if not found:
        return None
    return float(found.group(1)) * _UNIT_MS[found.group(2)]


def _percent_hit(spec: Mapping[str, Any], rng: random.Random) -> bool:
    percentage = spec.get("percentage")
    if percentage is None:
        percent = float(spec.get("percent", 100))
    else:
        percent = float((percentage or {}).get("value") or 0.0)
    return rng.random() * 100.0 < percent


def _unknown_destination(host: str, namespace: str, code: int, flags: str, rng: random.Random) -> Upstream:
    resolved = resolve_host(host, namespace)
    if resolved is None:
        return Upstream(host or "unknown", host or "unknown", "unknown", None, code, draw_latency(LOCAL_REPLY_MEDIAN_MS, rng), flags)
    return Upstream(service_fqdn(*resolved), resolved[0], resolved[1], None, code, draw_latency(LOCAL_REPLY_MEDIAN_MS, rng), flags)


def serve(topology: Topology, host: str, namespace: str, rng: random.Random, subset: str | None = None) -> Upstream:
    """Send a request to a destination host: a ready workload answers, or the proxy answers 503."""
    service: Service | None = topology.service_for_host(host, namespace)
    if service is None:
        return _unknown_destination(host, namespace, 503, "NC", rng)
    endpoints = topology.endpoints(service, subset)
    # Envoy balances across pods, so each workload's share is its number of ready pods.
    workload = pick_weighted([(w, w.ready_replicas) for w in endpoints], rng)
    if workload is None:
        return Upstream(service.fqdn, service.name, service.namespace, None, 503,
                        draw_latency(LOCAL_REPLY_MEDIAN_MS, rng), "UH")
    code, latency = draw_outcome(workload.behaviour, rng)
    return Upstream(service.fqdn, service.name, service.namespace, workload, code, latency)


def dispatch(topology: Topology, vs: Mapping[str, Any] | None, request: Request, rng: random.Random) -> Outcome:
    """Route a request by a VirtualService (or straight to the Service when none applies)."""
    if vs is None:
        return Outcome(serve(topology, request.host, request.source_namespace, rng))
    vs_namespace = (vs.get("metadata") or {}).get("namespace", "")
    selected = select_route(vs, request)
    if selected is None:
        return Outcome(_unknown_destination(request.host, vs_namespace, 404, "NR", rng))
    index, route = selected

    local = _local_reply(route, request, vs_namespace, rng)
    if local is not None:
        return Outcome(local, index)

    fault = route.get("fault") or {}
    abort = fault.get("abort")
    if abort and _percent_hit(abort, rng):
        destination = pick_weighted(route_weights(route), rng) or {}
        aborted = _unknown_destination(destination.get("host", request.host), vs_namespace,
                                       int(abort.get("httpStatus") or 503), "FI", rng)
        return Outcome(aborted, index)
    added_delay, delay_flag = 0.0, ""
    delay = fault.get("delay")
    if delay and _percent_hit(delay, rng):
        added_delay = duration_ms(delay.get("fixedDelay")) or 0.0
        delay_flag = "DI"

    entry = pick_weighted(route_entries(route), rng)
    if entry is None:
        upstream = _unknown_destination(request.host, vs_namespace, 503, "NR", rng)
    else:
        destination = entry.get("destination") or {}
        upstream = serve(topology, destination.get("host", ""), vs_namespace, rng, destination.get("subset"))

    timeout = duration_ms(route.get("timeout"))
    total = upstream.latency_ms + added_delay
    if timeout is not None and 0 < timeout < total:
        upstream = Upstream(upstream.service_fqdn, upstream.service_name, upstream.service_namespace,
                            upstream.workload, 504, timeout, "UT")
    elif delay_flag:
        flags = delay_flag if upstream.flags == "-" else f"{delay_flag},{upstream.flags}"
        upstream = Upstream(upstream.service_fqdn, upstream.service_name, upstream.service_namespace,
                            upstream.workload, upstream.code, total, flags)

    mirrors = []
    for target, percent in mirror_targets(route):
        if rng.random() * 100.0 < percent:
            mirrored = serve(topology, target.get("host", ""), vs_namespace, rng, target.get("subset"))
            if mirrored.workload is not None:
                mirrors.append(mirrored)
    # Header operations shape what a workload answered; the proxy's own answers (503 UH, 504 UT) go out without them.
    headers: Headers = ()
    if entry is not None and upstream.workload is not None and upstream.flags in ("-", "DI"):
        headers = response_headers(route, entry)
    return Outcome(upstream, index, mirrors, headers)


def _local_reply(route: Mapping[str, Any], request: Request, namespace: str, rng: random.Random) -> Upstream | None:
    """Redirects and direct responses are answered by the proxy itself."""
    if route.get("directResponse"):
        status = int(route["directResponse"].get("status") or 200)
        return _unknown_destination(request.host, namespace, status, "-", rng)
    if route.get("redirect"):
        status = int(route["redirect"].get("redirectCode") or 301)
        return _unknown_destination(request.host, namespace, status, "-", rng)
    return None


def _serve_backend(topology: Topology, ref: Mapping[str, Any], route_namespace: str, rng: random.Random) -> Upstream:
    """A backendRef's answer: an unknown Service or kind is an invalid backend (500), no ready endpoint is 503 UH."""
    resolved = backend_service(ref, route_namespace)
    if resolved is None or topology.service(*resolved) is None:
        name = str(ref.get("name", "unknown"))
        namespace = resolved[1] if resolved else str(ref.get("namespace") or route_namespace)
        return Upstream(service_fqdn(name, namespace), name, namespace, None, 500,
                        draw_latency(LOCAL_REPLY_MEDIAN_MS, rng), "NC")
    return serve(topology, service_fqdn(*resolved), resolved[1], rng)


def dispatch_httproute(topology: Topology, routes: Sequence[Mapping[str, Any]], request: Request,
                       rng: random.Random) -> Outcome:
    """Route a request by the HTTPRoutes that apply to its entry point and host (see httproute.select_rule)."""
    selected = select_rule(routes, request)
    if selected is None:
        return Outcome(_unknown_destination(request.host, request.source_namespace, 404, "NR", rng))
    rule, namespace = selected.rule, (selected.route.get("metadata") or {}).get("namespace", "")

    redirect = next(iter(filters_of(rule, "RequestRedirect")), None)
    if redirect is not None:
        return Outcome(_unknown_destination(request.host, namespace, int(redirect.get("statusCode") or 302), "-", rng),
                       selected.index)

    ref = pick_weighted(backend_weights(rule), rng)
    if ref is None:
        # No backendRefs, or all of weight 0: the spec's answer for a rule with nowhere to send is 500.
        return Outcome(_unknown_destination(request.host, namespace, 500, "NR", rng), selected.index)
    upstream = _serve_backend(topology, ref, namespace, rng)

    timeout = duration_ms((rule.get("timeouts") or {}).get("request"))
    if timeout is not None and 0 < timeout < upstream.latency_ms:
        upstream = Upstream(upstream.service_fqdn, upstream.service_name, upstream.service_namespace,
                            upstream.workload, 504, timeout, "UT")

    copies = []
    clusters = [gateway_cluster(ref, namespace)]
    for target, percent in httproute_mirrors(rule):
        if rng.random() * 100.0 < percent:
            resolved = backend_service(target, namespace)
            if resolved is None:
                continue
            mirrored = serve(topology, service_fqdn(*resolved), resolved[1], rng)
            if mirrored.workload is not None:
                copies.append(mirrored)
                clusters.append(gateway_cluster(target, namespace))

    # Request headers are rewritten after the rule is chosen: the rule's modifiers, then the backend's.
    forwarded: Headers | None = None
    for holder in (rule, ref):
        for modifier in filters_of(holder, "RequestHeaderModifier"):
            forwarded = apply_operations(tuple(request.headers.items()) if forwarded is None else forwarded, modifier)
    headers: Headers = ()
    if upstream.workload is not None and upstream.flags == "-":
        # The backendRef's modifiers act first and the rule's after, so a rule-level set wins (Envoy's order).
        for holder in (ref, rule):
            for modifier in filters_of(holder, "ResponseHeaderModifier"):
                headers = apply_operations(headers, modifier)
    through_gateway = request.gateway != MESH_GATEWAY and all(clusters)
    return Outcome(upstream, selected.index, copies, headers, forwarded,
                   tuple(str(c) for c in clusters) if through_gateway else ())


def gateway_cluster(ref: Mapping[str, Any], route_namespace: str) -> str | None:
    """The name a gateway's Envoy gives a Service backend's cluster in its stats; None for other backends."""
    resolved = backend_service(ref, route_namespace)
    return None if resolved is None else "%s_%s_%s" % (resolved[1], resolved[0], ref.get("port", ""))
