# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names a canary gives the objects it creates and reads, Flagger's where Flagger has one.

Every ``-primary``/``-canary``/``-canary-*`` name in the collection is built here.
"""

from __future__ import annotations

PRIMARY_SUFFIX = "-primary"
CANARY_SUFFIX = "-canary"
# The ConfigMap keeping the state of a release.
STATE_SUFFIX = "-canary-state"
# The ConfigMap keeping the reports of the last runs, so they outlive the job that wrote them.
REPORTS_SUFFIX = "-canary-reports"
# The Lease that lets one run at a time work on a canary.
LOCK_SUFFIX = "-canary-lock"
# The Secret keeping the primary's Secrets as they were before a promotion, for a rollback.
PREVIOUS_SECRETS_SUFFIX = "-canary-previous-secrets"
# The A/B route vs_weight owns in a VirtualService.
MATCH_ROUTE_SUFFIX = "-canary-match"
# The session affinity routes vs_weight owns in a VirtualService, one per cookie.
STICKY_ROUTE_SUFFIX = "-sticky"


def primary_name(name: str) -> str:
    """The primary copy of a Deployment, ConfigMap, Secret or autoscaler, a primary selector value, or the
    primary Service of the apex Service ``name``."""
    return name + PRIMARY_SUFFIX


def canary_name(name: str) -> str:
    """The canary Service of the apex Service ``name``."""
    return name + CANARY_SUFFIX


def service_names(apex: str) -> tuple[str, str, str]:
    """The apex, primary and canary Services (and the DestinationRules and VirtualService named after them)."""
    return apex, primary_name(apex), canary_name(apex)


def state_name(canary: str) -> str:
    return canary + STATE_SUFFIX


def reports_name(canary: str) -> str:
    return canary + REPORTS_SUFFIX


def lease_name(canary: str) -> str:
    return canary + LOCK_SUFFIX


def previous_secrets_name(canary: str) -> str:
    return canary + PREVIOUS_SECRETS_SUFFIX


def match_route_name(name: str) -> str:
    """The A/B route this collection owns in the VirtualService ``name``."""
    return name + MATCH_ROUTE_SUFFIX


def sticky_route_name(name: str, side: str) -> str:
    """The session affinity route this collection owns in the VirtualService ``name`` for ``side`` (canary or primary)."""
    if side not in ("canary", "primary"):
        raise ValueError("side must be canary or primary, got %r" % (side,))
    return "%s-%s%s" % (name, side, STICKY_ROUTE_SUFFIX)
