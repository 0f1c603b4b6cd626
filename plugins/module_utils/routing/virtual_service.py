# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read, edit, write and verify one Istio VirtualService: the edit is
:func:`istio_routes.edit_virtual_service`, the round-trips :class:`route_router.RouteObjectRouter`'s."""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_api import (
    ISTIO_API_VERSIONS,
    ISTIO_GROUP,
    VIRTUAL_SERVICE_PLURAL,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import (
    RouteEdit,
    RouteError,
    RouteRequest,
    edit_virtual_service,
)
from ansible_collections.progressive.delivery.plugins.module_utils.routing.route_router import (
    RouteObjectRouter,
    RouterError,
    RouterResult,
    is_kind_not_served,
    module_result,
    retry_delay,
)

__all__ = ["VirtualServiceRouter", "RouterError", "RouterResult", "is_kind_not_served", "module_result", "retry_delay"]


class VirtualServiceRouter(RouteObjectRouter[RouteRequest]):
    """One VirtualService's traffic split (``api_version`` such as ``networking.istio.io/v1``)."""

    kind = "VirtualService"
    group = ISTIO_GROUP
    plural = VIRTUAL_SERVICE_PLURAL
    api_versions = ISTIO_API_VERSIONS
    install_hint = "install Istio's CRDs"

    def edit(self, obj: dict[str, Any], request: RouteRequest) -> RouteEdit:
        try:
            return edit_virtual_service(obj, request)
        except RouteError as error:
            raise RouterError(str(error)) from None
