"""A webhook receiver that speaks the HTTP API of Flagger's load tester.

Endpoints (payload `{name, namespace, phase, checksum, metadata}` as Flagger sends it):
  POST /                  metadata.type "cmd" (default): start metadata.cmd in the background, at most
                          one run per canary and command at a time, answer 202 (a `hey` command is played
                          through the mesh: lab/loadtest.py); "bash": run it with
                          bash and answer 200 on exit 0, 500 with the output otherwise (a curl smoke test is
                          played through the mesh: lab/curl.py)
  The server also answers as an HTTP proxy (absolute URLs), so http_proxy=<its URL> makes Flagger's
  in-cluster load tester addresses (http://flagger-loadtester.test/) reach it.
  /gate/approve           200            /gate/halt       403
  /gate/check             200 when the canary's gate is open, else 403
  /gate/open|close        202 (gates are per canary "name.namespace")
  /rollback/check         200 when a rollback was requested, else 403
  /rollback/open|close    202
  POST /smoke             send metadata.count requests to metadata.host (or metadata.url) through the mesh; 500 with a
                          summary when any answer is an error, 200 otherwise
  GET /calls              every request received (DELETE /calls forgets them); GET /tasks: cmd runs
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import subprocess
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from lab.curl import parse_curl, passed
from lab.loadtest import HeyRun, parse_hey, play

LOG = logging.getLogger("lab.hooks")

DEFAULT_COMMAND_TIMEOUT = 60.0
MAX_RECORDED_CALLS = 10000
MAX_OUTPUT_CHARS = 4000
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
SMOKE_SOURCE_WORKLOAD = "flagger-loadtester"

SendFunction = Callable[..., "dict[str, Any]"]


def canary_key(payload: dict) -> str:
    return f"{payload.get('name', '')}.{payload.get('namespace', '')}"


def task_key(canary: str, command: str) -> str:
    return hashlib.sha256(f"{canary}\0{command}".encode()).hexdigest()[:16]


def parse_headers(value: Any) -> dict[str, str]:
    """Headers given in webhook metadata: an object, a JSON object string, or `Name: value` lines."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    text = str(value).strip()
    if text.startswith("{"):
        parsed = json.loads(text)
        if not isinstance(parsed, dict):
            raise ValueError("metadata.headers must be a JSON object")
        return {str(k): str(v) for k, v in parsed.items()}
    headers = {}
    for line in text.replace(",", "\n").splitlines():
        if ":" in line:
            name, _, val = line.partition(":")
            headers[name.strip()] = val.strip()
    return headers


class Gates:
    """Open/closed state per key; everything starts closed, as in the load tester."""

    def __init__(self) -> None:
        self._open: set[str] = set()
        self._lock = threading.Lock()

    def open(self, key: str) -> None:
        with self._lock:
            self._open.add(key)

    def close(self, key: str) -> None:
        with self._lock:
            self._open.discard(key)

    def is_open(self, key: str) -> bool:
        with self._lock:
            return key in self._open


class CommandRunner:
    """Background commands (`cmd` tasks): no shell, a timeout, one run per canary and command at a time.

    ``hey`` (the load generator of Flagger's docs) is played through the mesh when one is given.
    """

    def __init__(self, timeout: float = DEFAULT_COMMAND_TIMEOUT, send: SendFunction | None = None):
        self.timeout = timeout
        self.send = send
        self._running: set[str] = set()
        self._runs: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def submit(self, canary: str, command: str) -> bool:
        """Start the command unless the same one is still running for this canary; True when started."""
        argv = shlex.split(command)
        if not argv:
            raise ValueError("cmd is empty")
        hey = parse_hey(argv) if argv[0] == "hey" and self.send is not None else None
        key = task_key(canary, command)
        with self._lock:
            if key in self._running:
                LOG.info("%s: command already running, skipped: %s", canary, command)
                return False
            self._running.add(key)
            run: dict[str, Any] = {"canary": canary, "command": command, "started": time.time(), "finished": None,
                                   "exit_code": None, "output": ""}
            self._runs.append(run)
        threading.Thread(target=self._run, args=(key, argv, run, hey), name="hooks-cmd", daemon=True).start()
        return True

    def _run(self, key: str, argv: list[str], run: dict[str, Any], hey: HeyRun | None = None) -> None:
        try:
            if hey is not None and self.send is not None:
                namespace = run["canary"].rsplit(".", 1)[-1] or "default"
                sent = play(hey, namespace, self.send)
                run["exit_code"] = 0
                run["output"] = "hey (played through the lab's mesh): %d requests to %s%s" % (sent, hey.host, hey.path)
                return
            completed = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
            run["exit_code"] = completed.returncode
            run["output"] = (completed.stdout + completed.stderr)[-MAX_OUTPUT_CHARS:]
        except subprocess.TimeoutExpired:
            run["exit_code"] = -1
            run["output"] = f"timed out after {self.timeout:.0f}s"
        except OSError as error:
            run["exit_code"] = 127
            run["output"] = f"could not start: {error}"
        except ValueError as error:
            run["exit_code"] = 1
            run["output"] = f"hey through the mesh failed: {error}"
        finally:
            run["finished"] = time.time()
            with self._lock:
                self._running.discard(key)

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(run) for run in self._runs]


