# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure edits of an Istio VirtualService's HTTP routes.

Everything here works on plain dicts as the API returns them and never talks
to a cluster, so each decision that moves live traffic (which route, which
destination, which weights) is testable on its own.  An edit copies the
object and changes only the selected route's destination weights, its mirror,
the match and session affinity routes this collection owns, and its own
``Set-Cookie`` entries on the selected route's primary and canary
destinations; every other byte of a user's VirtualService is carried over
unchanged.

Routes this collection owns sit ahead of the weighted route in one order: the
A/B match route, then the canary's sticky route, then the primary's.  Istio
takes the first route that matches, so an explicit A/B condition (a header
the user chose) wins over a cookie handed out by chance, and a client holding
both cookies stays on the canary, as Flagger's sticky canary promises.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import (
    canary_name,
    match_route_name,
    primary_name,
    sticky_route_name,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.sticky import (
    Cookie,
    SessionAffinity,
    SessionAffinityError,
    cookie_of_route,
    cookie_regex,
    edit_set_cookie,
    owned_set_cookie,
    session_affinity_from_params,
)


class RouteError(DeliveryError, ValueError):
    """The request cannot be applied to this VirtualService; the message says why and what to do."""


@dataclass(frozen=True)
class DestinationRef:
    """A destination as the user names it: host plus optional subset and port."""

    host: str
    subset: str | None = None
    port: int | None = None

    def describe(self) -> str:
        text = self.host
        if self.subset:
            text += " subset " + self.subset
        if self.port is not None:
            text += " port %d" % self.port
        return text

    def as_destination(self) -> dict[str, Any]:
        destination: dict[str, Any] = {"host": self.host}
        if self.subset:
            destination["subset"] = self.subset
        if self.port is not None:
            destination["port"] = {"number": self.port}
        return destination


def destination_ref(spec: Mapping[str, Any] | None, default_host: str) -> DestinationRef:
    """Build a reference from a module option (``host``/``subset``/``port``), defaulting the host."""
    spec = spec or {}
    port = spec.get("port")
    return DestinationRef(host=spec.get("host") or default_host, subset=spec.get("subset") or None,
                          port=int(port) if port is not None else None)


def host_key(host: str, namespace: str) -> str:
    """A comparable identity for a host, so ``svc``, ``svc.ns``, ``svc.ns.svc`` and the FQDN are one service.

    Istio resolves a short name against the VirtualService's namespace; the
    cluster domain is not always ``cluster.local``, so anything after
    ``<svc>.<ns>.svc`` is ignored.  Hosts outside the cluster compare as written.
    """
    host = host.strip().rstrip(".").lower()
    parts = host.split(".")
    if len(parts) == 1:
        return "%s.%s.svc" % (parts[0], namespace)
    if len(parts) == 2 or parts[2] == "svc":
        return "%s.%s.svc" % (parts[0], parts[1])
    return host


def destination_port(destination: Mapping[str, Any]) -> int | None:
    port = (destination or {}).get("port") or {}
    number = port.get("number") if isinstance(port, Mapping) else None
    return int(number) if number is not None else None


def destination_matches(ref: DestinationRef, route_destination: Mapping[str, Any], namespace: str) -> bool:
    """True when a route entry (``{destination: ..., weight: ...}``) points at ``ref``.

    A subset or port the user left out matches any; :func:`find_destination`
    then insists the match is unique.
    """
    destination = route_destination.get("destination") or {}
    if not destination.get("host") or host_key(destination["host"], namespace) != host_key(ref.host, namespace):
        return False
    if ref.subset is not None and destination.get("subset") != ref.subset:
        return False
    if ref.port is not None and destination_port(destination) != ref.port:
        return False
    return True


def describe_destination(route_destination: Mapping[str, Any]) -> str:
    destination = route_destination.get("destination") or {}
    return DestinationRef(host=str(destination.get("host")), subset=destination.get("subset"),
                          port=destination_port(destination)).describe()


def route_label(route: Mapping[str, Any], index: int) -> str | int:
    """How results name a route: its ``name`` when it has one, else its index in ``http``."""
    return route.get("name") or index


def describe_routes(http: Sequence[Mapping[str, Any]]) -> str:
    if not http:
        return "none (spec.http is empty)"
    parts = []
    for index, route in enumerate(http):
        label = "%r" % route["name"] if route.get("name") else "#%d (unnamed)" % index
        destinations = ", ".join(describe_destination(entry) for entry in route.get("route") or []) or "no destinations"
        parts.append("%s -> [%s]" % (label, destinations))
    return "; ".join(parts)


