# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read, edit, write and verify one Gateway API HTTPRoute: the edit is :func:`httproute_edit.edit_http_route`, the
round-trips :class:`route_router.RouteObjectRouter`'s, as for a VirtualService.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.routing.gateway_api import (
    GATEWAY_API_VERSIONS,
    GATEWAY_GROUP,
    HTTP_ROUTE_KIND,
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
from ansible_collections.progressive.delivery.plugins.module_utils.routing.route_router import (
    RouteObjectRouter,
    RouterError,
    RouterResult,
    module_result as _route_module_result,
)

__all__ = ["HTTPRouteRouter", "RouterError", "RouterResult", "httproute_request_from_params", "module_result"]


class HTTPRouteRouter(RouteObjectRouter[HTTPRouteRequest]):
    """One HTTPRoute rule's traffic split (``api_version`` such as ``gateway.networking.k8s.io/v1``)."""

    kind = HTTP_ROUTE_KIND
    group = GATEWAY_GROUP
    plural = HTTP_ROUTE_PLURAL
    api_versions = GATEWAY_API_VERSIONS
    install_hint = "install the Gateway API CRDs (standard channel)"

    def edit(self, obj: dict[str, Any], request: HTTPRouteRequest) -> RouteEdit:
        try:
            return edit_http_route(obj, request)
        except HTTPRouteEditError as error:
            raise RouterError(str(error)) from None

    def lost_write_hint(self, request: HTTPRouteRequest, verified: dict[str, Any]) -> str:
        """A mirror percentage the cluster's CRD prunes, or another writer."""
        if request.mirror_enabled and request.mirror_percentage < 100:
            for rule in (verified.get("spec") or {}).get("rules") or []:
                for filter_ in rule.get("filters") or []:
                    mirror = filter_.get("requestMirror") or {} if filter_.get("type") == REQUEST_MIRROR else {}
                    if (mirror.get("backendRef") or {}).get("name") == request.canary.name and \
                            "percent" not in mirror and "fraction" not in mirror:
                        return ("The server dropped requestMirror.percent/fraction: its Gateway API CRDs predate "
                                "v1.2. Mirror 100 %, or upgrade the Gateway API CRDs.")
        return super().lost_write_hint(request, verified)


def module_result(result: RouterResult, name: str, namespace: str, diff: bool = False) -> dict[str, Any]:
    """The module's return values, shaped as ``vs_weight``'s; in check mode they describe what a real run would leave."""
    return _route_module_result(result, name, namespace, diff=diff, label="HTTPRoute %s/%s rule %s")
