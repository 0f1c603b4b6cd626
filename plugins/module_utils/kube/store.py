# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads and writes of a canary's objects: ownership checked, optimistic concurrency, check mode and diff.

Every write is recorded in a ``ChangeLog`` first, so check mode reports exactly what a real run would change.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.optimistic import (
    ConflictRetriesExhausted,
    optimistic_update,
)
from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import owner_of, ownership_problem

DEPLOYMENTS = ("apps/v1", "deployments")
CONFIGMAPS = ("v1", "configmaps")
SECRETS = ("v1", "secrets")
SERVICES = ("v1", "services")
EVENTS = ("v1", "events")
HPAS = ("autoscaling/v2", "horizontalpodautoscalers")


class CanaryFailure(DeliveryError):
    """An action that could not be done; ``result`` carries what is known (phase, state, lock)."""


@dataclass
class ChangeLog:
    """What an action changed (or, in check mode, would change)."""

    changes: list[str] = field(default_factory=list)
    writes: int = 0
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, text: str, key: str | None = None, before: Any = None, after: Any = None) -> None:
        self.changes.append(text)
        self.writes += 1
        if key:
            if key not in self.before:
                self.before[key] = copy.deepcopy(before)
            self.after[key] = copy.deepcopy(after)


def owned_view(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The parts of an object a diff should show: no status, no server bookkeeping."""
    if obj is None:
        return None
    metadata = obj.get("metadata") or {}
    view = {"metadata": {k: metadata[k] for k in ("name", "namespace", "labels", "annotations") if k in metadata}}
    for key in ("spec", "data", "binaryData", "type"):
        if key in obj:
            view[key] = copy.deepcopy(obj[key])
    if obj.get("kind") == "Secret":
        view.pop("data", None)
        view.pop("binaryData", None)
        view["data"] = "<%d keys hidden>" % len(obj.get("data") or {})
    return view


class CanaryStore:
    """The objects of canary ``canary`` in ``namespace``, read and written through a KubeClient.

    ``fail`` turns a message into the exception to raise, so failures carry the caller's result.
    """

    def __init__(self, client: Any, namespace: str, canary: str, changelog: ChangeLog, check_mode: bool,
                 fail: Callable[[str], CanaryFailure]) -> None:
        self.client = client
        self.ns = namespace
        self.canary = canary
        self.changelog = changelog
        self.check_mode = check_mode
        self.fail = fail
        # Given an object's kind and its live form, the form that makes it the canary's (None: not taken over);
        # set by an action that was asked to adopt objects another controller generated.
        self.adopt: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None

    @contextmanager
    def api(self, verb: str, kind: str, name: str | None) -> Iterator[None]:
        """Turn API errors into sentences naming the object and what to check."""
        try:
            yield
        except KubeApiError as exc:
            raise self.fail(exc.explain(verb, kind, name, self.ns)) from None

    def get(self, api: tuple[str, str], kind: str, name: str) -> dict[str, Any] | None:
        with self.api("get", kind, name):
            return self.client.get_or_none(api[0], api[1], name, self.ns)

    def ensure(self, api: tuple[str, str], kind: str, name: str,
               compute: Callable[[dict[str, Any] | None], dict[str, Any] | None],
               owned: bool = True) -> dict[str, Any] | None:
        """Read, let ``compute`` decide the desired object (None = leave as is), write optimistically.

        ``owned=False`` is for the user's own objects (the target): they are changed only where ``compute`` says,
        without the ownership check.
        """
        key = "%s/%s" % (kind, name)

        def change(existing: dict[str, Any] | None) -> dict[str, Any] | None:
            adopted = self.adopt(kind, existing) if owned and existing is not None and self.adopt else None
            current = existing if adopted is None else adopted
            problem = ownership_problem(current, kind, self.ns, self.canary) if owned else None
            if problem:
                raise self.fail(problem)
            desired = compute(current)
            return adopted if desired is None else desired

        def write(existing: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
            verb = "create" if existing is None else "update"
            if owned and existing is not None and owner_of(existing) is None:
                verb = "adopt"
            self.changelog.add("%s %s %s/%s" % (verb, kind, self.ns, name), key, owned_view(existing), owned_view(desired))
            if self.check_mode:
                return desired
            try:
                if existing is None:
                    return self.client.create(api[0], api[1], desired, self.ns)
                return self.client.replace(api[0], api[1], name, desired, self.ns)
            except KubeApiError as exc:
                if exc.status == 409:
                    raise  # read again and recompute
                # Refused: nothing was written, so it leaves the change log (and the result says changed only
                # for what the API accepted).
                self._forget_refused(0)
                raise self.fail(exc.explain("create" if existing is None else "update", kind, name, self.ns)) from None

        try:
            return optimistic_update(lambda: self.get(api, kind, name), change, write, before_retry=self._forget_refused)
        except ConflictRetriesExhausted as exc:
            self._forget_refused(exc.attempts - 1)
            raise self.fail("%s %s/%s kept changing under us (%d conflicting writes): another controller is writing "
                            "it; stop it and re-run" % (kind, self.ns, name, exc.attempts)) from None

    def _forget_refused(self, _attempt: int) -> None:
        """The write the API server refused with 409 did not happen: it leaves the change log."""
        self.changelog.changes.pop()
        self.changelog.writes -= 1

    def scale(self, name: str, replicas: int) -> None:
        deployment = self.get(DEPLOYMENTS, "Deployment", name)
        if deployment is None:
            raise self.fail("Deployment %s/%s disappeared while the canary was being changed: recreate it and re-run"
                            % (self.ns, name))
        current = (deployment.get("spec") or {}).get("replicas")
        if current == replicas:
            return
        self.changelog.add("scale Deployment %s/%s from %s to %s" % (self.ns, name, current, replicas),
                           "Deployment/%s" % name, {"spec": {"replicas": current}}, {"spec": {"replicas": replicas}})
        if self.check_mode:
            return
        # A merge patch of replicas alone cannot overwrite anything else a person changed meanwhile.
        with self.api("scale", "Deployment", name):
            self.client.patch(DEPLOYMENTS[0], DEPLOYMENTS[1], name, {"spec": {"replicas": replicas}}, self.ns)
