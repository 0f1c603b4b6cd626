"""Runs the real Prometheus server against the lab's mesh, and the real Pushgateway it also scrapes."""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Callable

DEFAULT_BINARY = "/usr/bin/prometheus"
PUSHGATEWAY_BINARY = "/usr/bin/prometheus-pushgateway"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class PrometheusError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def find_binary(binary: str | None = None, default: str = DEFAULT_BINARY, env: str = "LAB_PROMETHEUS_BINARY",
                package: str = "prometheus") -> str:
    """The executable: an explicit path, $<env>, the OS package's path or one on PATH."""
    candidates = [binary, os.environ.get(env), default, shutil.which(os.path.basename(default))]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PrometheusError(
        f"the lab needs {os.path.basename(default)} and none was found at "
        f"{binary or default} or on PATH; install it: apt-get install {package} "
        f"(make test and make demo do this for you), or set {env} to its path")


def render_config(targets: list[str], scrape_interval: str = "1s", pushgateway: str | None = None) -> str:
    """prometheus.yml scraping the mesh's /metrics (and the Pushgateway's) every second; evaluation every second too."""
    target_list = ", ".join(f"'{t}'" for t in targets)
    # honor_labels keeps the job and instance labels the pushers chose, as the Pushgateway's docs require.
    pushed = (
        "  - job_name: lab-pushgateway\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        f"      - targets: ['{pushgateway}']\n"
    ) if pushgateway else ""
    return (
        "# Written by the lab at start; edits are overwritten.\n"
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  scrape_timeout: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "scrape_configs:\n"
        "  - job_name: lab-mesh\n"
        "    honor_labels: true\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: [{target_list}]\n"
        + pushed
    )


try:
    # Loaded in the parent: loading a library between fork and exec could deadlock.
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    # Prometheus must not outlive a lab that was killed without a chance to clean up.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class PrometheusServer:
    """Start, stop and restart Prometheus on a fixed port and data directory.

    Processes are spawned from one long-lived worker thread: the parent-death
    signal fires when the spawning *thread* exits, so spawning from short-lived
    request threads would kill Prometheus as soon as the request finished.
    """

    name = "Prometheus"

    def __init__(self, state_dir: pathlib.Path, targets: list[str], host: str = "127.0.0.1", port: int = 0,
                 binary: str | None = None, on_change: Callable[[], None] | None = None, pushgateway: str | None = None):
        self.state_dir = pathlib.Path(state_dir)
        self.targets = targets
        self.pushgateway = pushgateway
        self.host = host
        self.port = port or free_port(host)
        self.binary = binary
        self.config_path = self.state_dir / "prometheus.yml"
        self.data_dir = self.state_dir / "prometheus-data"
        self.log_path = self.state_dir / "prometheus.log"
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="prometheus")
        self._on_change = on_change

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def running(self) -> bool:
        return self.pid is not None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        self._spawner.submit(self._start, timeout).result()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        self._spawner.submit(self._stop, timeout).result()

    def close(self) -> None:
        self.stop()
        self._spawner.shutdown(wait=True)

    def _start(self, timeout: float) -> None:
        with self._lock:
            if self.running():
                return
            self.state_dir.mkdir(parents=True, exist_ok=True)
            command = self._command()
            with open(self.log_path, "ab") as log:
                # preexec_fn only calls prctl(2), which is safe between fork and exec.
                self._process = subprocess.Popen(  # pylint: disable=consider-using-with,subprocess-popen-preexec-fn
                    command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent, close_fds=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise PrometheusError(
                        f"{self.name} exited with code {self._process.returncode} while starting on "
                        f"{self.host}:{self.port}; its log {self.log_path} ends with:\n{self._log_tail()}")
                if self.ready():
                    break
                time.sleep(0.05)
            else:
                self._terminate(STOP_TIMEOUT_SECONDS)
                raise PrometheusError(
                    f"{self.name} did not report ready on {self.url}/-/ready within {timeout:.0f}s; "
                    f"its log {self.log_path} ends with:\n{self._log_tail()}")
        if self._on_change:
            self._on_change()

    def _command(self) -> list[str]:
        binary = find_binary(self.binary)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(self.targets, pushgateway=self.pushgateway), encoding="utf-8")
        return [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.host}:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]

    def _stop(self, timeout: float) -> None:
        with self._lock:
            self._terminate(timeout)
        if self._on_change:
            self._on_change()

    def _terminate(self, timeout: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
        self._process = None

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class PushgatewayServer(PrometheusServer):
    """The Prometheus Pushgateway from the OS packages, in memory only (no persistence file): pushed series live as
    long as the lab."""

    name = "Pushgateway"

    def __init__(self, state_dir: pathlib.Path, host: str = "127.0.0.1", port: int = 0, binary: str | None = None,
                 on_change: Callable[[], None] | None = None):
        super().__init__(state_dir, [], host=host, port=port, binary=binary, on_change=on_change)
        self.log_path = self.state_dir / "pushgateway.log"

    def _command(self) -> list[str]:
        binary = find_binary(self.binary, PUSHGATEWAY_BINARY, "LAB_PUSHGATEWAY_BINARY", "prometheus-pushgateway")
        return [binary, f"--web.listen-address={self.host}:{self.port}", "--persistence.file=", "--log.level=warn"]
