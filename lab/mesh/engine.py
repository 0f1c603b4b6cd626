"""The running mesh: generates traffic for every VirtualService and HTTPRoute, serves /metrics and /send."""

from __future__ import annotations

import json
import logging
import random
import statistics
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from lab.mesh.cookies import join_cookie_headers, parse_set_cookie
from lab.mesh import httproute
from lab.mesh.dispatch import Outcome, dispatch, dispatch_httproute
from lab.mesh.evidence import LabSeries
from lab.mesh.headers import header_values
from lab.mesh.outcomes import (DEFAULT_MATCH_SHARE, DEFAULT_RPS, MATCH_SHARE_ANNOTATION, RPS_ANNOTATION, annotation_float,
                               poisson)
from lab.mesh.routing import (MESH_GATEWAY, Request, ab_match_entries, example_request_shape, matches_any, normalize_gateway,
                              vs_gateways)
from lab.mesh.sessions import Session, SessionPool, session_settings
from lab.mesh.envoy_stats import EnvoyClusterStats
from lab.mesh.telemetry import INGRESS_GATEWAY, IstioTelemetry, Source, mesh_client
from lab.mesh.topology import Topology

LOG = logging.getLogger("lab.mesh")

ROUTED_RESOURCES = ("virtualservices", "services", "deployments", "destinationrules", "pods", "httproutes", "gateways")
LOADGEN_WORKLOAD = "lab-loadgen"
MAX_SEND = 100000
# A generation pass never makes up for more than this much lost time (a paused
# process should not release a burst of traffic when it resumes).
MAX_CATCH_UP_SECONDS = 1.0
IDLE_WAIT_SECONDS = 0.5

RouteHandler = Callable[[dict], "tuple[int, Any]"]


class TrafficSource:
    """Steady traffic for one VirtualService through one entry point (the mesh or a gateway)."""

    def __init__(self, vs: Mapping[str, Any], gateway: str, source: Source, rps: float, match_share: float,
                 sessions: SessionPool | None = None):
        self.vs = vs
        self.gateway = gateway
        self.source = source
        self.rps = rps
        self.match_share = match_share
        self.sessions = sessions
        hosts = [h for h in (vs.get("spec") or {}).get("hosts") or [] if h and "*" not in h]
        self.hosts = hosts or [(vs.get("metadata") or {}).get("name", "unknown")]
        self.namespace = (vs.get("metadata") or {}).get("namespace", "")
        self.shaped = example_request_shape(vs)
        self.ab_entries = ab_match_entries(vs)

    def request(self, rng: random.Random, cookie: str | None = None) -> Request:
        """The next request; `cookie` is the sender's jar, sent after any cookie the A/B shape asks for."""
        host = self.hosts[0] if len(self.hosts) == 1 else rng.choice(self.hosts)
        headers: dict[str, str] = {}
        path = "/"
        if self.shaped is not None and rng.random() < self.match_share:
            headers, path = self.shaped
        if cookie is not None:
            headers = dict(headers)
            headers["cookie"] = join_cookie_headers(headers.get("cookie"), cookie) or cookie
        return Request(host=host, path=path, headers=headers, gateway=self.gateway, source_namespace=self.namespace)

    @property
    def name(self) -> str:
        return (self.vs.get("metadata") or {}).get("name", "")

    def describe(self) -> dict[str, Any]:
        return {"virtualservice": f"{self.namespace}/{self.name}", "shaped_request": self.shaped}

    def matched(self, request: Request) -> bool:
        return bool(self.ab_entries) and matches_any(self.ab_entries, request, self.namespace)

    def dispatch(self, topology: Topology, request: Request, rng: random.Random) -> Outcome:
        return dispatch(topology, self.vs, request, rng)


