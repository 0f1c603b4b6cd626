"""`curl`, as Flagger's smoke tests run it from the load tester, played through the lab's mesh.

Flagger's guides check a canary before it gets traffic with a ``bash`` task such as
``curl -sd 'anon' http://podinfo-canary.test:9898/token | grep token``. The lab's
names (``podinfo-canary.test``) resolve only inside its mesh, so the hooks server
sends the request through the mesh as the load tester's workload instead of
running bash. Lab workloads answer with a status and no body: a pipe into
``grep`` (or ``--fail``) passes on a 2xx answer, as podinfo's body would match;
plain curl passes on any answer, as curl exits 0 whenever a server answered.
"""

from __future__ import annotations

import shlex
import urllib.parse
from dataclasses import dataclass, field

# Options that take a value; the lab honours the method, the headers and whether a body is sent.
_VALUE_OPTIONS = {"-d", "--data", "--data-raw", "--data-binary", "-X", "--request", "-H", "--header", "-m",
                  "--max-time", "--connect-timeout", "-o", "--output", "-u", "--user", "-A", "--user-agent",
                  "-w", "--write-out", "--retry"}
_DATA_OPTIONS = {"-d", "--data", "--data-raw", "--data-binary"}
_FAIL_OPTIONS = {"-f", "--fail", "--fail-with-body"}


@dataclass
class CurlRun:
    """The part of a curl smoke test the lab plays: one request, and what makes it pass."""

    host: str
    path: str = "/"
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    # True when the command fails on an error answer (``--fail``, or a pipe into grep).
    needs_success: bool = False


def parse_curl(command: str) -> CurlRun | None:
    """The curl request of ``command``; None when it is not a single curl, optionally piped into grep."""
    try:
        stages = [shlex.split(stage) for stage in command.split("|")]
    except ValueError:
        return None
    if not stages or not stages[0] or stages[0][0] != "curl" or len(stages) > 2:
        return None
    piped = len(stages) == 2
    if piped and (not stages[1] or stages[1][0] != "grep"):
        return None
    method, url, data, fail = None, None, False, False
    headers: dict[str, str] = {}
    args = iter(stages[0][1:])
    for arg in args:
        short_cluster = arg.startswith("-") and not arg.startswith("--") and len(arg) > 2
        if short_cluster and "-" + arg[-1] in _VALUE_OPTIONS:
            # -sd 'anon': flags, then one option taking the next word.
            fail = fail or "f" in arg[1:-1]
            arg = "-" + arg[-1]
        elif short_cluster:
            fail = fail or "f" in arg[1:]
            continue
        if arg in _VALUE_OPTIONS:
            value = next(args, None)
            if value is None:
                return None
            if arg in _DATA_OPTIONS:
                data = True
            elif arg in ("-X", "--request"):
                method = value.upper()
            elif arg in ("-H", "--header"):
                name, colon, text = value.partition(":")
                if colon:
                    headers[name.strip()] = text.strip()
        elif arg in _FAIL_OPTIONS:
            fail = True
        elif arg.startswith("-"):
            continue
        else:
            url = arg
    if url is None:
        return None
    parsed = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
    if not parsed.hostname or parsed.scheme not in ("http", "https"):
        return None
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    return CurlRun(host=parsed.hostname, path=path, method=method or ("POST" if data else "GET"), headers=headers,
                   needs_success=fail or piped)


def passed(run: CurlRun, summary: dict) -> tuple[bool, str]:
    """Whether the command would exit 0 given the mesh's answer (a /send summary of one request)."""
    codes = ", ".join(sorted(summary.get("codes") or {})) or "none"
    if summary.get("total", 0) < 1:
        return False, "curl: (6) Could not resolve host: %s" % run.host
    if run.needs_success and summary.get("failed"):
        return False, "curl %s %s%s answered HTTP %s" % (run.method, run.host, run.path, codes)
    return True, "HTTP %s from %s" % (codes, ", ".join(sorted(summary.get("workloads") or {})))
