"""Cookies as a browser keeps them: Set-Cookie parsing and a jar that expires in mesh time.

The jar is keyed by cookie name only: every simulated user talks to one host
through one VirtualService, so Domain and Path never separate two cookies.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping


@dataclass(frozen=True)
class SetCookie:
    """One Set-Cookie header: name, value and, when given, its lifetime in seconds (Max-Age wins over Expires)."""

    name: str
    value: str
    max_age: float | None = None

    @property
    def deletes(self) -> bool:
        """Max-Age zero or negative (or an Expires in the past) tells the client to drop the cookie."""
        return self.max_age is not None and self.max_age <= 0


def parse_set_cookie(header: str, wall_clock: Callable[[], float] = time.time) -> SetCookie | None:
    """Read `name=value; Max-Age=N; Path=/ ...` as RFC 6265 does; None when there is no `name=`.

    A Max-Age that is not an integer is ignored, as browsers do; Expires counts
    only when Max-Age is absent and is turned into seconds from now.
    """
    pair, _, attributes = header.partition(";")
    name, equals, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not equals or not name:
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    max_age: float | None = None
    expires: float | None = None
    for attribute in attributes.split(";"):
        key, _, argument = attribute.partition("=")
        key, argument = key.strip().lower(), argument.strip()
        if key == "max-age":
            digits = argument[1:] if argument.startswith("-") else argument
            if digits.isdigit():
                max_age = float(int(argument))
        elif key == "expires" and argument:
            try:
                expires = email.utils.parsedate_to_datetime(argument).timestamp() - wall_clock()
            except (TypeError, ValueError, IndexError, OverflowError):
                expires = None
    if max_age is None and expires is not None:
        max_age = expires
    return SetCookie(name, value, max_age)


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """The name=value pairs of a Cookie request header, in order (the last duplicate wins)."""
    cookies: dict[str, str] = {}
    for pair in (header or "").split(";"):
        name, equals, value = pair.partition("=")
        if equals and name.strip():
            cookies[name.strip()] = value.strip()
    return cookies


def join_cookie_headers(*headers: str | None) -> str | None:
    """Join Cookie header values as one header; None when there is nothing to send."""
    parts = [h.strip().rstrip(";") for h in headers if h and h.strip()]
    return "; ".join(parts) if parts else None


class CookieJar:
    """What one client holds: cookie values with their expiry in mesh time (None: until the session ends)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, cookies: Mapping[str, str] | None = None):
        self._clock = clock
        self._cookies: dict[str, tuple[str, float | None]] = {
            name: (str(value), None) for name, value in (cookies or {}).items()}

    def store(self, set_cookies: Iterable[str]) -> list[SetCookie]:
        """Apply the Set-Cookie headers of one response, in order; returns the ones that could be read."""
        now = self._clock()
        applied = []
        for header in set_cookies:
            cookie = parse_set_cookie(header)
            if cookie is None:
                continue
            applied.append(cookie)
            if cookie.deletes:
                self._cookies.pop(cookie.name, None)
            else:
                expiry = None if cookie.max_age is None else now + cookie.max_age
                self._cookies[cookie.name] = (cookie.value, expiry)
        return applied

    def cookies(self) -> dict[str, str]:
        """The cookies still alive now (expired ones are dropped on the way)."""
        now = self._clock()
        expired = [name for name, (_, expiry) in self._cookies.items() if expiry is not None and expiry <= now]
        for name in expired:
            del self._cookies[name]
        return {name: value for name, (value, _) in self._cookies.items()}

    def header(self) -> str | None:
        """The Cookie header this client sends now, or None with an empty jar."""
        cookies = self.cookies()
        return "; ".join(f"{name}={value}" for name, value in cookies.items()) if cookies else None

    def __len__(self) -> int:
        return len(self.cookies())