class HTTPRouteTraffic:
    """Steady traffic for one HTTPRoute through one entry point (a parent Gateway, or the mesh for a Service parent).

    Its requests meet every route attached to the same entry point and host,
    so precedence across routes applies to generated traffic as to real.
    """

    def __init__(self, route: Mapping[str, Any], gateway: str, source: Source, rps: float, match_share: float,
                 hosts: list[str], sessions: SessionPool | None = None):
        self.route = route
        self.gateway = gateway
        self.source = source
        self.rps = rps
        self.match_share = match_share
        self.sessions = sessions
        self.namespace = (route.get("metadata") or {}).get("namespace", "")
        self.hosts = hosts or [(route.get("metadata") or {}).get("name", "unknown")]
        self.shape = httproute.example_request_shape(route)
        self.ab_entries = httproute.ab_match_entries(route)

    @property
    def name(self) -> str:
        return (self.route.get("metadata") or {}).get("name", "")

    def describe(self) -> dict[str, Any]:
        shaped = None if self.shape is None else [dict(self.shape.headers), self.shape.path, self.shape.method]
        return {"httproute": f"{self.namespace}/{self.name}", "shaped_request": shaped}

    def request(self, rng: random.Random, cookie: str | None = None) -> Request:
        host = self.hosts[0] if len(self.hosts) == 1 else rng.choice(self.hosts)
        headers: dict[str, str] = {}
        path, method = "/", "GET"
        if self.shape is not None and rng.random() < self.match_share:
            headers, path, method = dict(self.shape.headers), self.shape.path, self.shape.method
        if cookie is not None:
            headers["cookie"] = join_cookie_headers(headers.get("cookie"), cookie) or cookie
        return Request(host=host, path=path, method=method, headers=headers, gateway=self.gateway,
                       source_namespace=self.namespace)

    def matched(self, request: Request) -> bool:
        return bool(self.ab_entries) and httproute.matches_any(self.ab_entries, request)

    def dispatch(self, topology: Topology, request: Request, rng: random.Random) -> Outcome:
        routes = topology.httproutes_for(request.host, self.namespace, self.gateway)
        return dispatch_httproute(topology, routes, request, rng)


def _httproute_hosts(topology: Topology, route: Mapping[str, Any], gateway: str) -> list[str]:
    if gateway == MESH_GATEWAY:
        return [f"{name}.{namespace}" for name, namespace in httproute.parent_services(route)]
    return httproute.concrete_hostnames(route, topology.gateway_hostnames(gateway))


def _pool(pools: dict[Any, SessionPool], kept: set[Any], key: Any, settings: Any,
          clock: Callable[[], float]) -> SessionPool | None:
    if not settings.enabled:
        return None
    pool = pools.get(key)
    if pool is None:
        pool = pools[key] = SessionPool(settings, clock)
    else:
        pool.reconfigure(settings)
    kept.add(key)
    return pool


