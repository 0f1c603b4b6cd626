"""Thread-safe in-memory object store shared by the API server, the controller and the mesh.

Objects are plain JSON-like dicts keyed by (resource plural, namespace, name).
Every write takes the next value of one global counter as the object's
resourceVersion, as etcd revisions do, so a client can tell any two versions
apart and the controller can sleep until something changed.
"""
from __future__ import annotations

import collections
import copy
import datetime
import threading
import uuid
from typing import Callable, Iterable

ObjectKey = tuple[str, str]  # (namespace or "", name)
Mutation = Callable[[dict], dict]

# Top-level fields that are not part of an object's desired state: changing them
# must not bump metadata.generation.
_NON_SPEC_FIELDS = frozenset({"metadata", "status", "apiVersion", "kind"})
_CHANGE_LOG_SIZE = 10000


class StoreError(Exception):
    """Base of the store's refusals; the API server turns them into Status objects."""

    def __init__(self, resource: str, namespace: str | None, name: str, message: str = "") -> None:
        super().__init__(message or f"{resource} {namespace or ''}/{name}")
        self.resource = resource
        self.namespace = namespace
        self.name = name


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    """The caller's resourceVersion (or another precondition) no longer matches the stored object."""


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def desired_state(obj: dict) -> dict:
    """The part of an object whose changes bump metadata.generation."""
    return {key: value for key, value in obj.items() if key not in _NON_SPEC_FIELDS}


class Change:
    """One committed write, kept for watchers: type is ADDED, MODIFIED or DELETED."""

    __slots__ = ("revision", "type", "resource", "namespace", "object")

    def __init__(self, revision: int, change_type: str, resource: str, namespace: str, obj: dict) -> None:
        self.revision = revision
        self.type = change_type
        self.resource = resource
        self.namespace = namespace
        self.object = obj