def find_destination(route: Mapping[str, Any], ref: DestinationRef, namespace: str, route_name: str | int) -> int:
    """Index of the one destination of ``route`` that ``ref`` names; :class:`RouteError` when none or several."""
    entries = route.get("route") or []
    found = [index for index, entry in enumerate(entries) if destination_matches(ref, entry, namespace)]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(describe_destination(entry) for entry in entries) or "none"
    if not found:
        raise RouteError(
            "destination %s is not in route %s (its destinations: %s). Add it to the route, or give the right "
            "host/subset/port" % (ref.describe(), _quote_label(route_name), listed))
    raise RouteError(
        "destination %s matches %d destinations of route %s (%s); give subset and/or port to pick one"
        % (ref.describe(), len(found), _quote_label(route_name), listed))


def _quote_label(label: str | int) -> str:
    return "#%d" % label if isinstance(label, int) else repr(label)


def select_route(http: Sequence[Mapping[str, Any]], namespace: str, route_name: str | None,
                 required: Iterable[DestinationRef], owned_route_name: str | None = None,
                 owned_route_names: Iterable[str] = ()) -> int:
    """Index of the route to edit.

    By ``route_name`` when given; otherwise the single route holding every
    ``required`` destination.  The routes this collection owns (match and
    sticky routes) are never picked implicitly: each carries one destination
    and is managed on its own.
    """
    owned = set(owned_route_names)
    if owned_route_name:
        owned.add(owned_route_name)
    if route_name is not None:
        found = [index for index, route in enumerate(http) if route.get("name") == route_name]
        if len(found) == 1:
            return found[0]
        if not found and route_name.isdigit() and int(route_name) < len(http) and not http[int(route_name)].get("name"):
            # Unnamed routes (Flagger generates one) can only be told apart by position.
            return int(route_name)
        if not found:
            raise RouteError("no http route named %r; routes found: %s" % (route_name, describe_routes(http)))
        raise RouteError("%d http routes are named %r; route names must be unique to select one. Routes found: %s"
                         % (len(found), route_name, describe_routes(http)))
    required = list(required)
    candidates = []
    for index, route in enumerate(http):
        if route.get("name") in owned:
            continue
        entries = route.get("route") or []
        if all(any(destination_matches(ref, entry, namespace) for entry in entries) for ref in required):
            candidates.append(index)
    wanted = " and ".join(ref.describe() for ref in required)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise RouteError("no http route sends traffic to %s; routes found: %s. Give route: <name>, or check the "
                         "primary/canary hosts" % (wanted, describe_routes(http)))
    raise RouteError("%d http routes send traffic to %s (%s); give route: <name> to choose one. Routes found: %s"
                     % (len(candidates), wanted, ", ".join(_quote_label(route_label(http[i], i)) for i in candidates),
                        describe_routes(http)))


def entry_weight(entries: Sequence[Mapping[str, Any]], index: int) -> int:
    """The effective weight of a route entry: Istio gives a lone destination everything and an unweighted one of several nothing."""
    weight = entries[index].get("weight")
    if weight is None:
        return 100 if len(entries) == 1 else 0
    return int(weight)


def route_weights(route: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{host, subset, port, weight}]`` of a route, in route order."""
    entries = route.get("route") or []
    result = []
    for index, entry in enumerate(entries):
        destination = entry.get("destination") or {}
        result.append({"host": destination.get("host"), "subset": destination.get("subset"),
                       "port": destination_port(destination), "weight": entry_weight(entries, index)})
    return result


def validate_weight(value: Any, what: str = "weight") -> int:
    """An integer percentage 0-100; booleans and fractions are refused rather than rounded."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        else:
            raise RouteError("%s must be a whole number from 0 to 100, got %r" % (what, value))
    if not 0 <= value <= 100:
        raise RouteError("%s must be from 0 to 100, got %d" % (what, value))
    return value


