# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The route a release drives, whichever API carries it: one interface, two routers.

The release loop says *what* a step routes (a weight, a mirror, an A/B match, sticky cookies: ``Strategy.route``);
the router for the canary's ``spec.provider`` says it in its API: an Istio VirtualService's ``http`` routes, or a
Gateway API HTTPRoute's ``rules``. Nothing above this file knows which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.routing.http_route import (
    HTTPRouteRouter,
    httproute_request_from_params,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import request_from_params
from ansible_collections.progressive.delivery.plugins.module_utils.routing.virtual_service import RouterResult, VirtualServiceRouter

VIRTUAL_SERVICE = "VirtualService"
HTTP_ROUTE = "HTTPRoute"
ROUTE_KINDS = (VIRTUAL_SERVICE, HTTP_ROUTE)
# spec.provider (as the plan names it) -> the kind that routes its traffic.
PROVIDER_KINDS = {"istio": VIRTUAL_SERVICE, "gatewayapi": HTTP_ROUTE}


class ReleaseRouteError(DeliveryError):
    """The route given does not fit the canary's provider."""


@dataclass(frozen=True)
class RouteRef:
    """Which object routes the release: its kind, name, the route (VirtualService) or rule (HTTPRoute) inside it,
    and the apiVersion ``canary_step initialize`` found served (None: found on first read)."""

    kind: str
    name: str
    route: str | None = None
    api_version: str | None = None

    @property
    def label(self) -> str:
        return "%s %s" % (self.kind, self.name)


class ReleaseRouter(Protocol):
    """What the release loop needs from a router: apply a strategy's routing and say what changed."""

    ref: RouteRef

    def apply(self, routing: Mapping[str, Any], check_mode: bool = False) -> RouterResult:
        ...


def route_ref(plan: Mapping[str, Any], options: Mapping[str, Any] | None) -> RouteRef:
    """The route of ``plan``'s canary: the generated one named after the apex Service unless ``options`` names the
    user's; its kind follows ``spec.provider``, and a kind given that contradicts it is refused."""
    options = options or {}
    provider = plan.get("provider") or "istio"
    kind = PROVIDER_KINDS.get(provider)
    if kind is None:
        raise ReleaseRouteError("the plan's provider %r has no router; supported: %s"
                                % (provider, ", ".join(sorted(PROVIDER_KINDS))))
    given = options.get("kind")
    if given and given != kind:
        raise ReleaseRouteError("router.kind %s does not route a canary whose provider is %s: it needs a %s"
                                % (given, provider, kind))
    return RouteRef(kind=kind, name=options.get("name") or plan["service_name"], route=options.get("route") or None,
                    api_version=options.get("api_version") or None)


class VirtualServiceReleaseRouter:
    """Istio: the primary and canary destinations are the ``-primary``/``-canary`` Service hosts."""

    def __init__(self, kube: Any, plan: Mapping[str, Any], ref: RouteRef) -> None:
        self.ref = ref
        self._plan = plan
        self._router = VirtualServiceRouter(kube, ref.name, plan["namespace"], api_version=ref.api_version)

    def apply(self, routing: Mapping[str, Any], check_mode: bool = False) -> RouterResult:
        params = dict(routing, name=self.ref.name, namespace=self._plan["namespace"], route=self.ref.route,
                      primary={"host": self._plan["primary_service"]}, canary={"host": self._plan["canary_service"]})
        return self._router.apply(request_from_params(params), check_mode=check_mode)


class HTTPRouteReleaseRouter:
    """Gateway API: the primary and canary backendRefs are the ``-primary``/``-canary`` Services on the service port."""

    def __init__(self, kube: Any, plan: Mapping[str, Any], ref: RouteRef) -> None:
        self.ref = ref
        self._plan = plan
        self._router = HTTPRouteRouter(kube, ref.name, plan["namespace"], api_version=ref.api_version)

    def apply(self, routing: Mapping[str, Any], check_mode: bool = False) -> RouterResult:
        port = (self._plan.get("service") or {}).get("port")
        params = dict(routing, name=self.ref.name, namespace=self._plan["namespace"], rule=self.ref.route,
                      primary={"name": self._plan["primary_service"], "port": port},
                      canary={"name": self._plan["canary_service"], "port": port})
        return self._router.apply(httproute_request_from_params(params), check_mode=check_mode)


def release_router(kube: Any, plan: Mapping[str, Any], options: Mapping[str, Any] | None) -> ReleaseRouter:
    ref = route_ref(plan, options)
    if ref.kind == HTTP_ROUTE:
        return HTTPRouteReleaseRouter(kube, plan, ref)
    return VirtualServiceReleaseRouter(kube, plan, ref)
