"""Child processes of the lab: started with their output in a log file, stopped with the lab, never left behind."""
from __future__ import annotations

import ctypes
import logging
import os
import pathlib
import signal
import subprocess
import time
from typing import Sequence

LOG = logging.getLogger("lab.cluster")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # A lab killed with SIGKILL cannot stop its children; the kernel does it for us. SIGKILL, because the cluster
    # is thrown away anyway and kube-apiserver takes more than 10 s to shut down gracefully.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    def __init__(self, name: str, argv: Sequence[str], log_dir: pathlib.Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        LOG.info("starting %s", self.name)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True, env=environment(),
                preexec_fn=_die_with_parent)  # pylint: disable=subprocess-popen-preexec-fn

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait_or_kill(self, timeout: float) -> None:
        """Wait for the process to exit after terminate(); SIGKILL it when it has not within `timeout`."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def wait_until(check, timeout: float, what: str, watched: Sequence[Child] = (), interval: float = 0.1) -> None:
    """Poll `check()` until true; a watched child exiting or the timeout raises RuntimeError with its log."""
    deadline = time.monotonic() + timeout
    while True:
        for child in watched:
            if child.exited() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.exited()} while waiting for {what}; "
                                   f"{child.log_path} ends with:\n{child.log_tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            tails = "".join(f"\n--- {child.log_path}:\n{child.log_tail()}" for child in watched)
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}{tails}")
        time.sleep(interval)


def environment() -> dict[str, str]:
    """The children's environment: no proxies (everything is on loopback)."""
    return {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
