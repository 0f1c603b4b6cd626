# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which deployment strategy a Canary's analysis selects, and the fields that belong to each.

Flagger picks the strategy from the analysis fields in a fixed order
(``advanceCanary`` in its scheduler): ``match`` with ``iterations`` is A/B
testing, ``iterations`` alone is blue/green (mirrored when ``mirror`` is set),
otherwise ``stepWeight``/``stepWeights`` run a canary, whose first analysis is
a mirrored one when ``mirror`` is set. Where Flagger silently drops a field
because another one wins, the plan says so in its notes, naming both; where a
combination has no sensible reading, the manifest is refused.
"""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.plan.checker import Checker, show
from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import (
    AB_TESTING,
    BLUE_GREEN,
    BLUE_GREEN_MIRROR,
    CANARY,
    DEFAULT_COOKIE_MAX_AGE,
    TOTAL_WEIGHT,
)

DEFAULT_MIRROR_WEIGHT = 100
DEFAULT_READY_THRESHOLD = 100

# An Istio HTTPMatchRequest. Flagger's CRD lists only the first three for
# analysis.match (an API server prunes the others), but its Go type is Istio's,
# so a manifest handed straight to the role may carry any of them.
MATCH_CRD_KEYS = ("headers", "queryParams", "sourceLabels")
MATCH_ISTIO_ONLY_KEYS = ("uri", "scheme", "method", "authority", "port", "gateways", "ignoreUriCase",
                         "withoutHeaders", "sourceNamespace", "name", "statPrefix")
MATCH_KEYS = MATCH_CRD_KEYS + MATCH_ISTIO_ONLY_KEYS
_STRING_MATCH_KINDS = ("exact", "prefix", "regex")
_STRING_MATCH_FIELDS = ("uri", "scheme", "method", "authority")
_STRING_MATCH_MAPS = ("headers", "queryParams", "withoutHeaders")

# Flagger's cookie attributes; the ones besides name and Max-Age are validated here and noted by plan.fields.
_SESSION_AFFINITY_KEYS = ("cookieName", "maxAge", "primaryCookieName", "domain", "httpOnly", "partitioned", "path",
                          "sameSite", "secure")


def _string_match(check: Checker, value: Any, path: str, allow_empty: bool = False) -> dict[str, str] | None:
    """One Istio StringMatch: exactly one of exact, prefix or regex (an empty one only where Istio allows it)."""
    mapping = check.mapping(value, path)
    if not isinstance(value, Mapping):
        return None
    for key in sorted(set(mapping) - set(_STRING_MATCH_KINDS)):
        hint = ""
        if key == "suffix":
            hint = " (Istio has no suffix match: write it as regex: '.*%s')" % mapping[key] if isinstance(
                mapping[key], str) else ""
        check.error("%s.%s" % (path, key), "unknown field; a string match has exact, prefix or regex%s" % hint)
    given = [key for key in _STRING_MATCH_KINDS if key in mapping]
    for key in given:
        check.string(mapping[key], "%s.%s" % (path, key), required=key != "exact")
    if len(given) > 1:
        check.error(path, "give one of exact, prefix or regex, got %s" % ", ".join(given))
    elif not given and not allow_empty and not set(mapping) - set(_STRING_MATCH_KINDS):
        check.error(path, "needs one of exact, prefix or regex")
    return {key: mapping[key] for key in given}


def parse_match(check: Checker, value: Any, path: str,
                flagger_keys: tuple[str, ...] = MATCH_CRD_KEYS) -> list[dict[str, Any]]:
    """A list of Istio HTTPMatchRequest mappings (``analysis.match``, ``service.match``), returned as given once valid.

    ``flagger_keys`` are the conditions Flagger's CRD keeps at that path; any
    other Istio condition is applied with a note, since Flagger would drop it.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        check.error(path, "must be a list of match conditions (Istio HTTPMatchRequest), got %s" % show(value))
        return []
    matches: list[dict[str, Any]] = []
    for index, raw in enumerate(value):
        entry_path = "%s[%d]" % (path, index)
        if not isinstance(raw, Mapping):
            check.error(entry_path, "must be a mapping such as {headers: {x-canary: {exact: insider}}}, got %s"
                        % show(raw))
            continue
        if not raw:
            check.error(entry_path, "is empty, so it matches every request: give a condition or remove it")
            continue
        for key in sorted(set(raw) - set(MATCH_KEYS)):
            check.error("%s.%s" % (entry_path, key), "unknown field; a match condition has %s" % ", ".join(MATCH_KEYS))
        for key in _STRING_MATCH_MAPS:
            if key in raw:
                conditions = check.mapping(raw[key], "%s.%s" % (entry_path, key))
                for name, condition in conditions.items():
                    # Istio matches a query parameter's presence with an empty condition.
                    _string_match(check, condition, "%s.%s.%s" % (entry_path, key, name), allow_empty=key == "queryParams")
        for key in _STRING_MATCH_FIELDS:
            if key in raw:
                _string_match(check, raw[key], "%s.%s" % (entry_path, key))
        if "sourceLabels" in raw:
            check.string_map(raw["sourceLabels"], entry_path + ".sourceLabels")
        if "ignoreUriCase" in raw:
            check.boolean(raw["ignoreUriCase"], entry_path + ".ignoreUriCase")
        if "port" in raw:
            check.integer(raw["port"], entry_path + ".port", 1, 65535)
        if "gateways" in raw:
            check.string_list(raw["gateways"], entry_path + ".gateways")
        for key in ("sourceNamespace", "name", "statPrefix"):
            if key in raw:
                check.string(raw[key], "%s.%s" % (entry_path, key))
        istio_only = [key for key in MATCH_KEYS if key in raw and key not in flagger_keys]
        if istio_only:
            check.note(entry_path, "%s not in Flagger's Canary CRD (its API server would drop %s); the role applies "
                       "%s as Istio match conditions" % (", ".join(istio_only), "them" if len(istio_only) > 1 else "it",
                                                         "them" if len(istio_only) > 1 else "it"))
        matches.append(dict(raw))
    return matches


