# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Istio networking API versions this collection speaks, for every caller that names one.

``canary_step`` finds the version a cluster serves once, at initialization, and
records it in the state (``virtualService.apiVersion``); later callers pass it
on (``vs_weight``'s ``api_version``) instead of discovering it again.
"""

from __future__ import annotations

ISTIO_GROUP = "networking.istio.io"
# Newest first: v1 is served from Istio 1.22, v1beta1 and v1alpha3 by every release still in use.
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")
VIRTUAL_SERVICE_PLURAL = "virtualservices"
DESTINATION_RULE_PLURAL = "destinationrules"


def group_version(version: str) -> str:
    """The ``apiVersion`` of an Istio networking object: ``networking.istio.io/<version>``."""
    return "%s/%s" % (ISTIO_GROUP, version)


ISTIO_API_VERSIONS = tuple(group_version(version) for version in ISTIO_VERSIONS)


def pick_istio_version(served: list[str]) -> str | None:
    """The newest Istio networking API version the cluster serves that this collection speaks."""
    for version in ISTIO_VERSIONS:
        if version in served:
            return version
    return None