def traffic_sources(topology: Topology, pools: dict[Any, SessionPool] | None = None,
                    clock: Callable[[], float] = time.monotonic) -> list[TrafficSource | HTTPRouteTraffic]:
    """One source per (VirtualService or HTTPRoute, entry point); a route's rate is shared among its entry points.

    `pools` holds the simulated users of each source from the previous build;
    it is updated in place (sources that are gone lose their users).
    """
    pools = {} if pools is None else pools
    sources: list[TrafficSource | HTTPRouteTraffic] = []
    kept: set[Any] = set()
    for vs in topology.virtualservices:
        meta = vs.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        rps = annotation_float(annotations, RPS_ANNOTATION, DEFAULT_RPS, 0.0, 100000.0)
        match_share = annotation_float(annotations, MATCH_SHARE_ANNOTATION, DEFAULT_MATCH_SHARE, 0.0, 1.0)
        if rps <= 0 or not (vs.get("spec") or {}).get("http"):
            continue
        settings = session_settings(annotations)
        gateways = vs_gateways(vs)
        namespace = meta.get("namespace", "")
        for gateway in gateways:
            source = mesh_client(namespace, LOADGEN_WORKLOAD) if gateway == MESH_GATEWAY else INGRESS_GATEWAY
            pool = _pool(pools, kept, (namespace, meta.get("name", ""), gateway), settings, clock)
            sources.append(TrafficSource(vs, gateway, source, rps / len(gateways), match_share, pool))
    for route in topology.httproutes:
        meta = route.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        rps = annotation_float(annotations, RPS_ANNOTATION, DEFAULT_RPS, 0.0, 100000.0)
        match_share = annotation_float(annotations, MATCH_SHARE_ANNOTATION, DEFAULT_MATCH_SHARE, 0.0, 1.0)
        parents = httproute.route_parents(route)
        if rps <= 0 or not parents or not (route.get("spec") or {}).get("rules"):
            continue
        settings = session_settings(annotations)
        namespace = meta.get("namespace", "")
        for gateway in parents:
            # Gateway traffic comes in through the ingress gateway's workload, as for a VirtualService bound to one.
            source = mesh_client(namespace, LOADGEN_WORKLOAD) if gateway == MESH_GATEWAY else INGRESS_GATEWAY
            pool = _pool(pools, kept, ("HTTPRoute", namespace, meta.get("name", ""), gateway), settings, clock)
            sources.append(HTTPRouteTraffic(route, gateway, source, rps / len(parents), match_share,
                                            _httproute_hosts(topology, route, gateway), pool))
    for key in set(pools) - kept:
        del pools[key]
    return sources


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    """The /send answer: codes, serving workloads, failures (any status >= 400), response headers, latencies."""
    codes = Counter(str(o.code) for o in outcomes)
    workloads = Counter(o.upstream.workload.name if o.upstream.workload else "unknown" for o in outcomes)
    flags = Counter(o.upstream.flags for o in outcomes)
    mirrored = Counter(m.workload.name for o in outcomes for m in o.mirrors if m.workload)
    latencies = sorted(o.latency_ms for o in outcomes)
    summary: dict[str, Any] = {
        "total": len(outcomes),
        "codes": dict(codes),
        "failed": sum(1 for o in outcomes if o.code >= 400),
        "workloads": dict(workloads),
        "response_flags": dict(flags),
        "mirrored": dict(mirrored),
        "response_headers": response_header_counts(outcomes),
        "request_headers": request_header_counts(outcomes),
        "latencies_ms": {},
    }
    if latencies:
        def quantile(q: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3)
        summary["latencies_ms"] = {"p50": quantile(0.5), "p90": quantile(0.9), "p99": quantile(0.99),
                                   "max": round(latencies[-1], 3), "mean": round(statistics.fmean(latencies), 3)}
    return summary