def weights_for_canary(route: Mapping[str, Any], primary_index: int, canary_index: int, canary_weight: int,
                       route_name: str | int) -> dict[int, int]:
    """Weights that give the canary ``canary_weight`` % and the primary the rest.

    Other destinations of the route keep their share; the primary absorbs
    the difference, so a canary share larger than what primary and canary
    hold together is refused instead of silently taking traffic from them.
    """
    canary_weight = validate_weight(canary_weight)
    if primary_index == canary_index:
        raise RouteError("primary and canary both name the same destination of route %s; give them different "
                         "hosts or subsets" % _quote_label(route_name))
    entries = route.get("route") or []
    others = sum(entry_weight(entries, i) for i in range(len(entries)) if i not in (primary_index, canary_index))
    primary_weight = 100 - canary_weight - others
    if primary_weight < 0:
        raise RouteError(
            "canary weight %d does not fit route %s: its other destinations take %d%%, leaving %d%% for primary and "
            "canary. Lower the weight or use weights: to set every destination" % (
                canary_weight, _quote_label(route_name), others, 100 - others))
    return {primary_index: primary_weight, canary_index: canary_weight}


def weights_explicit(route: Mapping[str, Any], assignments: Sequence[tuple[int, int]],
                     route_name: str | int) -> dict[int, int]:
    """Validate explicit ``(destination index, weight)`` pairs; the route's weights must then total 100."""
    entries = route.get("route") or []
    wanted: dict[int, int] = {}
    for index, weight in assignments:
        if index in wanted:
            raise RouteError("weights name destination %s of route %s twice" % (
                describe_destination(entries[index]), _quote_label(route_name)))
        wanted[index] = validate_weight(weight, "weight of %s" % describe_destination(entries[index]))
    total = sum(wanted.get(i, entry_weight(entries, i)) for i in range(len(entries)))
    if total != 100:
        untouched = [i for i in range(len(entries)) if i not in wanted]
        detail = ""
        if untouched:
            detail = " (including destinations not listed, which keep their weights: %s)" % ", ".join(
                "%s=%d" % (describe_destination(entries[i]), entry_weight(entries, i)) for i in untouched)
        raise RouteError("weights of route %s must total 100, they would total %d%s" % (
            _quote_label(route_name), total, detail))
    return wanted


def apply_weights(route: dict[str, Any], weights: Mapping[int, int]) -> list[str]:
    """Set the weights in place; returns a line per destination whose weight changed."""
    entries = route.get("route") or []
    changes = []
    for index, weight in sorted(weights.items()):
        current = entry_weight(entries, index)
        if current != weight:
            entries[index]["weight"] = weight
            changes.append("weight of %s: %d -> %d" % (describe_destination(entries[index]), current, weight))
    return changes


def mirror_state(route: Mapping[str, Any]) -> dict[str, Any]:
    mirror = route.get("mirror")
    if not mirror:
        return {"enabled": False, "host": None, "subset": None, "port": None, "percentage": None}
    percentage = (route.get("mirrorPercentage") or {}).get("value")
    return {"enabled": True, "host": mirror.get("host"), "subset": mirror.get("subset"),
            "port": destination_port(mirror), "percentage": float(percentage) if percentage is not None else 100.0}


def _same_destination(left: Mapping[str, Any], right: Mapping[str, Any], namespace: str) -> bool:
    return (host_key(str(left.get("host")), namespace) == host_key(str(right.get("host")), namespace)
            and left.get("subset") == right.get("subset") and destination_port(left) == destination_port(right))


def apply_mirror(route: dict[str, Any], enabled: bool, target: DestinationRef, percentage: float,
                 namespace: str) -> list[str]:
    """Point the route's mirror at ``target`` with ``percentage``, or clear a mirror that targets it.

    Clearing leaves a mirror to any other destination alone: that one belongs
    to the route's owner, not to the release.
    """
    current = route.get("mirror")
    if not enabled:
        if current and _same_destination(current, target.as_destination(), namespace):
            route.pop("mirror", None)
            route.pop("mirrorPercentage", None)
            return ["mirror to %s removed" % target.describe()]
        return []
    if not 0 <= percentage <= 100:
        raise RouteError("mirror percentage must be from 0 to 100, got %s" % percentage)
    if route.get("mirrors"):
        # Istio refuses a route carrying both forms, and the list belongs to the route's owner.
        raise RouteError("the route already mirrors with 'mirrors' (a list); Istio does not allow 'mirror' next to it. "
                         "Add the canary to that list yourself, or remove it before asking for a mirror")
    changes = []
    if not current or not _same_destination(current, target.as_destination(), namespace):
        before = DestinationRef(str(current.get("host")), current.get("subset"), destination_port(current)).describe() \
            if current else "none"
        route["mirror"] = target.as_destination()
        changes.append("mirror: %s -> %s" % (before, target.describe()))
    current_percentage = (route.get("mirrorPercentage") or {}).get("value")
    if current_percentage is None or float(current_percentage) != float(percentage):
        route["mirrorPercentage"] = {"value": float(percentage)}
        changes.append("mirror percentage: %s -> %s" % (
            "unset (100)" if current_percentage is None else float(current_percentage), float(percentage)))
    return changes


