# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Session affinity pieces that do not depend on a route: cookies, their regexes and ``Set-Cookie`` entries.

Flagger's ``analysis.sessionAffinity`` keeps a user who once reached the
canary on the canary while the weights move: responses from the canary carry
``Set-Cookie: <cookie>=<value>; Max-Age=<maxAge>`` and a route matching that
cookie, ahead of the weighted route, sends such users to the canary.  With
``primaryCookieName`` the primary hands out its own cookie the same way.
:mod:`istio_routes` places the routes; this file says what a cookie is, how a
route matches it, and which ``Set-Cookie`` entries of a destination are ours.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError

# Flagger's default for sessionAffinity.maxAge: one day.
DEFAULT_MAX_AGE = 86400
SET_COOKIE = "Set-Cookie"
# RFC 6265: a cookie name is an RFC 2616 token, a value is cookie-octets
# (no controls, whitespace, DQUOTE, comma, semicolon or backslash).
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_COOKIE_OCTETS = re.compile(r"^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+$")
_REGEX_SPECIAL = ".^$*+?()[]{}|\\"
# Browsers join cookies with "; ", some clients with ";" alone: both must match.
_REGEX_HEAD = "^(.*?;\\s*)?("
_REGEX_TAIL = ")(;.*)?$"


class SessionAffinityError(DeliveryError, ValueError):
    """A session affinity request that cannot be applied; the message says why and what to do."""


@dataclass(frozen=True)
class Cookie:
    """A ``name=value`` cookie, checked against RFC 6265 so it survives the Cookie and Set-Cookie headers."""

    name: str
    value: str

    @property
    def pair(self) -> str:
        return "%s=%s" % (self.name, self.value)

    def set_cookie(self, max_age: int) -> str:
        return "%s; Max-Age=%d" % (self.pair, max_age)


def check_cookie_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise SessionAffinityError(
            "%s: cookie name %r is not a valid cookie name; use letters, digits and !#$%%&'*+-.^_`|~ only "
            "(no spaces, '=', ';', ',' or quotes), for example flagger-cookie" % (what, name))
    return name


def parse_cookie(text: Any, what: str) -> Cookie:
    """``name=value`` as the user or the release loop gives it; refuse anything a browser would mangle."""
    if not isinstance(text, str) or "=" not in text:
        raise SessionAffinityError("%s must be a 'name=value' string such as flagger-cookie=7f3a9c, got %r"
                                   % (what, text))
    name, value = text.split("=", 1)
    check_cookie_name(name, what)
    if not _COOKIE_OCTETS.match(value):
        raise SessionAffinityError(
            "%s: cookie value %r is empty or holds characters a cookie value cannot carry (spaces, quotes, ',', "
            "';' or '\\'); derive it from letters, digits and -_. only, for example the release checksum"
            % (what, value))
    return Cookie(name, value)


def cookie_regex(pair: str) -> str:
    """An anchored regex for ``name=value`` in a Cookie header, so ``xname=value`` and ``name=value2`` do not match."""
    escaped = "".join("\\" + char if char in _REGEX_SPECIAL else char for char in pair)
    return _REGEX_HEAD + escaped + _REGEX_TAIL


def cookie_from_regex(regex: Any) -> Cookie | None:
    """The cookie a regex built by :func:`cookie_regex` matches, or ``None`` for any other regex."""
    if not isinstance(regex, str) or not regex.startswith(_REGEX_HEAD) or not regex.endswith(_REGEX_TAIL):
        return None
    body = regex[len(_REGEX_HEAD):-len(_REGEX_TAIL)]
    text, index = [], 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body) and body[index + 1] in _REGEX_SPECIAL:
            text.append(body[index + 1])
            index += 2
            continue
        if char in _REGEX_SPECIAL:
            return None
        text.append(char)
        index += 1
    try:
        return parse_cookie("".join(text), "regex")
    except SessionAffinityError:
        return None


def cookie_of_route(route: Mapping[str, Any]) -> Cookie | None:
    """The cookie an owned sticky route matches (each of its match entries carries the same cookie condition)."""
    for entry in route.get("match") or []:
        headers = entry.get("headers") if isinstance(entry, Mapping) else None
        condition = headers.get("cookie") if isinstance(headers, Mapping) else None
        if isinstance(condition, Mapping):
            found = cookie_from_regex(condition.get("regex"))
            if found is not None:
                return found
    return None


