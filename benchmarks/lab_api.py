"""Latency of the lab's Kubernetes API over HTTPS and the idle CPU of the API server and workload controller.

    .venv/bin/python benchmarks/lab_api.py [--requests 300] [--idle-window 10]

Starts a Store, KubeAPIServer and WorkloadController in this process on a
free port, then times GET, PUT (replace) and PATCH (merge and strategic
merge) of a ConfigMap and of a VirtualService through the kubernetes client,
one request at a time on a kept-alive connection. "typed" is the client call
as modules make it (response decoded into objects); "raw" skips decoding the
body (_preload_content=False) so it is closer to the server's own time. The
client shares the process (and the GIL) with the server, so the numbers are
an upper bound for the server.

Idle CPU is this process's CPU time over a window in which nothing calls the
API, with one Deployment present for the controller to watch.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Callable

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.controller import WorkloadController  # noqa: E402  pylint: disable=wrong-import-position
from lab.kube.server import KubeAPIServer  # noqa: E402  pylint: disable=wrong-import-position
from lab.store import Store  # noqa: E402  pylint: disable=wrong-import-position

NAMESPACE = "bench"
ISTIO = "networking.istio.io"
MERGE_PATCH = "application/merge-patch+json"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds() -> float:
    with open("/proc/self/stat", encoding="utf-8") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of /proc/<pid>/stat; fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def timed(call: Callable[[int], object], count: int, warmup: int = 20) -> tuple[float, float]:
    """Median and p90 in milliseconds of `count` sequential calls, after a few unmeasured ones."""
    for index in range(warmup):
        call(index)
    samples = []
    for index in range(count):
        started = time.perf_counter()
        call(warmup + index)
        samples.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(samples), percentile(samples, 0.9)


def drain(response) -> None:
    response.read()
    response.release_conn()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests per operation")
    parser.add_argument("--idle-window", type=float, default=10.0, help="seconds over which idle CPU is measured")
    args = parser.parse_args()

    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory(prefix="lab-api-bench-") as temp:
        store = Store()
        server = KubeAPIServer(store, pathlib.Path(temp))
        controller = WorkloadController(store)
        server.start()
        controller.start()
        try:
            api_client = config.new_client_from_config(str(server.kubeconfig_path))
            core = client.CoreV1Api(api_client)
            apps = client.AppsV1Api(api_client)
            custom = client.CustomObjectsApi(api_client)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "cm"}, "data": {"n": "0"}})
            custom.create_namespaced_custom_object(ISTIO, "v1", NAMESPACE, "virtualservices", {
                "apiVersion": f"{ISTIO}/v1", "kind": "VirtualService", "metadata": {"name": "vs"},
                "spec": {"hosts": ["backend"], "http": [{"name": "main", "route": [
                    {"destination": {"host": "backend-primary"}, "weight": 100},
                    {"destination": {"host": "backend-canary"}, "weight": 0}]}]}})

            def replace_config_map(index: int) -> None:
                current = core.read_namespaced_config_map("cm", NAMESPACE, _preload_content=False)
                body = json.loads(current.data)
                body["data"]["n"] = str(index)
                core.replace_namespaced_config_map("cm", NAMESPACE, body)

            vs_body = custom.get_namespaced_custom_object(ISTIO, "v1", NAMESPACE, "virtualservices", "vs")

            def replace_virtual_service(index: int) -> None:
                weight = index % 101
                vs_body["spec"]["http"][0]["route"][0]["weight"] = 100 - weight
                vs_body["spec"]["http"][0]["route"][1]["weight"] = weight
                written = custom.replace_namespaced_custom_object(ISTIO, "v1", NAMESPACE, "virtualservices", "vs",
                                                                  vs_body)
                vs_body["metadata"]["resourceVersion"] = written["metadata"]["resourceVersion"]

            operations: list[tuple[str, Callable[[int], object]]] = [
                ("GET configmap (typed)", lambda i: core.read_namespaced_config_map("cm", NAMESPACE)),
                ("GET configmap (raw)", lambda i: drain(core.read_namespaced_config_map(
                    "cm", NAMESPACE, _preload_content=False))),
                ("PATCH configmap merge (typed)", lambda i: core.patch_namespaced_config_map(
                    "cm", NAMESPACE, {"data": {"n": str(i)}}, _content_type=MERGE_PATCH)),
                ("PATCH configmap merge (raw)", lambda i: drain(core.patch_namespaced_config_map(
                    "cm", NAMESPACE, {"data": {"n": str(i)}}, _content_type=MERGE_PATCH, _preload_content=False))),
                # The client sends a dict patch of a built-in kind as a strategic merge patch.
                ("PATCH configmap strategic merge (typed)", lambda i: core.patch_namespaced_config_map(
                    "cm", NAMESPACE, {"data": {"n": str(i)}})),
                ("PUT configmap (typed, unconditional)", lambda i: core.replace_namespaced_config_map(
                    "cm", NAMESPACE, {"metadata": {"name": "cm"}, "data": {"n": str(i)}})),
                ("GET virtualservice", lambda i: custom.get_namespaced_custom_object(
                    ISTIO, "v1", NAMESPACE, "virtualservices", "vs")),
                ("PUT virtualservice (with resourceVersion)", replace_virtual_service),
                ("PATCH virtualservice merge", lambda i: custom.patch_namespaced_custom_object(
                    ISTIO, "v1", NAMESPACE, "virtualservices", "vs",
                    {"metadata": {"annotations": {"bench": str(i)}}})),
            ]
            print(f"{args.requests} sequential requests per operation over HTTPS, milliseconds:")
            for label, call in operations:
                median, p90 = timed(call, args.requests)
                print(f"  {label:45s} median {median:6.2f}  p90 {p90:6.2f}")
            get_then_put = timed(replace_config_map, args.requests)
            print(f"  {'GET + PUT configmap (read-modify-write)':45s} median {get_then_put[0]:6.2f}  "
                  f"p90 {get_then_put[1]:6.2f}")

            labels = {"app": "web"}
            apps.create_namespaced_deployment(NAMESPACE, {
                "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "app", "image": "podinfo:6.7.0"}]}}}})
            deadline = time.monotonic() + 10
            while not (apps.read_namespaced_deployment_status("web", NAMESPACE).status.ready_replicas or 0) >= 2:
                if time.monotonic() > deadline:
                    raise SystemExit("the controller did not make the deployment ready within 10 s")
                time.sleep(0.1)
            api_client.close()
            time.sleep(1.0)  # let connection threads finish
            before, started = process_cpu_seconds(), time.monotonic()
            time.sleep(args.idle_window)
            cpu = process_cpu_seconds() - before
            elapsed = time.monotonic() - started
            print(f"idle API server + controller: {cpu:.2f} s CPU over {elapsed:.1f} s "
                  f"= {100.0 * cpu / elapsed:.2f} % of one core (clock tick {1000 / CLOCK_TICKS:.0f} ms)")
        finally:
            controller.stop()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
