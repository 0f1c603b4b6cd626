# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Gateway API HTTPRoute a canary routes through, generated or adopted.

Pure functions, as ``istio_objects`` for the VirtualService: the HTTPRoute
Flagger's Gateway API router generates (parentRefs from ``gatewayRefs``,
hostnames from ``hosts``, one rule with the ``service.match`` conditions, the
request timeout, header and rewrite filters, and the primary at 100 and the
canary at 0), the smallest update of an existing one that touches only what
initialization owns, and the checks that an adopted HTTPRoute has a rule the
canary can drive.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import (
    mark,
    merged_metadata,
    metadata_differs,
    with_owned_metadata,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import service_names
from ansible_collections.progressive.delivery.plugins.module_utils.routing.gateway_api import (
    GATEWAY_GROUP,
    GATEWAY_VERSIONS,
    HTTP_ROUTE_KIND,
    HTTP_ROUTE_PLURAL,
    group_version,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_objects import ServiceSpec

# The Gateway API constants stay importable from here for the initialize action.
__all__ = ["GATEWAY_GROUP", "GATEWAY_VERSIONS", "GatewayRouteError", "HTTP_ROUTE_KIND", "HTTP_ROUTE_PLURAL",
           "adopted_rule", "build_http_route", "group_version", "http_route_to_apex", "http_route_update", "pick_version", "version_of"]

# The filter types initialization writes into the canary's rule; any other filter there (a RequestMirror the
# traffic step adds, one a person added) is left where it is.
OWNED_FILTER_TYPES = ("RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite")
_PATH_TYPES = {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}
_VALUE_TYPES = {"exact": "Exact", "regex": "RegularExpression"}
_REWRITE_TYPES = ("ReplacePrefixMatch", "ReplaceFullPath")
_PARENT_REF_KEYS = ("group", "kind", "namespace", "name", "sectionName", "port")


class GatewayRouteError(DeliveryError, ValueError):
    """The ``service`` settings cannot produce a valid HTTPRoute, or an adopted one cannot be driven."""


def version_of(api_version: str | None) -> str | None:
    """``gateway.networking.k8s.io/v1beta1`` -> ``v1beta1``; None for anything else."""
    if not api_version:
        return None
    group, version = api_version.rpartition("/")[::2]
    return version if group == GATEWAY_GROUP and version in GATEWAY_VERSIONS else None


def pick_version(served: list[str], wanted: str | None = None) -> str | None:
    """The version to use: the one asked for when served, else the newest served one this collection speaks."""
    for version in ((wanted,) if wanted else ()) + GATEWAY_VERSIONS:
        if version in served:
            return version
    return None


def parent_refs(option: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flagger's ``service.gatewayRefs`` as the HTTPRoute's ``parentRefs``, keys not given left to the API server."""
    refs = option.get("gatewayRefs")
    if not isinstance(refs, list) or not refs:
        raise GatewayRouteError("service.gatewayRefs is required with provider gatewayapi: the Gateways the HTTPRoute "
                                "attaches to, as [{name: public, namespace: gateways, sectionName: https}]")
    result = []
    for index, ref in enumerate(refs):
        if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str) or not ref["name"]:
            raise GatewayRouteError("service.gatewayRefs[%d] must be a mapping with a name, got %r" % (index, ref))
        unknown = sorted(set(ref) - set(_PARENT_REF_KEYS))
        if unknown:
            raise GatewayRouteError("service.gatewayRefs[%d] has unknown keys %s; a gateway reference has %s"
                                    % (index, ", ".join(unknown), ", ".join(_PARENT_REF_KEYS)))
        entry = {key: ref[key] for key in _PARENT_REF_KEYS if ref.get(key) is not None}
        if "port" in entry:
            entry["port"] = int(entry["port"])
        result.append(entry)
    return result


def _string_match(condition: Any, where: str, types: Mapping[str, str]) -> tuple[str, str]:
    if isinstance(condition, Mapping):
        for key, kind in types.items():
            if isinstance(condition.get(key), str) and condition[key]:
                return kind, condition[key]
    raise GatewayRouteError("%s: the Gateway API matches it by %s only, got %r" % (where, " or ".join(types), condition))


def route_matches(matches: Any, where: str = "service.match") -> list[dict[str, Any]]:
    """Istio match conditions (Flagger's ``match``) as HTTPRouteMatches; every request (path prefix ``/``) when none."""
    result: list[dict[str, Any]] = []
    for index, raw in enumerate(matches or []):
        at = "%s[%d]" % (where, index)
        if not isinstance(raw, Mapping):
            raise GatewayRouteError("%s must be a mapping, got %r" % (at, raw))
        unknown = sorted(set(raw) - {"uri", "method", "headers", "queryParams"})
        if unknown:
            raise GatewayRouteError("%s: %s %s no Gateway API equivalent (an HTTPRouteMatch has path, method, headers "
                                    "and queryParams)" % (at, ", ".join(unknown), "has" if len(unknown) == 1 else "have"))
        match: dict[str, Any] = {}
        if raw.get("uri") is not None:
            kind, value = _string_match(raw["uri"], at + ".uri", _PATH_TYPES)
            match["path"] = {"type": kind, "value": value}
        if raw.get("method") is not None:
            match["method"] = _string_match(raw["method"], at + ".method", {"exact": "Exact"})[1]
        for key in ("headers", "queryParams"):
            conditions = raw.get(key) or {}
            if not isinstance(conditions, Mapping):
                raise GatewayRouteError("%s.%s must be a mapping of names to conditions, got %r" % (at, key, conditions))
            entries = []
            for name in sorted(conditions):
                kind, value = _string_match(conditions[name], "%s.%s.%s" % (at, key, name), _VALUE_TYPES)
                entries.append({"name": name, "type": kind, "value": value})
            if entries:
                match[key] = entries
        if match:
            result.append(match)
    return result or [{"path": {"type": "PathPrefix", "value": "/"}}]


def _header_filter(operations: Any, where: str) -> dict[str, Any]:
    if not isinstance(operations, Mapping):
        raise GatewayRouteError("%s must be a mapping with add, set and remove, got %r" % (where, operations))
    result: dict[str, Any] = {}
    for key in ("add", "set"):
        given = operations.get(key) or {}
        if not isinstance(given, Mapping):
            raise GatewayRouteError("%s.%s must be a mapping of header names to values, got %r" % (where, key, given))
        if given:
            # Sorted, so the same settings always produce the same object and a second initialize compares equal.
            result[key] = [{"name": str(name), "value": str(given[name])} for name in sorted(given)]
    remove = operations.get("remove") or []
    if remove:
        result["remove"] = [str(name) for name in remove]
    return result


def route_filters(option: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``service.headers`` and ``service.rewrite`` as HTTPRoute filters, as Flagger's Gateway API router writes them."""
    filters: list[dict[str, Any]] = []
    headers = option.get("headers") or {}
    for direction, kind, field_name in (("request", "RequestHeaderModifier", "requestHeaderModifier"),
                                        ("response", "ResponseHeaderModifier", "responseHeaderModifier")):
        if headers.get(direction):
            modifier = _header_filter(headers[direction], "service.headers.%s" % direction)
            if modifier:
                filters.append({"type": kind, field_name: modifier})
    rewrite = option.get("rewrite") or {}
    if rewrite:
        url_rewrite: dict[str, Any] = {}
        if rewrite.get("authority"):
            url_rewrite["hostname"] = str(rewrite["authority"])
        if rewrite.get("uri"):
            kind = rewrite.get("type") or "ReplacePrefixMatch"
            if kind not in _REWRITE_TYPES:
                raise GatewayRouteError("service.rewrite.type must be %s, got %r" % (" or ".join(_REWRITE_TYPES), kind))
            key = "replacePrefixMatch" if kind == "ReplacePrefixMatch" else "replaceFullPath"
            url_rewrite["path"] = {"type": kind, key: str(rewrite["uri"])}
        if url_rewrite:
            filters.append({"type": "URLRewrite", "urlRewrite": url_rewrite})
    return filters


def backend_ref(name: str, port: int, weight: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}


def build_http_route(namespace: str, canary: str, api_version: str, spec: ServiceSpec,
                     option: Mapping[str, Any]) -> dict[str, Any]:
    """The HTTPRoute ``<svc>``: one rule sending every matching request to the primary (100) and the canary (0)."""
    apex, primary, canary_service = service_names(spec.name)
    rule: dict[str, Any] = {"matches": route_matches(option.get("match"))}
    filters = route_filters(option)
    if filters:
        rule["filters"] = filters
    rule["backendRefs"] = [backend_ref(primary, spec.port, 100), backend_ref(canary_service, spec.port, 0)]
    if option.get("timeout"):
        rule["timeouts"] = {"request": str(option["timeout"])}
    route_spec: dict[str, Any] = {"parentRefs": parent_refs(option)}
    if spec.hosts:
        route_spec["hostnames"] = list(spec.hosts)
    route_spec["rules"] = [rule]
    route = {
        "apiVersion": group_version(api_version),
        "kind": HTTP_ROUTE_KIND,
        "metadata": {"name": apex, "namespace": namespace},
        "spec": route_spec,
    }
    custom = spec.custom_metadata("apex")
    return with_owned_metadata(mark(route, namespace, canary), custom["labels"], custom["annotations"])


def _contains(current: Any, desired: Any) -> bool:
    """Whether ``current`` says what ``desired`` says, fields the API server defaulted (weight, kind...) aside."""
    if isinstance(desired, Mapping):
        return isinstance(current, Mapping) and all(key in current and _contains(current[key], value)
                                                    for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(current, list) and len(current) == len(desired) and all(
            _contains(have, want) for have, want in zip(current, desired))
    return current == desired


def _is_service(ref: Mapping[str, Any], service: str) -> bool:
    return ref.get("name") == service and ref.get("kind", "Service") == "Service" and not ref.get("group")


def _references(rule: Mapping[str, Any], service: str) -> bool:
    return any(_is_service(ref, service) for ref in rule.get("backendRefs") or [])


def canary_rule_index(route: Mapping[str, Any], primary: str, canary: str, rule_name: str | None = None) -> int | None:
    """The index of the rule the canary drives: the named one, else the first whose backends are primary and canary."""
    for index, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        if rule_name is not None:
            if rule.get("name") == rule_name:
                return index
        elif _references(rule, primary) and _references(rule, canary):
            return index
    return None


def rule_names(route: Mapping[str, Any]) -> list[str]:
    return [rule["name"] for rule in (route.get("spec") or {}).get("rules") or [] if rule.get("name")]


def _owned_rule_differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    for key in ("matches", "timeouts"):
        if (key in desired) != (key in current) or (key in desired and not _contains(current[key], desired[key])):
            return True
    owned = [f for f in current.get("filters") or [] if f.get("type") in OWNED_FILTER_TYPES]
    if not _contains(owned, desired.get("filters") or []):
        return True
    have = [{k: v for k, v in ref.items() if k != "weight"} for ref in current.get("backendRefs") or []]
    want = [{k: v for k, v in ref.items() if k != "weight"} for ref in desired["backendRefs"]]
    return not _contains(have, want)


def http_route_update(existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """The generated HTTPRoute with what initialization owns set again; None when nothing differs.

    Owned: parentRefs, hostnames, and in the canary's rule its matches, timeouts, header and rewrite filters and
    the backends. The backends' weights and any other filter or rule are the traffic of a release that may be
    running (the traffic step writes them), so they are kept.
    """
    current_spec = existing.get("spec") or {}
    desired_spec = desired["spec"]
    primary, canary = (ref["name"] for ref in desired_spec["rules"][0]["backendRefs"])
    index = canary_rule_index(existing, primary, canary)
    want_rule = desired_spec["rules"][0]
    same = (_contains(current_spec.get("parentRefs"), desired_spec["parentRefs"])
            and (current_spec.get("hostnames") or []) == desired_spec.get("hostnames", [])
            and index is not None and not _owned_rule_differs(current_spec["rules"][index], want_rule)
            and not metadata_differs(existing, desired))
    if same:
        return None
    updated = copy.deepcopy(existing)
    spec = updated.setdefault("spec", {})
    spec["parentRefs"] = copy.deepcopy(desired_spec["parentRefs"])
    if desired_spec.get("hostnames"):
        spec["hostnames"] = list(desired_spec["hostnames"])
    else:
        spec.pop("hostnames", None)
    rules = spec.setdefault("rules", [])
    if index is None:
        rules.insert(0, copy.deepcopy(want_rule))
    else:
        rule = rules[index]
        weights = {ref.get("name"): ref.get("weight") for ref in rule.get("backendRefs") or []}
        for key in ("matches", "timeouts"):
            if key in want_rule:
                rule[key] = copy.deepcopy(want_rule[key])
            else:
                rule.pop(key, None)
        kept = [f for f in rule.get("filters") or [] if f.get("type") not in OWNED_FILTER_TYPES]
        filters = copy.deepcopy(want_rule.get("filters") or []) + kept
        if filters:
            rule["filters"] = filters
        else:
            rule.pop("filters", None)
        backends = copy.deepcopy(want_rule["backendRefs"])
        for ref in backends:
            if weights.get(ref["name"]) is not None:
                ref["weight"] = weights[ref["name"]]
        rule["backendRefs"] = backends
    updated.setdefault("metadata", {}).update(merged_metadata(updated, desired))
    return updated


def adopted_rule(route: Mapping[str, Any] | None, namespace: str, name: str, primary: str, canary: str,
                 rule_name: str | None) -> str | None:
    """Check that an HTTPRoute a person owns can be driven; return the name of its canary rule (None when unnamed).

    The rule is the one named ``rule_name`` or, without a name, the only one whose backends are the primary and
    the canary Services. Raises GatewayRouteError saying what to change otherwise.
    """
    if route is None:
        raise GatewayRouteError("HTTPRoute %s/%s to adopt was not found: create it first (with a rule whose backendRefs "
                                "are the Services %s and %s), or drop virtual_service.adopt to let the canary generate "
                                "one" % (namespace, name, primary, canary))
    rules = (route.get("spec") or {}).get("rules") or []
    if rule_name is not None:
        index = canary_rule_index(route, primary, canary, rule_name)
        if index is None:
            names = rule_names(route)
            raise GatewayRouteError("HTTPRoute %s/%s has no rule named '%s' (rules: %s): name the rule in "
                                    "spec.rules[].name or set virtual_service.route to one of them"
                                    % (namespace, name, rule_name, ", ".join(names) if names else "none named"))
        missing = [svc for svc in (primary, canary) if not _references(rules[index], svc)]
        if missing:
            raise GatewayRouteError("HTTPRoute %s/%s rule '%s' has no backendRef to the Service%s %s: list both %s and "
                                    "%s in its backendRefs (weights 100 and 0) so the canary can move traffic between "
                                    "them" % (namespace, name, rule_name, "s" if len(missing) > 1 else "",
                                              " and ".join(missing), primary, canary))
        return rule_name
    candidates = [i for i, rule in enumerate(rules) if _references(rule, primary) and _references(rule, canary)]
    if not candidates:
        raise GatewayRouteError("HTTPRoute %s/%s has no rule whose backendRefs are both %s and %s: add them to the "
                                "rule the canary should drive (weights 100 and 0), or name that rule with "
                                "virtual_service.route" % (namespace, name, primary, canary))
    if len(candidates) > 1:
        raise GatewayRouteError("HTTPRoute %s/%s has %d rules whose backendRefs are %s and %s: give the one the canary "
                                "drives a name (spec.rules[].name) and set virtual_service.route to it"
                                % (namespace, name, len(candidates), primary, canary))
    return rules[candidates[0]].get("name")


def http_route_to_apex(route: dict[str, Any], apex: str, primary: str, canary: str,
                       rule_name: str | None = None) -> dict[str, Any] | None:
    """The HTTPRoute with the primary and canary backends replaced by the apex Service; None when none are left.

    Used when a canary is deleted, as ``istio_objects.routed_to_apex`` for a VirtualService: the apex Service
    then selects the target's pods, so what the primary and the canary shared goes to it (their weights summed
    when other backends stay, the primary's port kept). Only the named rule changes when ``rule_name`` is given
    (an adopted route); a mirror to the primary or the canary is dropped.
    """
    updated = copy.deepcopy(route)
    changed = False
    for rule in (updated.get("spec") or {}).get("rules") or []:
        if rule_name is not None and rule.get("name") != rule_name:
            continue
        refs = rule.get("backendRefs") or []
        ours = [ref for ref in refs if _is_service(ref, primary) or _is_service(ref, canary)]
        if ours:
            kept = [ref for ref in refs if ref not in ours]
            base = next((ref for ref in ours if ref.get("name") == primary), ours[0])
            entry = {key: value for key, value in base.items() if key not in ("weight", "filters")}
            entry["name"] = apex
            weight = sum(int(ref.get("weight", 1)) for ref in ours)
            if kept or weight == 0:
                entry["weight"] = weight
            rule["backendRefs"] = [entry] + kept
            changed = True
        filters = rule.get("filters") or []
        mirrors = [f for f in filters if f.get("type") == "RequestMirror"
                   and ((f.get("requestMirror") or {}).get("backendRef") or {}).get("name") in (primary, canary)]
        if mirrors:
            rule["filters"] = [f for f in filters if f not in mirrors]
            if not rule["filters"]:
                rule.pop("filters")
            changed = True
    return updated if changed else None
