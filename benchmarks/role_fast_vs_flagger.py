"""Time to roll back a bad canary, and the failed requests it served, in fast and flagger analysis modes.

Runs playbooks/canary.yml on a private lab for each mode, on the same manifest (Flagger's guide manifest shape,
intervals shortened) and the same bad release, and prints the numbers:

    .venv/bin/python benchmarks/role_fast_vs_flagger.py [--error-rate 0.05] [--interval 10s] [--threshold 5]

Time to rollback is measured from the moment the canary first gets traffic (first timeline entry at a weight above 0)
to the rollback entry of the run's report. Failed requests are the 5xx answers of the canary workload counted by the
real Prometheus over the run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

import yaml  # noqa: E402

from lab.testing import deployment, start_lab, wait_for  # noqa: E402
from tests.support.modules import run_playbook  # noqa: E402


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def manifest(namespace: str, threshold: int) -> dict:
    document = yaml.safe_load((REPO / "examples" / "backend-service-canary.yaml").read_text())
    document["metadata"] = {"name": "app", "namespace": namespace}
    document["spec"]["targetRef"]["name"] = "app"
    document["spec"]["service"]["hosts"] = ["app.example.com"]
    document["spec"]["analysis"]["threshold"] = threshold
    return document


def run_mode(lab, mode: str, args: argparse.Namespace, workdir: pathlib.Path) -> dict:
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    api = lab.kube_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    namespace = "bench-%s-%d" % (mode, int(time.time()))
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    apps.create_namespaced_deployment(namespace, deployment("app"))
    path = workdir / ("%s.yaml" % mode)
    path.write_text(yaml.safe_dump(manifest(namespace, args.threshold)))
    extra = {"canary_kubeconfig": lab.kubeconfig, "canary_prometheus_url": lab.prometheus_url,
             "canary_manifest": str(path), "canary_report_dir": str(workdir / "reports" / mode),
             "canary_interval_override": args.interval, "canary_metric_interval_override": args.metric_interval,
             "canary_poll": args.poll, "canary_analysis_mode": mode, "canary_fail_on_rollback": False,
             "ansible_python_interpreter": sys.executable}
    first = run_playbook(REPO / "playbooks" / "canary.yml", extra)
    if first.returncode != 0:
        raise SystemExit("initialization failed:\n" + first.stdout[-3000:])
    apps.patch_namespaced_deployment("app", namespace, {"spec": {"template": {"metadata": {"annotations": {
        "lab.progressive.delivery/error-rate": str(args.error_rate)}}}}})
    started = time.time()
    result = run_playbook(REPO / "playbooks" / "canary.yml", extra)
    wall = time.time() - started
    reports = sorted((workdir / "reports" / mode).glob("*.json"), key=lambda p: p.stat().st_mtime)
    report = json.loads(reports[-1].read_text())
    traffic = [e for e in report["timeline"] if (e.get("weight") or 0) > 0]
    rollback = [e for e in report["timeline"] if e["kind"] == "rollback"]
    to_rollback = parse_time(rollback[0]["time"]) - parse_time(traffic[0]["time"]) if traffic and rollback else None
    window = int(wall) + 30
    query = ('sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="%s",'
             'destination_workload="app",response_code=~"5.*"}[%ds]))' % (namespace, window))
    finished = time.time()
    # Count the last answers too: wait for a scrape taken after the run ended.
    wait_for(lambda: (lab.query_value('max(timestamp(istio_requests_total{destination_workload_namespace="%s"}))'
                                      % namespace) or 0) > finished, timeout=15, message="a scrape after the run")
    failed = lab.query_value(query) or 0.0
    core.delete_namespace(namespace)
    return {"mode": mode, "result": report["result"], "rc": result.returncode, "wall_seconds": round(wall, 1),
            "seconds_to_rollback": round(to_rollback, 1) if to_rollback is not None else None,
            "failed_requests": round(failed), "reason": report["reason"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--error-rate", type=float, default=0.05, help="share of the canary's requests that fail")
    parser.add_argument("--interval", default="10s", help="analysis interval (Go duration)")
    parser.add_argument("--metric-interval", default="10s", help="metric window (Prometheus duration)")
    parser.add_argument("--threshold", type=int, default=5)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between evaluations in fast mode")
    args = parser.parse_args()
    lab = start_lab()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-role-") as directory:
            rows = [run_mode(lab, mode, args, pathlib.Path(directory)) for mode in ("fast", "flagger")]
    finally:
        lab.stop()
    print("bad canary: error rate %.2f, interval %s, metric window %s, threshold %d, poll %.1fs"
          % (args.error_rate, args.interval, args.metric_interval, args.threshold, args.poll))
    print("%-8s %-10s %18s %14s %16s" % ("mode", "result", "to rollback (s)", "run wall (s)", "failed requests"))
    for row in rows:
        print("%-8s %-10s %18s %14s %16s" % (row["mode"], row["result"], row["seconds_to_rollback"], row["wall_seconds"],
                                             row["failed_requests"]))
    fast, flagger = rows
    if fast["seconds_to_rollback"] and flagger["seconds_to_rollback"]:
        print("fast mode rolled back %.1fx sooner and its canary served %s failed requests instead of %s"
              % (flagger["seconds_to_rollback"] / fast["seconds_to_rollback"], fast["failed_requests"],
                 flagger["failed_requests"]))
    for row in rows:
        print("%s: %s" % (row["mode"], row["reason"]))


if __name__ == "__main__":
    main()