def cookie_match(cookie: str) -> dict[str, Any]:
    """An HTTPMatchRequest for a ``name=value`` cookie, anchored so ``xname=value`` does not match."""
    return {"headers": {"cookie": {"regex": cookie_regex(cookie)}}}


def ab_match_requests(headers: Sequence[Mapping[str, Any]] | None, cookies: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The HTTPMatchRequests (ORed) that send a request to the canary."""
    requests: list[dict[str, Any]] = []
    for entry in headers or []:
        if not isinstance(entry, Mapping) or not entry:
            raise RouteError("match.headers entries must be Istio HTTPMatchRequest mappings such as "
                             "{headers: {x-canary: {exact: insider}}}, got %r" % (entry,))
        requests.append(copy.deepcopy(dict(entry)))
    for entry in cookies or []:
        if isinstance(entry, str) and "=" in entry:
            requests.append(cookie_match(entry))
        elif isinstance(entry, Mapping) and entry:
            requests.append(copy.deepcopy(dict(entry)))
        else:
            raise RouteError("match.cookie entries must be 'name=value' strings or Istio HTTPMatchRequest mappings, "
                             "got %r" % (entry,))
    if not requests:
        raise RouteError("match.state=present needs at least one entry in match.headers or match.cookie")
    return requests


def merge_matches(route_matches: Sequence[Mapping[str, Any]] | None,
                  ab_matches: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """AND the weighted route's own conditions (say a URI prefix) with each A/B condition.

    Istio ORs the entries of ``match`` and ANDs the fields inside one entry,
    so the result is their cross product; mapping fields such as ``headers``
    are merged key by key, with the A/B condition winning a clash.
    """
    if not route_matches:
        return [copy.deepcopy(dict(entry)) for entry in ab_matches]
    merged = []
    for base in route_matches:
        for extra in ab_matches:
            combined = copy.deepcopy(dict(base))
            for key, value in extra.items():
                if isinstance(value, Mapping) and isinstance(combined.get(key), Mapping) and key != "uri":
                    inner = dict(combined[key])
                    inner.update(copy.deepcopy(dict(value)))
                    combined[key] = inner
                else:
                    combined[key] = copy.deepcopy(value)
            merged.append(combined)
    return merged


# Fields of the weighted route that define where and how traffic goes; the
# match route gets its own values, and every other field (retries, timeout,
# headers, rewrite, corsPolicy, ...) is copied so A/B users see the same behaviour.
_MATCH_ROUTE_OWN_FIELDS = ("name", "match", "route", "mirror", "mirrorPercentage", "mirrors")


def build_match_route(owned_name: str, weighted_route: Mapping[str, Any], canary_entry: Mapping[str, Any],
                      ab_matches: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The A/B route: the weighted route's behaviour, the merged conditions, 100 % to the canary."""
    route: dict[str, Any] = {"name": owned_name, "match": merge_matches(weighted_route.get("match"), ab_matches)}
    route["route"] = [{"destination": copy.deepcopy(canary_entry.get("destination") or {}), "weight": 100}]
    for key, value in weighted_route.items():
        if key not in _MATCH_ROUTE_OWN_FIELDS:
            route[key] = copy.deepcopy(value)
    return route


@dataclass
class RouteRequest:
    """What the caller wants of one VirtualService; ``None`` fields are left as they are."""

    name: str
    namespace: str
    primary: DestinationRef
    canary: DestinationRef
    route_name: str | None = None
    weight: int | None = None
    weights: list[tuple[DestinationRef, int]] | None = None
    mirror_enabled: bool | None = None
    mirror_target: DestinationRef | None = None
    mirror_percentage: float = 100.0
    match_state: str | None = None
    match_headers: list[dict[str, Any]] | None = None
    match_cookies: list[Any] | None = None
    session_affinity: SessionAffinity | None = None

    @property
    def owned_match_route(self) -> str:
        return match_route_name(self.name)

    @property
    def owned_route_order(self) -> list[str]:
        """Every route this collection owns in the VirtualService, in the order they must stand."""
        return [self.owned_match_route, sticky_route_name(self.name, "canary"), sticky_route_name(self.name, "primary")]


@dataclass
class RouteEdit:
    """The outcome of applying a :class:`RouteRequest` to one copy of a VirtualService."""

    obj: dict[str, Any]
    changed: bool
    route: str | int
    route_index: int
    previous_weights: list[dict[str, Any]]
    weights: list[dict[str, Any]]
    primary_weight: int | None
    canary_weight: int | None
    mirror: dict[str, Any]
    match: dict[str, Any]
    changes: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    session_affinity: dict[str, Any] = field(default_factory=dict)


def _weight_of(route: Mapping[str, Any], ref: DestinationRef, namespace: str) -> int | None:
    entries = route.get("route") or []
    found = [i for i, entry in enumerate(entries) if destination_matches(ref, entry, namespace)]
    return entry_weight(entries, found[0]) if len(found) == 1 else None


def _route_destination_ref(route: Mapping[str, Any], ref: DestinationRef, namespace: str) -> DestinationRef:
    """``ref`` as the route spells it (FQDN, subset, port), so a mirror reaches the same port the route uses."""
    entries = route.get("route") or []
    found = [entry for entry in entries if destination_matches(ref, entry, namespace)]
    if len(found) != 1:
        return ref
    destination = found[0].get("destination") or {}
    return DestinationRef(host=destination["host"], subset=destination.get("subset"),
                          port=destination_port(destination))


def _owned_index(http: Sequence[Mapping[str, Any]], owned_name: str) -> int | None:
    for index, route in enumerate(http):
        if route.get("name") == owned_name:
            return index
    return None


def _identity_index(http: Sequence[Mapping[str, Any]], route: Mapping[str, Any]) -> int:
    """Where ``route`` (this very dict) stands now: inserting and removing owned routes shifts the weighted one."""
    for index, candidate in enumerate(http):
        if candidate is route:
            return index
    raise RouteError("the weighted route vanished while editing; this is a bug, please report it")


def _insert_owned(http: list[dict[str, Any]], weighted: Mapping[str, Any], name: str, route: dict[str, Any],
                  order: Sequence[str]) -> None:
    """Insert an owned route ahead of the weighted route and of every owned route that must come after it."""
    later = set(order[order.index(name) + 1:])
    positions = [index for index, candidate in enumerate(http) if candidate.get("name") in later]
    http.insert(min(positions + [_identity_index(http, weighted)]), route)


def _arrange_owned(http: list[dict[str, Any]], weighted: Mapping[str, Any], order: Sequence[str],
                   label: str | int) -> list[str]:
    """Put the owned routes back in their order ahead of the weighted route when someone moved them.

    Routes of the user between ours and the weighted route stay where they are
    whenever the order already holds: moving ours across them would change
    which of their requests we catch.
    """
    present = [(name, index) for name in order for index in [_owned_index(http, name)] if index is not None]
    positions = [index for _name, index in present]
    weighted_index = _identity_index(http, weighted)
    if positions == sorted(positions) and all(index < weighted_index for index in positions):
        return []
    routes = [http[index] for index in positions]
    for index in sorted(positions, reverse=True):
        http.pop(index)
    weighted_index = _identity_index(http, weighted)
    for offset, route in enumerate(routes):
        http.insert(weighted_index + offset, route)
    return ["routes %s moved ahead of route %s, in that order" % (
        ", ".join(repr(name) for name, _index in present), _quote_label(label))]


def _find_optional(route: Mapping[str, Any], ref: DestinationRef, namespace: str) -> int | None:
    entries = route.get("route") or []
    found = [index for index, entry in enumerate(entries) if destination_matches(ref, entry, namespace)]
    return found[0] if len(found) == 1 else None


def _check_sticky_route(http: Sequence[Mapping[str, Any]], name: str, refs: Sequence[DestinationRef],
                        namespace: str) -> Mapping[str, Any] | None:
    """The owned sticky route called ``name``, refusing a route of the user's that merely has that name.

    Ours sends everything to one destination, the primary or the canary; any
    other route with our name is someone else's and is never rewritten.
    """
    found = [route for route in http if route.get("name") == name]
    if not found:
        return None
    if len(found) > 1:
        raise RouteError("%d http routes are named %r, the name of the session affinity route this module owns; "
                         "delete the extra ones" % (len(found), name))
    route = found[0]
    entries = route.get("route") or []
    if len(entries) == 1 and entry_weight(entries, 0) == 100 and any(
            destination_matches(ref, entries[0], namespace) for ref in refs):
        return route
    destinations = ", ".join(describe_destination(entry) for entry in entries) or "no destinations"
    raise RouteError(
        "route %r has the name of the session affinity route this module owns, but sends traffic to [%s] rather "
        "than only to %s or %s; it is not ours, so it is left alone. Rename that route, or delete it if an "
        "earlier tool left it" % (name, destinations, refs[0].describe(), refs[1].describe()))


def _sticky_description(route: Mapping[str, Any]) -> str:
    cookie = cookie_of_route(route)
    entries = route.get("route") or [{}]
    text = "requests with cookie %s go to %s" % (cookie.pair if cookie else "?", describe_destination(entries[0]))
    if owned_set_cookie(entries[0], [cookie.name] if cookie else []):
        text += ", which tells them to drop it"
    return text


def _ensure_owned_route(http: list[dict[str, Any]], weighted: Mapping[str, Any], name: str,
                        desired: dict[str, Any] | None, order: Sequence[str], label: str | int) -> list[str]:
    index = _owned_index(http, name)
    if desired is None:
        if index is None:
            return []
        http.pop(index)
        return ["session affinity route %r removed" % name]
    if index is None:
        _insert_owned(http, weighted, name, desired, order)
        return ["session affinity route %r added ahead of route %s: %s" % (
            name, _quote_label(label), _sticky_description(desired))]
    if http[index] != desired:
        http[index] = desired
        return ["session affinity route %r updated: %s" % (name, _sticky_description(desired))]
    return []


def _sticky_route(name: str, weighted: Mapping[str, Any], entry: Mapping[str, Any], cookie: Cookie,
                  set_cookie: str | None = None) -> dict[str, Any]:
    """Requests carrying ``cookie`` go wholly to ``entry``'s destination, with the weighted route's behaviour."""
    route = build_match_route(name, weighted, entry, [cookie_match(cookie.pair)])
    if set_cookie is not None:
        route["route"][0]["headers"] = {"response": {"add": {"Set-Cookie": set_cookie}}}
    return route


def _apply_session_affinity(http: list[dict[str, Any]], weighted: dict[str, Any], request: RouteRequest,
                            affinity: SessionAffinity, label: str | int) -> list[str]:
    """Sticky routes and ``Set-Cookie`` entries for a present affinity; their removal for an absent one.

    Absent keeps, by default, the canary's sticky route as an expiry route: it
    sends holders of the release's canary cookie to the primary and answers
    with ``Max-Age=-1`` so their browsers drop it.  Only those clients see the
    header, so responses of everyone else stay cacheable; the route goes with
    ``expire: false`` or is reused by the next release.
    """
    namespace = request.namespace
    names = {side: sticky_route_name(request.name, side) for side in ("canary", "primary")}
    refs = [request.canary, request.primary]
    existing = {side: _check_sticky_route(http, names[side], refs, namespace) for side in names}
    owned = affinity.owned_names() | {
        cookie.name for cookie in (cookie_of_route(route) for route in existing.values() if route) if cookie}
    entries = weighted.get("route") or []
    changes: list[str] = []
    desired: dict[str, dict[str, Any] | None] = {"canary": None, "primary": None}
    if affinity.state == "present":
        if affinity.cookie is None:
            raise RouteError("session_affinity.state=present needs session_affinity.cookie")
        canary_index = find_destination(weighted, request.canary, namespace, label)
        primary_index = find_destination(weighted, request.primary, namespace, label)
        where = "%s destination %s of route %s"
        changes += edit_set_cookie(entries[canary_index], affinity.cookie.set_cookie(affinity.max_age), owned,
                                   where % ("canary", describe_destination(entries[canary_index]), _quote_label(label)))
        primary_value = None
        if affinity.primary_cookie is not None:
            primary_value = affinity.primary_cookie.set_cookie(affinity.primary_max_age or affinity.max_age)
            desired["primary"] = _sticky_route(names["primary"], weighted, entries[primary_index],
                                               affinity.primary_cookie)
        changes += edit_set_cookie(entries[primary_index], primary_value, owned,
                                   where % ("primary", describe_destination(entries[primary_index]), _quote_label(label)))
        desired["canary"] = _sticky_route(names["canary"], weighted, entries[canary_index], affinity.cookie)
    else:
        for side, ref in (("canary", request.canary), ("primary", request.primary)):
            index = _find_optional(weighted, ref, namespace)
            if index is not None:
                changes += edit_set_cookie(entries[index], None, owned, "%s destination %s of route %s" % (
                    side, describe_destination(entries[index]), _quote_label(label)))
        primary_index = _find_optional(weighted, request.primary, namespace)
        if affinity.expire and existing["canary"] is not None and primary_index is not None:
            # What clients hold is the cookie the route matched, whatever the request says.
            cookie = cookie_of_route(existing["canary"]) or affinity.cookie
            if cookie is not None:
                desired["canary"] = _sticky_route(names["canary"], weighted, entries[primary_index], cookie,
                                                  cookie.set_cookie(-1))
    for side in ("canary", "primary"):
        changes += _ensure_owned_route(http, weighted, names[side], desired[side], request.owned_route_order, label)
    return changes


def _affinity_summary(http: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any],
                      request: RouteRequest) -> dict[str, Any]:
    """The session affinity found after the edit, whatever was asked, so a read-only call reports it too."""
    namespace = request.namespace
    names = {side: sticky_route_name(request.name, side) for side in ("canary", "primary")}
    indexes = {side: _owned_index(http, names[side]) for side in names}
    routes = {side: http[index] if index is not None else None for side, index in indexes.items()}
    cookies = {side: cookie_of_route(route) if route else None for side, route in routes.items()}
    state = "absent"
    canary_route = routes["canary"]
    if canary_route is not None:
        entries = canary_route.get("route") or []
        state = "expiring" if entries and destination_matches(request.primary, entries[0], namespace) else "present"
    owned = {cookie.name for cookie in cookies.values() if cookie}
    if request.session_affinity is not None:
        owned |= request.session_affinity.owned_names()
    set_cookie: dict[str, str | None] = {}
    entries = weighted.get("route") or []
    for side, ref in (("canary", request.canary), ("primary", request.primary)):
        index = _find_optional(weighted, ref, namespace)
        set_cookie[side] = owned_set_cookie(entries[index], owned) if index is not None else None
    return {"state": state,
            "canary_route": names["canary"], "canary_route_index": indexes["canary"],
            "primary_route": names["primary"], "primary_route_index": indexes["primary"],
            "cookie": cookies["canary"].pair if cookies["canary"] else None,
            "primary_cookie": cookies["primary"].pair if cookies["primary"] else None,
            "set_cookie": set_cookie}


