"""The one read-change-write (kube/optimistic.py) and its users, the store and the lease, against a real HTTP server.

The server keeps objects by path, bumps resourceVersion on every write, refuses a write whose resourceVersion is
stale with 409 and can be told to let another writer in first, as the API server does.
"""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.optimistic import (
    ConflictRetriesExhausted,
    optimistic_update,
    with_resource_version,
)
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import mark
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CONFIGMAPS, CanaryFailure, CanaryStore, ChangeLog
from ansible_collections.progressive.delivery.plugins.module_utils.release import lease as ls
from tests.support.kube_api import client_for, json_response, status_body

NS = "prod"
NOW = 1_700_000_000.0


def conflict() -> KubeApiError:
    return KubeApiError(409, "Conflict", "the object has been modified")


# --------------------------------------------------------------------------- the helper alone


def test_nothing_to_change_is_one_read_and_no_write():
    writes = []
    current = {"metadata": {"resourceVersion": "7"}, "data": {"a": "1"}}
    assert optimistic_update(lambda: current, lambda obj: None, lambda *args: writes.append(args)) is current
    assert writes == []


def test_write_carries_the_resource_version_read_and_a_create_carries_none():
    seen = []

    def write(current, desired):
        seen.append(dict(desired["metadata"]))
        return desired

    optimistic_update(lambda: {"metadata": {"resourceVersion": "7"}}, lambda obj: {"metadata": {"name": "x"}}, write)
    optimistic_update(lambda: None, lambda obj: {"metadata": {"name": "x", "resourceVersion": "3"}}, write)
    assert seen == [{"name": "x", "resourceVersion": "7"}, {"name": "x"}]
    assert with_resource_version({}, {"metadata": {"resourceVersion": "9"}}) == {"metadata": {"resourceVersion": "9"}}


def test_a_conflict_reads_and_changes_again_after_before_retry():
    versions = iter(["1", "2"])
    refused = []
    events = []

    def write(current, desired):
        events.append(("write", desired["metadata"]["resourceVersion"]))
        if current["metadata"]["resourceVersion"] == "1":
            raise conflict()
        return desired

    written = optimistic_update(lambda: events.append(("read",)) or {"metadata": {"resourceVersion": next(versions)}},
                                lambda obj: {"spec": 1}, write, before_retry=refused.append)
    assert written["metadata"]["resourceVersion"] == "2"
    assert events == [("read",), ("write", "1"), ("read",), ("write", "2")]
    assert refused == [0]


def test_attempts_bound_the_refused_writes():
    refused = []
    with pytest.raises(ConflictRetriesExhausted) as caught:
        optimistic_update(lambda: {"metadata": {}}, lambda obj: {}, lambda *a: (_ for _ in ()).throw(conflict()),
                          attempts=3, before_retry=refused.append)
    assert caught.value.attempts == 3 and caught.value.error.status == 409
    assert refused == [0, 1]


def test_other_errors_are_not_retried():
    calls = []

    def write(current, desired):
        calls.append(1)
        raise KubeApiError(422, "Invalid", "bad")

    with pytest.raises(KubeApiError) as caught:
        optimistic_update(lambda: None, lambda obj: {}, write)
    assert caught.value.status == 422 and calls == [1]


# --------------------------------------------------------------------------- its users, over HTTP


class FakeObjectApi:
    """Objects by path with optimistic concurrency; ``interlopers`` writes happen right before the next PUTs."""

    def __init__(self, httpserver):
        self.objects: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.interlopers = 0
        self.version = 0
        httpserver.expect_request(re.compile(r"^/api.*$")).respond_with_handler(self.handle)

    def put_object(self, path, obj):
        self.version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[path] = obj

    def handle(self, request):
        path = request.path
        self.calls.append((request.method, path.rsplit("/", 1)[1]))
        if request.method == "GET":
            if path not in self.objects:
                return json_response(status_body(404, "NotFound", "not found", name=path.rsplit("/", 1)[1]), 404)
            return json_response(self.objects[path])
        body = json.loads(request.data)
        if request.method == "POST":
            path = "%s/%s" % (path, body["metadata"]["name"])
            if path in self.objects:
                return json_response(status_body(409, "AlreadyExists", "exists"), 409)
            self.put_object(path, body)
            return json_response(body, 201)
        if self.interlopers:
            self.interlopers -= 1
            self.put_object(path, dict(self.objects[path]))
        if body["metadata"].get("resourceVersion") != self.objects[path]["metadata"]["resourceVersion"]:
            return json_response(status_body(409, "Conflict", "modified"), 409)
        self.put_object(path, body)
        return json_response(body)


@pytest.fixture
def api(httpserver):
    return FakeObjectApi(httpserver)


