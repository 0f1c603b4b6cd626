"""Chaos trials on the lab: releases whose playbook is killed, or whose API and Prometheus fail, and what they leave.

Each trial runs one canary release of its own namespace and then plain reruns of ``playbooks/canary.yml`` until the
release ends, and reports what a person on call cares about:

* converged: the release ended (Succeeded or Failed) within the reruns, with traffic where the outcome says
  (all on the primary, canary at 0 replicas, the primary running the analysed revision only when promoted);
* unsafe moments: times a watcher saw a canary weight above 0 while the canary had no ready replica;
* requests the mesh answered "no healthy upstream" (503 UH) for the canary's Service, counted exactly;
* secrets: how often the webhook token placed in the manifest appears in any output, report, state or Event.

``benchmarks/chaos.py`` runs the full suite and prints the figures; ``tests/integration/test_chaos.py`` runs a
CI-sized subset.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import random
import threading
import time
import uuid
from typing import Any, Callable

from lab.testing import wait_for
from tests.support.releases import Release, short_manifest

TICKS = {"canary_interval_override": "1s", "canary_metric_interval_override": "10s", "canary_poll": 0.5,
         "canary_lease_ttl": 5, "canary_fail_on_rollback": False}
RERUN = dict(TICKS, canary_lock_wait=30)
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.1"
ERROR_RATE = "lab.progressive.delivery/error-rate"
TERMINAL = ("Succeeded", "Failed")
FAULT_KINDS = ("route-writes-500", "deployment-writes-500", "lease-writes-500", "state-writes-500", "api-slow",
               "api-flaky-503", "prometheus-down")


@dataclasses.dataclass
class Trial:
    kind: str
    detail: str
    bad_canary: bool
    converged: bool = False
    phase: str = ""
    reruns: int = 0
    unsafe_moments: int = 0
    no_upstream_requests: int = 0
    secret_leaks: int = 0
    seconds: float = 0.0
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def chaos_manifest(namespace: str, hooks_url: str, token: str) -> dict:
    """Three short steps and a rollout webhook whose metadata carries a bearer token, as load-tester users write it."""
    manifest = short_manifest(namespace, threshold=2, stepWeights=[20, 40, 60])
    manifest["spec"]["analysis"]["webhooks"] = [{
        "name": "acceptance", "type": "rollout", "url": hooks_url + "/gate/approve", "timeout": "5s",
        "metadata": {"headers": "Authorization: Bearer %s" % token}}]
    return manifest


class SafetyWatch:
    """Samples the route and the canary's ready replicas every 50 ms: a weight without a ready pod is unsafe."""

    def __init__(self, release: Release) -> None:
        self.release = release
        self.unsafe = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "SafetyWatch":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                weight = self.release.weights().get("app-canary", 0)
                status = self.release.apps.read_namespaced_deployment_status("app", self.release.namespace).status
                if weight > 0 and not (status.ready_replicas or 0):
                    self.unsafe += 1
            except Exception:  # pylint: disable=broad-except
                pass  # the API may be the thing that is failing; the next sample tells
            time.sleep(0.05)


def settled(release: Release, bad: bool) -> str:
    """'' when the release ended where its outcome says, else what is wrong."""
    state = release.state()
    phase = state.get("phase")
    if phase not in TERMINAL:
        return "phase %s" % phase
    weights = release.weights()
    if weights != {"app-primary": 100, "app-canary": 0}:
        return "%s with weights %s" % (phase, weights)
    if release.replicas():
        return "%s with the canary at %d replicas" % (phase, release.replicas())
    promoted = release.template("app-primary")["spec"]["containers"][0]["image"] == NEW_IMAGE
    if phase == "Succeeded" and (bad or not promoted):
        return "Succeeded but the primary runs %s" % ("the bad revision" if bad else "the old revision")
    if phase == "Failed" and promoted:
        return "Failed but the primary runs the new revision"
    return ""


def no_upstream_requests(lab, namespace: str) -> int:
    """503 UH answers for the canary's Service, counted exactly (a counter born mid-trial counts from zero)."""
    value = lab.query_value(
        'sum(max_over_time(istio_requests_total{destination_service_namespace="%s",'
        'destination_service_name="app-canary",response_flags="UH"}[30m]))' % namespace)
    return int(value or 0)


def leaks(token: str, outputs: list[str], release: Release) -> int:
    found = sum(text.count(token) for text in outputs)
    for report in (release.tmp_path / "reports").glob("*"):
        found += report.read_text(errors="replace").count(token)
    for config_map in release.core.list_namespaced_config_map(release.namespace).items:
        found += json.dumps(config_map.data or {}).count(token)
    for event in release.core.list_namespaced_event(release.namespace).items:
        found += (event.message or "").count(token)
    return found


