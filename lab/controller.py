"""A workload controller: turns deployments into pods and reports rollout status as the real one does.

A spec change is acknowledged at once (observedGeneration, Progressing
ReplicaSetUpdated); the pods of the new template appear after `delay` seconds.
A template annotated lab.progressive.delivery/ready: "false" never gets ready
pods, so the rollout stalls exactly like a crash-looping release: old ready
pods are kept as the rolling-update budget allows, and after
spec.progressDeadlineSeconds the Progressing condition turns False with reason
ProgressDeadlineExceeded.
"""
from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from lab.store import Conflict, NotFound, Store, now_rfc3339

READY_ANNOTATION = "lab.progressive.delivery/ready"
POD_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NODE_NAME = "lab-node"
_MAX_IDLE_WAIT = 0.5


def template_hash(template: dict) -> str:
    digest = int.from_bytes(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        digest, index = divmod(digest, len(POD_NAME_ALPHABET))
        chars.append(POD_NAME_ALPHABET[index])
    return "".join(chars)


def template_ready(template: dict) -> bool:
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(READY_ANNOTATION, "true")).lower() != "false"


def _resolve(value: object, replicas: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = replicas * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value or 0)


def rollout_budget(deployment: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts, rounded like the deployment controller does."""
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = _resolve(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _pod_is_ready(pod: dict) -> bool:
    return any(condition.get("type") == "Ready" and condition.get("status") == "True"
               for condition in (pod.get("status") or {}).get("conditions") or [])


def plan_pods(replicas: int, ready_template: bool, old_ready: int, surge: int, unavailable: int) -> tuple[int, int]:
    """How many old-template pods to keep and new-template pods to run once the rollout settles."""
    if ready_template or replicas == 0:
        return 0, replicas
    # New pods never become available: old pods may only go down to the availability floor,
    # and new pods fill what the surge leaves.
    keep_old = min(old_ready, max(replicas - unavailable, 0))
    new = min(replicas, max(replicas + surge - keep_old, 0))
    return keep_old, new


def _condition(kind: str, status: str, reason: str, message: str, previous: list[dict], now: str) -> dict:
    before = next((item for item in previous if item.get("type") == kind), None)
    if before and (before.get("status"), before.get("reason"), before.get("message")) == (status, reason, message):
        return before
    transition = before["lastTransitionTime"] if before and before.get("status") == status else now
    return {"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": transition,
            "reason": reason, "message": message}


def deployment_status(deployment: dict, pods: list[dict], new_hash: str, deadline_exceeded: bool, now: str) -> dict:
    spec = deployment.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    _surge, unavailable = rollout_budget(deployment)
    updated = [pod for pod in pods if (pod["metadata"].get("labels") or {}).get("pod-template-hash") == new_hash]
    ready = sum(1 for pod in pods if _pod_is_ready(pod))
    available = ready
    complete = len(updated) == desired and len(pods) == desired and available == desired
    previous = (deployment.get("status") or {}).get("conditions") or []
    replica_set = f"{deployment['metadata']['name']}-{new_hash}"
    if available >= desired - unavailable:
        available_condition = _condition("Available", "True", "MinimumReplicasAvailable",
                                         "Deployment has minimum availability.", previous, now)
    else:
        available_condition = _condition("Available", "False", "MinimumReplicasUnavailable",
                                         "Deployment does not have minimum availability.", previous, now)
    if complete:
        progressing = _condition("Progressing", "True", "NewReplicaSetAvailable",
                                 f'ReplicaSet "{replica_set}" has successfully progressed.', previous, now)
    elif deadline_exceeded:
        progressing = _condition("Progressing", "False", "ProgressDeadlineExceeded",
                                 f'ReplicaSet "{replica_set}" has timed out progressing.', previous, now)
    else:
        progressing = _condition("Progressing", "True", "ReplicaSetUpdated",
                                 f'ReplicaSet "{replica_set}" is progressing.', previous, now)
    status: dict = {"observedGeneration": deployment["metadata"].get("generation", 1)}
    # Zero counts are omitted, as the API server's JSON encoding of the Go types does.
    for key, value in (("replicas", len(pods)), ("updatedReplicas", len(updated)), ("readyReplicas", ready),
                       ("availableReplicas", available), ("unavailableReplicas", max(desired - available, 0))):
        if value:
            status[key] = value
    status["conditions"] = [available_condition, progressing]
    return status


def build_pod(deployment: dict, pod_hash: str, ready: bool, index: int) -> dict:
    meta = deployment["metadata"]
    template = (deployment.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    replica_set = f"{meta['name']}-{pod_hash}"
    name = f"{replica_set}-{''.join(secrets.choice(POD_NAME_ALPHABET) for _ in range(5))}"
    now = now_rfc3339()
    ready_text = "True" if ready else "False"
    containers = (template.get("spec") or {}).get("containers") or []
    address = f"10.244.{(index // 250) % 250}.{index % 250 + 2}"
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": meta["namespace"], "generateName": f"{replica_set}-",
            "labels": dict(template_meta.get("labels") or {}, **{"pod-template-hash": pod_hash}),
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{meta.get('uid')}/{pod_hash}")),
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": dict(template.get("spec") or {}, nodeName=NODE_NAME),
        "status": {
            "phase": "Running", "hostIP": "10.0.0.10", "podIP": address, "podIPs": [{"ip": address}],
            "startTime": now, "qosClass": "BestEffort",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": ready_text, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": [{
                "name": container.get("name", ""), "image": container.get("image", ""), "imageID": "",
                "ready": ready, "started": True, "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            } for container in containers],
        },
    }
    if template_meta.get("annotations"):
        pod["metadata"]["annotations"] = dict(template_meta["annotations"])
    if not ready:
        for condition in pod["status"]["conditions"][1:3]:
            condition["reason"] = "ContainersNotReady"
            condition["message"] = "containers with unready status: [" + " ".join(
                container.get("name", "") for container in containers) + "]"
    return pod


def owner_deployment_name(pod: dict) -> str | None:
    owners = pod["metadata"].get("ownerReferences") or []
    pod_hash = (pod["metadata"].get("labels") or {}).get("pod-template-hash")
    if not owners or not pod_hash or not owners[0].get("name", "").endswith(f"-{pod_hash}"):
        return None
    return owners[0]["name"][: -len(pod_hash) - 1]


@dataclass
class _Rollout:
    generation: int
    started: float
    due: float
    settled: bool = False


class WorkloadController:
    def __init__(self, store: Store, delay: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.delay = delay
        self._clock = clock
        self._rollouts: dict[str, _Rollout] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pod_counter = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lab-workload-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        seen = -1
        next_due: float | None = None
        while not self._stop.is_set():
            revision = self.store.revision
            if revision != seen or (next_due is not None and self._clock() >= next_due):
                seen = revision
                started = self._clock()
                wait = self.reconcile()
                next_due = started + wait if wait is not None else None
            timeout = _MAX_IDLE_WAIT if next_due is None else min(max(next_due - self._clock(), 0.0), _MAX_IDLE_WAIT)
            # Sleeps until any write or the next timer; an idle lab costs a wake-up per _MAX_IDLE_WAIT, no work.
            self.store.wait_for_change(seen, timeout)

    def reconcile(self) -> float | None:
        """One pass over every deployment; returns seconds until a timer is due (None when none is)."""
        now = self._clock()
        deployments = self.store.list("deployments")
        pods = self.store.list("pods")
        next_due: float | None = None
        alive = set()
        for deployment in deployments:
            uid = deployment["metadata"]["uid"]
            alive.add(uid)
            try:
                due = self._reconcile_one(deployment, pods, now)
            except (NotFound, Conflict):
                due = 0.05  # changed under us; look again shortly
            if due is not None:
                next_due = due if next_due is None else min(next_due, due)
        for uid in set(self._rollouts) - alive:
            del self._rollouts[uid]
        self._collect_orphans(deployments, pods)
        return next_due

    def _reconcile_one(self, deployment: dict, all_pods: list[dict], now: float) -> float | None:
        meta = deployment["metadata"]
        spec = deployment.get("spec") or {}
        generation = meta.get("generation", 1)
        rollout = self._rollouts.get(meta["uid"])
        if rollout is None or rollout.generation != generation:
            rollout = _Rollout(generation, now, now + self.delay)
            self._rollouts[meta["uid"]] = rollout
        template = spec.get("template") or {}
        new_hash = template_hash(template)
        pods = [pod for pod in all_pods
                if pod["metadata"].get("namespace") == meta["namespace"] and owner_deployment_name(pod) == meta["name"]]
        if not rollout.settled and now >= rollout.due:
            pods = self._settle_pods(deployment, pods, new_hash)
            rollout.settled = True
        deadline = rollout.started + float(spec.get("progressDeadlineSeconds", 600))
        deadline_exceeded = rollout.settled and now >= deadline
        status = deployment_status(deployment, pods, new_hash, deadline_exceeded, now_rfc3339())
        if status != deployment.get("status"):
            self.store.update_status("deployments", meta["namespace"], meta["name"], status)
        waits = []
        if not rollout.settled:
            waits.append(rollout.due - now)
        progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
        if rollout.settled and progressing["reason"] == "ReplicaSetUpdated":
            waits.append(deadline - now)
        return max(min(waits), 0.0) if waits else None

    def _settle_pods(self, deployment: dict, pods: list[dict], new_hash: str) -> list[dict]:
        spec = deployment.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        ready = template_ready(spec.get("template") or {})
        surge, unavailable = rollout_budget(deployment)
        current = [pod for pod in pods if pod["metadata"]["labels"].get("pod-template-hash") == new_hash]
        old = [pod for pod in pods if pod not in current]
        old_ready = [pod for pod in old if _pod_is_ready(pod)]
        keep_old, new_count = plan_pods(desired, ready, len(old_ready), surge, unavailable)
        keep = old_ready[:keep_old]
        for pod in old:
            if pod not in keep:
                self._delete_pod(pod)
        for pod in current[new_count:]:
            self._delete_pod(pod)
        current = current[:new_count]
        while len(current) < new_count:
            self._pod_counter += 1
            pod = build_pod(deployment, new_hash, ready, self._pod_counter)
            current.append(self.store.create("pods", pod))
        return keep + current

    def _delete_pod(self, pod: dict) -> None:
        try:
            self.store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        except NotFound:
            pass

    def _collect_orphans(self, deployments: list[dict], pods: list[dict]) -> None:
        owners = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in deployments}
        for pod in pods:
            owner = owner_deployment_name(pod)
            if owner is not None and (pod["metadata"]["namespace"], owner) not in owners:
                self._delete_pod(pod)