def parse_session_affinity(check: Checker, value: Any, path: str) -> dict[str, Any] | None:
    """``analysis.sessionAffinity`` as the plan's ``session_affinity``: cookie name, max age and primary cookie."""
    if value is None:
        return None
    raw = check.mapping(value, path)
    if not isinstance(value, Mapping):
        return None
    for key in sorted(set(raw) - set(_SESSION_AFFINITY_KEYS)):
        check.error("%s.%s" % (path, key), "unknown field; sessionAffinity has %s" % ", ".join(_SESSION_AFFINITY_KEYS))
    cookie = check.string(raw.get("cookieName"), path + ".cookieName", required=True)
    max_age = check.integer(raw.get("maxAge"), path + ".maxAge", 1, default=DEFAULT_COOKIE_MAX_AGE)
    primary_cookie = check.string(raw.get("primaryCookieName"), path + ".primaryCookieName")
    if cookie and primary_cookie and cookie == primary_cookie:
        check.error(path + ".primaryCookieName", "must differ from cookieName (both are %s): the two cookies pin "
                    "users to different workloads" % show(cookie))
    for key in ("httpOnly", "partitioned", "secure"):
        check.boolean(raw.get(key), "%s.%s" % (path, key))
    for key in ("domain", "path"):
        check.string(raw.get(key), "%s.%s" % (path, key))
    if raw.get("sameSite") not in (None, "Strict", "Lax", "None"):
        check.error(path + ".sameSite", "must be Strict, Lax or None, got %s" % show(raw.get("sameSite")))
    if not cookie:
        return None
    return {"cookie_name": cookie, "max_age": max_age, "primary_cookie_name": primary_cookie}


def ready_threshold(check: Checker, analysis: Mapping[str, Any], path: str, key: str) -> int:
    value = check.integer(analysis.get(key), "%s.%s" % (path, key), 0, 100, default=DEFAULT_READY_THRESHOLD)
    return DEFAULT_READY_THRESHOLD if value is None else value


def choose(check: Checker, analysis: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The strategy and its own fields, with Flagger's precedence.

    Returns ``strategy``, ``iterations`` (0 for the canary), ``match``,
    ``mirror`` (whether traffic is mirrored at some point), ``mirror_weight``
    and ``session_affinity``; weights are left to the caller, which needs them
    only for the canary.
    """
    iterations = check.integer(analysis.get("iterations"), path + ".iterations", 1, default=0) or 0
    match = parse_match(check, analysis.get("match"), path + ".match")
    mirror = check.boolean(analysis.get("mirror"), path + ".mirror")
    mirror_weight = check.integer(analysis.get("mirrorWeight"), path + ".mirrorWeight", 1, TOTAL_WEIGHT)
    affinity = parse_session_affinity(check, analysis.get("sessionAffinity"), path + ".sessionAffinity")
    weight_fields = [key for key in ("stepWeight", "stepWeights", "maxWeight") if analysis.get(key) is not None]

    if iterations:
        strategy = AB_TESTING if match else (BLUE_GREEN_MIRROR if mirror else BLUE_GREEN)
        for key in weight_fields:
            check.note("%s.%s" % (path, key), "ignored: %s.iterations selects %s, as in Flagger; remove %s to "
                       "silence this" % (path, describe(strategy), key))
        if strategy == AB_TESTING and mirror:
            check.note(path + ".mirror", "ignored: %s.match with iterations selects A/B testing, which Flagger runs "
                       "without mirroring" % path)
            mirror = False
    else:
        strategy = CANARY
        if match:
            check.error(path + ".match", "needs %s.iterations: A/B testing sends the matching requests to the canary "
                        "for that many analyses (Flagger would run %s's weights on the matching requests only, "
                        "and the rest never reach the canary)" % (path, " or ".join(weight_fields) or "stepWeight"))
        elif mirror:
            check.note(path + ".mirror", "the canary's first analysis mirrors %d%% of the traffic to it (weight 0) "
                       "before %s moves any weight, as in Flagger"
                       % (mirror_weight or DEFAULT_MIRROR_WEIGHT, "stepWeights" if analysis.get("stepWeights")
                          is not None and analysis.get("stepWeight") is None else "stepWeight"))
    if mirror_weight is not None and not mirror:
        check.note(path + ".mirrorWeight", "ignored without %s.mirror: true, as in Flagger" % path)
    if affinity is not None and strategy != CANARY:
        check.note(path + ".sessionAffinity", "ignored: %s.iterations selects %s, and Flagger pins sessions only "
                   "while a canary's weight grows" % (path, describe(strategy)))
        affinity = None
    return {
        "strategy": strategy,
        "iterations": iterations,
        "match": match if strategy == AB_TESTING else [],
        "mirror_weight": (mirror_weight or DEFAULT_MIRROR_WEIGHT) if mirror else None,
        "session_affinity": affinity,
    }


def describe(strategy: str) -> str:
    """The strategy's name for people: ``blue-green-mirror`` -> ``blue/green with mirroring``."""
    return {
        CANARY: "the canary strategy",
        AB_TESTING: "A/B testing",
        BLUE_GREEN: "blue/green",
        BLUE_GREEN_MIRROR: "blue/green with mirroring",
    }[strategy]