@pytest.fixture
def client(httpserver):
    return client_for(httpserver)


def configmap(name, data):
    return mark({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, "data": data},
                NS, "web")


def store(client, check_mode=False):
    changelog = ChangeLog()
    return CanaryStore(client, NS, "web", changelog, check_mode, CanaryFailure), changelog


def test_store_ensure_retries_a_conflict_and_logs_one_write(api, client):
    api.put_object("/api/v1/namespaces/prod/configmaps/cfg", configmap("cfg", {"a": "1"}))
    api.interlopers = 2
    canary_store, changelog = store(client)
    written = canary_store.ensure(CONFIGMAPS, "ConfigMap", "cfg", lambda cur: dict(cur, data={"a": "2"}))
    assert written["data"] == {"a": "2"}
    assert [method for method, _name in api.calls] == ["GET", "PUT", "GET", "PUT", "GET", "PUT"]
    assert changelog.changes == ["update ConfigMap prod/cfg"] and changelog.writes == 1


def test_store_ensure_creates_and_check_mode_writes_nothing(api, client):
    canary_store, changelog = store(client, check_mode=True)
    planned = canary_store.ensure(CONFIGMAPS, "ConfigMap", "new", lambda cur: configmap("new", {"a": "1"}))
    assert planned["data"] == {"a": "1"} and api.calls == [("GET", "new")]
    assert changelog.changes == ["create ConfigMap prod/new"] and changelog.after["ConfigMap/new"]["data"] == {"a": "1"}
    canary_store, changelog = store(client)
    canary_store.ensure(CONFIGMAPS, "ConfigMap", "new", lambda cur: configmap("new", {"a": "1"}))
    assert "/api/v1/namespaces/prod/configmaps/new" in api.objects


def test_store_ensure_gives_up_with_a_reason(api, client):
    api.put_object("/api/v1/namespaces/prod/configmaps/cfg", configmap("cfg", {"a": "1"}))
    api.interlopers = 99
    canary_store, changelog = store(client)
    with pytest.raises(CanaryFailure) as caught:
        canary_store.ensure(CONFIGMAPS, "ConfigMap", "cfg", lambda cur: dict(cur, data={"a": "2"}))
    assert "ConfigMap prod/cfg kept changing under us (5 conflicting writes)" in caught.value.message
    assert changelog.writes == 0


def test_store_ensure_refuses_an_object_it_does_not_own(api, client):
    api.put_object("/api/v1/namespaces/prod/configmaps/cfg", {"metadata": {"name": "cfg"}, "data": {}})
    canary_store, _changelog = store(client)
    with pytest.raises(CanaryFailure, match="was not created by progressive.delivery"):
        canary_store.ensure(CONFIGMAPS, "ConfigMap", "cfg", lambda cur: dict(cur, data={"a": "2"}))
    canary_store.ensure(CONFIGMAPS, "ConfigMap", "cfg", lambda cur: dict(cur, data={"a": "2"}), owned=False)
    assert api.objects["/api/v1/namespaces/prod/configmaps/cfg"]["data"] == {"a": "2"}


def lock(client, run_id):
    return ls.LeaseLock(client, NS, "web", run_id, "host h pid 1", ttl=60, clock=lambda: NOW)


LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/prod/leases/web-canary-lock"


def test_lease_acquire_decides_again_after_a_conflict(api, client):
    decision, lease = lock(client, "run-a").acquire()
    assert decision == ls.ACQUIRE and lease["spec"]["holderIdentity"] == "run-a"
    api.interlopers = 1
    decision, lease = lock(client, "run-a").acquire()
    assert decision == ls.RENEW and [m for m, _n in api.calls[-4:]] == ["GET", "PUT", "GET", "PUT"]
    with pytest.raises(ls.LockHeld, match="locked by another run"):
        lock(client, "run-b").acquire()


def test_lease_renew_and_release(api, client):
    lock(client, "run-a").acquire()
    with pytest.raises(ls.LockHeld):
        lock(client, "run-b").renew_if_held()
    renewed = lock(client, "run-a").renew_if_held()
    assert renewed["spec"]["holderIdentity"] == "run-a"
    assert lock(client, "run-b").release() == (False, api.objects[LEASE_PATH])
    api.interlopers = 1
    changed, released = lock(client, "run-a").release()
    assert changed and "holderIdentity" not in released["spec"]
    assert lock(client, "run-a").release()[0] is False


def test_lease_renewal_conflicts_are_bounded(api, client):
    lock(client, "run-a").acquire()
    api.interlopers = 99
    with pytest.raises(KubeApiError, match="kept changing while this run renewed it"):
        lock(client, "run-a").renew_if_held()
