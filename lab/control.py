"""Controlling a lab from outside its process: state file, health, start, stop, admin calls.

Used by the CLI and by lab.testing; only the standard library, so it works
before the development dependencies are installed.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from lab.runtime import (ISTIO_VERSIONS_PATH, PID_FILE, PROMETHEUS_START_PATH, PROMETHEUS_STATUS_PATH,
                         PROMETHEUS_STOP_PATH, STATE_FILE)

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_UP_TIMEOUT = 90.0
DEFAULT_DOWN_TIMEOUT = 20.0
LOG_FILE = "lab.log"


class LabError(RuntimeError):
    pass


def default_state_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("LAB_STATE_DIR") or REPO_ROOT / ".lab").resolve()


def read_state(state_dir: pathlib.Path) -> dict[str, Any] | None:
    try:
        return json.loads((pathlib.Path(state_dir) / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_pid_file(state_dir: pathlib.Path) -> int | None:
    try:
        return int((pathlib.Path(state_dir) / PID_FILE).read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None


# ------------------------------------------------------------------ processes
def process_alive(pid: int | None, expect_in_cmdline: str | None = None) -> bool:
    """True for a live, non-zombie process (whose command line contains the given text, against pid reuse)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            # The state follows the parenthesised command name.
            if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
        if expect_in_cmdline:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if expect_in_cmdline.encode() not in cmdline.read():
                    return False
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except PermissionError:
        return True
    return True


def terminate(pid: int | None, expect_in_cmdline: str, timeout: float) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True once the process is gone."""
    if not process_alive(pid, expect_in_cmdline):
        return True
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not process_alive(pid):
                return True
            time.sleep(0.05)
    return not process_alive(pid)


def serve_command(state_dir: pathlib.Path, seed: bool = False, prometheus: bool = True,
                  backend: str = "auto") -> list[str]:
    command = [sys.executable, "-m", "lab", "serve", "--state-dir", str(state_dir), "--backend", backend]
    if seed:
        command.append("--seed")
    if not prometheus:
        command.append("--no-prometheus")
    return command


def spawn_serve(state_dir: pathlib.Path, seed: bool = False, prometheus: bool = True,
                detach: bool = True, backend: str = "auto") -> subprocess.Popen:
    """Start `python -m lab serve` with its output in <state_dir>/lab.log."""
    state_dir = pathlib.Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    with open(state_dir / LOG_FILE, "ab") as log:
        return subprocess.Popen(  # pylint: disable=consider-using-with
            serve_command(state_dir, seed, prometheus, backend), cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=detach, close_fds=True)


def log_tail(state_dir: pathlib.Path, lines: int = 20) -> str:
    try:
        text = (pathlib.Path(state_dir) / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until_up(state_dir: pathlib.Path, process: subprocess.Popen, timeout: float) -> dict[str, Any]:
    """Poll until the lab writes its state and every endpoint answers; raise LabError with the log otherwise."""
    deadline = time.monotonic() + timeout
    last_problems: dict[str, str] = {}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"the lab exited with code {process.returncode} while starting; "
                           f"{pathlib.Path(state_dir) / LOG_FILE} ends with:\n{log_tail(state_dir)}")
        info = read_state(state_dir)
        if info and info.get("pids", {}).get("lab") == process.pid:
            last_problems = {name: problem for name, problem in health(info).items() if problem}
            if not last_problems:
                return info
        time.sleep(0.05)
    raise LabError(f"the lab did not come up within {timeout:.0f}s (still failing: {last_problems or 'no state file yet'}); "
                   f"{pathlib.Path(state_dir) / LOG_FILE} ends with:\n{log_tail(state_dir)}")


def stop_lab(state_dir: pathlib.Path, timeout: float = DEFAULT_DOWN_TIMEOUT) -> list[str]:
    """Stop the lab, its Prometheus and Pushgateway; returns what is still running (empty when everything is gone)."""
    state_dir = pathlib.Path(state_dir)
    info = read_state(state_dir) or {}
    pids = info.get("pids") or {}
    lab_pid = pids.get("lab") or read_pid_file(state_dir)
    prometheus_pid = pids.get("prometheus")
    terminate(lab_pid, "lab", timeout)
    # The lab stops its children; this catches those left by a lab that was killed.
    children = {name: pid for name, pid in pids.items() if name != "lab"}
    for name, pid in children.items():
        terminate(pid, name, timeout)
    leftovers = []
    for name, pid in {"lab": lab_pid, **children}.items():
        if process_alive(pid, name):
            leftovers.append(f"{name} (pid {pid})")
    if not leftovers:
        for name in (STATE_FILE, PID_FILE):
            try:
                (state_dir / name).unlink()
            except FileNotFoundError:
                pass
    return leftovers


# ---------------------------------------------------------------------- HTTP
def _ssl_context(info: dict[str, Any]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=info["ca_cert"])


def http_json(method: str, url: str, body: Any = None, token: str | None = None,
              context: ssl.SSLContext | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one request; transport failures raise LabError."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise LabError(f"{method} {url} failed: {getattr(error, 'reason', error)}") from None
    try:
        return status, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return status, raw.decode("utf-8", errors="replace")


def health(info: dict[str, Any]) -> dict[str, str | None]:
    """Each endpoint's problem, or None when it answers as it should."""
    checks = {
        "kube": ("GET", info["kube_url"] + "/version", info.get("token"), _ssl_context(info)),
        "mesh": ("GET", info["mesh_url"] + "/healthz", None, None),
        "hooks": ("GET", info["hooks_url"] + "/healthz", None, None),
        "prometheus": ("GET", info["prometheus_url"] + "/-/ready", None, None),
    }
    if info.get("pushgateway_url"):
        checks["pushgateway"] = ("GET", info["pushgateway_url"] + "/-/ready", None, None)
    results: dict[str, str | None] = {}
    for name, (method, url, token, context) in checks.items():
        try:
            status, _ = http_json(method, url, token=token, context=context, timeout=2.0)
            results[name] = None if status == 200 else f"{url} answered HTTP {status}"
        except (LabError, ssl.SSLError, OSError) as error:
            results[name] = str(error)
    components = {name: pid for name, pid in (info.get("pids") or {}).items() if name not in ("lab", "prometheus", "pushgateway")}
    if components:
        gone = [f"{name} (pid {pid})" for name, pid in components.items() if not process_alive(pid, name)]
        results["control_plane"] = f"not running: {', '.join(gone)}" if gone else None
    return results