def response_header_counts(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """Header name -> value -> number of answers that carried it (Set-Cookie shows up here)."""
    counts: dict[str, Counter] = {}
    for outcome in outcomes:
        for name, value in outcome.response_headers:
            counts.setdefault(name, Counter())[value] += 1
    return {name: dict(values) for name, values in counts.items()}


def request_header_counts(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """Like response_header_counts, for the request headers upstreams got where a route rewrote them."""
    counts: dict[str, Counter] = {}
    for outcome in outcomes:
        for name, value in outcome.request_headers or ():
            counts.setdefault(name, Counter())[value] += 1
    return {name: dict(values) for name, values in counts.items()}


class Mesh:
    """Istio-like traffic over the objects in a Store, with Istio's telemetry."""

    def __init__(self, store: Any, host: str = "127.0.0.1", port: int = 0, tick_seconds: float = 0.1,
                 seed: int | None = None, endpointslices: bool = False, clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._routed = ROUTED_RESOURCES + (("endpointslices",) if endpointslices else ())
        self._host = host
        self._port = port
        self.tick_seconds = tick_seconds
        self.registry = CollectorRegistry(auto_describe=True)
        self.telemetry = IstioTelemetry()
        self.registry.register(self.telemetry)
        self.evidence = LabSeries()
        self.envoy = EnvoyClusterStats()
        self.registry.register(self.envoy)
        self.registry.register(self.evidence)
        # Mesh time: cookie expiry and session stays are measured on it (tests pass a clock they move).
        self.clock = clock
        self._pools: dict[Any, SessionPool] = {}
        self._seeds = random.Random(seed)
        self._seed_lock = threading.Lock()
        self._topology = Topology()
        self._sources: list[TrafficSource | HTTPRouteTraffic] = []
        self._seen_revision = -1
        self._refresh_lock = threading.Lock()
        # Every namespace a topology has held, and those of them gone (their series dropped) at the last rebuild.
        self._known_namespaces: set[str] = set()
        self._gone_namespaces: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        self._routes: dict[tuple[str, str], RouteHandler] = {}
        self.generated = 0

    # -------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the mesh is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._server = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, name="mesh-http", daemon=True),
            threading.Thread(target=self._generate_forever, name="mesh-traffic", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def add_route(self, method: str, path: str, handler: RouteHandler) -> None:
        """Serve an extra JSON endpoint (the runtime's control endpoints) next to /metrics and /send."""
        self._routes[(method.upper(), path)] = handler

    def route_handler(self, method: str, path: str) -> RouteHandler | None:
        return self._routes.get((method.upper(), path))

    def _rng(self) -> random.Random:
        with self._seed_lock:
            return random.Random(self._seeds.getrandbits(64))

    # --------------------------------------------------------------- topology
    def topology(self) -> Topology:
        """The current snapshot, rebuilt when a routed resource changed since the last look."""
        revision = self._store.revision
        if revision == self._seen_revision:
            return self._topology
        with self._refresh_lock:
            if revision != self._seen_revision and self._needs_rebuild(self._seen_revision):
                self._topology = Topology(**{resource: self._store.list(resource) for resource in self._routed})
                self._sources = traffic_sources(self._topology, self._pools, self.clock)
                self._forget_gone_namespaces(self._topology)
            self._seen_revision = revision
        return self._topology

    def _forget_gone_namespaces(self, topology: Topology) -> None:
        """Drop the series of namespaces that held objects and hold none any more (deleted namespaces).

        Real Envoy sidecars stop reporting when their pods go, and Prometheus marks
        the series stale. A namespace whose workloads are only scaled to 0 still holds
        its Deployments and Services and keeps its series. The series are walked only
        when a namespace has just gone, not on every rebuild or scrape; a series a
        request in flight records after that goes with the next namespace that goes.
        """
        present = topology.namespaces
        self._known_namespaces |= present
        gone = frozenset(self._known_namespaces - present)
        if gone - self._gone_namespaces:
            dropped = (self.telemetry.forget_namespaces(gone) + self.evidence.forget_namespaces(gone)
                       + self.envoy.forget_namespaces(gone))
            LOG.debug("namespaces gone: %s; %d series dropped", ", ".join(sorted(gone - self._gone_namespaces)), dropped)
        self._gone_namespaces = gone

    def _needs_rebuild(self, since: int) -> bool:
        if since < 0:
            return True
        changes, complete = self._store.changes_since(since)
        return not complete or any(change.resource in self._routed for change in changes)

    # ---------------------------------------------------------------- traffic
    def _generate_forever(self) -> None:
        rng = self._rng()
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                topology = self.topology()
                if not self._sources:
                    # Nothing to route: sleep until the store changes, so an idle lab costs no CPU.
                    self._store.wait_for_change(self._seen_revision, IDLE_WAIT_SECONDS)
                    last = time.monotonic()
                    continue
                elapsed = min(now - last, MAX_CATCH_UP_SECONDS)
                last = now
                self._generate(topology, self._sources, elapsed, rng)
            except Exception:  # pylint: disable=broad-except
                # A malformed object must not stop the traffic for good; the next tick tries again.
                LOG.exception("traffic generation failed")
                last = time.monotonic()
            self._stop.wait(max(0.0, self.tick_seconds - (time.monotonic() - now)))

    def _generate(self, topology: Topology, sources: list[TrafficSource | HTTPRouteTraffic], elapsed: float,
                  rng: random.Random) -> None:
        for source in sources:
            for _ in range(poisson(source.rps * elapsed, rng)):
                session = source.sessions.pick(rng) if source.sessions is not None else None
                cookie = session.cookie_header() if session is not None else None
                request = source.request(rng, cookie)
                outcome = source.dispatch(topology, request, rng)
                self._record(source.source, outcome, source.matched(request), session, cookie is not None)
                self.generated += 1

    def _record(self, source: Source, outcome: Outcome, matched: bool, session: Session | None, sticky: bool) -> None:
        """Count one client request in Istio's series and the lab's; a session takes in the answer's cookies."""
        self.telemetry.record_request(source, outcome.upstream, outcome.mirrors)
        for cluster, upstream in zip(outcome.gateway_clusters, [outcome.upstream] + list(outcome.mirrors)):
            self.envoy.record(cluster, upstream.code, upstream.latency_ms)
        self.evidence.record_request(outcome, matched)
        if session is None:
            cookies = [(c.name, c.deletes) for c in (parse_set_cookie(v) for v in
                                                     header_values(outcome.response_headers, "set-cookie")) if c]
        else:
            workload = outcome.upstream.workload.name if outcome.upstream.workload is not None else None
            visit = session.answered(workload, outcome.response_headers)
            cookies = [(c.name, c.deletes) for c in visit.cookies]
            self.evidence.record_session(outcome, visit, sticky, started=session.requests == 1)
        self.evidence.record_set_cookies(outcome, cookies)

    def send(self, host: str, namespace: str, count: int = 1, headers: Mapping[str, str] | None = None, path: str = "/",
             method: str = "GET", gateway: str = MESH_GATEWAY, source_workload: str = LOADGEN_WORKLOAD,
             cookies: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Send `count` requests now, as a client in `namespace` (or through `gateway`) would, and summarize them.

        With `cookies` (a jar, possibly empty) the requests come from one user:
        each carries the jar, and each answer's Set-Cookie updates it, as a
        browser would; the answer then also holds the jar and the user's switches.
        """
        topology = self.topology()
        rng = self._rng()
        gateway = normalize_gateway(gateway, namespace)
        source = mesh_client(namespace, source_workload) if gateway == MESH_GATEWAY else INGRESS_GATEWAY
        vs = topology.virtualservice_for(host, namespace, gateway)
        vs_namespace = ((vs or {}).get("metadata") or {}).get("namespace", "")
        entries = ab_match_entries(vs) if vs is not None else []
        # Where a VirtualService routes the host it wins, as in Istio; HTTPRoutes route the rest.
        routes = topology.httproutes_for(host, namespace, gateway) if vs is None else []
        route_entries = [entry for route in routes for entry in httproute.ab_match_entries(route)]

        def is_matched(request: Request) -> bool:
            if routes:
                return httproute.matches_any(route_entries, request)
            return bool(entries) and matches_any(entries, request, vs_namespace)
        base_headers = {k.lower(): str(v) for k, v in (headers or {}).items()}
        session = None if cookies is None else Session(self.clock, cookies={str(k): str(v) for k, v in cookies.items()})
        request = Request(host=host, path=path or "/", method=method.upper(), headers=base_headers, gateway=gateway,
                          source_namespace=namespace)
        matched = is_matched(request)
        outcomes = []
        switches = 0
        for _ in range(count):
            jar = None
            if session is not None:
                jar = session.cookie_header()
                cookie = join_cookie_headers(base_headers.get("cookie"), jar)
                request = Request(host=host, path=path or "/", method=method.upper(),
                                  headers={**base_headers, **({"cookie": cookie} if cookie else {})},
                                  gateway=gateway, source_namespace=namespace)
                matched = is_matched(request)
            if routes:
                outcome = dispatch_httproute(topology, routes, request, rng)
            else:
                outcome = dispatch(topology, vs, request, rng)
            before = session.last_workload if session is not None else None
            self._record(source, outcome, matched, session, jar is not None)
            if session is not None and before is not None and session.last_workload != before:
                switches += 1
            outcomes.append(outcome)
        summary = summarize(outcomes)
        summary["virtualservice"] = None if vs is None else (
            f"{vs['metadata'].get('namespace', '')}/{vs['metadata'].get('name', '')}")
        summary["httproutes"] = [httproute.route_key(route) for route in routes]
        if session is not None:
            summary["cookies"] = session.jar.cookies()
            summary["switches"] = switches
        return summary

    def endpoints_of(self, service_name: str, namespace: str) -> dict[str, Any]:
        """What the mesh would send a request for this Service to: its ready workloads, as it sees them now."""
        topology = self.topology()
        service = topology.service(service_name, namespace)
        endpoints = topology.endpoints(service) if service else []
        return {"service": f"{namespace}/{service_name}", "known": service is not None,
                "endpoints": [{"workload": w.name, "ready_replicas": w.ready_replicas} for w in endpoints]}

    def describe(self) -> dict[str, Any]:
        topology = self.topology()
        return {
            "virtualservices": {f"{(vs.get('metadata') or {}).get('namespace', '')}/{(vs.get('metadata') or {}).get('name', '')}":
                                (vs.get("metadata") or {}).get("resourceVersion") for vs in topology.virtualservices},
            "httproutes": {httproute.route_key(route): (route.get("metadata") or {}).get("resourceVersion")
                           for route in topology.httproutes},
            "traffic": [{**s.describe(),
                         "gateway": s.gateway, "source_workload": s.source.workload, "rps": s.rps,
                         "hosts": s.hosts, "match_share": s.match_share,
                         "sessions": None if s.sessions is None else {
                             "users": s.sessions.settings.users, "share": s.sessions.settings.share,
                             "mean_seconds": s.sessions.settings.mean_seconds, "started": s.sessions.started,
                             "holding_cookies": sum(1 for u in s.sessions.sessions() if len(u.jar))}}
                        for s in self._sources],
            "generated": self.generated,
            "series": self.telemetry.series_count(),
        }


def _send_arguments(body: Any) -> dict[str, Any]:
    """Validate a /send body; raises ValueError with a sentence for the caller."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object such as {\"host\": \"podinfo\", \"namespace\": \"test\", \"count\": 10}")
    host = body.get("host")
    if not host or not isinstance(host, str):
        raise ValueError("'host' is required: a service name, name.namespace or FQDN")
    namespace = body.get("namespace") or "default"
    try:
        count = int(body.get("count", 1))
    except (TypeError, ValueError):
        raise ValueError(f"'count' must be an integer, got {body.get('count')!r}") from None
    if not 1 <= count <= MAX_SEND:
        raise ValueError(f"'count' must be between 1 and {MAX_SEND}, got {count}")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("'headers' must be an object of header name to value")
    cookies = body.get("cookies")
    if cookies is not None and (not isinstance(cookies, dict)
                                or not all(isinstance(v, (str, int, float)) for v in cookies.values())):
        raise ValueError("'cookies' must be an object of cookie name to value (the jar of one user; {} for a new user), "
                         f"got {cookies!r}")
    return {"host": host, "namespace": str(namespace), "count": count, "headers": headers,
            "path": str(body.get("path") or "/"), "method": str(body.get("method") or "GET"),
            "gateway": str(body.get("gateway") or MESH_GATEWAY),
            "source_workload": str(body.get("source_workload") or LOADGEN_WORKLOAD), "cookies": cookies}


def _handler_for(mesh: Mesh) -> type[BaseHTTPRequestHandler]:
    class MeshHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  pylint: disable=redefined-builtin
            LOG.debug("%s " + format, self.address_string(), *args)

        def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._reply(status, json.dumps(payload).encode() + b"\n")

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw) if raw.strip() else {}

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(mesh.registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/-/ready"):
                self._reply(200, b"ok\n", "text/plain")
            elif path == "/traffic":
                self._json(200, mesh.describe())
            elif path == "/endpoints":
                query = urllib.parse.parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "")
                self._json(200, mesh.endpoints_of(query.get("service", [""])[0], query.get("namespace", ["default"])[0]))
            else:
                self._custom("GET", path)

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path != "/send":
                self._custom("POST", path)
                return
            try:
                arguments = _send_arguments(self._body())
            except json.JSONDecodeError as error:
                self._json(400, {"error": f"the body is not valid JSON: {error}"})
                return
            except ValueError as error:
                self._json(400, {"error": str(error)})
                return
            self._json(200, mesh.send(**arguments))

        def do_PUT(self) -> None:  # noqa: N802
            self._custom("PUT", self.path.split("?", 1)[0])

        def _custom(self, method: str, path: str) -> None:
            handler = mesh.route_handler(method, path)
            if handler is None:
                self._json(404, {"error": f"no endpoint {method} {path}; try GET /metrics, GET /traffic or POST /send"})
                return
            try:
                body = self._body() if method in ("POST", "PUT") else {}
            except json.JSONDecodeError as error:
                self._json(400, {"error": f"the body is not valid JSON: {error}"})
                return
            try:
                status, payload = handler(body)
            except Exception as error:  # pylint: disable=broad-except
                LOG.exception("%s %s failed", method, path)
                self._json(500, {"error": f"{type(error).__name__}: {error}"})
                return
            self._json(status, payload)

    return MeshHandler
