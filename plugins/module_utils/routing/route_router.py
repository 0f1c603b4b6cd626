# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read, edit, write and verify one route object (VirtualService, HTTPRoute) through :class:`KubeClient`.

Each router names its kind and API and supplies the pure edit; this file adds
the API round-trips: a GET with the version fallback folded into it (unless the
caller names the version it recorded), a PUT carrying
``metadata.resourceVersion`` so a concurrent writer makes it fail instead of
being overwritten, a bounded retry with jitter on 409 and a verifying GET.
A change without conflicts costs exactly three requests.
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.optimistic import (
    ConflictRetriesExhausted,
    optimistic_update,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import RouteEdit

RETRY_BASE_DELAY = 0.05
RETRY_MAX_DELAY = 1.0
# A request that fails in transit or with a server-side error is tried again this many times, backing off
# TRANSIENT_BASE_DELAY doubled each time (0.2 + 0.4 + 0.8 + 1.6 s at most): an API server restarting or overloaded
# answers again within seconds, and a release must not end with traffic left on the canary for one 503.
TRANSIENT_RETRIES = 4
TRANSIENT_BASE_DELAY = 0.2
# Statuses the API server (or a proxy in front of it) returns when the request may succeed if sent again.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

Request = TypeVar("Request")


class RouterError(DeliveryError):
    """A failure a person must act on; ``message`` is the whole explanation."""


@dataclass
class RouterResult:
    edit: RouteEdit
    api_version: str
    resource_version: str | None
    attempts: int
    written: bool


def is_kind_not_served(error: KubeApiError) -> bool:
    """A 404 about the API path rather than the object: the server names a missing object in ``details.name``."""
    if error.status != 404:
        return False
    details = (error.body or {}).get("details") or {}
    return not details.get("name")


def retry_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Full jitter, doubling per attempt: concurrent writers spread out instead of colliding again."""
    return rng() * min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * (2 ** attempt))


def is_transient(error: KubeApiError) -> bool:
    """No answer (a timeout, a reset connection) or a server-side failure: the same request may succeed later."""
    return error.status is None or error.status in TRANSIENT_STATUSES


class RouteObjectRouter(Generic[Request]):
    """One route object's traffic split, changed optimistically.

    ``api_version`` (as ``canary_step`` recorded it, or a previous call returned it) is used as given; without it
    the first read tries each version this collection speaks, newest first, and keeps the one served.
    """

    kind = ""
    group = ""
    plural = ""
    api_versions: tuple[str, ...] = ()
    # What to do when the cluster serves none of api_versions.
    install_hint = ""

    def __init__(self, client: Any, name: str, namespace: str, api_version: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.api_version = api_version
        self._given = api_version is not None
        self._sleep = sleep
        self._rng = rng
        # Requests that failed in transit or with a 5xx and were sent again, over this router's life.
        self.transient_failures = 0

    @property
    def target(self) -> str:
        return "%s %s/%s" % (self.kind, self.namespace, self.name)

    def edit(self, obj: dict[str, Any], request: Request) -> RouteEdit:
        """The pure edit of ``obj`` towards ``request``; raises RouterError when it cannot be made."""
        raise NotImplementedError

    def lost_write_hint(self, request: Request, verified: dict[str, Any]) -> str:
        """Why a re-read does not hold what was written."""
        return "Another writer changed it right after us; find it before retrying."

    def _explain(self, error: KubeApiError, verb: str) -> RouterError:
        if error.status == 403:
            return RouterError(
                "Permission denied to %s %s (HTTP 403 Forbidden: %s). The credentials of this task need the RBAC "
                "verbs 'get' and 'update' on resource '%s.%s' in namespace %s (a Role with apiGroups: [%s], "
                "resources: [%s], verbs: [get, update])." % (
                    verb, self.target, error.message.rstrip(".") or "forbidden", self.plural, self.group,
                    self.namespace, self.group, self.plural))
        if error.status == 404 and not is_kind_not_served(error):
            return RouterError("%s not found (HTTP 404). Check name and namespace; this module edits an existing "
                               "%s and never creates one." % (self.target, self.kind))
        explained = error.explain(verb, self.kind, self.name, self.namespace)
        if is_transient(error):
            explained += (" The request was sent %d times over a few seconds; the API server (or the network to it) "
                          "kept failing." % (TRANSIENT_RETRIES + 1))
            # The caller may try again later (the role's recovery does, for canary_recovery_timeout).
            return RouterError(explained, result={"retryable": True})
        return RouterError(explained)

    def _patiently(self, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``call()``, sent again after a transient failure, a bounded number of times with growing pauses.

        A write that failed in transit may have been applied: sent again with the same resourceVersion, it is
        refused with 409, and the optimistic loop reads the object again and finds nothing left to change.
        """
        attempt = 0
        while True:
            try:
                return call()
            except KubeApiError as error:
                if not is_transient(error) or attempt >= TRANSIENT_RETRIES:
                    raise
            self.transient_failures += 1
            self._sleep(TRANSIENT_BASE_DELAY * (2 ** attempt) * (0.5 + self._rng() / 2))
            attempt += 1

    def read(self) -> dict[str, Any]:
        """GET the object, settling the API version on first use."""
        versions = [self.api_version] if self.api_version else list(self.api_versions)
        for api_version in versions:
            try:
                obj = self._patiently(functools.partial(self.client.get, api_version, self.plural, self.name,
                                                        self.namespace))
            except KubeApiError as error:
                if is_kind_not_served(error) and not self.api_version:
                    continue
                if is_kind_not_served(error) and self._given:
                    raise RouterError(
                        "The cluster does not serve %ss as %s (api_version), HTTP 404 for %s. Give the apiVersion "
                        "canary_step recorded for it, or leave api_version out to find the one served."
                        % (self.kind, api_version, self.target)) from None
                raise self._explain(error, "get") from None
            self.api_version = api_version
            return obj
        raise RouterError("The cluster serves no %s API (tried %s): %s, or check that the credentials reach the "
                          "right cluster." % (self.kind, ", ".join(self.api_versions), self.install_hint))

    def apply(self, request: Request, check_mode: bool = False, max_retries: int = 5) -> RouterResult:
        """Bring the route to ``request``; read-only when nothing changes or in check mode."""
        edits: list[RouteEdit] = []
        refused: list[int] = []
        written: list[dict[str, Any]] = []

        def change(obj: dict[str, Any]) -> dict[str, Any] | None:
            edits.append(self.edit(obj, request))
            return edits[-1].obj if edits[-1].changed and not check_mode else None

        def write(_obj: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
            written.append(self._patiently(functools.partial(self.client.replace, self.api_version, self.plural,
                                                             self.name, desired, self.namespace)))
            return written[-1]

        def back_off(attempt: int) -> None:
            refused.append(attempt)
            self._sleep(retry_delay(attempt, self._rng))

        try:
            current = optimistic_update(self.read, change, write, attempts=max_retries + 1, before_retry=back_off)
        except ConflictRetriesExhausted as exhausted:
            raise RouterError(
                "%s kept changing under us: %d writes in a row were refused with HTTP 409 Conflict. Another "
                "controller (Flagger, Argo Rollouts, a GitOps sync) may be writing the same object; stop it or raise "
                "max_retries." % (self.target, exhausted.attempts)) from None
        except KubeApiError as error:
            raise self._explain(error, "update") from None
        edit, attempts = edits[-1], len(refused) + 1
        if not written:
            return RouterResult(edit, self.api_version or "", ((current or {}).get("metadata") or {}).get(
                "resourceVersion"), attempts, False)

        verified = self.read()
        check = self.edit(verified, request)
        if check.changed:
            raise RouterError("%s was written but a re-read does not hold the requested state (%s). %s" % (
                self.target, "; ".join(check.changes), self.lost_write_hint(request, verified)))
        return RouterResult(edit, self.api_version or "", (verified.get("metadata") or {}).get("resourceVersion"),
                            attempts, True)


def module_result(result: RouterResult, name: str, namespace: str, diff: bool = False,
                  label: str = "VirtualService %s/%s route %s") -> dict[str, Any]:
    """A router module's return values; in check mode they describe the state a real run would leave.

    ``label`` names the object and the route or rule in the diff headers.
    """
    edit = result.edit
    output: dict[str, Any] = {
        "changed": edit.changed,
        "route": edit.route,
        "previous_weights": edit.previous_weights,
        "weights": edit.weights,
        "canary_weight": edit.canary_weight,
        "primary_weight": edit.primary_weight,
        "mirror": edit.mirror,
        "match": edit.match,
        "session_affinity": edit.session_affinity,
        "changes": edit.changes,
        "resource_version": result.resource_version,
        "api_version": result.api_version,
        "attempts": result.attempts,
    }
    if diff:
        route = "#%d" % edit.route if isinstance(edit.route, int) else repr(edit.route)
        header = label % (namespace, name, route)
        output["diff"] = {"before": edit.before, "after": edit.after, "before_header": header, "after_header": header}
    return output
