"""Wall time of a vs_weight weight change and the API requests it costs, against the lab.

Runs the module the way Ansible does (its own process, argument file) many
times, alternating the canary weight so every call writes, and prints the
median and spread. The request count comes from the same edit made in-process
through KubeClient, whose counter sees every request.

    .venv/bin/python benchmarks/vs_weight_latency.py [--runs 30] [--lab-state DIR]

Without --lab-state a lab is started in a temporary directory and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "build" / "collections")]

from tests.support.modules import run_module  # noqa: E402  (needs the path above)
from ansible_collections.progressive.delivery.plugins.module_utils.kube import client as kube  # noqa: E402
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import (  # noqa: E402
    DestinationRef,
    RouteRequest,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.virtual_service import VirtualServiceRouter  # noqa: E402

NAMESPACE = "bench-vs-weight"
NAME = "backend"


def start_lab(state_dir: pathlib.Path) -> subprocess.Popen:
    # Prometheus plays no part in routing; leaving it out keeps its CPU out of the numbers.
    process = subprocess.Popen([sys.executable, "-m", "lab", "serve", "--no-prometheus", "--state-dir", str(state_dir)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (state_dir / "lab.json").exists():
            return process
        if process.poll() is not None:
            raise SystemExit("the lab exited with status %s" % process.returncode)
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the lab did not write %s within 60 s" % (state_dir / "lab.json"))


def seed(client: kube.KubeClient) -> None:
    if client.get_or_none("v1", "namespaces", NAMESPACE) is None:
        client.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    body = {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {"hosts": [NAME], "http": [{"route": [
            {"destination": {"host": NAME + "-primary"}, "weight": 100},
            {"destination": {"host": NAME + "-canary"}, "weight": 0}]}]},
    }
    existing = client.get_or_none("networking.istio.io/v1", "virtualservices", NAME, NAMESPACE)
    if existing is None:
        client.create("networking.istio.io/v1", "virtualservices", body, NAMESPACE)
    else:
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        client.replace("networking.istio.io/v1", "virtualservices", NAME, body, NAMESPACE)


def measure(kubeconfig: str, runs: int) -> dict:
    auth = {"kubeconfig": kubeconfig}
    client = kube.client_from_auth(kube.resolve_auth(auth, environ={}))
    seed(client)

    run_module("vs_weight", dict(auth, name=NAME, namespace=NAMESPACE, weight=1))  # warm caches (bytecode, TLS)
    times = []
    for run in range(runs):
        started = time.perf_counter()
        result = run_module("vs_weight", dict(auth, name=NAME, namespace=NAMESPACE, weight=10 + run % 2 * 10))
        times.append(time.perf_counter() - started)
        if result.get("failed") or not result.get("changed"):
            raise SystemExit("run %d did not change the weight: %s" % (run, result.get("msg", result)))

    unchanged = []
    for _ in range(max(5, runs // 3)):
        started = time.perf_counter()
        run_module("vs_weight", dict(auth, name=NAME, namespace=NAMESPACE, weight=10 + (runs - 1) % 2 * 10))
        unchanged.append(time.perf_counter() - started)

    requests = {}
    in_process = []
    for run in range(runs):
        for label, weight in (("change", 30 + run % 2), ("no_change", 30 + run % 2)):
            counted = kube.client_from_auth(kube.resolve_auth(auth, environ={}))
            router = VirtualServiceRouter(counted, NAME, NAMESPACE)
            started = time.perf_counter()
            router.apply(RouteRequest(name=NAME, namespace=NAMESPACE, primary=DestinationRef(NAME + "-primary"),
                                      canary=DestinationRef(NAME + "-canary"), weight=weight))
            if label == "change":
                in_process.append(time.perf_counter() - started)
            requests[label] = max(requests.get(label, 0), counted.request_count)

    return {
        "runs": runs,
        "change_median_ms": round(statistics.median(times) * 1000, 1),
        "change_p90_ms": round(sorted(times)[int(0.9 * (len(times) - 1))] * 1000, 1),
        "change_min_ms": round(min(times) * 1000, 1),
        "change_max_ms": round(max(times) * 1000, 1),
        "no_change_median_ms": round(statistics.median(unchanged) * 1000, 1),
        "in_process_change_median_ms": round(statistics.median(in_process) * 1000, 1),
        "api_requests_per_change": requests["change"],
        "api_requests_no_change": requests["no_change"],
        "target_median_ms": 250,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--lab-state", type=pathlib.Path, help="state dir of a running lab (default: start one)")
    args = parser.parse_args()
    if args.lab_state:
        lab_info = json.loads((args.lab_state / "lab.json").read_text())
        print(json.dumps(measure(lab_info["kubeconfig"], args.runs), indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="vs-weight-bench-") as state:
        process = start_lab(pathlib.Path(state))
        try:
            lab_info = json.loads((pathlib.Path(state) / "lab.json").read_text())
            print(json.dumps(measure(lab_info["kubeconfig"], args.runs), indent=2))
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
