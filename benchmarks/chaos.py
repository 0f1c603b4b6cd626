"""The chaos suite: killed playbooks and failing APIs during canary releases, and what they leave behind.

Runs on one private lab (or the one LAB_STATE_DIR names):

* --kills trials (30): ansible-playbook is killed with SIGKILL at a random moment of a release (start, analysis,
  promotion or rollback; three in ten canaries are bad), then playbooks/canary.yml is rerun plainly until the release
  ends;
* --faults trials (10): a release goes through the lab's fault front, and once the canary serves, one fault holds for
  2-8 s: route, Deployment, Lease or state writes failing with 500, every API call 2 s slow or half of them 503, or
  Prometheus stopped. Then plain reruns.

It prints, per trial and in total: whether the release converged (ended where its outcome says, within 3 reruns),
the moments a watcher saw traffic on a canary without a ready pod, the requests the mesh answered "no healthy
upstream" for the canary's Service (counted exactly: max_over_time of each counter, which starts at zero), and the
appearances of the webhook token placed in the manifest in any output, report, state or Event.

Usage: nice .venv/bin/python benchmarks/chaos.py [--kills 30] [--faults 10] [--seed 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

# pylint: disable=wrong-import-position
from lab.testing import attach, start_lab  # noqa: E402
from tests.support.chaos import FAULT_KINDS, Trial, fault_trial, kill_trial  # noqa: E402


def run_trials(lab, args: argparse.Namespace, workdir: pathlib.Path) -> list[Trial]:
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    core = client.CoreV1Api(lab.kube_client())
    rng = random.Random(args.seed)
    plan = [("kill", None)] * args.kills + [("fault", FAULT_KINDS[i % len(FAULT_KINDS)]) for i in range(args.faults)]
    rng.shuffle(plan)
    trials = []
    for number, (kind, fault) in enumerate(plan, 1):
        namespace = "chaos-%d-%d" % (os.getpid(), number)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        trial_dir = workdir / namespace
        trial_dir.mkdir()
        try:
            if kind == "kill":
                trial = kill_trial(lab, namespace, trial_dir, rng)
            else:
                trial = fault_trial(lab, namespace, trial_dir, rng, fault)
        finally:
            core.delete_namespace(namespace)
        trials.append(trial)
        print("%2d %-5s %-34s %-4s %-9s reruns %d  unsafe %d  503 UH %d  leaks %d  %5.1f s %s" % (
            number, trial.kind, trial.detail, "bad" if trial.bad_canary else "good", trial.phase, trial.reruns,
            trial.unsafe_moments, trial.no_upstream_requests, trial.secret_leaks, trial.seconds,
            ("PROBLEM: " + trial.problem) if trial.problem else ""), flush=True)
    return trials


def summary(trials: list[Trial]) -> dict:
    kills = [t for t in trials if t.kind == "kill"]
    faults = [t for t in trials if t.kind == "fault"]
    return {
        "kills_converged": "%d/%d" % (sum(t.converged for t in kills), len(kills)),
        "faulted_releases_safe": "%d/%d" % (sum(t.converged and not t.unsafe_moments for t in faults), len(faults)),
        "unsafe_moments": sum(t.unsafe_moments for t in trials),
        "requests_to_a_canary_without_endpoints": sum(t.no_upstream_requests for t in trials),
        "secrets_in_output": sum(t.secret_leaks for t in trials),
        "reruns": sum(t.reruns for t in trials),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--faults", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    state_dir = os.environ.get("LAB_STATE_DIR")
    lab = attach(state_dir) if state_dir else start_lab()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="chaos-") as workdir:
            trials = run_trials(lab, args, pathlib.Path(workdir))
    finally:
        if not state_dir:
            lab.stop()
    totals = summary(trials)
    print("\nChaos suite, seed %d, %.0f s:" % (args.seed, time.monotonic() - started))
    for key, value in totals.items():
        print("  %-40s %s" % (key.replace("_", " "), value))
    if args.json:
        args.json.write_text(json.dumps({"summary": totals, "trials": [t.as_dict() for t in trials]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