def _finish(trial: Trial, release: Release, lab, token: str, outputs: list[str], started: float,
            max_reruns: int) -> Trial:
    problem = settled(release, trial.bad_canary)
    while problem and trial.reruns < max_reruns:
        trial.reruns += 1
        outputs.append(release.run(**RERUN).stdout)
        problem = settled(release, trial.bad_canary)
    trial.converged = not problem
    trial.problem = problem
    trial.phase = release.state().get("phase", "")
    trial.no_upstream_requests = no_upstream_requests(lab, release.namespace)
    trial.secret_leaks = leaks(token, outputs, release)
    trial.seconds = round(time.monotonic() - started, 1)
    return trial


def _prepare(lab, namespace: str, workdir: pathlib.Path, rng: random.Random) -> tuple[Release, str, bool]:
    token = "chaos-%s" % uuid.UUID(int=rng.getrandbits(128)).hex
    release = Release(lab, namespace, workdir, manifest=chaos_manifest(namespace, lab.hooks_url, token))
    first = release.run(**TICKS)
    if first.returncode != 0:
        raise AssertionError("the canary could not be initialized:\n" + first.stdout[-3000:])
    bad = rng.random() < 0.3
    release.set_template(image=NEW_IMAGE, annotations={ERROR_RATE: "0.3"} if bad else None)
    return release, token, bad


def kill_trial(lab, namespace: str, workdir: pathlib.Path, rng: random.Random, max_reruns: int = 3) -> Trial:
    """kill -9 of ansible-playbook at a random moment of a release, then plain reruns."""
    release, token, bad = _prepare(lab, namespace, workdir, rng)
    delay = rng.uniform(0.5, 12.0)
    trial = Trial("kill", "SIGKILL after %.1f s" % delay, bad)
    started = time.monotonic()
    with SafetyWatch(release) as watch:
        process = release.popen(**TICKS)
        time.sleep(delay)
        process.kill()
        output, _ = process.communicate(timeout=30)
        trial = _finish(trial, release, lab, token, [output], started, max_reruns)
    trial.unsafe_moments = watch.unsafe
    return trial


def _fault(lab, kind: str, namespace: str) -> Callable[[], None]:
    """Start the fault; return what ends it."""
    if kind == "prometheus-down":
        lab.stop_prometheus()
        return lab.start_prometheus
    scoped = r"/namespaces/%s/" % namespace
    faults = {
        "route-writes-500": (("PUT", "PATCH"), scoped + "virtualservices/", 500, 0.0, 1.0),
        "deployment-writes-500": (("PUT", "PATCH"), scoped + "deployments/", 500, 0.0, 1.0),
        "lease-writes-500": (("PUT", "POST"), scoped + "leases", 500, 0.0, 1.0),
        "state-writes-500": (("PUT", "PATCH", "POST"), scoped + "configmaps", 500, 0.0, 1.0),
        "api-slow": (("*",), scoped, None, 2.0, 1.0),
        "api-flaky-503": (("*",), scoped, 503, 0.0, 0.5),
    }
    methods, path, status, delay, ratio = faults[kind]
    fault_ids = [lab.inject_fault(method, path, status=status, delay=delay, ratio=ratio) for method in methods]

    def lift() -> None:
        # Only this trial's faults: other tests may be using the same lab.
        for fault_id in fault_ids:
            lab.remove_fault(fault_id)
    return lift


def fault_trial(lab, namespace: str, workdir: pathlib.Path, rng: random.Random, kind: str,
                max_reruns: int = 3) -> Trial:
    """A release through the lab's fault front; once the canary serves, ``kind`` fails for a few seconds."""
    release, token, bad = _prepare(lab, namespace, workdir, rng)
    hold = rng.uniform(2.0, 8.0)
    trial = Trial("fault", "%s for %.1f s" % (kind, hold), bad)
    through_faults = dict(TICKS, canary_kubeconfig=lab.fault_kubeconfig)
    started = time.monotonic()
    with SafetyWatch(release) as watch:
        process = release.popen(**through_faults)
        end_fault: Callable[[], None] | None = None
        try:
            wait_for(lambda: process.poll() is not None or release.weights().get("app-canary", 0) > 0, timeout=120,
                     interval=0.1, message="the canary's first step")
            if process.poll() is None:
                end_fault = _fault(lab, kind, namespace)
                time.sleep(hold)
        finally:
            if end_fault is not None:
                end_fault()
        output, _ = process.communicate(timeout=300)
        trial = _finish(trial, release, lab, token, [output], started, max_reruns)
    trial.unsafe_moments = watch.unsafe
    return trial
