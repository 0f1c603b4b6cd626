# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes Gateway API versions this collection speaks for HTTPRoute, for every caller that names one.

A caller that found the served version once (``httproute_weight``'s result
``api_version``) passes it on instead of discovering it again.
"""

from __future__ import annotations

GATEWAY_GROUP = "gateway.networking.k8s.io"
# Newest first: v1 is served from Gateway API v1.0; v1beta1 by v0.6 to v1.x, and alone by the releases before v1.0.
GATEWAY_VERSIONS = ("v1", "v1beta1")
HTTP_ROUTE_KIND = "HTTPRoute"
HTTP_ROUTE_PLURAL = "httproutes"


def group_version(version: str) -> str:
    """The ``apiVersion`` of a Gateway API object: ``gateway.networking.k8s.io/<version>``."""
    return "%s/%s" % (GATEWAY_GROUP, version)


GATEWAY_API_VERSIONS = tuple(group_version(version) for version in GATEWAY_VERSIONS)


def pick_gateway_version(served: list[str]) -> str | None:
    """The newest Gateway API version the cluster serves that this collection speaks."""
    for version in GATEWAY_VERSIONS:
        if version in served:
            return version
    return None