def validate_max_age(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SessionAffinityError("%s must be a whole number of seconds above 0, got %r (0 or less would make "
                                   "browsers drop the cookie at once)" % (what, value))
    return value


@dataclass(frozen=True)
class SessionAffinity:
    """What the caller wants: sticky routes present (during a release) or absent (after it)."""

    state: str
    cookie: Cookie | None = None
    max_age: int = DEFAULT_MAX_AGE
    primary_cookie: Cookie | None = None
    primary_max_age: int | None = None
    expire: bool = True

    def owned_names(self) -> set[str]:
        return {cookie.name for cookie in (self.cookie, self.primary_cookie) if cookie is not None}


def session_affinity_from_params(params: Mapping[str, Any]) -> SessionAffinity:
    """The module's ``session_affinity`` option, checked before any API call."""
    state = params.get("state") or "present"
    if state not in ("present", "absent"):
        raise SessionAffinityError("session_affinity.state must be present or absent, got %r" % (state,))
    cookie = params.get("cookie")
    primary_cookie = params.get("primary_cookie")
    parsed = parse_cookie(cookie, "session_affinity.cookie") if cookie is not None else None
    parsed_primary = parse_cookie(primary_cookie, "session_affinity.primary_cookie") \
        if primary_cookie is not None else None
    max_age = params.get("max_age")
    max_age = DEFAULT_MAX_AGE if max_age is None else validate_max_age(max_age, "session_affinity.max_age")
    primary_max_age = params.get("primary_max_age")
    if primary_max_age is not None:
        primary_max_age = validate_max_age(primary_max_age, "session_affinity.primary_max_age")
    if parsed and parsed_primary and parsed.name == parsed_primary.name:
        raise SessionAffinityError(
            "session_affinity.cookie and session_affinity.primary_cookie both use the cookie name %r; a client would "
            "hold one of them only, so give the primary cookie another name" % parsed.name)
    if state == "present":
        if parsed is None:
            raise SessionAffinityError("session_affinity.state=present needs session_affinity.cookie "
                                       "('name=value', the same value for the whole release)")
        if parsed_primary is not None and primary_max_age is None:
            raise SessionAffinityError(
                "session_affinity.primary_cookie needs session_affinity.primary_max_age: the primary cookie must "
                "expire at the end of each step (Flagger uses the analysis interval, for example 60) or primary "
                "users would never move to the canary")
    expire = params.get("expire")
    return SessionAffinity(state=state, cookie=parsed, max_age=max_age, primary_cookie=parsed_primary,
                           primary_max_age=primary_max_age, expire=True if expire is None else bool(expire))


def _cookie_name(header_value: Any) -> str | None:
    if not isinstance(header_value, str) or "=" not in header_value:
        return None
    return header_value.split("=", 1)[0].strip()


def _set_cookie_key(add: Mapping[str, Any]) -> str | None:
    for key in add:
        if isinstance(key, str) and key.lower() == SET_COOKIE.lower():
            return key
    return None


def owned_set_cookie(entry: Mapping[str, Any], owned_names: Iterable[str]) -> str | None:
    """Our ``Set-Cookie`` value on a route destination, recognised by the cookie name; ``None`` when absent or not ours."""
    add = ((entry.get("headers") or {}).get("response") or {}).get("add") or {}
    key = _set_cookie_key(add) if isinstance(add, Mapping) else None
    if key is None:
        return None
    value = add[key]
    return value if _cookie_name(value) in set(owned_names) else None


def edit_set_cookie(entry: dict[str, Any], desired: str | None, owned_names: Iterable[str], where: str) -> list[str]:
    """Make the destination's ``headers.response.add`` carry ``desired`` as ``Set-Cookie`` (``None``: none of ours).

    Istio keeps one value per header name in ``add``, so a ``Set-Cookie`` for a
    cookie that is not ours cannot sit next to ours: that is refused, never
    overwritten.  Containers we emptied are removed so an absent affinity
    leaves the destination as it was before.
    """
    owned_names = set(owned_names)
    headers = entry.get("headers")
    response = headers.get("response") if isinstance(headers, dict) else None
    add = response.get("add") if isinstance(response, dict) else None
    key = _set_cookie_key(add) if isinstance(add, dict) else None
    current = add[key] if key is not None and add is not None else None
    if key is not None and _cookie_name(current) not in owned_names:
        if desired is None:
            return []
        raise SessionAffinityError(
            "%s already adds its own Set-Cookie response header (%r); Istio allows one Set-Cookie entry in "
            "headers.response.add per destination, and session affinity needs it. Move that cookie to the route's "
            "headers (route level), or set it in the application" % (where, current))
    if desired is None:
        if key is None or add is None or response is None or headers is None:
            return []
        del add[key]
        if not add:
            del response["add"]
        if not response:
            del headers["response"]
        if not headers:
            del entry["headers"]
        return ["Set-Cookie %r removed from %s" % (current, where)]
    if current == desired:
        return []
    if key is not None and key != SET_COOKIE and add is not None:
        del add[key]
    headers = entry.setdefault("headers", {})
    response = headers.setdefault("response", {})
    response.setdefault("add", {})[SET_COOKIE] = desired
    if current is None:
        return ["Set-Cookie %r added to %s" % (desired, where)]
    return ["Set-Cookie of %s: %r -> %r" % (where, current, desired)]


def with_set_cookie(destination_entry: Mapping[str, Any], value: str) -> dict[str, Any]:
    """A copy of a route destination whose responses carry ``Set-Cookie: value``, for routes we own entirely."""
    entry = copy.deepcopy(dict(destination_entry))
    entry["headers"] = {"response": {"add": {SET_COOKIE: value}}}
    return entry