def _owned_snapshot(http: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any],
                    request: RouteRequest) -> dict[str, Any]:
    """The weighted route and every route we own, as diff shows them."""
    snapshot: dict[str, Any] = {"route": copy.deepcopy(weighted)}
    match_index = _owned_index(http, request.owned_match_route)
    if match_index is not None:
        snapshot["match_route"] = copy.deepcopy(http[match_index])
    sticky = {name: copy.deepcopy(http[index]) for name in request.owned_route_order[1:]
              for index in [_owned_index(http, name)] if index is not None}
    if sticky:
        snapshot["sticky_routes"] = sticky
    return snapshot


def edit_virtual_service(vs: Mapping[str, Any], request: RouteRequest) -> RouteEdit:
    """Apply ``request`` to a deep copy of ``vs``; raise :class:`RouteError` for anything that cannot be done."""
    obj = copy.deepcopy(dict(vs))
    spec = obj.get("spec")
    http = spec.get("http") if isinstance(spec, dict) else None
    where = "VirtualService %s/%s" % (request.namespace, request.name)
    if not isinstance(http, list) or not http:
        raise RouteError("%s has no http routes (spec.http is empty); this module edits HTTP route weights" % where)
    namespace = request.namespace
    owned_name = request.owned_match_route
    order = request.owned_route_order

    if request.weights:
        required = [ref for ref, _weight in request.weights]
    else:
        required = [request.primary, request.canary]
    try:
        index = select_route(http, namespace, request.route_name, required, owned_route_names=order)
    except RouteError as exc:
        raise RouteError("%s: %s" % (where, exc)) from None
    route = http[index]
    label = route_label(route, index)
    previous_weights = route_weights(route)
    before = _owned_snapshot(http, route, request)
    changes: list[str] = []

    try:
        if request.weight is not None:
            primary_index = find_destination(route, request.primary, namespace, label)
            canary_index = find_destination(route, request.canary, namespace, label)
            changes += apply_weights(route, weights_for_canary(route, primary_index, canary_index, request.weight, label))
        elif request.weights:
            pairs = [(find_destination(route, ref, namespace, label), weight) for ref, weight in request.weights]
            changes += apply_weights(route, weights_explicit(route, pairs, label))

        if request.mirror_enabled is not None:
            target = request.mirror_target or _route_destination_ref(route, request.canary, namespace)
            changes += apply_mirror(route, request.mirror_enabled, target, request.mirror_percentage, namespace)

        owned_index = _owned_index(http, owned_name)
        if request.match_state == "present":
            canary_entry = (route.get("route") or [])[find_destination(route, request.canary, namespace, label)]
            desired = build_match_route(owned_name, route, canary_entry,
                                        ab_match_requests(request.match_headers, request.match_cookies))
            if owned_index is None:
                _insert_owned(http, route, owned_name, desired, order)
                changes.append("match route %r added ahead of route %s" % (owned_name, _quote_label(label)))
            elif http[owned_index] != desired:
                http[owned_index] = desired
                changes.append("match route %r updated" % owned_name)
            owned_index = _owned_index(http, owned_name)
            if owned_index is not None and owned_index > _identity_index(http, route):
                # Istio takes the first matching route, so a match route behind the weighted one would never match.
                _insert_owned(http, route, owned_name, http.pop(owned_index), order)
                changes.append("match route %r moved ahead of route %s" % (owned_name, _quote_label(label)))
        elif request.match_state == "absent" and owned_index is not None:
            http.pop(owned_index)
            changes.append("match route %r removed" % owned_name)

        if request.session_affinity is not None:
            changes += _apply_session_affinity(http, route, request, request.session_affinity, label)
        if request.match_state == "present" or request.session_affinity is not None:
            changes += _arrange_owned(http, route, order, label)
    except SessionAffinityError as exc:
        raise RouteError("%s: %s" % (where, exc.message)) from None
    except RouteError as exc:
        raise RouteError("%s: %s" % (where, exc)) from None

    index = _identity_index(http, route)
    after = _owned_snapshot(http, route, request)
    owned_index = _owned_index(http, owned_name)
    match_info: dict[str, Any] = {"state": "absent", "route": owned_name, "index": None, "match": None}
    if owned_index is not None:
        match_info = {"state": "present", "route": owned_name, "index": owned_index,
                      "match": copy.deepcopy(http[owned_index].get("match"))}
    return RouteEdit(
        obj=obj, changed=bool(changes), route=label, route_index=index, previous_weights=previous_weights,
        weights=route_weights(route), primary_weight=_weight_of(route, request.primary, namespace),
        canary_weight=_weight_of(route, request.canary, namespace), mirror=mirror_state(route), match=match_info,
        changes=changes, before=before, after=after, session_affinity=_affinity_summary(http, route, request))


