"""Gateway API HTTPRoute evaluation: attachment, hostnames, matches, precedence, backends and filters.

Pure functions over plain dicts (the objects as the API stores them), as
routing.py is for VirtualServices. The rules are the Gateway API's (the
HTTPRoute field docs of the standard channel), as an implementation such as
Istio's or Envoy Gateway's applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lab.mesh.cookies import parse_set_cookie
from lab.mesh.routing import MESH_GATEWAY, Request, example_for_regex, resolve_host

GATEWAY_GROUP = "gateway.networking.k8s.io"
DEFAULT_MATCH: Mapping[str, Any] = {"path": {"type": "PathPrefix", "value": "/"}}
# A wildcard hostname (*.example.com) stands for at least one more label; generated traffic uses this one.
WILDCARD_LABEL = "www"

# Path match kinds, most specific first. The spec leaves RegularExpression's place to the implementation;
# the lab ranks it between Exact and PathPrefix.
_PATH_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def route_key(route: Mapping[str, Any]) -> str:
    return f"{_meta(route).get('namespace', '')}/{_meta(route).get('name', '')}"


# ------------------------------------------------------------------ attachment
def _parent_is_gateway(ref: Mapping[str, Any]) -> bool:
    return (ref.get("group", GATEWAY_GROUP) or GATEWAY_GROUP) == GATEWAY_GROUP and ref.get("kind", "Gateway") == "Gateway"


def _parent_is_service(ref: Mapping[str, Any]) -> bool:
    return (ref.get("group") or "") == "" and ref.get("kind") == "Service"


def route_parents(route: Mapping[str, Any]) -> list[str]:
    """The entry points a route is attached to: `namespace/name` of each parent Gateway, `mesh` for a Service parent.

    A Service parent (the GAMMA way of routing east-west traffic) makes the
    route apply to requests for that Service from inside the mesh. Several
    listeners of one Gateway (sectionName, port) are one entry point.
    """
    namespace = _meta(route).get("namespace", "")
    parents: list[str] = []
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        if _parent_is_gateway(ref):
            parent = f"{ref.get('namespace') or namespace}/{ref.get('name', '')}"
        elif _parent_is_service(ref):
            parent = MESH_GATEWAY
        else:
            continue
        if parent not in parents:
            parents.append(parent)
    return parents


def parent_services(route: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, namespace) of each Service a route is attached to (GAMMA)."""
    namespace = _meta(route).get("namespace", "")
    return [(ref.get("name", ""), ref.get("namespace") or namespace)
            for ref in (route.get("spec") or {}).get("parentRefs") or [] if _parent_is_service(ref)]


def listener_hostnames(gateway: Mapping[str, Any] | None) -> list[str]:
    """The hostnames a Gateway's HTTP listeners accept; an empty list when any listener accepts every host."""
    names: list[str] = []
    for listener in (gateway or {}).get("spec", {}).get("listeners") or []:
        if listener.get("protocol", "HTTP") not in ("HTTP", "HTTPS"):
            continue
        if not listener.get("hostname"):
            return []
        names.append(str(listener["hostname"]))
    return names


def hostname_rank(pattern: str, host: str) -> int | None:
    """How specifically a route hostname accepts a request host: exact beats the longest wildcard; None: not at all."""
    host = host.lower().rstrip(".")
    if ":" in host and not host.startswith("["):
        host = host.rsplit(":", 1)[0]
    pattern = pattern.lower().rstrip(".")
    if pattern == host:
        return 10000
    if pattern.startswith("*."):
        suffix = pattern[1:]
        if host.endswith(suffix) and len(host) > len(suffix):
            return len(suffix)
    return None


def accepts_host(route: Mapping[str, Any], host: str, gateway_hostnames: Sequence[str] = ()) -> int | None:
    """A route's rank for a host (see hostname_rank); 0 when neither it nor its listeners name any host."""
    names = [str(h) for h in (route.get("spec") or {}).get("hostnames") or []] or list(gateway_hostnames)
    if not names:
        return 0
    ranks = [rank for rank in (hostname_rank(name, host) for name in names) if rank is not None]
    return max(ranks) if ranks else None


def concrete_hostnames(route: Mapping[str, Any], gateway_hostnames: Sequence[str] = ()) -> list[str]:
    """Hosts generated traffic asks for: the route's hostnames (or its listeners'), a wildcard given one label."""
    names = [str(h) for h in (route.get("spec") or {}).get("hostnames") or []] or list(gateway_hostnames)
    return [f"{WILDCARD_LABEL}{name[1:]}" if name.startswith("*.") else name for name in names if name and name != "*"]