def _fault_url(info: dict[str, Any]) -> str:
    return info.get("fault_url") or info["kube_url"]


def add_fault(info: dict[str, Any], method: str, path_regex: str, status: int | None = None, delay: float = 0.0,
              ratio: float = 1.0, count: int | None = None) -> str:
    code, body = http_json("POST", _fault_url(info) + "/lab/v1/faults",
                           {"method": method, "path_regex": path_regex, "status": status, "delay": delay,
                            "ratio": ratio, "count": count},
                           token=info["token"], context=_ssl_context(info))
    if code != 201:
        raise LabError(f"the API server refused the fault (HTTP {code}): {body}")
    return body["id"]


def clear_faults(info: dict[str, Any]) -> None:
    code, body = http_json("DELETE", _fault_url(info) + "/lab/v1/faults", token=info["token"], context=_ssl_context(info))
    if code != 200:
        raise LabError(f"clearing faults failed (HTTP {code}): {body}")


def remove_fault(info: dict[str, Any], fault_id: str) -> None:
    code, body = http_json("DELETE", _fault_url(info) + "/lab/v1/faults", {"id": fault_id}, token=info["token"],
                           context=_ssl_context(info))
    if code != 200:
        raise LabError(f"removing fault {fault_id} failed (HTTP {code}): {body}")


def list_faults(info: dict[str, Any]) -> list[dict[str, Any]]:
    code, body = http_json("GET", _fault_url(info) + "/lab/v1/faults", token=info["token"], context=_ssl_context(info))
    if code != 200:
        raise LabError(f"listing faults failed (HTTP {code}): {body}")
    return body["faults"]


def prometheus_action(info: dict[str, Any], action: str) -> dict[str, Any]:
    """Stop, start (waits until ready) or report the lab's Prometheus."""
    control = info.get("control_url") or info["mesh_url"]
    if action == "status":
        code, body = http_json("GET", control + PROMETHEUS_STATUS_PATH)
    else:
        path = {"stop": PROMETHEUS_STOP_PATH, "start": PROMETHEUS_START_PATH}[action]
        code, body = http_json("POST", control + path, {}, timeout=90.0)
    if code != 200:
        raise LabError(f"prometheus {action} failed (HTTP {code}): {body}")
    return body


def istio_versions_action(info: dict[str, Any], versions: list[str]) -> list[str]:
    """Serve networking.istio.io at `versions` only (both backends); returns what is served afterwards."""
    control = info.get("control_url") or info["mesh_url"]
    code, body = http_json("PUT", control + ISTIO_VERSIONS_PATH, {"versions": versions}, timeout=60.0)
    if code != 200:
        raise LabError(f"serving Istio at {versions} failed (HTTP {code}): {body}")
    return body["versions"]
