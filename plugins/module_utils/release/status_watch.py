# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A live status: follow a canary's stored state until its release ends, one compact line per change.

Pure: what is read (the state as a dict, the Lease as ``LeaseView.describe`` gives it), the clock and the sleep
are passed in, so the loop is tested without a cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.release.state import IN_PROGRESS

# A release of hours changes its line at every analysis: the result keeps the newest lines only.
MAX_LINES = 1000


class WatchReadError(Exception):
    """The state or the Lease could not be read this time; the message says why."""


@dataclass(frozen=True)
class WatchOptions:
    """``interval`` between reads and ``timeout`` of the whole watch, in seconds; ``say`` prints a line as it comes."""

    interval: float
    timeout: float
    say: Callable[[str], None] | None = None


@dataclass
class WatchResult:
    lines: list[str] = field(default_factory=list)
    ended: bool = False
    seconds: float = 0.0
    # The last line, without its time: what the canary looked like when the watch stopped.
    last: str = ""
    phase: str = ""
    lock_held: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"lines": list(self.lines), "ended": self.ended, "timed_out": not self.ended,
                "seconds": round(self.seconds, 1), "last": self.last}


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, (int, float)):
        # Two decimals at most: a line is read at a glance, the report keeps the exact values.
        return ("%.2f" % value).rstrip("0").rstrip(".")
    return str(value)


def last_metrics(history: list[Mapping[str, Any]] | None) -> str:
    """``name=value`` of the newest analysis of the current release; a failed check is marked ``(fail)``."""
    for entry in reversed(history or []):
        if entry.get("action") == "start":
            # The metrics before this entry judged the previous release.
            return ""
        metrics = entry.get("metrics") or []
        if metrics:
            return " ".join("%s=%s%s" % (m.get("name", "?"), _number(m.get("value")),
                                         "(fail)" if m.get("result") == "fail" else "")
                            for m in metrics if isinstance(m, Mapping))
    return ""


def watch_line(state: Mapping[str, Any], lock: Mapping[str, Any]) -> str:
    """One line: phase, weight, failed checks, the last metrics and who holds the lock."""
    parts = [str(state.get("phase") or "not initialized"),
             "weight %s%%" % state.get("canaryWeight", 0),
             "failed checks %s" % state.get("failedChecks", 0)]
    metrics = last_metrics(state.get("history"))
    if metrics:
        parts.append(metrics)
    if lock.get("held"):
        parts.append("lock: %s" % (lock.get("holder") or lock.get("run_id")))
    else:
        parts.append("no lock")
    return ", ".join(parts)


def release_over(phase: str, lock_held: bool) -> bool:
    """The release has ended: its phase is final, and no run holds the lock (one could be starting the next step)."""
    return phase not in IN_PROGRESS and not lock_held


def _clock_text(now: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(now))


def follow(observe: Callable[[], tuple[Mapping[str, Any], Mapping[str, Any]]], options: WatchOptions,
           clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> WatchResult:
    """Read with ``observe`` every ``options.interval`` until the release ends or ``options.timeout`` passes.

    A read that fails after the first is a line of its own and the watch goes on: a release outlives a blip of the
    API server. The first read's failure is raised, as it is likely permanent (no access, wrong namespace).
    """
    start = clock()
    result = WatchResult()

    def note(line: str) -> None:
        if line == result.last:
            return
        result.last = line
        stamped = "%s %s" % (_clock_text(clock()), line)
        result.lines = (result.lines + [stamped])[-MAX_LINES:]
        if options.say is not None:
            options.say(stamped)

    read_once = False
    while True:
        try:
            state, lock = observe()
        except WatchReadError as exc:
            if not read_once:
                raise
            note("cannot read the state: %s" % exc)
        else:
            read_once = True
            result.phase, result.lock_held = str(state.get("phase") or ""), bool(lock.get("held"))
            note(watch_line(state, lock))
            if release_over(result.phase, result.lock_held):
                result.ended = True
                break
        now = clock()
        if now - start >= options.timeout:
            break
        sleep(max(0.0, min(options.interval, options.timeout - (now - start))))
    result.seconds = clock() - start
    return result


def timeout_message(where: str, result: WatchResult, timeout: float) -> str:
    """Why a watch stopped before the release ended, and what to do."""
    why = ("a run holds the lock" if result.lock_held else
           "no run holds the lock: the run that drove it stopped, and the next canary run resumes or rolls it back "
           "(canary_on_resume)")
    return ("%s: the release did not end within the watch timeout of %s s (last seen: %s); %s. Watch again, or "
            "give watch_timeout more time." % (where, _number(timeout), result.last or "nothing read", why))
