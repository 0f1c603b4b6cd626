"""Time to roll back a bad canary, and the failed requests it served, for each analysis mode on the lab.

Starts one private lab (real control plane, simulated mesh, real Prometheus) and runs playbooks/canary.yml on the
seed manifest (examples/backend-service-canary.yaml, Flagger's Istio guide, unchanged but for its namespace; the
intervals are shortened with canary_interval_override / canary_metric_interval_override). Each trial releases a
canary that fails a given share of its requests (the lab's error-rate annotation on the target's pod template) in a
namespace of its own, at the lab's default traffic. Every cell (mode x error rate) gets --trials trials; trial 1 of
every cell runs before trial 2 of any, and the order of the modes rotates from one trial to the next, so drift of the
machine (other jobs, a warming cache) falls on every mode alike.

    .venv/bin/python benchmarks/judge_lab.py [--modes flagger,fast,sequential] [--error-rates 0.05,0.30]
        [--trials 3] [--interval 10s] [--metric-interval 10s] [--poll 1] [--set canary_sequential_alpha=0.01]
        [--json results.json]

Per trial:
- time to rollback: from the report's first weight above 0 (the canary takes traffic) to its rollback entry;
- failed and total requests of the canary: the mesh's own counters (its /metrics, istio_requests_total as the
  destination proxy reports it, per workload), read right before and after the release. They are exact, unlike
  Prometheus' increase(), which extrapolates, misses the first sample of a series born during the window and
  loses what comes after the last scrape.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

import yaml  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from lab.mesh.outcomes import DEFAULT_RPS, ERROR_RATE_ANNOTATION  # noqa: E402
from lab.testing import LabHandle, Objects, start_lab, wait_for  # noqa: E402
from tests.support.modules import run_playbook  # noqa: E402

SEED_MANIFEST = REPO / "examples" / "backend-service-canary.yaml"
MODES = ("flagger", "fast", "sequential")
RATES = (0.05, 0.30)
# The release in flight when the mesh's counters are read last must be over: the mesh follows the VirtualService
# a moment behind the API, and requests it routed to the canary in that moment were served by it.
MESH_SETTLE_SECONDS = 1.0


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def seed_manifest(namespace: str) -> dict[str, Any]:
    document = yaml.safe_load(SEED_MANIFEST.read_text())
    document["metadata"]["namespace"] = namespace
    return document


def canary_counts(lab: LabHandle, namespace: str, workload: str) -> tuple[int, int]:
    """(requests, 5xx answers) the workload served, from the mesh's own counters (destination proxy's view)."""
    with urllib.request.urlopen(lab.mesh_url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    total = failed = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (sample.name != "istio_requests_total" or labels.get("reporter") != "destination"
                    or labels.get("destination_workload") != workload
                    or labels.get("destination_workload_namespace") != namespace):
                continue
            total += sample.value
            if labels.get("response_code", "").startswith("5"):
                failed += sample.value
    return round(total), round(failed)


def latest_report(directory: pathlib.Path) -> dict[str, Any] | None:
    reports = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(reports[-1].read_text()) if reports else None


def timeline_seconds(report: dict[str, Any]) -> tuple[float | None, float | None]:
    """Seconds from the first traffic to the canary to its rollback, and to its promotion (None when absent)."""
    timeline = report.get("timeline") or []
    traffic = [e for e in timeline if e.get("kind") == "weight" and (e.get("weight") or 0) > 0]
    if not traffic:
        return None, None
    start = parse_time(traffic[0]["time"])

    def seconds_to(kind: str) -> float | None:
        found = [e for e in timeline if e.get("kind") == kind]
        return round(parse_time(found[0]["time"]) - start, 1) if found else None
    return seconds_to("rollback"), seconds_to("promotion")


def run_trial(lab: LabHandle, mode: str, rate: float, trial: int, args: argparse.Namespace,
              workdir: pathlib.Path) -> dict[str, Any]:
    document = seed_manifest("placeholder")
    target = document["spec"]["targetRef"]["name"]
    namespace = "judge-%s-%d-t%d-%s" % (mode, round(rate * 100), trial, format(int(time.time() * 1000) % 46656, "x"))
    document["metadata"]["namespace"] = namespace
    row: dict[str, Any] = {"mode": mode, "error_rate": rate, "trial": trial, "namespace": namespace}
    api = lab.kube_client()
    objects = Objects(api, namespace, lab.mesh_url)
    objects.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        objects.workload(target, with_service=False)
        manifest_path = workdir / ("%s.yaml" % namespace)
        manifest_path.write_text(yaml.safe_dump(document))
        extra = {"canary_kubeconfig": lab.kubeconfig, "canary_prometheus_url": lab.prometheus_url,
                 "canary_manifest": str(manifest_path), "canary_interval_override": args.interval,
                 "canary_metric_interval_override": args.metric_interval, "canary_poll": args.poll,
                 "canary_analysis_mode": mode, "canary_fail_on_rollback": False,
                 "ansible_python_interpreter": sys.executable, **args.role_vars}
        init = run_playbook(REPO / "playbooks" / "canary.yml",
                            {**extra, "canary_report_dir": str(workdir / namespace / "init")})
        if init.returncode != 0:
            return {**row, "outcome": "error", "error": "initialization failed (rc %d): %s"
                    % (init.returncode, init.stdout[-1500:])}
        objects.set_template_annotations(target, {ERROR_RATE_ANNOTATION: str(rate)})
        before = canary_counts(lab, namespace, target)
        started = time.time()
        release = run_playbook(REPO / "playbooks" / "canary.yml",
                               {**extra, "canary_report_dir": str(workdir / namespace / "release")})
        wall = time.time() - started
        time.sleep(MESH_SETTLE_SECONDS)
        after = canary_counts(lab, namespace, target)
        report = latest_report(workdir / namespace / "release")
        if report is None:
            return {**row, "outcome": "error", "error": "the release wrote no report (rc %d): %s"
                    % (release.returncode, release.stdout[-1500:])}
        to_rollback, to_promotion = timeline_seconds(report)
        result = str(report.get("result"))
        outcome = "rolled back" if to_rollback is not None else "promoted" if result == "Succeeded" else result
        return {**row, "outcome": outcome, "result": result, "rc": release.returncode,
                "seconds_to_rollback": to_rollback, "seconds_to_promotion": to_promotion,
                "run_wall_seconds": round(wall, 1), "canary_requests": after[0] - before[0],
                "canary_failed_requests": after[1] - before[1], "final_weight": report.get("final_weight"),
                "reason": report.get("reason")}
    finally:
        try:
            objects.core.delete_namespace(namespace)
        except Exception as error:  # pylint: disable=broad-except
            print("could not delete namespace %s: %s" % (namespace, error), file=sys.stderr)


def spread(values: list[float | int | None]) -> dict[str, Any] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"median": statistics.median(present), "min": min(present), "max": max(present), "n": len(present)}


def summarize(rows: list[dict[str, Any]], modes: list[str], rates: list[float]) -> list[dict[str, Any]]:
    cells = []
    for rate in rates:
        for mode in modes:
            trials = [r for r in rows if r["mode"] == mode and r["error_rate"] == rate]
            cells.append({
                "mode": mode, "error_rate": rate, "trials": len(trials),
                "rolled_back": sum(1 for r in trials if r["outcome"] == "rolled back"),
                "promoted": sum(1 for r in trials if r["outcome"] == "promoted"),
                "other": sum(1 for r in trials if r["outcome"] not in ("rolled back", "promoted")),
                "seconds_to_rollback": spread([r.get("seconds_to_rollback") for r in trials]),
                "canary_failed_requests": spread([r.get("canary_failed_requests") for r in trials]),
                "canary_requests": spread([r.get("canary_requests") for r in trials]),
            })
    return cells


def cell_text(value: dict[str, Any] | None, unit: str = "") -> str:
    if value is None:
        return "-"

    def fmt(number: float) -> str:
        return "%.1f" % number if unit == "s" else "%g" % number
    return "%s%s [%s-%s]" % (fmt(value["median"]), unit, fmt(value["min"]), fmt(value["max"]))


def print_table(machine: dict[str, Any], settings: dict[str, Any], cells: list[dict[str, Any]],
                rows: list[dict[str, Any]]) -> None:
    print("machine: %(cores)s cores, %(system)s, Python %(python)s, lab backend %(backend)s, "
          "load average %(load_start)s at start, %(load_end)s at end" % machine)
    print("settings: " + ", ".join("%s=%s" % (k, v) for k, v in settings.items()))
    print("time to rollback: first traffic to the canary -> rollback; requests: the canary's, counted by the mesh")
    print("values: median [min-max] over the trials that reached them")
    header = ("mode", "errors", "to rollback", "failed requests", "canary requests", "rolled back/promoted/other",
              "trials")
    widths = (10, 7, 22, 17, 17, 27, 6)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for cell in cells:
        values = (cell["mode"], "%g%%" % (cell["error_rate"] * 100), cell_text(cell["seconds_to_rollback"], "s"),
                  cell_text(cell["canary_failed_requests"]), cell_text(cell["canary_requests"]),
                  "%d/%d/%d" % (cell["rolled_back"], cell["promoted"], cell["other"]), str(cell["trials"]))
        print("  ".join(v.ljust(w) for v, w in zip(values, widths)))
    print()
    print("trials:")
    for row in rows:
        if row["outcome"] == "error":
            print("  %(mode)s %(error_rate)g t%(trial)d: ERROR %(error)s" % row)
            continue
        print("  %s %g t%d: %s after %ss, %s/%s canary requests failed, run %ss: %s"
              % (row["mode"], row["error_rate"], row["trial"], row["outcome"],
                 row.get("seconds_to_rollback") or row.get("seconds_to_promotion"), row["canary_failed_requests"],
                 row["canary_requests"], row["run_wall_seconds"], row.get("reason")))


def role_vars(pairs: list[str]) -> dict[str, Any]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("canary_"):
            raise SystemExit("--set takes canary_<name>=<value> (a role variable), got %r" % pair)
        values[name] = yaml.safe_load(value)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES), help="analysis modes, comma-separated")
    parser.add_argument("--error-rates", default=",".join("%g" % r for r in RATES),
                        help="shares of the canary's requests that fail, comma-separated")
    parser.add_argument("--trials", type=int, default=3, help="trials per mode and error rate")
    parser.add_argument("--interval", default="10s", help="analysis interval (Go duration)")
    parser.add_argument("--metric-interval", default="10s", help="metric window (Prometheus duration)")
    parser.add_argument("--poll", type=float, default=1.0, help="canary_poll: seconds between evaluations")
    parser.add_argument("--set", dest="role_vars", action="append", default=[], metavar="canary_NAME=VALUE",
                        help="another role variable for every run (YAML value); repeatable")
    parser.add_argument("--backend", default=os.environ.get("LAB_BACKEND", "cluster"),
                        help="lab backend: cluster (real control plane, default), emulated or auto")
    parser.add_argument("--json", metavar="FILE", help="also write every trial and the summary as JSON ('-': stdout)")
    args = parser.parse_args()
    args.role_vars = role_vars(args.role_vars)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    rates = [float(r) for r in args.error_rates.split(",") if r.strip()]
    if args.trials < 1 or not modes or not rates:
        raise SystemExit("need at least one mode, one error rate and one trial")

    load_start = "%.2f" % os.getloadavg()[0]
    lab = start_lab(backend=args.backend)
    rows: list[dict[str, Any]] = []
    try:
        # The mesh only answers /metrics once it runs; fail early rather than after the first release.
        wait_for(lambda: canary_counts(lab, "none", "none") == (0, 0), message="the mesh's /metrics")
        with tempfile.TemporaryDirectory(prefix="judge-lab-") as directory:
            for trial in range(1, args.trials + 1):
                order = modes[(trial - 1) % len(modes):] + modes[:(trial - 1) % len(modes)]
                for rate in rates:
                    for mode in order:
                        row = run_trial(lab, mode, rate, trial, args, pathlib.Path(directory))
                        rows.append(row)
                        print("[%s] %s %g t%d: %s %s s, %s failed of %s" % (
                            time.strftime("%H:%M:%S"), mode, rate, trial, row["outcome"],
                            row.get("seconds_to_rollback"), row.get("canary_failed_requests"),
                            row.get("canary_requests")), file=sys.stderr, flush=True)
        backend = lab.backend
    finally:
        lab.stop()

    machine = {"cores": os.cpu_count(), "system": platform.platform(terse=True), "python": platform.python_version(),
               "backend": backend, "load_start": load_start, "load_end": "%.2f" % os.getloadavg()[0]}
    settings = {"manifest": SEED_MANIFEST.relative_to(REPO).as_posix(), "interval": args.interval,
                "metric_interval": args.metric_interval, "poll": args.poll, "trials": args.trials,
                "traffic_rps": DEFAULT_RPS, **args.role_vars}
    cells = summarize(rows, modes, rates)
    print_table(machine, settings, cells, rows)
    if args.json:
        payload = json.dumps({"machine": machine, "settings": settings, "cells": cells, "trials": rows}, indent=2)
        if args.json == "-":
            print(payload)
        else:
            pathlib.Path(args.json).write_text(payload + "\n")


if __name__ == "__main__":
    main()