def run_bash(command: str, timeout: float) -> tuple[bool, str]:
    """A blocking `bash` task: (succeeded, combined output or the reason it failed)."""
    try:
        completed = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, f"command timed out after {timeout:.0f}s: {command}"
    except OSError as error:
        return False, f"could not start bash: {error}"
    output = (completed.stdout + completed.stderr)[-MAX_OUTPUT_CHARS:]
    if completed.returncode != 0:
        return False, f"command {command!r} exited with code {completed.returncode}: {output}"
    return True, output


class HooksServer:
    """The load-tester-compatible webhook endpoint of the lab, bound to loopback."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, send: SendFunction | None = None,
                 command_timeout: float = DEFAULT_COMMAND_TIMEOUT):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the hooks server runs commands and listens on loopback only, not {host}")
        self._host = host
        self._port = port
        self.send = send
        self.command_timeout = command_timeout
        self.gates = Gates()
        self.commands = CommandRunner(command_timeout, send)
        self._calls: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED_CALLS)
        self._calls_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the hooks server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._server = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="hooks-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def record(self, call: dict[str, Any]) -> None:
        with self._calls_lock:
            self._calls.append(call)

    def calls(self) -> list[dict[str, Any]]:
        with self._calls_lock:
            return list(self._calls)

    def forget_calls(self) -> None:
        with self._calls_lock:
            self._calls.clear()

    # ---------------------------------------------------------------- handling
    def handle(self, method: str, path: str, payload: Any) -> tuple[int, bytes | dict | list]:
        """Answer one request; returns (status, text body or JSON-able body)."""
        if path == "/healthz":
            return 200, b"OK"
        if path == "/calls":
            if method == "DELETE":
                self.forget_calls()
                return 200, {"deleted": True}
            return 200, self.calls()
        if path == "/tasks":
            return 200, self.commands.runs()
        if path == "/gate/approve":
            return 200, b"OK"
        if path == "/gate/halt":
            return 403, b"Forbidden"
        if path in ("/gate/check", "/gate/open", "/gate/close", "/rollback/check", "/rollback/open", "/rollback/close"):
            return self._gate(path, payload)
        if path == "/smoke":
            return self._smoke(payload)
        if path == "/" and method == "POST":
            return self._task(payload)
        return 404, b"404 page not found"

    def _gate(self, path: str, payload: Any) -> tuple[int, bytes]:
        if not isinstance(payload, dict):
            return 400, b"decoding the request body failed"
        key = canary_key(payload)
        if path.startswith("/rollback/"):
            key = "rollback." + key
        action = path.rsplit("/", 1)[1]
        if action == "open":
            self.gates.open(key)
            return 202, b""
        if action == "close":
            self.gates.close(key)
            return 202, b""
        if self.gates.is_open(key):
            return 200, b"Approved"
        return 403, b"Forbidden"

    def _task(self, payload: Any) -> tuple[int, bytes]:
        if not isinstance(payload, dict):
            return 400, b"decoding the request body failed"
        metadata = payload.get("metadata") or {}
        if not metadata:
            return 400, b"metadata not found in payload"
        task_type = metadata.get("type") or "cmd"
        command = metadata.get("cmd")
        if task_type not in ("cmd", "bash"):
            return 400, f"unknown task type {task_type} (the lab runs cmd and bash tasks)".encode()
        if not command:
            return 400, b"cmd not found in metadata"
        if task_type == "bash":
            succeeded, output = self._bash(str(command), payload)
            if not succeeded:
                return 500, output.encode()
            return_output = str(metadata.get("returnCmdOutput", "")).lower() == "true"
            return 200, output.encode() if return_output else b""
        try:
            self.commands.submit(canary_key(payload), str(command))
        except ValueError as error:
            return 400, f"cannot run cmd {command!r}: {error}".encode()
        return 202, b""

    def _bash(self, command: str, payload: dict[str, Any]) -> tuple[bool, str]:
        """A curl smoke test goes through the mesh, where the lab's names resolve; anything else runs in bash."""
        run = parse_curl(command) if self.send is not None else None
        if run is None:
            return run_bash(command, self.command_timeout)
        summary = self.send(host=run.host, namespace=str(payload.get("namespace") or "default"), count=1,
                            headers=run.headers, path=run.path, method=run.method, gateway="mesh",
                            source_workload=SMOKE_SOURCE_WORKLOAD)
        succeeded, output = passed(run, summary)
        return succeeded, output if succeeded else "command %r failed: %s" % (command, output)

    def _smoke(self, payload: Any) -> tuple[int, bytes | dict]:
        if self.send is None:
            return 503, b"this hooks server has no mesh to send requests through"
        if not isinstance(payload, dict):
            return 400, b"decoding the request body failed"
        metadata = payload.get("metadata") or {}
        host = metadata.get("host")
        path = str(metadata.get("path") or "/")
        if not host and metadata.get("url"):
            parsed = urllib.parse.urlsplit(str(metadata["url"]))
            host = parsed.netloc
            path = parsed.path or "/"
        if not host:
            return 400, b"metadata.host (or metadata.url) is required: the service to send smoke requests to"
        namespace = str(metadata.get("namespace") or payload.get("namespace") or "default")
        try:
            count = int(metadata.get("count") or 10)
            headers = parse_headers(metadata.get("headers"))
        except (TypeError, ValueError) as error:
            return 400, f"bad smoke test metadata: {error}".encode()
        if not 1 <= count <= 10000:
            return 400, f"metadata.count must be between 1 and 10000, got {count}".encode()
        summary = self.send(host=str(host), namespace=namespace, count=count, headers=headers,
                            path=path, gateway=str(metadata.get("gateway") or "mesh"),
                            source_workload=SMOKE_SOURCE_WORKLOAD)
        return (500 if summary["failed"] else 200), summary


