"""The cost of a release and of a fleet: CPU per release, control overhead per step, N canaries in parallel.

Runs examples/fleet/release.yml on a private lab, one canary per inventory host (``-f N``), each a Canary shaped
like the seed manifest (examples/backend-service-canary.yaml: five steps of 10 %, two Istio metrics) with 5 s
intervals, and prints:

* CPU per release: user + sys of ansible-playbook and every process it started, for one good release, and the CPU of
  the 20-canary run divided by 20, where the run's own start is shared;
* control overhead per step: (wall time of that release - the configured waits) / steps, where the waits come from
  the run's report (one interval per analysis with metrics, one poll per failed check);
* wall time of 1, 5, 10 and 20 canaries released by one playbook run, and its ratio to one canary, with the time each
  promotion took (the primary's rollout, which slows when every canary promotes at once);
* the lab's CPU over each fleet run (every lab process: the emulated mesh, Prometheus, the control plane), and at 20
  canaries process by process, so the lab's share can be seen;
* the wall time of the release task and of the tasks around it in each fleet run, with the CPU of
  ansible-playbook's main process and of its workers for the latter (a callback of the benchmark's,
  benchmarks/callback_plugins/task_clock.py, times every task).

Each figure stands next to the issue's "today" numbers, with the target and whether it is met. The single-canary
figures are the median of --runs releases, with their spread. ``--baseline REF`` runs the same releases with the
collection as it is at git REF (exported to a temp dir), alternating with the checkout, so two versions compare on
the same machine in the same run. Both run with this checkout's examples/ansible.cfg, the settings the docs give for
release jobs (skipped tasks are still shown, so the benchmark can count them).

    .venv/bin/python benchmarks/fleet.py [--quick] [--runs 3] [--fleets 1,5,10,20] [--baseline HEAD~3]
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

import yaml  # noqa: E402

from lab.seed import demo_deployment  # noqa: E402
from lab.testing import start_lab  # noqa: E402
from tests.support.modules import ensure_collection_layout  # noqa: E402

SEED = REPO / "examples" / "backend-service-canary.yaml"
PLAYBOOK = pathlib.PurePath("examples", "fleet", "release.yml")
INTERVAL = 5.0
POLL = 1.0
TODAY = {"cpu": 17.0, "per_step": (2.0, 2.4), "wall": {1: 42.0, 5: 70.0, 10: 118.0, 20: 216.0}}
TARGETS = {"cpu": 3.0, "per_step": 0.5, "ratio": 1.3}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TASK_CLOCK = pathlib.Path(__file__).resolve().parent / "callback_plugins"
RELEASE_TASK = "Release the canary"


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return "%.2f (1 run)" % values[0]
    return "%.2f (min %.2f, max %.2f, %d runs)" % (statistics.median(values), min(values), max(values), len(values))


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


class Collection:
    """A copy of the collection to run playbooks with: the checkout itself, or a git ref exported to a temp dir."""

    def __init__(self, label: str, root: pathlib.Path, collections_path: pathlib.Path) -> None:
        self.label, self.root, self.collections_path = label, root, collections_path

    @classmethod
    def checkout(cls) -> "Collection":
        return cls("checkout", REPO, ensure_collection_layout())

    @classmethod
    def exported(cls, ref: str, directory: pathlib.Path) -> "Collection":
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], check=True,
                                 capture_output=True).stdout
        root = directory / "ansible_collections" / "progressive" / "delivery"
        root.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        return cls(ref, root, directory)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"PYTHONPATH": str(self.collections_path), "ANSIBLE_COLLECTIONS_PATH": str(self.collections_path),
                    "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                    "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_CONFIG": str(REPO / "examples" / "ansible.cfg"),
                    "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "True"})
        return env


class Fleet:
    """N canaries of the seed's shape, one namespace each, and playbook runs that release them all."""

    def __init__(self, lab, workdir: pathlib.Path, size: int, tag: str) -> None:
        from kubernetes import client  # pylint: disable=import-outside-toplevel

        self.lab, self.size = lab, size
        api = lab.kube_client()
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.workdir = workdir / tag
        self.workdir.mkdir(parents=True)
        seed = yaml.safe_load(SEED.read_text())
        self.steps = len(range(seed["spec"]["analysis"]["stepWeight"], seed["spec"]["analysis"]["maxWeight"] + 1,
                               seed["spec"]["analysis"]["stepWeight"]))
        self.hosts: dict[str, str] = {}
        for index in range(size):
            namespace = "%s-%02d" % (tag, index)
            self.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            self.apps.create_namespaced_deployment(namespace, demo_deployment(namespace))
            manifest = dict(seed, metadata=dict(seed["metadata"], namespace=namespace))
            path = self.workdir / ("%s.yaml" % namespace)
            path.write_text(yaml.safe_dump(manifest))
            self.hosts[namespace] = str(path)
        self.inventory = self.workdir / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump({"all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "hosts": {host: {"canary_manifest": path} for host, path in self.hosts.items()}}}))
        self.revision = 0

    def new_revision(self) -> None:
        self.revision += 1
        image = "ghcr.io/stefanprodan/podinfo:6.7.%d" % self.revision
        for namespace in self.hosts:
            self.apps.patch_namespaced_deployment("backend-service", namespace, {"spec": {"template": {"spec": {
                "containers": [{"name": "backend-service", "image": image}]}}}})

    def run(self, collection: Collection) -> dict:
        """One playbook run over the whole fleet; wall time, the playbook's CPU and the lab's CPU meanwhile."""
        extra = {"canary_kubeconfig": self.lab.kubeconfig, "canary_prometheus_url": self.lab.prometheus_url,
                 "canary_interval_override": "%ds" % INTERVAL, "canary_metric_interval_override": "%ds" % INTERVAL,
                 "canary_poll": POLL, "fleet_report_dir": str(self.workdir / "reports")}
        command = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", str(self.inventory),
                   "-f", str(self.size), str(REPO / PLAYBOOK), "-e", json.dumps(extra)]
        clock = self.workdir / "task-clock.json"
        env = dict(collection.environment(), ANSIBLE_CALLBACK_PLUGINS=str(TASK_CLOCK),
                   ANSIBLE_CALLBACKS_ENABLED="task_clock", TASK_CLOCK_FILE=str(clock))
        lab_before = lab_cpu(self.lab)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        completed = subprocess.run(command, capture_output=True, text=True, env=env,
                                   cwd=str(self.workdir), timeout=3600, check=False)
        wall = time.monotonic() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        lab_after = lab_cpu(self.lab)
        if completed.returncode != 0:
            raise SystemExit("the fleet run failed (%s):\n%s" % (collection.label, completed.stdout[-4000:]))
        cpu = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
        tasks = sum(1 for line in completed.stdout.splitlines() if line.startswith("TASK ["))
        lab_split = {name: lab_after[name] - lab_before.get(name, 0.0) for name in lab_after}
        return {"wall": wall, "cpu": cpu, "lab_cpu": sum(lab_split.values()), "lab_split": lab_split, "tasks": tasks,
                **task_split(json.loads(clock.read_text(encoding="utf-8")))}

    def delete(self) -> None:
        for namespace in self.hosts:
            self.core.delete_namespace(namespace)


def task_split(rows: list[dict]) -> dict[str, float]:
    """The release task's wall time, and the wall time and CPU of every other task of the run together."""
    release = [row for row in rows if row["task"].endswith(RELEASE_TASK)]
    around = [row for row in rows if not row["task"].endswith(RELEASE_TASK)]
    return {"release_task": sum(row["wall"] for row in release), "around_wall": sum(row["wall"] for row in around),
            "around_main_cpu": sum(row["main_cpu"] for row in around),
            "around_workers_cpu": sum(row["workers_cpu"] for row in around), "around_tasks": len(around)}


def lab_cpu(lab) -> dict[str, float]:
    """CPU seconds used so far by each lab process (by its name in the lab's state) and its reaped children.

    The lab's processes are started by one of them, so each process is counted once, under the nearest of its
    ancestors the lab names (itself when named); processes the lab does not name count under that ancestor.
    """
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            ticks[int(entry.name)] = sum(int(value) for value in fields[11:15])
    names = {pid: name for name, pid in lab.pids.items() if pid}
    used = {name: 0.0 for name in names.values()}
    for pid, spent in ticks.items():
        ancestor = pid
        while ancestor not in names and ancestor in parents and ancestor > 1:
            ancestor = parents[ancestor]
        if ancestor in names:
            used[names[ancestor]] += spent / CLOCK_TICKS
    return used


def release(lab, workdir: pathlib.Path, collection: Collection, size: int, tag: str, runs: int = 1) -> list[dict]:
    """Initialize a fleet of ``size`` canaries, then time ``runs`` good releases of all of them."""
    fleet = Fleet(lab, workdir, size, tag)
    try:
        fleet.run(collection)
        results = []
        for _ in range(runs):
            fleet.new_revision()
            result = fleet.run(collection)
            result["waits"] = fleet_waits(fleet)
            result["promotion"] = promotion_seconds(fleet)
            result["steps"] = fleet.steps
            results.append(result)
        return results
    finally:
        fleet.delete()


def last_reports(fleet: Fleet) -> list[dict]:
    """Each canary's report of its last release."""
    reports = []
    for namespace in fleet.hosts:
        paths = sorted((fleet.workdir / "reports" / namespace).glob("*.json"), key=lambda p: p.stat().st_mtime)
        reports.append(json.loads(paths[-1].read_text()))
    return reports


def fleet_waits(fleet: Fleet) -> list[float]:
    """The configured waits of each canary's last release, from its report."""
    waits = []
    for report in last_reports(fleet):
        checks = [e for e in report["timeline"] if e["kind"] == "check"]
        measured = [e for e in checks if e.get("metrics")]
        failed = [e for e in checks if any(m.get("result") not in ("pass", "skipped") for m in e.get("metrics") or [])]
        waits.append(len(measured) * INTERVAL + len(failed) * POLL)
    return waits


def promotion_seconds(fleet: Fleet) -> float:
    """The median time from the last analysis to the end of the promotion (the primary rolled out), per canary."""
    def at(entry: dict) -> float:
        return datetime.datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
    spans = []
    for report in last_reports(fleet):
        timeline = report["timeline"]
        promoted = [e for e in timeline if e["kind"] == "promotion"]
        checks = [e for e in timeline if e["kind"] == "check"]
        if promoted and checks:
            spans.append(at(promoted[-1]) - at(checks[-1]))
    return statistics.median(spans) if spans else float("nan")


def report(label: str, singles: list[dict], fleets: dict[int, dict], cores: int) -> None:
    cpus = [r["cpu"] for r in singles]
    per_step = [(r["wall"] - r["waits"][0]) / r["steps"] for r in singles]
    print("\n== %s ==" % label)
    print("%-34s %-40s %-14s %s" % ("figure", "measured", "today", "target"))
    cpu = statistics.median(cpus)
    print("%-34s %-40s %-14s <= %.1f s: %s" % ("CPU per release (s)", spread(cpus), "%.0f" % TODAY["cpu"], TARGETS["cpu"],
                                                verdict(cpu <= TARGETS["cpu"])))
    if 20 in fleets:
        # The run's own start and first imports are paid once per run, whatever the fleet's size.
        shared = fleets[20]["cpu"] / 20
        print("%-34s %-40s %-14s <= %.1f s: %s" % ("  in a run of 20 canaries (s)", "%.2f (the run's CPU / 20)" % shared,
                                                    "-", TARGETS["cpu"], verdict(shared <= TARGETS["cpu"])))
    step = statistics.median(per_step)
    print("%-34s %-40s %-14s <= %.1f s: %s" % ("control overhead per step (s)", spread(per_step), "%.1f-%.1f" % TODAY["per_step"],
                                                TARGETS["per_step"], verdict(step <= TARGETS["per_step"])))
    print("%-34s %s" % ("wall of one release (s)", spread([r["wall"] for r in singles])))
    print("%-34s %s" % ("configured waits of it (s)", spread([r["waits"][0] for r in singles])))
    one = fleets.get(1, {"wall": statistics.median([r["wall"] for r in singles])})["wall"]
    for size, result in sorted(fleets.items()):
        ratio = result["wall"] / one
        today = TODAY["wall"].get(size)
        target = (" <= %.1fx: %s" % (TARGETS["ratio"], verdict(ratio <= TARGETS["ratio"]))) if size == 20 else ""
        print("%-34s %-40s %-14s%s" % ("%d canaries, wall (s)" % size, "%.1f (%.2fx one)" % (result["wall"], ratio),
                                        ("%.0f (%.1fx)" % (today, today / TODAY["wall"][1])) if today else "-", target))
        print("%-34s %.1f s CPU, %.2f cores of %d; lab %.1f s CPU = %.2f cores (%.0f %% of the run's CPU)"
              % ("  playbook / lab", result["cpu"], result["cpu"] / result["wall"], cores, result["lab_cpu"],
                 result["lab_cpu"] / result["wall"], 100 * result["lab_cpu"] / max(result["cpu"] + result["lab_cpu"], 1e-9)))
        print("%-34s %.1f s (median over the canaries)" % ("  promotion (last analysis -> done)", result["promotion"]))
        print("%-34s release task %.1f s; the %d tasks around it %.1f s (their workers %.1f s CPU, main process %.1f s)"
              % ("  tasks (wall)", result["release_task"], result["around_tasks"], result["around_wall"],
                 result["around_workers_cpu"], result["around_main_cpu"]))
    if cpu > TARGETS["cpu"] or step > TARGETS["per_step"] or fleets.get(20, {}).get("wall", 0) > TARGETS["ratio"] * one:
        tasks = statistics.median([r["tasks"] for r in singles])
        floor = ansible_floor()
        fixed = floor["start"] + tasks * floor["per_task"]
        print("what dominates: Ansible itself. ansible-playbook starts in %.2f s CPU and an empty task costs %.3f s CPU "
              "on this machine (a fork, templating, the callbacks; measured just now); %d tasks per release make %.1f s "
              "of the %.1f s, before the role does anything. The rest, %.1f s, is the role's own work, which this "
              "benchmark does not split: the release task itself (Prometheus polled through every interval, each "
              "analysis recorded, the route, the workloads), the main process importing the Kubernetes client and the "
              "collection's code once per run (its workers inherit them), and templating each task's arguments."
              % (floor["start"], floor["per_task"], tasks, fixed, cpu, max(cpu - fixed, 0.0)))
        if 20 in fleets:
            big = fleets[20]
            print("at 20 canaries: %.1f s of playbook CPU and %.1f s of lab CPU in %.0f s, %.2f + %.2f cores of %d."
                  % (big["cpu"], big["lab_cpu"], big["wall"], big["cpu"] / big["wall"], big["lab_cpu"] / big["wall"], cores))
            if 1 in fleets:
                lone = fleets[1]
                print("  the %d tasks around the release task took %.1f s at 20 canaries against %.1f s for one: each "
                      "forks a worker per canary, and their workers used %.1f s of CPU (%.2f s per canary) while the "
                      "main process, which queues every task of every canary, used %.1f s"
                      % (big["around_tasks"], big["around_wall"], lone["around_wall"], big["around_workers_cpu"],
                         big["around_workers_cpu"] / 20, big["around_main_cpu"]))
                print("  the release task took %.1f s at 20 canaries against %.1f s for one, where a promotion (the "
                      "primary's rollout) took %.1f s against %.1f s: the analyses and rollouts of 20 canaries share "
                      "the cores with the lab"
                      % (big["release_task"], lone["release_task"], big["promotion"], lone["promotion"]))
            print("  the lab's CPU at 20 canaries, by process: %s"
                  % ", ".join("%s %.1f s" % (name, seconds)
                              for name, seconds in sorted(big["lab_split"].items(), key=lambda item: -item[1])))


def ansible_floor() -> dict[str, float]:
    """ansible-playbook's own cost here: CPU to start and run one trivial task, and CPU per further trivial task."""
    def cpu_of(tasks: int) -> float:
        with tempfile.TemporaryDirectory(prefix="bench-floor-") as directory:
            playbook = pathlib.Path(directory) / "floor.yml"
            playbook.write_text(yaml.safe_dump([{"name": "floor", "hosts": "localhost", "gather_facts": False, "tasks": [
                {"name": "task %d" % i, "ansible.builtin.set_fact": {"floor_%d" % i: i}} for i in range(tasks)]}]))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                            str(playbook)], capture_output=True, check=True, env=Collection.checkout().environment())
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    start = statistics.median([cpu_of(1) for _ in range(3)])
    hundred = statistics.median([cpu_of(101) for _ in range(3)])
    return {"start": start, "per_task": (hundred - start) / 100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one and five canaries only")
    parser.add_argument("--runs", type=int, default=3, help="good releases of one canary, for the median and spread")
    parser.add_argument("--fleets", default="1,5,10,20", help="fleet sizes, comma-separated")
    parser.add_argument("--baseline", default="", help="git ref to compare with, run alternately in the same lab")
    args = parser.parse_args()
    sizes = [1, 5] if args.quick else [int(size) for size in args.fleets.split(",")]
    cores = os.cpu_count() or 1
    lab = start_lab()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as directory:
            workdir = pathlib.Path(directory)
            collections = [Collection.checkout()]
            if args.baseline:
                collections.append(Collection.exported(args.baseline, workdir / "baseline"))
            results: dict[str, dict] = {c.label: {"singles": [], "fleets": {}} for c in collections}
            counter = 0
            for _ in range(args.runs):
                for collection in collections:
                    counter += 1
                    results[collection.label]["singles"] += release(lab, workdir, collection, 1, "one%d" % counter)
            for size in sizes:
                for collection in collections:
                    counter += 1
                    results[collection.label]["fleets"][size] = release(lab, workdir, collection, size, "fleet%d" % counter)[0]
    finally:
        lab.stop()
    print("machine: %d cores; seed-shaped canaries, %.0f s intervals, %d steps; lab backend %s"
          % (cores, INTERVAL, 5, lab.backend))
    for collection in collections:
        report(collection.label, results[collection.label]["singles"], results[collection.label]["fleets"], cores)


if __name__ == "__main__":
    main()