class Store:
    def __init__(self) -> None:
        self._objects: dict[str, dict[ObjectKey, dict]] = collections.defaultdict(dict)
        self._revision = 1
        self._changed = threading.Condition(threading.RLock())
        self._changes: collections.deque[Change] = collections.deque(maxlen=_CHANGE_LOG_SIZE)

    # ----------------------------------------------------------------- reads
    @property
    def revision(self) -> int:
        with self._changed:
            return self._revision

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        with self._changed:
            obj = self._objects[resource].get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        with self._changed:
            items = [
                copy.deepcopy(obj)
                for (obj_namespace, _name), obj in self._objects[resource].items()
                if namespace is None or obj_namespace == namespace
            ]
        items.sort(key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
        return items

    def list_with_revision(self, resource: str, namespace: str | None = None) -> tuple[list[dict], int]:
        """A consistent snapshot: the items and the revision they were read at."""
        with self._changed:
            return self.list(resource, namespace), self._revision

    def wait_for_change(self, since: int, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._revision > since, timeout=max(timeout, 0.0))
            return self._revision

    def changes_since(self, since: int) -> tuple[list[Change], bool]:
        """Committed writes after revision `since`; the flag is False when the log no longer reaches back that far."""
        with self._changed:
            complete = not self._changes or self._changes[0].revision <= since + 1 or since >= self._revision
            return [change for change in self._changes if change.revision > since], complete

    # ---------------------------------------------------------------- writes
    def create(self, resource: str, obj: dict, dry_run: bool = False) -> dict:
        metadata = obj.setdefault("metadata", {})
        namespace = metadata.get("namespace") or ""
        name = metadata["name"]
        with self._changed:
            if (namespace, name) in self._objects[resource]:
                raise AlreadyExists(resource, namespace or None, name)
            new = copy.deepcopy(obj)
            meta = new["metadata"]
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if "spec" in new:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            if dry_run:
                meta.pop("resourceVersion", None)
                return new
            return self._commit(resource, "ADDED", new)

    def update(self, resource: str, obj: dict, expected_resource_version: str | None = None,
               dry_run: bool = False, keep_status: bool = False) -> dict:
        """Replace an object; a non-empty expected_resource_version makes it conditional."""
        metadata = obj["metadata"]
        namespace = metadata.get("namespace") or ""
        name = metadata["name"]
        with self._changed:
            current = self._objects[resource].get((namespace, name))
            if current is None:
                raise NotFound(resource, namespace or None, name)
            self._check_version(resource, current, expected_resource_version)
            new = copy.deepcopy(obj)
            if keep_status:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
            return self._replace(resource, current, new, dry_run)

    def mutate(self, resource: str, namespace: str | None, name: str, mutation: Mutation,
               dry_run: bool = False) -> dict:
        """Atomic read-modify-write: `mutation` gets a copy of the current object and returns the new one.

        The new object's metadata.resourceVersion, when the mutation leaves one
        that differs from the stored one, is a precondition that fails with Conflict.
        Exceptions raised by the mutation abort the write.
        """
        with self._changed:
            current = self._objects[resource].get((namespace or "", name))
            if current is None:
                raise NotFound(resource, namespace, name)
            new = mutation(copy.deepcopy(current))
            self._check_version(resource, current, new.get("metadata", {}).get("resourceVersion"))
            return self._replace(resource, current, new, dry_run)

    def update_status(self, resource: str, namespace: str | None, name: str, status: dict,
                      expected_resource_version: str | None = None) -> dict:
        with self._changed:
            current = self._objects[resource].get((namespace or "", name))
            if current is None:
                raise NotFound(resource, namespace, name)
            self._check_version(resource, current, expected_resource_version)
            if current.get("status") == status:
                return copy.deepcopy(current)
            new = copy.deepcopy(current)
            new["status"] = copy.deepcopy(status)
            return self._replace(resource, current, new, dry_run=False)

    def delete(self, resource: str, namespace: str | None, name: str,
               expected_resource_version: str | None = None, expected_uid: str | None = None,
               dry_run: bool = False, force: bool = False) -> dict:
        """Delete an object, or, while it has metadata.finalizers, mark it as being deleted.

        A marked object keeps living with metadata.deletionTimestamp set until an
        update removes its last finalizer, as in Kubernetes. The returned object
        still has its finalizers exactly when the deletion is pending. `force`
        ignores finalizers (namespace teardown).
        """
        with self._changed:
            key = (namespace or "", name)
            current = self._objects[resource].get(key)
            if current is None:
                raise NotFound(resource, namespace, name)
            self._check_version(resource, current, expected_resource_version)
            if expected_uid and current["metadata"].get("uid") != expected_uid:
                raise Conflict(resource, namespace, name,
                               f"Precondition failed: UID in precondition: {expected_uid}, "
                               f"UID in object meta: {current['metadata'].get('uid')}")
            if current["metadata"].get("finalizers") and not force:
                if current["metadata"].get("deletionTimestamp"):
                    return copy.deepcopy(current)
                marked = copy.deepcopy(current)
                marked["metadata"]["deletionTimestamp"] = now_rfc3339()
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                return marked if dry_run else self._commit(resource, "MODIFIED", marked)
            if dry_run:
                return copy.deepcopy(current)
            return self._remove(resource, key)

    def delete_namespace_contents(self, namespace: str) -> int:
        """Delete every namespaced object in `namespace`; returns how many were deleted."""
        with self._changed:
            deleted = 0
            for resource, objects in self._objects.items():
                for key in [key for key in objects if key[0] == namespace]:
                    self.delete(resource, namespace, key[1], force=True)
                    deleted += 1
            return deleted

    def resources(self) -> Iterable[str]:
        with self._changed:
            return list(self._objects)

    # -------------------------------------------------------------- internal
    def _check_version(self, resource: str, current: dict, expected: str | None) -> None:
        if expected and expected != current["metadata"].get("resourceVersion"):
            raise Conflict(resource, current["metadata"].get("namespace"), current["metadata"]["name"])

    def _replace(self, resource: str, current: dict, new: dict, dry_run: bool) -> dict:
        meta = new.setdefault("metadata", {})
        old_meta = current["metadata"]
        for fixed in ("uid", "creationTimestamp", "name"):
            meta[fixed] = old_meta[fixed]
        if old_meta.get("namespace"):
            meta["namespace"] = old_meta["namespace"]
        if "generation" in old_meta:
            changed = desired_state(new) != desired_state(current)
            meta["generation"] = old_meta["generation"] + (1 if changed else 0)
        elif "spec" in new:
            meta["generation"] = 1
        meta["resourceVersion"] = old_meta["resourceVersion"]
        # Only a delete sets deletionTimestamp, and nothing clears it.
        for deleting in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if deleting in old_meta:
                meta[deleting] = old_meta[deleting]
            else:
                meta.pop(deleting, None)
        if new == current or dry_run:
            return copy.deepcopy(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # The last finalizer is gone: the pending deletion completes with this write.
            key = (meta.get("namespace") or "", meta["name"])
            self._objects[resource][key] = new
            return self._remove(resource, key)
        return self._commit(resource, "MODIFIED", new)

    def _remove(self, resource: str, key: ObjectKey) -> dict:
        current = self._objects[resource].pop(key)
        self._revision += 1
        gone = copy.deepcopy(current)
        gone["metadata"]["resourceVersion"] = str(self._revision)
        self._record("DELETED", resource, gone)
        return copy.deepcopy(gone)

    def _commit(self, resource: str, change_type: str, obj: dict) -> dict:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        key = (obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        self._objects[resource][key] = obj
        self._record(change_type, resource, obj)
        return copy.deepcopy(obj)

    def _record(self, change_type: str, resource: str, obj: dict) -> None:
        self._changes.append(Change(self._revision, change_type, resource,
                                    obj["metadata"].get("namespace") or "", copy.deepcopy(obj)))
        self._changed.notify_all()