def request_from_params(params: Mapping[str, Any]) -> RouteRequest:
    """Turn the module's options into a :class:`RouteRequest`, refusing bad values before any API call."""
    name = params["name"]
    primary = destination_ref(params.get("primary"), primary_name(name))
    canary = destination_ref(params.get("canary"), canary_name(name))
    weight = params.get("weight")
    if weight is not None:
        weight = validate_weight(weight)
    weights = None
    if params.get("weights"):
        weights = []
        for entry in params["weights"]:
            ref = destination_ref(entry, "")
            if not ref.host:
                raise RouteError("every entry of weights needs a host, got %r" % (entry,))
            weights.append((ref, validate_weight(entry.get("weight"), "weight of %s" % ref.describe())))
        total = sum(weight_value for _ref, weight_value in weights)
        if total > 100:
            raise RouteError("weights must total 100, they total %d" % total)
    request = RouteRequest(name=name, namespace=params["namespace"], primary=primary, canary=canary,
                           route_name=params.get("route"), weight=weight, weights=weights)
    mirror = params.get("mirror")
    if mirror is not None:
        request.mirror_enabled = bool(mirror.get("enabled", True))
        if mirror.get("host"):
            request.mirror_target = destination_ref(mirror, mirror["host"])
        percentage = mirror.get("percentage")
        request.mirror_percentage = 100.0 if percentage is None else float(percentage)
        if not 0 <= request.mirror_percentage <= 100:
            raise RouteError("mirror.percentage must be from 0 to 100, got %s" % percentage)
    match = params.get("match")
    if match is not None:
        request.match_state = match.get("state") or "present"
        request.match_headers = match.get("headers")
        request.match_cookies = match.get("cookie")
        if request.match_state == "present":
            ab_match_requests(request.match_headers, request.match_cookies)
    affinity = params.get("session_affinity")
    if affinity is not None:
        try:
            request.session_affinity = session_affinity_from_params(affinity)
        except SessionAffinityError as exc:
            raise RouteError(exc.message) from None
    return request
