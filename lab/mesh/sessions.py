"""Simulated returning users: each keeps a cookie jar and remembers which workload served it last.

A share of a VirtualService's generated requests comes from a pool of such
users instead of anonymous clients; the rate stays the annotation's, only who
sends each request changes. A user leaves after a random stay (exponential,
mean `session-seconds`) and a new one with an empty jar takes its place.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from lab.mesh.cookies import CookieJar, SetCookie
from lab.mesh.headers import header_values
from lab.mesh.outcomes import ANNOTATION_PREFIX, annotation_float

SESSIONS_ANNOTATION = ANNOTATION_PREFIX + "sessions"
SESSION_SHARE_ANNOTATION = ANNOTATION_PREFIX + "session-share"
SESSION_SECONDS_ANNOTATION = ANNOTATION_PREFIX + "session-seconds"

DEFAULT_SESSIONS = 10
DEFAULT_SESSION_SHARE = 0.5
DEFAULT_SESSION_SECONDS = 60.0
MAX_SESSIONS = 10000


@dataclass(frozen=True)
class SessionSettings:
    users: int = DEFAULT_SESSIONS
    share: float = DEFAULT_SESSION_SHARE
    mean_seconds: float = DEFAULT_SESSION_SECONDS

    @property
    def enabled(self) -> bool:
        return self.users > 0 and self.share > 0


def session_settings(annotations: Mapping[str, Any] | None) -> SessionSettings:
    return SessionSettings(
        users=int(annotation_float(annotations, SESSIONS_ANNOTATION, DEFAULT_SESSIONS, 0, MAX_SESSIONS)),
        share=annotation_float(annotations, SESSION_SHARE_ANNOTATION, DEFAULT_SESSION_SHARE, 0.0, 1.0),
        mean_seconds=annotation_float(annotations, SESSION_SECONDS_ANNOTATION, DEFAULT_SESSION_SECONDS, 0.1),
    )


@dataclass(frozen=True)
class Visit:
    """What one answer did to a session: who served it, whom it left (a switch), which cookies it got."""

    workload: str | None
    switched_from: str | None
    cookies: tuple[SetCookie, ...]


class Session:
    """One user: a cookie jar and the workload that answered its previous request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, leaves_at: float = float("inf"),
                 cookies: Mapping[str, str] | None = None):
        self.jar = CookieJar(clock, cookies)
        self.leaves_at = leaves_at
        self.last_workload: str | None = None
        self.requests = 0

    def cookie_header(self) -> str | None:
        return self.jar.header()

    def answered(self, workload: str | None, response_headers: Sequence[tuple[str, str]]) -> Visit:
        """Take in one answer: store its cookies, and say whether another workload than last time served it.

        A request no workload answered (no route, no healthy upstream) neither
        counts as a switch nor resets the memory of the last one that did.
        """
        self.requests += 1
        cookies = tuple(self.jar.store(header_values(response_headers, "set-cookie")))
        switched_from = None
        if workload is not None:
            if self.last_workload is not None and self.last_workload != workload:
                switched_from = self.last_workload
            self.last_workload = workload
        return Visit(workload, switched_from, cookies)


class SessionPool:
    """The returning users of one traffic source; kept across topology rebuilds so jars survive route changes."""

    def __init__(self, settings: SessionSettings, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.settings = settings
        self._sessions: list[Session | None] = [None] * settings.users
        self.started = 0

    def reconfigure(self, settings: SessionSettings) -> None:
        """Follow changed annotations: users beyond the new count leave, new slots start empty."""
        self.settings = settings
        # A new list, not an edit in place: the traffic thread may be picking from the old one right now.
        kept = self._sessions[:settings.users]
        self._sessions = kept + [None] * (settings.users - len(kept))

    def pick(self, rng: random.Random) -> Session | None:
        """The user who sends the next request, or None for an anonymous one (by the session share)."""
        sessions, settings = self._sessions, self.settings
        if not sessions or rng.random() >= settings.share:
            return None
        index = rng.randrange(len(sessions))
        session = sessions[index]
        now = self._clock()
        if session is None or session.leaves_at <= now:
            session = Session(self._clock, now + rng.expovariate(1.0 / settings.mean_seconds))
            sessions[index] = session
            self.started += 1
        return session

    def sessions(self) -> list[Session]:
        return [s for s in self._sessions if s is not None]
