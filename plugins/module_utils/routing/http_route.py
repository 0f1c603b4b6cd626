# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read, edit, write and verify one Gateway API HTTPRoute through :class:`KubeClient`.

The edit is :func:`httproute_edit.edit_http_route`; this file adds the API
round-trips exactly as :mod:`virtual_service` does for Istio: a GET with the
version fallback folded in (unless the caller names the version), a PUT
carrying ``metadata.resourceVersion``, a bounded retry with jitter on 409 and
a verifying GET.  A change without conflicts costs three requests.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable

from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.optimistic import (
    ConflictRetriesExhausted,
    optimistic_update,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.gateway_api import (
    GATEWAY_API_VERSIONS,
    GATEWAY_GROUP,
    HTTP_ROUTE_PLURAL,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.httproute_edit import (
    REQUEST_MIRROR,
    HTTPRouteEditError,
    HTTPRouteRequest,
    edit_http_route,
    httproute_request_from_params,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import RouteEdit
from ansible_collections.progressive.delivery.plugins.module_utils.routing.virtual_service import (
    RouterError,
    RouterResult,
    is_kind_not_served,
    module_result as _route_module_result,
    retry_delay,
)

RBAC_RESOURCE = "%s.%s" % (HTTP_ROUTE_PLURAL, GATEWAY_GROUP)

__all__ = ["HTTPRouteRouter", "RouterError", "RouterResult", "httproute_request_from_params", "module_result"]


class HTTPRouteRouter:
    """One HTTPRoute's traffic split, changed optimistically.

    ``api_version`` (``gateway.networking.k8s.io/v1``, as a previous call returned it) is used as given; without it
    the first read tries each version this collection speaks, newest first, and keeps the one served.
    """

    def __init__(self, client: Any, name: str, namespace: str, api_version: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.api_version = api_version
        self._given = api_version is not None
        self._sleep = sleep
        self._rng = rng

    @property
    def target(self) -> str:
        return "HTTPRoute %s/%s" % (self.namespace, self.name)

    def _explain(self, error: KubeApiError, verb: str) -> RouterError:
        if error.status == 403:
            return RouterError(
                "Permission denied to %s %s (HTTP 403 Forbidden: %s). The credentials of this task need the RBAC "
                "verbs 'get' and 'update' on resource '%s' in namespace %s (a Role with apiGroups: [%s], "
                "resources: [%s], verbs: [get, update])." % (
                    verb, self.target, error.message.rstrip(".") or "forbidden", RBAC_RESOURCE, self.namespace,
                    GATEWAY_GROUP, HTTP_ROUTE_PLURAL))
        if error.status == 404 and not is_kind_not_served(error):
            return RouterError("%s not found (HTTP 404). Check name and namespace; this module edits an existing "
                               "HTTPRoute and never creates one." % self.target)
        return RouterError(error.explain(verb, "HTTPRoute", self.name, self.namespace))

    def read(self) -> dict[str, Any]:
        """GET the object, settling the API version on first use."""
        versions = [self.api_version] if self.api_version else list(GATEWAY_API_VERSIONS)
        for api_version in versions:
            try:
                obj = self.client.get(api_version, HTTP_ROUTE_PLURAL, self.name, self.namespace)
            except KubeApiError as error:
                if is_kind_not_served(error) and not self.api_version:
                    continue
                if is_kind_not_served(error) and self._given:
                    raise RouterError(
                        "The cluster does not serve HTTPRoutes as %s (api_version), HTTP 404 for %s. Give the "
                        "apiVersion a previous call returned, or leave api_version out to find the one served."
                        % (api_version, self.target)) from None
                raise self._explain(error, "get") from None
            self.api_version = api_version
            return obj
        raise RouterError(
            "The cluster serves no HTTPRoute API (tried %s): install the Gateway API CRDs (standard channel), or "
            "check that the credentials reach the right cluster." % ", ".join(GATEWAY_API_VERSIONS))

    def _edit(self, obj: dict[str, Any], request: HTTPRouteRequest) -> RouteEdit:
        try:
            return edit_http_route(obj, request)
        except HTTPRouteEditError as error:
            raise RouterError(str(error)) from None

    def apply(self, request: HTTPRouteRequest, check_mode: bool = False, max_retries: int = 5) -> RouterResult:
        """Bring the rule to ``request``; read-only when nothing changes or in check mode."""
        edits: list[RouteEdit] = []
        refused: list[int] = []
        written: list[dict[str, Any]] = []

        def change(obj: dict[str, Any]) -> dict[str, Any] | None:
            edits.append(self._edit(obj, request))
            return edits[-1].obj if edits[-1].changed and not check_mode else None

        def write(_obj: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
            written.append(self.client.replace(self.api_version, HTTP_ROUTE_PLURAL, self.name, desired,
                                               self.namespace))
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
        check = self._edit(verified, request)
        if check.changed:
            raise RouterError("%s was written but a re-read does not hold the requested state (%s). %s" % (
                self.target, "; ".join(check.changes), self._lost_field_hint(request, verified)))
        return RouterResult(edit, self.api_version or "", (verified.get("metadata") or {}).get("resourceVersion"),
                            attempts, True)

    def _lost_field_hint(self, request: HTTPRouteRequest, verified: dict[str, Any]) -> str:
        """Why a re-read differs: a field this cluster's CRD prunes, or another writer."""
        if request.mirror_enabled and request.mirror_percentage < 100:
            for rule in (verified.get("spec") or {}).get("rules") or []:
                for filter_ in rule.get("filters") or []:
                    mirror = filter_.get("requestMirror") or {} if filter_.get("type") == REQUEST_MIRROR else {}
                    if (mirror.get("backendRef") or {}).get("name") == request.canary.name and \
                            "percent" not in mirror and "fraction" not in mirror:
                        return ("The server dropped requestMirror.percent/fraction: its Gateway API CRDs predate "
                                "v1.2. Mirror 100 %, or upgrade the Gateway API CRDs.")
        return "Another writer changed it right after us; find it before retrying."


def module_result(result: RouterResult, name: str, namespace: str, diff: bool = False) -> dict[str, Any]:
    """The module's return values, shaped as ``vs_weight``'s; in check mode they describe what a real run would leave."""
    output = _route_module_result(result, name, namespace, diff=False)
    if diff:
        edit = result.edit
        rule = "#%d" % edit.route if isinstance(edit.route, int) else repr(edit.route)
        label = "HTTPRoute %s/%s rule %s" % (namespace, name, rule)
        output["diff"] = {"before": edit.before, "after": edit.after, "before_header": label, "after_header": label}
    return output
