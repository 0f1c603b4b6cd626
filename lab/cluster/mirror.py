"""A read-only copy of the cluster objects the mesh routes by, kept current by list and watch, as Istio's is.

It answers the few calls the mesh makes of the emulator's store (`revision`,
`list`, `changes_since`, `wait_for_change`), so the same mesh runs on either.
"""
from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Callable

import requests

from lab.cluster.api import Api, ApiError, resource_path

LOG = logging.getLogger("lab.cluster.mirror")
WATCH_SECONDS = 240
RETRY_SECONDS = 0.2
# How often a kind whose CRD is not installed is looked for again.
ABSENT_RETRY_SECONDS = 5.0
_CHANGE_LOG_SIZE = 10000


@dataclass(frozen=True)
class Watched:
    resource: str
    group: str
    versions: tuple[str, ...]  # tried in order: a version may stop being served (Istio before 1.22 has no v1)
    # A cluster without this CRD is still in sync (the kind is empty) and the kind is looked for again later.
    optional: bool = False


MESH_RESOURCES = (
    Watched("virtualservices", "networking.istio.io", ("v1", "v1beta1", "v1alpha3")),
    Watched("destinationrules", "networking.istio.io", ("v1", "v1beta1", "v1alpha3")),
    Watched("services", "", ("v1",)),
    Watched("endpointslices", "discovery.k8s.io", ("v1",)),
    Watched("pods", "", ("v1",)),
    Watched("deployments", "apps", ("v1",)),
    # Gateway API standard channel: v1 since v1.0, v1beta1 on clusters that still serve only that.
    Watched("httproutes", "gateway.networking.k8s.io", ("v1", "v1beta1"), optional=True),
    Watched("gateways", "gateway.networking.k8s.io", ("v1", "v1beta1"), optional=True),
)


@dataclass(frozen=True)
class Change:
    revision: int
    resource: str


class ClusterMirror:
    def __init__(self, connect: Callable[[], Api], resources: tuple[Watched, ...] = MESH_RESOURCES) -> None:
        self._connect = connect
        self._resources = resources
        self._objects: dict[str, dict[tuple[str, str], dict]] = {watched.resource: {} for watched in resources}
        self._synced: set[str] = set()
        self._revision = 0
        self._changes: collections.deque[Change] = collections.deque(maxlen=_CHANGE_LOG_SIZE)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -------------------------------------------------------------- the store's read side
    @property
    def revision(self) -> int:
        with self._changed:
            return self._revision

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        with self._changed:
            items = [obj for (obj_namespace, _name), obj in self._objects.get(resource, {}).items()
                     if namespace is None or obj_namespace == namespace]
        return sorted(items, key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    def changes_since(self, since: int) -> tuple[list[Change], bool]:
        with self._changed:
            complete = not self._changes or self._changes[0].revision <= since + 1 or since >= self._revision
            return [change for change in self._changes if change.revision > since], complete

    def wait_for_change(self, since: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._revision > since or self._stop.is_set(), timeout=max(timeout, 0.0))
            return self._revision

    def synced(self) -> bool:
        with self._changed:
            return self._synced == set(self._objects)

    # -------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._stop.clear()
        for watched in self._resources:
            thread = threading.Thread(target=self._follow, args=(watched,), name=f"mirror-{watched.resource}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        # A watch blocks in a read until its next event; the threads are daemons and end with the connection.
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._threads = []

    # -------------------------------------------------------------- list and watch
    def _follow(self, watched: Watched) -> None:
        api = self._connect()  # one connection per watch: a session's pool is not meant for long streams side by side
        while not self._stop.is_set():
            try:
                path, resource_version = self._relist(api, watched)
                for event in api.watch(path, resource_version, WATCH_SECONDS):
                    if self._stop.is_set():
                        return
                    if event.get("type") == "ERROR":
                        break  # typically 410 Gone: the version is too old, list again
                    if event.get("type") != "BOOKMARK":
                        self._apply(watched.resource, event["type"], event["object"])
            except ApiError as error:
                if self._stop.is_set():
                    return
                if error.status == 404 and watched.optional:
                    self._absent(watched)
                    self._stop.wait(ABSENT_RETRY_SECONDS)
                    continue
                LOG.debug("following %s: %s", watched.resource, error)
                self._stop.wait(RETRY_SECONDS)
            except (requests.RequestException, ValueError) as error:
                if self._stop.is_set():
                    return
                LOG.debug("following %s: %s", watched.resource, error)
                self._stop.wait(RETRY_SECONDS)

    def _relist(self, api: Api, watched: Watched) -> tuple[str, str]:
        last_error: ApiError | None = None
        for version in watched.versions:
            path = resource_path(watched.group, version, watched.resource)
            try:
                answer = api.get(path)
            except ApiError as error:
                if error.status != 404:
                    raise
                last_error = error
                continue
            objects = {(item["metadata"].get("namespace", ""), item["metadata"]["name"]): item
                       for item in answer.get("items") or []}
            with self._changed:
                self._objects[watched.resource] = objects
                self._synced.add(watched.resource)
                self._record(watched.resource)
            return path, answer["metadata"]["resourceVersion"]
        assert last_error is not None
        raise last_error

    def _absent(self, watched: Watched) -> None:
        """No served version of an optional kind: it holds nothing, which is in sync (once, not a change per look)."""
        with self._changed:
            if watched.resource in self._synced and not self._objects[watched.resource]:
                return
            self._objects[watched.resource] = {}
            self._synced.add(watched.resource)
            self._record(watched.resource)

    def _apply(self, resource: str, event_type: str, obj: dict) -> None:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        with self._changed:
            if event_type == "DELETED":
                self._objects[resource].pop(key, None)
            else:
                self._objects[resource][key] = obj
            self._record(resource)

    def _record(self, resource: str) -> None:
        self._revision += 1
        self._changes.append(Change(self._revision, resource))
        self._changed.notify_all()
