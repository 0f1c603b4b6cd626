from __future__ import annotations

import pytest

from lab.controller import WorkloadController, deployment_status, plan_pods, rollout_budget, template_hash
from lab.store import Store


def deployment(replicas=2, strategy=None):
    spec = {"replicas": replicas, "template": {"metadata": {"labels": {"app": "web"}}}}
    if strategy is not None:
        spec["strategy"] = strategy
    return {"metadata": {"name": "web", "namespace": "ns", "generation": 3, "uid": "u"}, "spec": spec}


@pytest.mark.parametrize("replicas, strategy, budget", [
    (2, None, (1, 0)),
    (4, None, (1, 1)),
    (10, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}, (0, 1)),
    (3, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 2}}, (2, 2)),
    (3, {"type": "Recreate"}, (0, 3)),
])
def test_rollout_budget_rounds_like_the_deployment_controller(replicas, strategy, budget):
    assert rollout_budget(deployment(replicas, strategy)) == budget


@pytest.mark.parametrize("replicas, ready, old_ready, surge, unavailable, plan", [
    (2, True, 2, 1, 0, (0, 2)),
    (2, False, 2, 1, 0, (2, 1)),
    (4, False, 4, 1, 1, (3, 2)),
    (2, False, 0, 1, 0, (0, 2)),
    (0, False, 2, 1, 0, (0, 0)),
])
def test_plan_pods(replicas, ready, old_ready, surge, unavailable, plan):
    assert plan_pods(replicas, ready, old_ready, surge, unavailable) == plan


def test_template_hash_is_stable_and_sensitive():
    template = {"metadata": {"labels": {"app": "web"}}}
    assert template_hash(template) == template_hash({"metadata": {"labels": {"app": "web"}}})
    assert template_hash(template) != template_hash({"metadata": {"labels": {"app": "web2"}}})


def test_status_omits_zero_counts_and_reports_progress():
    status = deployment_status(deployment(replicas=2), [], "h", deadline_exceeded=False, now="t")
    assert status["observedGeneration"] == 3 and "readyReplicas" not in status and "replicas" not in status
    assert status["unavailableReplicas"] == 2
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Progressing"]["reason"] == "ReplicaSetUpdated"
    assert conditions["Available"]["status"] == "False"
    stalled = deployment_status(deployment(replicas=2), [], "h", deadline_exceeded=True, now="t")
    assert {c["type"]: c["reason"] for c in stalled["conditions"]}["Progressing"] == "ProgressDeadlineExceeded"


def test_controller_rolls_out_after_the_delay_with_a_fake_clock():
    now = [100.0]
    store = Store()
    store.create("deployments", {"metadata": {"name": "web", "namespace": "ns"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "i"}]}}}})
    controller = WorkloadController(store, delay=1.0, clock=lambda: now[0])
    wait = controller.reconcile()
    assert wait == pytest.approx(1.0)
    assert store.list("pods") == []
    assert store.get("deployments", "ns", "web")["status"]["observedGeneration"] == 1
    now[0] += 1.0
    assert controller.reconcile() is None
    pods = store.list("pods")
    assert len(pods) == 2
    status = store.get("deployments", "ns", "web")["status"]
    assert status["readyReplicas"] == 2 and status["availableReplicas"] == 2
    revision = store.revision
    controller.reconcile()
    assert store.revision == revision, "a settled deployment must not be rewritten"
    store.delete("deployments", "ns", "web")
    controller.reconcile()
    assert store.list("pods") == []
