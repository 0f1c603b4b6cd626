from __future__ import annotations

import random
import threading

import pytest

from lab.faults import FaultInjector
from lab.store import AlreadyExists, Conflict, NotFound, Store


def configmap(name="cm", data=None):
    return {"metadata": {"name": name, "namespace": "ns"}, "data": data or {"a": "1"}}


def test_store_versions_and_conflicts():
    store = Store()
    created = store.create("configmaps", configmap())
    assert created["metadata"]["resourceVersion"] == str(store.revision)
    with pytest.raises(AlreadyExists):
        store.create("configmaps", configmap())
    updated = store.update("configmaps", configmap(data={"a": "2"}), created["metadata"]["resourceVersion"])
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    with pytest.raises(Conflict):
        store.update("configmaps", configmap(data={"a": "3"}), created["metadata"]["resourceVersion"])
    same = store.update("configmaps", configmap(data={"a": "2"}))
    assert same["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"], "no-op writes keep the version"
    with pytest.raises(NotFound):
        store.delete("configmaps", "ns", "other")


def test_store_generation_tracks_desired_state_only():
    store = Store()
    obj = {"metadata": {"name": "d", "namespace": "ns"}, "spec": {"replicas": 1}}
    assert store.create("deployments", obj)["metadata"]["generation"] == 1
    relabelled = dict(obj, metadata={"name": "d", "namespace": "ns", "labels": {"a": "b"}})
    assert store.update("deployments", relabelled)["metadata"]["generation"] == 1
    assert store.update_status("deployments", "ns", "d", {"replicas": 1})["metadata"]["generation"] == 1
    assert store.update("deployments", dict(obj, spec={"replicas": 2}))["metadata"]["generation"] == 2


def test_store_returns_copies():
    store = Store()
    store.create("configmaps", configmap())
    store.get("configmaps", "ns", "cm")["data"]["a"] = "mutated"
    assert store.get("configmaps", "ns", "cm")["data"]["a"] == "1"


def test_wait_for_change_wakes_on_writes_and_times_out_otherwise():
    store = Store()
    since = store.revision
    assert store.wait_for_change(since, timeout=0.05) == since
    threading.Timer(0.05, lambda: store.create("configmaps", configmap())).start()
    assert store.wait_for_change(since, timeout=5) > since


def test_namespace_contents_are_deleted_together():
    store = Store()
    store.create("configmaps", configmap("a"))
    store.create("virtualservices", {"metadata": {"name": "v", "namespace": "ns"}, "spec": {}})
    store.create("configmaps", {"metadata": {"name": "b", "namespace": "other"}})
    assert store.delete_namespace_contents("ns") == 2
    assert [o["metadata"]["name"] for o in store.list("configmaps")] == ["b"]


def test_faults_match_method_path_ratio_and_count():
    faults = FaultInjector(rng=random.Random(7))
    faults.add("PUT", r"/leases/", status=409, count=2)
    faults.add("*", r"/deployments", delay=0.25)
    assert faults.decide("GET", "/apis/coordination.k8s.io/v1/namespaces/a/leases/x").status is None
    assert [faults.decide("PUT", "/x/leases/l").status for _ in range(3)] == [409, 409, None]
    assert faults.decide("GET", "/apis/apps/v1/deployments").delay == 0.25
    faults.clear()
    faults.add("GET", "/x", status=500, ratio=0.5)
    hits = sum(faults.decide("GET", "/x").status == 500 for _ in range(400))
    assert 150 < hits < 250


@pytest.mark.parametrize("kwargs", [{"status": 99}, {"status": 500, "ratio": 2}, {}, {"delay": -1},
                                    {"status": 500, "count": 0}])
def test_fault_arguments_are_checked(kwargs):
    with pytest.raises(ValueError):
        FaultInjector().add("GET", "/x", **kwargs)