def _redact(headers: Any) -> dict[str, str]:
    return {name: ("<redacted>" if name.lower() in SECRET_HEADERS else value) for name, value in headers.items()}


def _handler_for(server: HooksServer) -> type[BaseHTTPRequestHandler]:
    class HooksHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  pylint: disable=redefined-builtin
            LOG.debug("%s " + format, self.address_string(), *args)

        def _serve(self, method: str) -> None:
            # A client that reaches the lab's load tester through it as an HTTP proxy (http_proxy=<hooks url>, so
            # that Flagger's in-cluster URLs such as http://flagger-loadtester.test/ work) sends an absolute URL.
            path = (urllib.parse.urlsplit(self.path).path or "/") if "://" in self.path else self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            payload: Any
            try:
                payload = json.loads(raw) if raw.strip() else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                payload = raw.decode("utf-8", errors="replace")
            call = {"method": method, "path": path, "headers": _redact(self.headers), "body": payload,
                    "time": time.time()}
            if path not in ("/calls", "/tasks", "/healthz"):
                server.record(call)
            status, body = server.handle(method, path, payload)
            call["status"] = status
            if isinstance(body, (bytes, bytearray)):
                data, content_type = bytes(body), "text/plain; charset=utf-8"
            else:
                data, content_type = json.dumps(body).encode() + b"\n", "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._serve("PUT")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

    return HooksHandler
