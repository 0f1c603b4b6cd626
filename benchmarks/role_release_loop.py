"""Control overhead of the canary role's release loop: per analysis tick over a long hold, per step, tasks per step.

Runs playbooks/canary.yml on a private lab and prints:

* per tick of a hold: a release held at its last step by a closed confirm-promotion gate for --ticks analyses
  (flagger mode, so each tick waits exactly one --hold-interval). The time between two analyses minus that
  interval is the loop's own cost; it is given for the first and the last 100 ticks, to show it stays flat.
* per step of a good release: (wall time - configured waits) / steps, where the configured waits are taken from
  the run's report (one interval per metric analysis, one poll per failed check). Runs of --few and --many steps
  also give the marginal cost of one more step, which leaves out the fixed cost of a run (plan, lock, initialize,
  promotion, report).
* the tasks the play runs for a release of few and of many steps.

    .venv/bin/python benchmarks/role_release_loop.py [--runs 3] [--ticks 1000] [--few 5] [--many 25]
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

import yaml  # noqa: E402

from lab.testing import deployment, start_lab, wait_for  # noqa: E402
from tests.support.modules import run_playbook  # noqa: E402
from tests.support.releases import post, short_manifest  # noqa: E402

PLAYBOOK = REPO / "playbooks" / "canary.yml"
IMAGES = ["ghcr.io/stefanprodan/podinfo:6.7.%d" % n for n in range(1, 100)]


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def spread(values: list[float]) -> str:
    return "median %.3f (min %.3f, max %.3f, %d runs)" % (statistics.median(values), min(values), max(values), len(values))


class Canary:
    def __init__(self, lab, workdir: pathlib.Path, name: str, **analysis) -> None:
        from kubernetes import client  # pylint: disable=import-outside-toplevel

        self.lab = lab
        self.namespace = "bench-%s-%d" % (name, int(time.time() * 1000) % 10**8)
        api = lab.kube_client()
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
        self.apps.create_namespaced_deployment(self.namespace, deployment("app"))
        self.path = workdir / ("%s.yaml" % self.namespace)
        self.path.write_text(yaml.safe_dump(short_manifest(self.namespace, threshold=1000, **analysis)))
        self.reports = workdir / "reports" / self.namespace
        self.images = iter(IMAGES)

    def extra(self, **overrides) -> dict:
        values = {"canary_kubeconfig": self.lab.kubeconfig, "canary_prometheus_url": self.lab.prometheus_url,
                  "canary_manifest": str(self.path), "canary_report_dir": str(self.reports),
                  "canary_metric_interval_override": "10s", "ansible_python_interpreter": sys.executable}
        values.update(overrides)
        return values

    def new_revision(self) -> None:
        image = next(self.images)
        self.apps.patch_namespaced_deployment("app", self.namespace, {"spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": image}]}}}})

    def report(self) -> dict:
        return json.loads(sorted(self.reports.glob("*.json"), key=lambda p: p.stat().st_mtime)[-1].read_text())

    def delete(self) -> None:
        self.core.delete_namespace(self.namespace)


def release_overhead(lab, workdir: pathlib.Path, steps: int, interval: float, poll: float) -> dict:
    """One good release of ``steps`` steps after a warm-up release of the same canary (so telemetry exists)."""
    canary = Canary(lab, workdir, "steps%d" % steps, stepWeights=[max(1, round(100 * (i + 1) / steps)) for i in range(steps)])
    extra = canary.extra(canary_interval_override="%dms" % round(interval * 1000), canary_poll=poll)
    assert run_playbook(PLAYBOOK, extra).returncode == 0
    canary.new_revision()
    assert run_playbook(PLAYBOOK, extra).returncode == 0
    canary.new_revision()
    started = time.monotonic()
    result = run_playbook(PLAYBOOK, extra)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit("release failed:\n" + result.stdout[-3000:])
    report = canary.report()
    checks = [e for e in report["timeline"] if e["kind"] == "check"]
    measured = [e for e in checks if e.get("metrics")]
    failed = [e for e in checks if any(not m.get("result") in ("pass", "skipped") for m in e["metrics"])]
    waits = len(measured) * interval + len(failed) * poll
    # Every task the play ran: with the whole release in one task, the count does not grow with the steps.
    tasks = sum(1 for line in result.stdout.splitlines() if line.startswith("TASK ["))
    canary.delete()
    return {"wall": wall, "waits": waits, "steps": steps, "per_step": (wall - waits) / steps,
            "tasks": tasks, "failed_checks": len(failed)}


def hold_ticks(lab, workdir: pathlib.Path, ticks: int, interval: float) -> dict:
    """A release held by a closed confirm-promotion gate for ``ticks`` analyses; the seconds between analyses."""
    hooks = [{"name": "approval", "type": "confirm-promotion", "url": lab.hooks_url + "/gate/check"}]
    canary = Canary(lab, workdir, "hold", stepWeights=[50], webhooks=hooks)
    key = {"name": "app", "namespace": canary.namespace}
    extra = canary.extra(canary_interval_override="%dms" % round(interval * 1000), canary_analysis_mode="flagger",
                         canary_webhook_gate_poll=interval / 2)
    post(lab.hooks_url + "/gate/open", key)
    assert run_playbook(PLAYBOOK, extra).returncode == 0
    canary.new_revision()
    post(lab.hooks_url + "/gate/close", key)

    def gate_asks() -> int:
        with urllib.request.urlopen(lab.hooks_url + "/calls", timeout=10) as answer:
            calls = json.loads(answer.read())
        return sum(1 for c in calls if c["path"] == "/gate/check" and (c.get("body") or {}).get("namespace") == canary.namespace)

    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(result=run_playbook(PLAYBOOK, extra, timeout=3600)))
    runner.start()
    # The gate is asked by every held analysis and again while it waits for the next one: more asks than analyses,
    # so this only says when to open the gate. The analyses themselves are counted from the report.
    wait_for(lambda: gate_asks() >= ticks, timeout=3600, interval=1, message="%d gate asks" % ticks)
    post(lab.hooks_url + "/gate/open", key)
    runner.join()
    if outcome["result"].returncode != 0:
        raise SystemExit("held release failed:\n" + outcome["result"].stdout[-3000:])
    checks = [e for e in canary.report()["timeline"] if e["kind"] == "check" and e.get("weight") == 50]
    canary.delete()
    times = [parse_time(e["time"]) for e in checks]
    periods = [b - a - interval for a, b in zip(times, times[1:])]
    return {"first": statistics.median(periods[:100]), "last": statistics.median(periods[-100:]), "ticks": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--hold-interval", type=float, default=0.05, help="seconds between analyses during the hold")
    parser.add_argument("--few", type=int, default=5)
    parser.add_argument("--many", type=int, default=25)
    parser.add_argument("--interval", type=float, default=0.5, help="analysis interval of the releases, seconds")
    parser.add_argument("--poll", type=float, default=0.25)
    args = parser.parse_args()
    lab = start_lab()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-loop-") as directory:
            workdir = pathlib.Path(directory)
            holds = [hold_ticks(lab, workdir, args.ticks, args.hold_interval) for _ in range(args.runs)]
            few = [release_overhead(lab, workdir, args.few, args.interval, args.poll) for _ in range(args.runs)]
            many = [release_overhead(lab, workdir, args.many, args.interval, args.poll) for _ in range(args.runs)]
    finally:
        lab.stop()
    print("hold of about %d analyses (%s; flagger mode, %.0f ms between analyses), loop cost per analysis in seconds:"
          % (args.ticks, ", ".join(str(h["ticks"]) for h in holds), args.hold_interval * 1000))
    print("  first 100 analyses: %s" % spread([h["first"] for h in holds]))
    print("  last 100 analyses:  %s" % spread([h["last"] for h in holds]))
    for label, rows in (("%d steps" % args.few, few), ("%d steps" % args.many, many)):
        print("good release of %s (fast mode, interval %.2f s, poll %.2f s):" % (label, args.interval, args.poll))
        print("  wall time:                          %s" % spread([r["wall"] for r in rows]))
        print("  (wall - configured waits) / steps:  %s" % spread([r["per_step"] for r in rows]))
        print("  failed checks (no data yet):        %s" % [r["failed_checks"] for r in rows])
        print("  tasks the play ran: %s (for %d steps)" % (sorted({r["tasks"] for r in rows}), rows[0]["steps"]))
    marginal = [((m["wall"] - m["waits"]) - (f["wall"] - f["waits"])) / (m["steps"] - f["steps"]) for f, m in zip(few, many)]
    print("one more step costs (marginal, %d vs %d steps): %s" % (args.many, args.few, spread(marginal)))


if __name__ == "__main__":
    main()
