# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure edits of a Gateway API HTTPRoute's rules, the counterpart of :mod:`istio_routes`.

An edit copies the object and changes only the selected rule's primary and
canary ``backendRefs[].weight``, a ``RequestMirror`` filter of that rule
pointing at the canary, the ``Set-Cookie`` entries this collection adds to
the primary and canary backendRefs, and the rules it owns (an A/B rule and
two sticky rules, named after the HTTPRoute).  parentRefs, hostnames, user
rules, filters and timeouts are carried over unchanged.

Everything this module writes is spelt out with the values the API server
would default (``group``, ``kind``, ``weight``, match ``type``, ``path``), so
the object read back after a write compares equal to the one written and a
second run changes nothing.

The Gateway API does not take the first rule that matches, as Istio does: the
most specific match wins (exact path, longest prefix, method, most headers,
most query parameters) and list order only breaks ties.  The owned rules
carry the weighted rule's matches plus their own conditions, so they are
more specific than the weighted rule; they are still kept ahead of it, in the
order A/B, canary sticky, primary sticky, for the ties.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import (
    canary_name,
    match_route_name,
    primary_name,
    sticky_route_name,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import RouteEdit, validate_weight
from ansible_collections.progressive.delivery.plugins.module_utils.routing.sticky import (
    SET_COOKIE,
    Cookie,
    SessionAffinity,
    SessionAffinityError,
    cookie_from_regex,
    cookie_regex,
    parse_cookie,
    session_affinity_from_params,
)

REQUEST_MIRROR = "RequestMirror"
RESPONSE_HEADER_MODIFIER = "ResponseHeaderModifier"
EXACT = "Exact"
PATH_PREFIX = "PathPrefix"
REGULAR_EXPRESSION = "RegularExpression"
# What the API server writes for a match without a path, so owned rules are stored as written.
DEFAULT_PATH = {"type": PATH_PREFIX, "value": "/"}
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
_REGEX_SPECIAL = ".^$*+?()[]{}|\\"
# Istio HTTPMatchRequest fields with no HTTPRouteMatch equivalent, and why.
_UNSUPPORTED_MATCH_FIELDS = {
    "sourceLabels": "an HTTPRoute matches requests, not the workload that sends them",
    "sourceNamespace": "an HTTPRoute matches requests, not the namespace they come from",
    "gateways": "an HTTPRoute attaches to gateways through spec.parentRefs, not per match",
    "port": "an HTTPRoute picks a listener port through spec.parentRefs[].port or sectionName, not per match",
    "authority": "an HTTPRoute selects hosts through spec.hostnames, not per match",
    "scheme": "HTTPRouteMatch has no scheme condition",
    "ignoreUriCase": "Gateway API path matches are always case-sensitive",
    "withoutHeaders": "HTTPRouteMatch has no negative header condition",
    "statPrefix": "HTTPRouteMatch has no statistics prefix",
}


class HTTPRouteEditError(DeliveryError, ValueError):
    """The request cannot be applied to this HTTPRoute; the message says why and what to do."""


@dataclass(frozen=True)
class BackendRef:
    """A Service backend as the user names it: name plus optional port."""

    name: str
    port: int | None = None

    def describe(self) -> str:
        return self.name if self.port is None else "%s port %d" % (self.name, self.port)


@dataclass
class HTTPRouteRequest:
    """What the caller wants of one HTTPRoute; ``None`` fields are left as they are."""

    name: str
    namespace: str
    primary: BackendRef
    canary: BackendRef
    rule_name: str | None = None
    weight: int | None = None
    mirror_enabled: bool | None = None
    mirror_percentage: float = 100.0
    match_state: str | None = None
    match_headers: list[dict[str, Any]] | None = None
    match_cookies: list[Any] | None = None
    session_affinity: SessionAffinity | None = None

    @property
    def owned_match_rule(self) -> str:
        return match_route_name(self.name)

    @property
    def owned_rule_order(self) -> list[str]:
        """Every rule this collection owns in the HTTPRoute, in the order they stand ahead of the weighted rule."""
        return [self.owned_match_rule, sticky_route_name(self.name, "canary"), sticky_route_name(self.name, "primary")]


# ---------------------------------------------------------------- backendRefs


def backend_matches(ref: BackendRef, entry: Mapping[str, Any], namespace: str) -> bool:
    """True when a backendRef is the Service ``ref`` names in the route's namespace (any port unless given)."""
    if not isinstance(entry, Mapping) or entry.get("name") != ref.name:
        return False
    if (entry.get("group") or "") != "" or (entry.get("kind") or "Service") != "Service":
        return False
    if (entry.get("namespace") or namespace) != namespace:
        return False
    return ref.port is None or entry.get("port") == ref.port


def describe_backend(entry: Mapping[str, Any]) -> str:
    text = str(entry.get("name"))
    if entry.get("kind") not in (None, "Service") or entry.get("group"):
        text = "%s %s" % (entry.get("kind"), text)
    if entry.get("namespace"):
        text += " in namespace %s" % entry["namespace"]
    if entry.get("port") is not None:
        text += " port %s" % entry["port"]
    return text


def backend_weight(entry: Mapping[str, Any]) -> int:
    """The effective weight of a backendRef: the API defaults a missing weight to 1."""
    weight = entry.get("weight")
    return 1 if weight is None else int(weight)


def rule_label(rule: Mapping[str, Any], index: int) -> str | int:
    """How results name a rule: its ``name`` (Gateway API v1.2+) when it has one, else its index in ``rules``."""
    return rule.get("name") or index


def _quote(label: str | int) -> str:
    return "#%d" % label if isinstance(label, int) else repr(label)


def describe_rules(rules: Sequence[Mapping[str, Any]]) -> str:
    if not rules:
        return "none (spec.rules is empty)"
    parts = []
    for index, rule in enumerate(rules):
        label = "%r" % rule["name"] if rule.get("name") else "#%d (unnamed)" % index
        backends = ", ".join(describe_backend(entry) for entry in rule.get("backendRefs") or []) or "no backendRefs"
        parts.append("%s -> [%s]" % (label, backends))
    return "; ".join(parts)


def find_backend(rule: Mapping[str, Any], ref: BackendRef, namespace: str, label: str | int) -> int:
    """Index of the one backendRef of ``rule`` that ``ref`` names; an error when none or several."""
    entries = rule.get("backendRefs") or []
    found = [index for index, entry in enumerate(entries) if backend_matches(ref, entry, namespace)]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(describe_backend(entry) for entry in entries) or "none"
    if not found:
        raise HTTPRouteEditError("backendRef %s is not in rule %s (its backendRefs: %s). Add it to the rule, or give "
                                 "the right primary/canary name and port" % (ref.describe(), _quote(label), listed))
    raise HTTPRouteEditError("backendRef %s matches %d backendRefs of rule %s (%s); give its port to pick one"
                             % (ref.describe(), len(found), _quote(label), listed))


def _find_optional(rule: Mapping[str, Any], ref: BackendRef, namespace: str) -> int | None:
    entries = rule.get("backendRefs") or []
    found = [index for index, entry in enumerate(entries) if backend_matches(ref, entry, namespace)]
    return found[0] if len(found) == 1 else None


def rule_weights(rule: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{name, port, weight}]`` of a rule's backendRefs, in rule order."""
    return [{"name": entry.get("name"), "port": entry.get("port"), "weight": backend_weight(entry)}
            for entry in rule.get("backendRefs") or []]


def _weight_of(rule: Mapping[str, Any], ref: BackendRef, namespace: str) -> int | None:
    index = _find_optional(rule, ref, namespace)
    return backend_weight((rule.get("backendRefs") or [])[index]) if index is not None else None


def select_rule(rules: Sequence[Mapping[str, Any]], namespace: str, rule_name: str | None,
                required: Sequence[BackendRef], owned: Sequence[str]) -> int:
    """Index of the rule to edit: by name (or index, for an unnamed rule), else the one rule holding both backends.

    The rules this collection owns are never picked implicitly: each sends
    everything to one backend and is managed on its own.
    """
    if rule_name is not None:
        found = [index for index, rule in enumerate(rules) if rule.get("name") == rule_name]
        if len(found) == 1:
            return found[0]
        if not found and rule_name.isdigit() and int(rule_name) < len(rules) and not rules[int(rule_name)].get("name"):
            # Rule names are a v1.2 field; rules written without one can only be told apart by position.
            return int(rule_name)
        if not found:
            raise HTTPRouteEditError("no rule named %r; rules found: %s" % (rule_name, describe_rules(rules)))
        raise HTTPRouteEditError("%d rules are named %r; rule names must be unique to select one. Rules found: %s"
                                 % (len(found), rule_name, describe_rules(rules)))
    candidates = [index for index, rule in enumerate(rules) if rule.get("name") not in owned and all(
        any(backend_matches(ref, entry, namespace) for entry in rule.get("backendRefs") or []) for ref in required)]
    wanted = " and ".join(ref.describe() for ref in required)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise HTTPRouteEditError("no rule sends traffic to %s; rules found: %s. Give rule: <name>, or check the "
                                 "primary/canary names" % (wanted, describe_rules(rules)))
    raise HTTPRouteEditError("%d rules send traffic to %s (%s); give rule: <name> to choose one. Rules found: %s"
                             % (len(candidates), wanted, ", ".join(_quote(rule_label(rules[i], i)) for i in candidates),
                                describe_rules(rules)))


def weights_for_canary(rule: Mapping[str, Any], primary_index: int, canary_index: int, canary_weight: int,
                       label: str | int) -> dict[int, int]:
    """Weights giving the canary ``canary_weight`` and the primary the rest of 100.

    Other backendRefs keep their weight; the primary absorbs the difference,
    so a canary share larger than what primary and canary hold together is
    refused rather than taken from someone else's backend.
    """
    canary_weight = validate_weight(canary_weight)
    if primary_index == canary_index:
        raise HTTPRouteEditError("primary and canary both name the same backendRef of rule %s; give them different "
                                 "names or ports" % _quote(label))
    entries = rule.get("backendRefs") or []
    others = sum(backend_weight(entries[i]) for i in range(len(entries)) if i not in (primary_index, canary_index))
    primary_weight = 100 - canary_weight - others
    if primary_weight < 0:
        raise HTTPRouteEditError(
            "canary weight %d does not fit rule %s: its other backendRefs weigh %d, leaving %d of 100 for primary and "
            "canary. Lower the weight or the other backendRefs' weights"
            % (canary_weight, _quote(label), others, 100 - others))
    return {primary_index: primary_weight, canary_index: canary_weight}


def apply_weights(rule: dict[str, Any], weights: Mapping[int, int]) -> list[str]:
    entries = rule.get("backendRefs") or []
    changes = []
    for index, weight in sorted(weights.items()):
        current = backend_weight(entries[index])
        if current != weight or entries[index].get("weight") is None:
            entries[index]["weight"] = weight
        if current != weight:
            changes.append("weight of %s: %d -> %d" % (describe_backend(entries[index]), current, weight))
    return changes


# ---------------------------------------------------------------- mirror


def _is_mirror_to(filter_: Mapping[str, Any], ref: BackendRef, namespace: str) -> bool:
    if not isinstance(filter_, Mapping) or filter_.get("type") != REQUEST_MIRROR:
        return False
    target = (filter_.get("requestMirror") or {}).get("backendRef") or {}
    return backend_matches(BackendRef(ref.name), target, namespace)


def mirror_percentage_of(filter_: Mapping[str, Any]) -> float:
    mirror = filter_.get("requestMirror") or {}
    if mirror.get("percent") is not None:
        return float(mirror["percent"])
    fraction = mirror.get("fraction")
    if isinstance(fraction, Mapping) and fraction.get("numerator") is not None:
        return 100.0 * float(fraction["numerator"]) / float(fraction.get("denominator") or 100)
    return 100.0


def mirror_filter(target: Mapping[str, Any], percentage: float) -> dict[str, Any]:
    """A RequestMirror filter to ``target``; a whole percentage is ``percent``, any other a ``fraction``.

    100 % is written with neither, which every Gateway API version reads as
    "mirror everything", so clusters older than v1.2 (no percent) can mirror too.
    """
    backend: dict[str, Any] = {"group": "", "kind": "Service", "name": target["name"]}
    if target.get("port") is not None:
        backend["port"] = target["port"]
    mirror: dict[str, Any] = {"backendRef": backend}
    if percentage < 100:
        if float(percentage).is_integer():
            mirror["percent"] = int(percentage)
        else:
            # Fractions keep three decimals of a percentage: 12.5 % is 12500/100000.
            mirror["fraction"] = {"numerator": int(round(percentage * 1000)), "denominator": 100000}
    return {"type": REQUEST_MIRROR, "requestMirror": mirror}


def mirror_state(rule: Mapping[str, Any], ref: BackendRef, namespace: str) -> dict[str, Any]:
    for filter_ in rule.get("filters") or []:
        if _is_mirror_to(filter_, ref, namespace):
            backend = filter_["requestMirror"]["backendRef"]
            return {"enabled": True, "name": backend.get("name"), "port": backend.get("port"),
                    "percentage": mirror_percentage_of(filter_)}
    return {"enabled": False, "name": None, "port": None, "percentage": None}


def apply_mirror(rule: dict[str, Any], enabled: bool, canary_entry: Mapping[str, Any], ref: BackendRef,
                 percentage: float, namespace: str, label: str | int) -> list[str]:
    """Add, update or remove the rule's RequestMirror filter to the canary; mirrors to other backends stay."""
    filters = rule.get("filters") or []
    ours = [index for index, filter_ in enumerate(filters) if _is_mirror_to(filter_, ref, namespace)]
    if not enabled:
        if not ours:
            return []
        for index in reversed(ours):
            filters.pop(index)
        if not filters:
            rule.pop("filters", None)
        return ["mirror to %s removed from rule %s" % (ref.name, _quote(label))]
    if not 0 <= percentage <= 100:
        raise HTTPRouteEditError("mirror percentage must be from 0 to 100, got %s" % percentage)
    desired = mirror_filter(canary_entry, percentage)
    if len(ours) == 1 and filters[ours[0]] == desired:
        return []
    if ours:
        filters[ours[0]] = desired
        for index in reversed(ours[1:]):
            filters.pop(index)
        return ["mirror to %s in rule %s: %s%% of requests" % (ref.name, _quote(label), float(percentage))]
    rule.setdefault("filters", []).append(desired)
    return ["mirror to %s added to rule %s: %s%% of requests" % (ref.name, _quote(label), float(percentage))]


# ---------------------------------------------------------------- matches


def _regex_escape(text: str) -> str:
    return "".join("\\" + char if char in _REGEX_SPECIAL else char for char in text)


def _string_match(value: Any, what: str) -> tuple[str, str]:
    """An Istio StringMatch as an HTTPRoute (type, value); prefix becomes an anchored regular expression."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise HTTPRouteEditError("%s must be one of {exact: ...}, {prefix: ...} or {regex: ...}, got %r"
                                 % (what, value))
    kind, text = next(iter(value.items()))
    if not isinstance(text, str) or text == "":
        raise HTTPRouteEditError("%s: %s needs a non-empty string, got %r" % (what, kind, text))
    if kind == "exact":
        return EXACT, text
    if kind == "regex":
        return REGULAR_EXPRESSION, text
    if kind == "prefix":
        return REGULAR_EXPRESSION, "^%s.*" % _regex_escape(text)
    raise HTTPRouteEditError("%s: %r is not an Istio string match; use exact, prefix or regex" % (what, kind))


def convert_istio_match(entry: Any, what: str = "match.headers") -> dict[str, Any]:
    """One Istio HTTPMatchRequest (Flagger's ``analysis.match`` entry) as an HTTPRouteMatch."""
    if not isinstance(entry, Mapping) or not entry:
        raise HTTPRouteEditError("%s entries must be Istio HTTPMatchRequest mappings such as "
                                 "{headers: {x-canary: {exact: insider}}}, got %r" % (what, entry))
    for key in entry:
        if key in _UNSUPPORTED_MATCH_FIELDS:
            raise HTTPRouteEditError("%s: %r cannot be expressed in an HTTPRoute: %s. Use headers, queryParams, uri "
                                     "or method" % (what, key, _UNSUPPORTED_MATCH_FIELDS[key]))
        if key not in ("headers", "queryParams", "uri", "method", "name"):
            raise HTTPRouteEditError("%s: unknown HTTPMatchRequest field %r; an HTTPRoute can match headers, "
                                     "queryParams, uri and method" % (what, key))
    match: dict[str, Any] = {}
    if entry.get("uri") is not None:
        kind, value = _string_match(entry["uri"], what + ".uri")
        if "prefix" in entry["uri"]:
            # Gateway API prefixes match whole path segments: /api matches /api/x but not /apix.
            kind, value = PATH_PREFIX, entry["uri"]["prefix"]
        match["path"] = {"type": kind, "value": value}
    if entry.get("method") is not None:
        method = entry["method"]
        if not isinstance(method, Mapping) or set(method) != {"exact"} or str(method["exact"]).upper() not in HTTP_METHODS:
            raise HTTPRouteEditError("%s.method must be {exact: <%s>}: an HTTPRoute matches one method exactly, got %r"
                                     % (what, "|".join(HTTP_METHODS), method))
        match["method"] = str(method["exact"]).upper()
    for field, label in (("headers", "headers"), ("queryParams", "queryParams")):
        conditions = entry.get(field)
        if conditions is None:
            continue
        if not isinstance(conditions, Mapping):
            raise HTTPRouteEditError("%s.%s must map names to string matches, got %r" % (what, field, conditions))
        converted = []
        for name, condition in conditions.items():
            kind, value = _string_match(condition, "%s.%s.%s" % (what, label, name))
            converted.append({"name": str(name), "type": kind, "value": value})
        if converted:
            match[field] = converted
    match.setdefault("path", dict(DEFAULT_PATH))
    return match


def cookie_route_match(cookie: Cookie) -> dict[str, Any]:
    """An HTTPRouteMatch for a ``name=value`` cookie, anchored so ``xname=value`` does not match."""
    return {"path": dict(DEFAULT_PATH),
            "headers": [{"name": "Cookie", "type": REGULAR_EXPRESSION, "value": cookie_regex(cookie.pair)}]}


def ab_route_matches(headers: Sequence[Any] | None, cookies: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The HTTPRouteMatches (ORed) that send a request to the canary."""
    matches = [convert_istio_match(entry) for entry in headers or []]
    for entry in cookies or []:
        if isinstance(entry, str):
            try:
                matches.append(cookie_route_match(parse_cookie(entry, "match.cookie")))
            except SessionAffinityError as exc:
                raise HTTPRouteEditError(exc.message) from None
        else:
            matches.append(convert_istio_match(entry, "match.cookie"))
    if not matches:
        raise HTTPRouteEditError("match.state=present needs at least one entry in match.headers or match.cookie")
    return matches


def _merge_named(base: Sequence[Mapping[str, Any]], extra: Sequence[Mapping[str, Any]],
                 fold: Callable[[str], str]) -> list[dict[str, Any]]:
    merged = [copy.deepcopy(dict(item)) for item in base]
    for item in extra:
        key = fold(str(item.get("name")))
        kept = [index for index, existing in enumerate(merged) if fold(str(existing.get("name"))) == key]
        if kept:
            merged[kept[0]] = copy.deepcopy(dict(item))
        else:
            merged.append(copy.deepcopy(dict(item)))
    return merged


def merge_route_matches(rule_matches: Sequence[Mapping[str, Any]] | None,
                        extra: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """AND the weighted rule's own matches with each extra condition (their cross product).

    Header names compare case-insensitively as HTTP does, query parameter
    names exactly; the extra condition wins a clash, and its path or method,
    when it has one, replaces the rule's.
    """
    merged = []
    for base in rule_matches or [{"path": dict(DEFAULT_PATH)}]:
        for condition in extra:
            combined = copy.deepcopy(dict(base))
            if condition.get("path") is not None and condition["path"] != DEFAULT_PATH:
                combined["path"] = copy.deepcopy(condition["path"])
            if condition.get("method") is not None:
                combined["method"] = condition["method"]
            for field, fold in (("headers", str.lower), ("queryParams", str)):
                if condition.get(field):
                    combined[field] = _merge_named(combined.get(field) or [], condition[field], fold)
            combined.setdefault("path", dict(DEFAULT_PATH))
            merged.append(combined)
    return merged


# ---------------------------------------------------------------- Set-Cookie on backendRefs


def _cookie_name(value: Any) -> str | None:
    if not isinstance(value, str) or "=" not in value:
        return None
    return value.split("=", 1)[0].strip()


def _modifier(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    for filter_ in entry.get("filters") or []:
        if isinstance(filter_, dict) and filter_.get("type") == RESPONSE_HEADER_MODIFIER:
            return filter_
    return None


def _set_cookie_headers(modifier: Mapping[str, Any] | None, field: str) -> list[dict[str, Any]]:
    headers = ((modifier or {}).get("responseHeaderModifier") or {}).get(field) or []
    return [header for header in headers if str(header.get("name", "")).lower() == SET_COOKIE.lower()]


def owned_backend_set_cookie(entry: Mapping[str, Any], owned_names: set[str]) -> str | None:
    """Our ``Set-Cookie`` on a backendRef, recognised by the cookie name; ``None`` when absent or not ours."""
    for header in _set_cookie_headers(_modifier(entry), "add"):
        if _cookie_name(header.get("value")) in owned_names:
            return header.get("value")
    return None


def edit_backend_set_cookie(entry: dict[str, Any], desired: str | None, owned_names: set[str], where: str) -> list[str]:
    """Make the backendRef's ResponseHeaderModifier add ``desired`` as ``Set-Cookie`` (``None``: none of ours).

    ``add`` is a list keyed by header name, so a ``Set-Cookie`` of the user's
    cannot sit next to ours: that is refused, never overwritten.  Whatever we
    emptied is removed again, so an absent affinity leaves the backendRef as
    it was.
    """
    modifier = _modifier(entry)
    headers = _set_cookie_headers(modifier, "add") + _set_cookie_headers(modifier, "set")
    ours = [header for header in headers if _cookie_name(header.get("value")) in owned_names]
    foreign = [header for header in headers if header not in ours]
    if foreign:
        if desired is None:
            return []
        raise HTTPRouteEditError(
            "%s already sets its own Set-Cookie response header (%r); a ResponseHeaderModifier holds one Set-Cookie "
            "entry, and session affinity needs it. Move that cookie to a filter of the rule, or set it in the "
            "application" % (where, foreign[0].get("value")))
    current = ours[0].get("value") if ours else None
    if desired is None:
        if modifier is None or not ours:
            return []
        body = modifier["responseHeaderModifier"]
        body["add"] = [header for header in body.get("add") or [] if header not in ours]
        if not body["add"]:
            del body["add"]
        if not body:
            entry["filters"].remove(modifier)
            if not entry["filters"]:
                del entry["filters"]
        return ["Set-Cookie %r removed from %s" % (current, where)]
    if current == desired:
        return []
    if ours:
        ours[0]["value"] = desired
        return ["Set-Cookie of %s: %r -> %r" % (where, current, desired)]
    if modifier is None:
        modifier = {"type": RESPONSE_HEADER_MODIFIER, "responseHeaderModifier": {}}
        entry.setdefault("filters", []).append(modifier)
    modifier.setdefault("responseHeaderModifier", {}).setdefault("add", []).append(
        {"name": SET_COOKIE, "value": desired})
    return ["Set-Cookie %r added to %s" % (desired, where)]


# ---------------------------------------------------------------- owned rules

# Fields of the weighted rule that say where traffic goes; an owned rule has
# its own, and copies every other field (timeouts, retry, sessionPersistence...)
# so its users see the same behaviour.
_OWNED_RULE_OWN_FIELDS = ("name", "matches", "backendRefs", "filters")


def _backend_copy(entry: Mapping[str, Any], set_cookie: str | None = None) -> dict[str, Any]:
    """The backendRef ``entry`` names, with everything the API server defaults, taking 100 % of the rule."""
    backend: dict[str, Any] = {"group": entry.get("group") or "", "kind": entry.get("kind") or "Service",
                               "name": entry.get("name"), "weight": 100}
    for key in ("namespace", "port"):
        if entry.get(key) is not None:
            backend[key] = entry[key]
    if set_cookie is not None:
        backend["filters"] = [{"type": RESPONSE_HEADER_MODIFIER,
                               "responseHeaderModifier": {"add": [{"name": SET_COOKIE, "value": set_cookie}]}}]
    return backend


def build_owned_rule(name: str, weighted: Mapping[str, Any], backend: Mapping[str, Any],
                     conditions: Sequence[Mapping[str, Any]], canary: BackendRef, namespace: str,
                     set_cookie: str | None = None) -> dict[str, Any]:
    """A rule sending requests that meet the weighted rule's matches and ``conditions`` wholly to ``backend``.

    The weighted rule's filters come along, except our mirror to the canary:
    mirroring canary traffic to the canary would only double it.
    """
    rule: dict[str, Any] = {"name": name, "matches": merge_route_matches(weighted.get("matches"), conditions),
                            "backendRefs": [_backend_copy(backend, set_cookie)]}
    filters = [copy.deepcopy(f) for f in weighted.get("filters") or [] if not _is_mirror_to(f, canary, namespace)]
    if filters:
        rule["filters"] = filters
    for key, value in weighted.items():
        if key not in _OWNED_RULE_OWN_FIELDS:
            rule[key] = copy.deepcopy(value)
    return rule


def _owned_index(rules: Sequence[Mapping[str, Any]], name: str) -> int | None:
    for index, rule in enumerate(rules):
        if rule.get("name") == name:
            return index
    return None


def _identity_index(rules: Sequence[Mapping[str, Any]], rule: Mapping[str, Any]) -> int:
    for index, candidate in enumerate(rules):
        if candidate is rule:
            return index
    raise HTTPRouteEditError("the weighted rule vanished while editing; this is a bug, please report it")


def _insert_owned(rules: list[dict[str, Any]], weighted: Mapping[str, Any], name: str, rule: dict[str, Any],
                  order: Sequence[str]) -> None:
    """Insert an owned rule ahead of the weighted rule and of every owned rule that must come after it."""
    later = set(order[order.index(name) + 1:])
    positions = [index for index, candidate in enumerate(rules) if candidate.get("name") in later]
    rules.insert(min(positions + [_identity_index(rules, weighted)]), rule)


def _ensure_owned(rules: list[dict[str, Any]], weighted: Mapping[str, Any], name: str,
                  desired: dict[str, Any] | None, order: Sequence[str], label: str | int, what: str) -> list[str]:
    index = _owned_index(rules, name)
    if desired is None:
        if index is None:
            return []
        rules.pop(index)
        return ["%s rule %r removed" % (what, name)]
    if index is None:
        _insert_owned(rules, weighted, name, desired, order)
        return ["%s rule %r added ahead of rule %s" % (what, name, _quote(label))]
    if rules[index] != desired:
        rules[index] = desired
        return ["%s rule %r updated" % (what, name)]
    return []


def _arrange_owned(rules: list[dict[str, Any]], weighted: Mapping[str, Any], order: Sequence[str],
                   label: str | int) -> list[str]:
    """Put the owned rules back in their order ahead of the weighted rule when someone moved them."""
    present = [(name, index) for name in order for index in [_owned_index(rules, name)] if index is not None]
    positions = [index for _name, index in present]
    if positions == sorted(positions) and all(index < _identity_index(rules, weighted) for index in positions):
        return []
    moved = [rules[index] for index in positions]
    for index in sorted(positions, reverse=True):
        rules.pop(index)
    weighted_index = _identity_index(rules, weighted)
    for offset, rule in enumerate(moved):
        rules.insert(weighted_index + offset, rule)
    return ["rules %s moved ahead of rule %s, in that order" % (
        ", ".join(repr(name) for name, _index in present), _quote(label))]


def cookie_of_rule(rule: Mapping[str, Any]) -> Cookie | None:
    """The cookie an owned sticky rule matches."""
    for match in rule.get("matches") or []:
        for header in match.get("headers") or [] if isinstance(match, Mapping) else []:
            if str(header.get("name", "")).lower() == "cookie" and header.get("type") == REGULAR_EXPRESSION:
                found = cookie_from_regex(header.get("value"))
                if found is not None:
                    return found
    return None


def _check_owned_rule(rules: Sequence[Mapping[str, Any]], name: str, refs: Sequence[BackendRef],
                      namespace: str, what: str) -> Mapping[str, Any] | None:
    """The owned rule called ``name``, refusing a rule of the user's that merely has that name.

    Ours sends everything to the primary or the canary; any other rule with
    our name is someone else's and is never rewritten.
    """
    found = [rule for rule in rules if rule.get("name") == name]
    if not found:
        return None
    if len(found) > 1:
        raise HTTPRouteEditError("%d rules are named %r, the name of the %s rule this module owns; delete the extra "
                                 "ones" % (len(found), name, what))
    entries = found[0].get("backendRefs") or []
    if len(entries) == 1 and any(backend_matches(ref, entries[0], namespace) for ref in refs):
        return found[0]
    backends = ", ".join(describe_backend(entry) for entry in entries) or "no backendRefs"
    raise HTTPRouteEditError(
        "rule %r has the name of the %s rule this module owns, but sends traffic to [%s] rather than only to %s; it "
        "is not ours, so it is left alone. Rename that rule, or delete it if an earlier tool left it"
        % (name, what, backends, " or ".join(ref.describe() for ref in refs)))


def _apply_session_affinity(rules: list[dict[str, Any]], weighted: dict[str, Any], request: HTTPRouteRequest,
                            affinity: SessionAffinity, label: str | int) -> list[str]:
    """Sticky rules and ``Set-Cookie`` entries for a present affinity; their removal for an absent one.

    Absent keeps, by default, the canary's sticky rule as an expiry rule (as
    Flagger does with the previous cookie): holders of the canary cookie go to
    the primary, whose answer carries ``Max-Age=-1`` so their browsers drop it.
    """
    namespace = request.namespace
    names = {side: sticky_route_name(request.name, side) for side in ("canary", "primary")}
    refs = [request.canary, request.primary]
    existing = {side: _check_owned_rule(rules, names[side], refs, namespace, "session affinity") for side in names}
    owned = affinity.owned_names() | {cookie.name for cookie in (
        cookie_of_rule(rule) for rule in existing.values() if rule) if cookie}
    entries = weighted.get("backendRefs") or []
    where = "%s backendRef %s of rule %s"
    changes: list[str] = []
    desired: dict[str, dict[str, Any] | None] = {"canary": None, "primary": None}
    if affinity.state == "present":
        if affinity.cookie is None:
            raise HTTPRouteEditError("session_affinity.state=present needs session_affinity.cookie")
        canary_index = find_backend(weighted, request.canary, namespace, label)
        primary_index = find_backend(weighted, request.primary, namespace, label)
        changes += edit_backend_set_cookie(entries[canary_index], affinity.cookie.set_cookie(affinity.max_age), owned,
                                           where % ("canary", describe_backend(entries[canary_index]), _quote(label)))
        primary_value = None
        if affinity.primary_cookie is not None:
            primary_value = affinity.primary_cookie.set_cookie(affinity.primary_max_age or affinity.max_age)
            desired["primary"] = build_owned_rule(names["primary"], weighted, entries[primary_index],
                                                  [cookie_route_match(affinity.primary_cookie)], request.canary,
                                                  namespace)
        changes += edit_backend_set_cookie(entries[primary_index], primary_value, owned,
                                           where % ("primary", describe_backend(entries[primary_index]), _quote(label)))
        desired["canary"] = build_owned_rule(names["canary"], weighted, entries[canary_index],
                                             [cookie_route_match(affinity.cookie)], request.canary, namespace)
    else:
        for side, ref in (("canary", request.canary), ("primary", request.primary)):
            index = _find_optional(weighted, ref, namespace)
            if index is not None:
                changes += edit_backend_set_cookie(entries[index], None, owned, where % (
                    side, describe_backend(entries[index]), _quote(label)))
        primary_index = _find_optional(weighted, request.primary, namespace)
        if affinity.expire and existing["canary"] is not None and primary_index is not None:
            # What clients hold is the cookie the rule matched, whatever the request says.
            cookie = cookie_of_rule(existing["canary"]) or affinity.cookie
            if cookie is not None:
                desired["canary"] = build_owned_rule(names["canary"], weighted, entries[primary_index],
                                                     [cookie_route_match(cookie)], request.canary, namespace,
                                                     set_cookie=cookie.set_cookie(-1))
    for side in ("canary", "primary"):
        changes += _ensure_owned(rules, weighted, names[side], desired[side], request.owned_rule_order, label,
                                 "session affinity")
    return changes


def _affinity_summary(rules: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any],
                      request: HTTPRouteRequest) -> dict[str, Any]:
    """The session affinity found after the edit, whatever was asked, so a read-only call reports it too."""
    namespace = request.namespace
    names = {side: sticky_route_name(request.name, side) for side in ("canary", "primary")}
    indexes = {side: _owned_index(rules, names[side]) for side in names}
    found = {side: rules[index] if index is not None else None for side, index in indexes.items()}
    cookies = {side: cookie_of_rule(rule) if rule else None for side, rule in found.items()}
    state = "absent"
    if found["canary"] is not None:
        entries = found["canary"].get("backendRefs") or []
        state = "expiring" if entries and backend_matches(request.primary, entries[0], namespace) else "present"
    owned = {cookie.name for cookie in cookies.values() if cookie}
    if request.session_affinity is not None:
        owned |= request.session_affinity.owned_names()
    entries = weighted.get("backendRefs") or []
    set_cookie: dict[str, str | None] = {}
    for side, ref in (("canary", request.canary), ("primary", request.primary)):
        index = _find_optional(weighted, ref, namespace)
        set_cookie[side] = owned_backend_set_cookie(entries[index], owned) if index is not None else None
    return {"state": state,
            "canary_route": names["canary"], "canary_route_index": indexes["canary"],
            "primary_route": names["primary"], "primary_route_index": indexes["primary"],
            "cookie": cookies["canary"].pair if cookies["canary"] else None,
            "primary_cookie": cookies["primary"].pair if cookies["primary"] else None,
            "set_cookie": set_cookie}


def _owned_snapshot(rules: Sequence[Mapping[str, Any]], weighted: Mapping[str, Any],
                    request: HTTPRouteRequest) -> dict[str, Any]:
    """The weighted rule and every rule we own, as diff shows them."""
    snapshot: dict[str, Any] = {"rule": copy.deepcopy(weighted)}
    match_index = _owned_index(rules, request.owned_match_rule)
    if match_index is not None:
        snapshot["match_rule"] = copy.deepcopy(rules[match_index])
    sticky = {name: copy.deepcopy(rules[index]) for name in request.owned_rule_order[1:]
              for index in [_owned_index(rules, name)] if index is not None}
    if sticky:
        snapshot["sticky_rules"] = sticky
    return snapshot


def edit_http_route(route: Mapping[str, Any], request: HTTPRouteRequest) -> RouteEdit:
    """Apply ``request`` to a deep copy of ``route``; raise :class:`HTTPRouteEditError` for what cannot be done."""
    obj = copy.deepcopy(dict(route))
    spec = obj.get("spec")
    rules = spec.get("rules") if isinstance(spec, dict) else None
    where = "HTTPRoute %s/%s" % (request.namespace, request.name)
    if not isinstance(rules, list) or not rules:
        raise HTTPRouteEditError("%s has no rules (spec.rules is empty); this module edits the weights of a rule's "
                                 "backendRefs" % where)
    namespace = request.namespace
    order = request.owned_rule_order
    try:
        index = select_rule(rules, namespace, request.rule_name, [request.primary, request.canary], order)
    except HTTPRouteEditError as exc:
        raise HTTPRouteEditError("%s: %s" % (where, exc)) from None
    weighted = rules[index]
    label = rule_label(weighted, index)
    previous_weights = rule_weights(weighted)
    before = _owned_snapshot(rules, weighted, request)
    changes: list[str] = []
    try:
        if request.weight is not None:
            primary_index = find_backend(weighted, request.primary, namespace, label)
            canary_index = find_backend(weighted, request.canary, namespace, label)
            changes += apply_weights(weighted, weights_for_canary(weighted, primary_index, canary_index,
                                                                  request.weight, label))
        if request.mirror_enabled is not None:
            canary_entry = (weighted.get("backendRefs") or [{}])[0]
            if request.mirror_enabled:
                canary_entry = weighted["backendRefs"][find_backend(weighted, request.canary, namespace, label)]
            changes += apply_mirror(weighted, request.mirror_enabled, canary_entry, request.canary,
                                    request.mirror_percentage, namespace, label)

        match_name = request.owned_match_rule
        if request.match_state is not None:
            _check_owned_rule(rules, match_name, [request.canary], namespace, "A/B match")
        if request.match_state == "present":
            canary_entry = weighted["backendRefs"][find_backend(weighted, request.canary, namespace, label)]
            desired = build_owned_rule(match_name, weighted, canary_entry,
                                       ab_route_matches(request.match_headers, request.match_cookies),
                                       request.canary, namespace)
            changes += _ensure_owned(rules, weighted, match_name, desired, order, label, "A/B match")
        elif request.match_state == "absent":
            changes += _ensure_owned(rules, weighted, match_name, None, order, label, "A/B match")

        if request.session_affinity is not None:
            changes += _apply_session_affinity(rules, weighted, request, request.session_affinity, label)
        if request.match_state == "present" or request.session_affinity is not None:
            changes += _arrange_owned(rules, weighted, order, label)
    except SessionAffinityError as exc:
        raise HTTPRouteEditError("%s: %s" % (where, exc.message)) from None
    except HTTPRouteEditError as exc:
        raise HTTPRouteEditError("%s: %s" % (where, exc)) from None

    match_index = _owned_index(rules, request.owned_match_rule)
    match_info: dict[str, Any] = {"state": "absent", "route": request.owned_match_rule, "index": None, "match": None}
    if match_index is not None:
        match_info = {"state": "present", "route": request.owned_match_rule, "index": match_index,
                      "match": copy.deepcopy(rules[match_index].get("matches"))}
    return RouteEdit(
        obj=obj, changed=bool(changes), route=label, route_index=_identity_index(rules, weighted),
        previous_weights=previous_weights, weights=rule_weights(weighted),
        primary_weight=_weight_of(weighted, request.primary, namespace),
        canary_weight=_weight_of(weighted, request.canary, namespace),
        mirror=mirror_state(weighted, request.canary, namespace), match=match_info, changes=changes,
        before=before, after=_owned_snapshot(rules, weighted, request),
        session_affinity=_affinity_summary(rules, weighted, request))


def _backend_param(spec: Mapping[str, Any] | None, default_name: str, what: str) -> BackendRef:
    spec = spec or {}
    port = spec.get("port")
    if port is not None and (isinstance(port, bool) or not 1 <= int(port) <= 65535):
        raise HTTPRouteEditError("%s.port must be a port number from 1 to 65535, got %r" % (what, port))
    return BackendRef(name=spec.get("name") or default_name, port=int(port) if port is not None else None)


def httproute_request_from_params(params: Mapping[str, Any]) -> HTTPRouteRequest:
    """Turn ``httproute_weight``'s options into an :class:`HTTPRouteRequest`, refusing bad values before any API call.

    Keys: ``name``, ``namespace``, ``rule``, ``primary``/``canary`` (``{name, port}``, names defaulting to
    ``<name>-primary``/``<name>-canary``), ``weight``, ``mirror`` (``{enabled, percentage}``), ``match``
    (``{state, headers, cookie}``), ``session_affinity`` (as ``vs_weight``'s). Missing keys mean "leave it".
    """
    name = params["name"]
    weight = params.get("weight")
    try:
        request = HTTPRouteRequest(
            name=name, namespace=params["namespace"],
            primary=_backend_param(params.get("primary"), primary_name(name), "primary"),
            canary=_backend_param(params.get("canary"), canary_name(name), "canary"),
            rule_name=params.get("rule"), weight=validate_weight(weight) if weight is not None else None)
    except DeliveryError as exc:
        raise HTTPRouteEditError(exc.message) from None
    mirror = params.get("mirror")
    if mirror is not None:
        request.mirror_enabled = bool(mirror.get("enabled", True))
        percentage = mirror.get("percentage")
        request.mirror_percentage = 100.0 if percentage is None else float(percentage)
        if not 0 <= request.mirror_percentage <= 100:
            raise HTTPRouteEditError("mirror.percentage must be from 0 to 100, got %s" % percentage)
    match = params.get("match")
    if match is not None:
        request.match_state = match.get("state") or "present"
        request.match_headers = match.get("headers")
        request.match_cookies = match.get("cookie")
        if request.match_state == "present":
            ab_route_matches(request.match_headers, request.match_cookies)
    affinity = params.get("session_affinity")
    if affinity is not None:
        try:
            request.session_affinity = session_affinity_from_params(affinity)
        except SessionAffinityError as exc:
            raise HTTPRouteEditError(exc.message) from None
    return request