# ------------------------------------------------------------------ matching
def path_matches(condition: Mapping[str, Any] | None, path: str) -> bool:
    """HTTPPathMatch: Exact, PathPrefix (element-wise: /foo matches /foo/bar, not /foobar) or RegularExpression."""
    condition = condition or DEFAULT_MATCH["path"]
    kind = condition.get("type", "PathPrefix")
    value = str(condition.get("value", "/"))
    path = path.split("?", 1)[0] or "/"
    if kind == "Exact":
        return path == value
    if kind == "RegularExpression":
        try:
            return re.fullmatch(value, path) is not None
        except re.error:
            return False
    prefix = value.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _value_matches(condition: Mapping[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    expected = str(condition.get("value", ""))
    if condition.get("type", "Exact") == "RegularExpression":
        try:
            # Envoy matches header and query regexes against the whole value.
            return re.fullmatch(expected, value) is not None
        except re.error:
            return False
    return value == expected


def query_params(path: str) -> dict[str, str]:
    """The first value of each query parameter, as the spec asks implementations to match on."""
    if "?" not in path:
        return {}
    params: dict[str, str] = {}
    for pair in path.split("?", 1)[1].split("&"):
        key, _, value = pair.partition("=")
        if key and key not in params:
            params[key] = value
    return params


def match_satisfied(match: Mapping[str, Any], request: Request) -> bool:
    """One HTTPRouteMatch: path, method, every header and every query parameter it names must hold."""
    if not path_matches(match.get("path"), request.path):
        return False
    if match.get("method") and str(match["method"]).upper() != request.method.upper():
        return False
    for condition in match.get("headers") or []:
        if not _value_matches(condition, request.header(str(condition.get("name", "")))):
            return False
    if match.get("queryParams"):
        query = query_params(request.path)
        for condition in match["queryParams"]:
            if not _value_matches(condition, query.get(str(condition.get("name", "")))):
                return False
    return True


def rule_matches(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A rule's matches; none listed is one match on the path prefix "/"."""
    return list(rule.get("matches") or []) or [DEFAULT_MATCH]


def match_precedence(match: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """Sort key of a match, most specific first, in the spec's order of criteria.

    Exact path, then the longest prefix, then a method, then the most header
    matches, then the most query parameter matches.
    """
    path = match.get("path") or DEFAULT_MATCH["path"]
    kind = path.get("type", "PathPrefix")
    length = len(str(path.get("value", "/"))) if kind == "PathPrefix" else 0
    return (_PATH_RANK.get(kind, 3), -length, 0 if match.get("method") else 1,
            -len(match.get("headers") or []), -len(match.get("queryParams") or []))


def _creation_key(route: Mapping[str, Any]) -> tuple[str, str]:
    # RFC 3339 timestamps in UTC sort as strings; a route without one (hand-written objects) counts as newest.
    return (_meta(route).get("creationTimestamp") or "9999", route_key(route))


@dataclass(frozen=True)
class Selection:
    """The rule that answers a request: its route, its index in the route's rules, and the rule."""

    route: Mapping[str, Any]
    index: int
    rule: Mapping[str, Any]


def select_rule(routes: Sequence[Mapping[str, Any]], request: Request) -> Selection | None:
    """Across every route that applies, the rule with the most specific match the request satisfies.

    Ties go to the oldest route, then the first by namespace/name, then the
    first rule in list order, as the spec says.
    """
    best: tuple[Any, ...] | None = None
    chosen: Selection | None = None
    for route in routes:
        creation = _creation_key(route)
        for index, rule in enumerate((route.get("spec") or {}).get("rules") or []):
            for match in rule_matches(rule):
                if not match_satisfied(match, request):
                    continue
                key = (match_precedence(match), creation, index)
                if best is None or key < best:
                    best, chosen = key, Selection(route, index, rule)
    return chosen


# ------------------------------------------------------------------ backends and filters
def backend_service(ref: Mapping[str, Any], route_namespace: str) -> tuple[str, str] | None:
    """(name, namespace) of a Service backendRef; None for other kinds, which the lab cannot serve."""
    if (ref.get("group") or "") != "" or ref.get("kind", "Service") != "Service":
        return None
    return str(ref.get("name", "")), str(ref.get("namespace") or route_namespace)


def backend_weights(rule: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], int]]:
    """(HTTPBackendRef, weight) pairs; an unset weight is 1, and a weight of 0 is never chosen."""
    return [(ref, int(ref["weight"]) if ref.get("weight") is not None else 1) for ref in rule.get("backendRefs") or []]


def filters_of(holder: Mapping[str, Any] | None, kind: str) -> list[Mapping[str, Any]]:
    """The bodies of a rule's or a backendRef's filters of one type (RequestMirror may appear more than once)."""
    field = kind[0].lower() + kind[1:]
    return [f.get(field) or {} for f in (holder or {}).get("filters") or [] if f.get("type") == kind]


def mirror_percent(mirror: Mapping[str, Any]) -> float:
    """The share of requests a RequestMirror copies, in percent: `percent`, `fraction`, or all of them."""
    if mirror.get("percent") is not None:
        return float(mirror["percent"])
    fraction = mirror.get("fraction")
    if fraction:
        denominator = float(fraction.get("denominator") or 100)
        return 100.0 * float(fraction.get("numerator") or 0) / denominator
    return 100.0


def mirrors(rule: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], float]]:
    """(backendRef, percent) of each RequestMirror filter of a rule."""
    return [(m.get("backendRef") or {}, mirror_percent(m)) for m in filters_of(rule, "RequestMirror")]


