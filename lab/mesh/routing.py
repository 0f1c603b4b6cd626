"""VirtualService evaluation: host resolution, request matching, weighted destinations.

Pure functions over plain dicts (the objects as the API stores them), so the
rules can be tested without a running mesh.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from lab.mesh.cookies import parse_set_cookie
from lab.mesh.headers import issued_set_cookies

CLUSTER_DOMAIN = "cluster.local"
MESH_GATEWAY = "mesh"


@dataclass(frozen=True)
class Request:
    """One simulated HTTP request as a sidecar or gateway sees it."""

    host: str
    path: str = "/"
    method: str = "GET"
    scheme: str = "http"
    headers: Mapping[str, str] = field(default_factory=dict)
    gateway: str = MESH_GATEWAY
    source_namespace: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def service_fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def resolve_host(host: str, default_namespace: str) -> tuple[str, str] | None:
    """Map an Istio destination host to (service name, namespace).

    Istio reads a short name relative to the namespace of the rule, not of the
    client; `svc.ns`, `svc.ns.svc` and the FQDN name the namespace. Anything
    else (an external name such as api.example.com) is not a Service.
    """
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):
        # An authority may carry the port (podinfo.test:9898); the service is named without it.
        host = host.rsplit(":", 1)[0]
    host = host.rstrip(".")
    if not host or host == "*":
        return None
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0], default_namespace
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[2] == "svc":
        return parts[0], parts[1]
    if len(parts) >= 4 and parts[2] == "svc" and ".".join(parts[3:]) == CLUSTER_DOMAIN:
        return parts[0], parts[1]
    return None


def normalize_gateway(gateway: str, default_namespace: str) -> str:
    """Give a gateway reference one spelling: `namespace/name` (or `mesh`)."""
    gateway = gateway.strip()
    if gateway == MESH_GATEWAY:
        return MESH_GATEWAY
    if "/" in gateway:
        return gateway
    resolved = resolve_host(gateway, default_namespace)
    if resolved is None:
        return f"{default_namespace}/{gateway}"
    return f"{resolved[1]}/{resolved[0]}"


def vs_gateways(vs: Mapping[str, Any]) -> list[str]:
    """The gateways a VirtualService applies to; none listed means the mesh."""
    namespace = vs.get("metadata", {}).get("namespace", "")
    gateways = (vs.get("spec") or {}).get("gateways") or [MESH_GATEWAY]
    return [normalize_gateway(g, namespace) for g in gateways]


def string_match(condition: Mapping[str, Any] | None, value: str | None, ignore_case: bool = False) -> bool:
    """Istio StringMatch: exact, prefix or regex (RE2, whole string); `{}` only asks for presence."""
    if value is None:
        return False
    if not condition:
        return True
    if ignore_case:
        value = value.lower()
    if "exact" in condition:
        expected = str(condition["exact"])
        return value == (expected.lower() if ignore_case else expected)
    if "prefix" in condition:
        expected = str(condition["prefix"])
        return value.startswith(expected.lower() if ignore_case else expected)
    if "regex" in condition:
        try:
            return re.fullmatch(str(condition["regex"]), value) is not None
        except re.error:
            return False
    return True


def request_matches(match: Mapping[str, Any], request: Request, vs_namespace: str) -> bool:
    """One HTTPMatchRequest: every condition it names must hold."""
    ignore_case = bool(match.get("ignoreUriCase"))
    if "uri" in match and not string_match(match["uri"], request.path.split("?", 1)[0], ignore_case):
        return False
    if "method" in match and not string_match(match["method"], request.method):
        return False
    if "scheme" in match and not string_match(match["scheme"], request.scheme):
        return False
    if "authority" in match and not string_match(match["authority"], request.host):
        return False
    for name, condition in (match.get("headers") or {}).items():
        if not string_match(condition, request.header(name)):
            return False
    for name, condition in (match.get("withoutHeaders") or {}).items():
        if string_match(condition, request.header(name)):
            return False
    if match.get("queryParams"):
        query = _query_params(request.path)
        for name, condition in match["queryParams"].items():
            if not string_match(condition, query.get(name)):
                return False
    if match.get("gateways"):
        wanted = {normalize_gateway(g, vs_namespace) for g in match["gateways"]}
        if request.gateway not in wanted:
            return False
    if "sourceNamespace" in match and match["sourceNamespace"] != request.source_namespace:
        return False
    return True


def _query_params(path: str) -> dict[str, str]:
    if "?" not in path:
        return {}
    params: dict[str, str] = {}
    for pair in path.split("?", 1)[1].split("&"):
        key, _, value = pair.partition("=")
        if key:
            params[key] = value
    return params


def select_route(vs: Mapping[str, Any], request: Request) -> tuple[int, Mapping[str, Any]] | None:
    """The first http route whose match list is empty or has an entry the request satisfies."""
    namespace = vs.get("metadata", {}).get("namespace", "")
    for index, route in enumerate((vs.get("spec") or {}).get("http") or []):
        matches = route.get("match") or []
        if not matches or any(request_matches(m, request, namespace) for m in matches):
            return index, route
    return None


def route_entries(route: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], int]]:
    """(HTTPRouteDestination, weight) pairs of an http route.

    A lone destination without a weight takes all traffic; with several, a
    missing weight counts as 0, as in Istio.
    """
    entries = route.get("route") or []
    if len(entries) == 1 and entries[0].get("weight") in (None, 0):
        return [(entries[0], 100)]
    return [(e, int(e.get("weight") or 0)) for e in entries]


def route_weights(route: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], int]]:
    """(destination, weight) pairs of an http route (see route_entries)."""
    return [(entry.get("destination") or {}, weight) for entry, weight in route_entries(route)]


def pick_weighted(choices: Sequence[tuple[Any, float]], rng: random.Random) -> Any | None:
    """Draw one item in proportion to its weight; None when no weight is positive."""
    total = sum(w for _, w in choices if w > 0)
    if total <= 0:
        return None
    point = rng.random() * total
    for item, weight in choices:
        if weight <= 0:
            continue
        point -= weight
        if point < 0:
            return item
    return next(item for item, weight in reversed(choices) if weight > 0)


def mirror_targets(route: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], float]]:
    """(destination, percentage) of every mirror of a route (`mirror` and the newer `mirrors`)."""
    targets: list[tuple[Mapping[str, Any], float]] = []
    if route.get("mirror"):
        percentage = route.get("mirrorPercentage") or route.get("mirror_percent")
        value = 100.0 if percentage is None else _percentage_value(percentage)
        targets.append((route["mirror"], value))
    for mirror in route.get("mirrors") or []:
        percentage = mirror.get("percentage")
        value = 100.0 if percentage is None else _percentage_value(percentage)
        targets.append((mirror.get("destination") or {}, value))
    return targets


def _percentage_value(percentage: Any) -> float:
    if isinstance(percentage, Mapping):
        return float(percentage.get("value") or 0.0)
    return float(percentage)


def example_value(condition: Mapping[str, Any] | None) -> str | None:
    """A value that satisfies a StringMatch, so generated traffic can reach A/B routes."""
    if not condition:
        return "1"
    if "exact" in condition:
        return str(condition["exact"])
    if "prefix" in condition:
        return str(condition["prefix"]) + "lab"
    if "regex" in condition:
        return example_for_regex(str(condition["regex"]))
    return None


_OPTIONAL_GROUP = re.compile(r"\((?:\?:)?[^()]*\)\?")
_ANY_RUN = re.compile(r"\.[*+]\??")


def example_for_regex(pattern: str) -> str | None:
    """Best-effort string matching a regex as users write them for headers and cookies.

    Handles the common shapes (`^(.*?;)?(canary=always)(;.*)?$`, `.*Firefox.*`,
    alternations); returns None when no candidate fully matches, and callers
    then skip that condition.
    """
    try:
        compiled = re.compile(pattern)
    except re.error:
        return None
    candidate = pattern
    if candidate.startswith("^"):
        candidate = candidate[1:]
    if candidate.endswith("$") and not candidate.endswith("\\$"):
        candidate = candidate[:-1]
    previous = None
    while previous != candidate:
        previous = candidate
        candidate = _OPTIONAL_GROUP.sub("", candidate)
    candidate = _ANY_RUN.sub("", candidate)
    candidates = [candidate]
    if "|" in candidate:
        candidates.extend(candidate.split("|"))
    for raw in candidates:
        text = re.sub(r"\\(.)", r"\1", raw.replace("(?:", "").replace("(", "").replace(")", ""))
        if compiled.fullmatch(text):
            return text
    return None


def _selects_an_issued_cookie(match: Mapping[str, Any], issued: Sequence[str]) -> bool:
    """Whether a match entry asks for a cookie the VirtualService itself hands out (a session-affinity route)."""
    condition = next((c for name, c in (match.get("headers") or {}).items() if name.lower() == "cookie"), None)
    if condition is None:
        return False
    for header in issued:
        cookie = parse_set_cookie(header)
        if cookie is not None and string_match(condition, f"{cookie.name}={cookie.value}"):
            return True
    return False


def ab_match_entries(vs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The A/B match entries: those with a header or URI condition of the first route that has any.

    Entries that select a cookie the VirtualService sets in responses (Flagger's
    sticky route for session affinity) are not A/B entries: only users who got
    the cookie from the mesh carry it, so generated traffic is not shaped for them.
    """
    issued = issued_set_cookies(vs)
    for route in (vs.get("spec") or {}).get("http") or []:
        entries = [m for m in route.get("match") or []
                   if (m.get("headers") or "uri" in m) and not _selects_an_issued_cookie(m, issued)]
        if entries:
            return entries
    return []


def matches_any(entries: Sequence[Mapping[str, Any]], request: Request, vs_namespace: str) -> bool:
    return any(request_matches(entry, request, vs_namespace) for entry in entries)


def example_request_shape(vs: Mapping[str, Any]) -> tuple[dict[str, str], str] | None:
    """Headers and path satisfying the first A/B match entry (see ab_match_entries)."""
    entries = ab_match_entries(vs)
    if not entries:
        return None
    match = entries[0]
    headers: dict[str, str] = {}
    for name, condition in (match.get("headers") or {}).items():
        value = example_value(condition)
        if value is not None:
            headers[name.lower()] = value
    path = "/"
    if "uri" in match:
        path = example_value(match["uri"]) or "/"
        if not path.startswith("/"):
            path = "/" + path
    return headers, path
