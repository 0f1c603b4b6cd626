"""Time from a canary turning bad to the gate failing: Flagger's once-per-interval rule versus watch mode.

Runs on the lab (a private one, or the one named by $LAB_STATE_DIR) with the seed guide's analysis scaled
down: interval 1m -> --interval seconds, threshold 5, request-success-rate min 99 and request-duration
max 500 with the metric window scaled alike. The canary gets the seed guide's first step (10 % weight).

* once-per-interval: the module in mode ``once`` every interval, as Flagger's scheduler checks; the
  rollback decision comes at the ``threshold``-th failed check. The canary turns bad at a random phase
  of the interval, as it would in a real release.
* watch: the module in mode ``watch`` (poll --poll s, duration = interval), called back to back as the
  role does; the decision comes when it returns with a breach.

Usage: python benchmarks/gate_detection.py [--trials 2] [--interval 10] [--poll 1]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import statistics
import sys
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.testing import Objects, attach, start_lab, wait_for  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.modules import run_module  # noqa: E402  pylint: disable=wrong-import-position

THRESHOLD = 5
BAD = {"lab.progressive.delivery/error-rate": "0.2"}
GOOD = {"lab.progressive.delivery/error-rate": "0"}


def metrics(window: str) -> list[dict]:
    return [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": window},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": window},
    ]


def gate(lab, namespace: str, window: str, **options) -> dict:
    args = dict({"prometheus_url": lab.prometheus_url, "namespace": namespace, "target": "podinfo", "metrics": metrics(window)}, **options)
    return run_module("prometheus_gate", args)


def setup(lab, objects: Objects) -> None:
    objects.workload("podinfo-primary", error_rate=0)
    objects.workload("podinfo", error_rate=0)
    objects.wait_ready("podinfo-primary")
    objects.wait_ready("podinfo")
    objects.virtualservice(
        "podinfo-vs", ["podinfo-vs"],
        [{"route": [{"destination": {"host": "podinfo-primary"}, "weight": 90}, {"destination": {"host": "podinfo"}, "weight": 10}]}],
        annotations={"lab.progressive.delivery/rps": "200"})


def wait_healthy(lab, namespace: str, window: str) -> None:
    wait_for(lambda: gate(lab, namespace, window)["passed"], timeout=120, interval=1, message="a passing gate on a healthy canary")


def once_per_interval(lab, objects: Objects, namespace: str, window: str, interval: float, rng: random.Random) -> tuple[float, int]:
    objects.set_template_annotations("podinfo", BAD)
    turned_bad = time.monotonic()
    first_check = turned_bad + rng.uniform(0, interval)
    failures = checks = 0
    while failures < THRESHOLD:
        time.sleep(max(0.0, first_check + checks * interval - time.monotonic()))
        checks += 1
        if not gate(lab, namespace, window)["passed"]:
            failures += 1
    return time.monotonic() - turned_bad, checks


def watching(lab, objects: Objects, namespace: str, window: str, interval: float, poll: float) -> tuple[float, int]:
    objects.set_template_annotations("podinfo", BAD)
    turned_bad = time.monotonic()
    calls = 0
    while True:
        calls += 1
        result = gate(lab, namespace, window, mode="watch", poll=poll, duration=interval)
        if result.get("breached"):
            return time.monotonic() - turned_bad, len(result["samples"])
        if calls > 20:
            raise RuntimeError("watch never saw the bad canary: %s" % result.get("msg"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--interval", type=float, default=10.0, help="scaled analysis interval in seconds (seed guide: 60)")
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    window = "%ds" % int(options.interval)
    rng = random.Random(options.seed)

    state_dir = os.environ.get("LAB_STATE_DIR")
    lab = attach(state_dir) if state_dir else start_lab()
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    api = lab.kube_client()
    namespace = "bench-gate-%s" % uuid.uuid4().hex[:6]
    client.CoreV1Api(api).create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    objects = Objects(api, namespace, mesh_url=lab.mesh_url)
    flagger_times: list[float] = []
    watch_times: list[float] = []
    try:
        setup(lab, objects)
        for trial in range(options.trials):
            for name, runner, sink in (
                ("once-per-interval", lambda: once_per_interval(lab, objects, namespace, window, options.interval, rng), flagger_times),
                ("watch", lambda: watching(lab, objects, namespace, window, options.interval, options.poll), watch_times),
            ):
                objects.set_template_annotations("podinfo", GOOD)
                wait_healthy(lab, namespace, window)
                seconds, count = runner()
                sink.append(seconds)
                unit = "checks" if name == "once-per-interval" else "polls in the last call"
                print("trial %d %-18s %6.1f s to a failed gate (%d %s)" % (trial + 1, name, seconds, count, unit), flush=True)
    finally:
        client.CoreV1Api(api).delete_namespace(namespace)
        api.close()
        lab.stop()

    flagger = statistics.median(flagger_times)
    watch = statistics.median(watch_times)
    print()
    print("analysis interval %gs, threshold %d, metric window %s, poll %gs, %d trials" % (options.interval, THRESHOLD, window, options.poll, options.trials))
    print("median time from bad canary to failed gate: once-per-interval %.1f s, watch %.1f s" % (flagger, watch))
    print("ratio (once-per-interval / watch): %.1fx" % (flagger / watch))


if __name__ == "__main__":
    main()
