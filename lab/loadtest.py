"""`hey`, as Flagger's load tester runs it, played through the lab's mesh.

Flagger's docs generate the canary's load with rollout webhooks such as
``cmd: "hey -z 1m -q 10 -c 2 -H 'Cookie: canary=always' http://podinfo.test:9898/"``.
No load generator runs on the lab's machine, so the hooks server reads those
options and sends the same requests through the mesh instead: ``-q`` requests
per second per worker times ``-c`` workers, for ``-z`` (or ``-n`` requests in
all), with every ``-H`` header, as the load tester's workload.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

LOADTESTER_WORKLOAD = "flagger-loadtester"
# Requests go out in small batches so the rate stays even over time without one thread per request.
BATCH_SECONDS = 0.1
DEFAULT_RATE = 50.0  # hey without -q does not throttle; the lab caps it so one canary cannot flood the mesh
MAX_DURATION_SECONDS = 600.0


@dataclass
class HeyRun:
    """The part of hey's command line the lab honours."""

    host: str
    path: str = "/"
    duration: float | None = None
    total: int | None = None
    rate: float = DEFAULT_RATE
    headers: dict[str, str] = field(default_factory=dict)


def _duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def parse_hey(argv: list[str]) -> HeyRun:
    """hey's options; ValueError naming what the lab cannot play."""
    if not argv or argv[0] != "hey":
        raise ValueError("not a hey command")
    duration = total = None
    per_worker, workers = 0.0, 50
    headers: list[str] = []
    url = None
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-z", "-q", "-c", "-n", "-H", "-m", "-t", "-A", "-T", "-d", "-a", "-x"):
            value = next(args, None)
            if value is None:
                raise ValueError("hey option %s needs a value" % arg)
            if arg == "-z":
                duration = _duration_seconds(value)
            elif arg == "-q":
                per_worker = float(value)
            elif arg == "-c":
                workers = int(value)
            elif arg == "-n":
                total = int(value)
            elif arg == "-H":
                headers.append(value)
        elif arg.startswith("-"):
            continue
        else:
            url = arg
    if not url:
        raise ValueError("hey needs a URL")
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        raise ValueError("hey URL %r has no host" % url)
    rate = per_worker * max(workers, 1) if per_worker > 0 else DEFAULT_RATE
    if duration is None and total is None:
        total = 200  # hey's default -n
    if duration is not None:
        duration = min(duration, MAX_DURATION_SECONDS)
    return HeyRun(host=parsed.hostname, path=parsed.path or "/", duration=duration, total=total, rate=rate,
                  headers=dict(_header(value) for value in headers))


def _header(value: str) -> tuple[str, str]:
    name, colon, text = value.partition(":")
    if not colon or not name.strip():
        raise ValueError("hey -H %r is not 'Name: value'" % value)
    return name.strip(), text.strip()


def play(run: HeyRun, namespace: str, send: Callable[..., Any], clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Send ``run``'s requests through ``send`` (the mesh's /send); returns how many were sent."""
    started = clock()
    sent = 0
    while True:
        elapsed = clock() - started
        if run.duration is not None and elapsed >= run.duration:
            break
        due = int(run.rate * elapsed) + 1 - sent
        if run.total is not None:
            due = min(due, run.total - sent)
        if due > 0:
            send(host=run.host, namespace=namespace, count=due, headers=run.headers, path=run.path, gateway="mesh",
                 source_workload=LOADTESTER_WORKLOAD)
            sent += due
        if run.total is not None and sent >= run.total:
            break
        sleep(BATCH_SECONDS)
    return sent