def issued_set_cookies(route: Mapping[str, Any]) -> list[str]:
    """Every Set-Cookie value a route's ResponseHeaderModifiers (rule or backendRef) can hand out."""
    values: list[str] = []
    for rule in (route.get("spec") or {}).get("rules") or []:
        for holder in [rule] + list(rule.get("backendRefs") or []):
            for modifier in filters_of(holder, "ResponseHeaderModifier"):
                for kind in ("set", "add"):
                    values.extend(str(h.get("value", "")) for h in modifier.get(kind) or []
                                  if str(h.get("name", "")).lower() == "set-cookie")
    return values


# ------------------------------------------------------------------ generated traffic
def _selects_an_issued_cookie(match: Mapping[str, Any], issued: Sequence[str]) -> bool:
    """Whether a match asks for a cookie the route itself hands out (Flagger's sticky rule for session affinity)."""
    conditions = [c for c in match.get("headers") or [] if str(c.get("name", "")).lower() == "cookie"]
    if not conditions:
        return False
    for header in issued:
        cookie = parse_set_cookie(header)
        if cookie is not None and any(_value_matches(c, f"{cookie.name}={cookie.value}") for c in conditions):
            return True
    return False


def _is_selective(match: Mapping[str, Any]) -> bool:
    path = match.get("path")
    narrowed_path = path is not None and not path_matches(path, "/lab-any")
    return bool(match.get("headers") or match.get("queryParams") or match.get("method") or narrowed_path)


def ab_match_entries(route: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The A/B matches: the selective ones (headers, query, method, a narrower path) of the first rule that has any.

    Flagger's rules all carry the path prefix "/", which every request
    satisfies, so only a condition beyond it makes a rule an A/B rule.
    Matches on a cookie the route sets itself are session affinity, not A/B.
    """
    issued = issued_set_cookies(route)
    for rule in (route.get("spec") or {}).get("rules") or []:
        entries = [m for m in rule.get("matches") or [] if _is_selective(m) and not _selects_an_issued_cookie(m, issued)]
        if entries:
            return entries
    return []


def _example(condition: Mapping[str, Any]) -> str | None:
    value = str(condition.get("value", ""))
    if condition.get("type", "Exact") == "RegularExpression":
        return example_for_regex(value)
    return value


@dataclass(frozen=True)
class Shape:
    """Headers, path (with its query) and method of a generated request that satisfies the A/B match."""

    headers: Mapping[str, str]
    path: str
    method: str


def example_request_shape(route: Mapping[str, Any]) -> Shape | None:
    entries = ab_match_entries(route)
    if not entries:
        return None
    match = entries[0]
    headers = {}
    for condition in match.get("headers") or []:
        value = _example(condition)
        if value is not None:
            headers[str(condition.get("name", "")).lower()] = value
    path = "/"
    condition = match.get("path")
    if condition:
        value = str(condition.get("value", "/"))
        if condition.get("type") == "RegularExpression":
            path = example_for_regex(value) or "/"
        else:
            path = value
    query = []
    for param in match.get("queryParams") or []:
        value = _example(param)
        if value is not None:
            query.append(f"{param.get('name', '')}={value}")
    if query:
        path = f"{path}?{'&'.join(query)}"
    return Shape(headers, path, str(match.get("method") or "GET").upper())


def matches_any(entries: Sequence[Mapping[str, Any]], request: Request) -> bool:
    return any(match_satisfied(entry, request) for entry in entries)


def service_host_matches(route: Mapping[str, Any], host: str, client_namespace: str) -> bool:
    """Whether a request for `host` from inside the mesh is for one of the route's parent Services."""
    wanted = resolve_host(host, client_namespace)
    return wanted is not None and wanted in parent_services(route)
