"""Which route a release drives: its kind follows spec.provider, its name the apex Service unless adopted."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.routing.release_router import (
    HTTP_ROUTE,
    VIRTUAL_SERVICE,
    HTTPRouteReleaseRouter,
    ReleaseRouteError,
    VirtualServiceReleaseRouter,
    release_router,
    route_ref,
)

ISTIO_PLAN = {"name": "app", "namespace": "prod", "service_name": "app-svc", "primary_service": "app-svc-primary",
              "canary_service": "app-svc-canary", "service": {"port": 9898}}
GATEWAY_PLAN = dict(ISTIO_PLAN, provider="gatewayapi", route_api_version="gateway.networking.k8s.io/v1")


def test_an_istio_canary_drives_the_virtual_service_named_after_its_apex_service():
    ref = route_ref(ISTIO_PLAN, None)
    assert (ref.kind, ref.name, ref.route, ref.api_version) == (VIRTUAL_SERVICE, "app-svc", None, None)
    assert isinstance(release_router(None, ISTIO_PLAN, None), VirtualServiceReleaseRouter)


def test_a_gateway_api_canary_drives_an_http_route():
    ref = route_ref(GATEWAY_PLAN, {"name": "shop", "route": "api", "api_version": "gateway.networking.k8s.io/v1beta1"})
    assert (ref.kind, ref.name, ref.route, ref.api_version) == (HTTP_ROUTE, "shop", "api", "gateway.networking.k8s.io/v1beta1")
    assert ref.label == "HTTPRoute shop"
    assert isinstance(release_router(None, GATEWAY_PLAN, {"name": "shop"}), HTTPRouteReleaseRouter)


def test_a_kind_that_contradicts_the_provider_is_refused():
    with pytest.raises(ReleaseRouteError, match="router.kind VirtualService does not route a canary whose provider is gatewayapi: it needs a HTTPRoute"):
        route_ref(GATEWAY_PLAN, {"kind": "VirtualService", "name": "app"})


def test_a_provider_without_router_is_refused():
    with pytest.raises(ReleaseRouteError, match="provider 'linkerd' has no router; supported: gatewayapi, istio"):
        route_ref(dict(ISTIO_PLAN, provider="linkerd"), None)
