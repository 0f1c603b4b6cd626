"""Lab startup time and CPU use.

    .venv/bin/python benchmarks/lab_startup.py [--backend cluster|emulated|auto] [--runs 5] [--window 10]

Measures `python -m lab up` (until every endpoint answers; Prometheus already
installed) and `down` over several runs (minimum, median, maximum), then the
CPU share of every process of the lab (the lab itself, Prometheus and, on the
real control plane, its components) over a window: idle (no VirtualService),
and with one VirtualService at the default 20 req/s and at 200 req/s.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab import control  # noqa: E402  pylint: disable=wrong-import-position
from lab.testing import Objects, attach  # noqa: E402  pylint: disable=wrong-import-position

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cli(state_dir: pathlib.Path, *args: str) -> float:
    env = dict(os.environ, LAB_STATE_DIR=str(state_dir), PYTHONPATH=str(REPO))
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of /proc/<pid>/stat; fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_percent(pids: dict[str, int], window: float) -> dict[str, float]:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(window)
    return {name: round(100.0 * (cpu_seconds(pid) - before[name]) / window, 2) for name, pid in pids.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=float, default=10.0, help="seconds over which CPU is measured")
    parser.add_argument("--backend", choices=("cluster", "emulated", "auto"), default="auto")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lab-bench-") as temp:
        state_dir = pathlib.Path(temp) / "lab"
        ups, downs = [], []
        for _ in range(args.runs):
            ups.append(cli(state_dir, "up", "--no-seed", "--backend", args.backend))
            downs.append(cli(state_dir, "down"))
        for name, times in (("up", ups), ("down", downs)):
            print(f"{name + ':':<6}min {min(times):.2f}s  median {statistics.median(times):.2f}s  max {max(times):.2f}s"
                  f"  (runs: {', '.join(f'{t:.2f}' for t in times)})")

        cli(state_dir, "up", "--no-seed", "--backend", args.backend)
        try:
            info = json.loads((state_dir / "lab.json").read_text(encoding="utf-8"))
            pids = dict(info["pids"])
            print(f"backend: {info.get('backend', 'emulated')} ({info.get('kube_version', '')})")
            time.sleep(2.0)  # let start-up work settle
            print(f"idle CPU over {args.window:.0f}s (% of one core): {cpu_percent(pids, args.window)}")

            handle = attach(state_dir)
            api = handle.kube_client()
            from kubernetes import client  # pylint: disable=import-outside-toplevel
            client.CoreV1Api(api).create_namespace({"metadata": {"name": "bench"}})
            objects = Objects(api, "bench", mesh_url=handle.mesh_url)
            objects.workload("podinfo-primary", replicas=2)
            objects.workload("podinfo-canary", error_rate=0.01)
            objects.wait_ready("podinfo-primary")
            objects.wait_ready("podinfo-canary")
            http = [{"route": [{"destination": {"host": "podinfo-primary"}, "weight": 90},
                               {"destination": {"host": "podinfo-canary"}, "weight": 10}]}]
            objects.virtualservice("podinfo", ["podinfo"], http)
            time.sleep(2.0)
            print(f"one VirtualService at 20 req/s, CPU over {args.window:.0f}s: {cpu_percent(pids, args.window)}")
            objects.patch_virtualservice("podinfo", {"metadata": {"annotations": {"lab.progressive.delivery/rps": "200"}}})
            time.sleep(2.0)
            print(f"one VirtualService at 200 req/s, CPU over {args.window:.0f}s: {cpu_percent(pids, args.window)}")
            started = time.monotonic()
            result = handle.send("podinfo", "bench", count=10000)
            elapsed = time.monotonic() - started
            print(f"/send 10000 requests: {elapsed:.2f}s ({result['total'] / elapsed:.0f} req/s)")
            api.close()
        finally:
            leftovers = control.stop_lab(state_dir)
        print(f"after down, processes left: {leftovers or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
