# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking over the objects Flagger generated for a Canary, so a switch from Flagger never stops the traffic.

Flagger creates ``<target>-primary``, the Services, the DestinationRules and the VirtualService (or the HTTPRoute),
the primary's autoscaler and config copies, each with a controller ownerReference to its Canary
(``flagger.app/v1beta1``). Adopting one marks it as the canary's (``kube/ownership.py``) and drops those
ownerReferences, so deleting the Canary, or uninstalling Flagger, cannot garbage-collect it. Nothing else changes:
the primary keeps its replicas and its pods, the route keeps its weights.

Pure functions over plain API dicts.
"""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.progressive.delivery.plugins.module_utils.kube.ownership import mark, owner_of

FLAGGER_GROUP = "flagger.app"
CANARY_KIND = "Canary"
ADOPT_OPTION = "adopt_flagger"
ROLE_VARIABLE = "canary_adopt_flagger"


def flagger_owner(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ownerReference that makes ``obj`` a Flagger Canary's, or None."""
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
        group = str(ref.get("apiVersion") or "").split("/", 1)[0]
        if group == FLAGGER_GROUP and ref.get("kind") == CANARY_KIND:
            return ref
    return None


def flagger_problem(obj: dict[str, Any] | None, kind: str, namespace: str, canary: str) -> str | None:
    """Why an object Flagger generated is not written when adoption was not asked for; None for any other object."""
    ref = flagger_owner(obj)
    if ref is None or owner_of(obj):
        return None
    name = ((obj or {}).get("metadata") or {}).get("name", "?")
    if ref.get("name") != canary:
        return ("%s %s/%s belongs to Flagger Canary %s/%s, not to %s: give each canary its own target and service "
                "names" % (kind, namespace, name, namespace, ref.get("name"), canary))
    return ("%s %s/%s was created by Flagger for Canary %s/%s (ownerReference %s %s): set %s=true (the canary role's "
            "%s) to adopt Flagger's objects as they are, replicas and traffic included, or see "
            "docs/migrating-from-flagger.md" % (kind, namespace, name, namespace, canary, ref.get("apiVersion"),
                                                CANARY_KIND, ADOPT_OPTION, ROLE_VARIABLE))


def adopted(obj: dict[str, Any], namespace: str, canary: str) -> dict[str, Any]:
    """``obj`` marked as the canary's, without its Flagger ownerReferences; everything else as it was."""
    result = mark(copy.deepcopy(obj), namespace, canary)
    metadata = result["metadata"]
    kept = [ref for ref in metadata.get("ownerReferences") or []
            if flagger_owner({"metadata": {"ownerReferences": [ref]}}) is None]
    if kept:
        metadata["ownerReferences"] = kept
    else:
        metadata.pop("ownerReferences", None)
    return result


def adoptable(obj: dict[str, Any] | None, kind: str, canary: str, apex: str = "", label: str = "",
              primary_value: str = "") -> bool:
    """Whether ``obj`` is Flagger's for this canary and not yet ours.

    The apex Service counts too when it carries no owner at all but selects the primary's pods: Flagger rewrites the
    selector of an apex Service people created before it, without owning it.
    """
    if obj is None or owner_of(obj):
        return False
    ref = flagger_owner(obj)
    if ref is not None:
        return ref.get("name") == canary
    metadata = obj.get("metadata") or {}
    if kind != "Service" or not apex or metadata.get("name") != apex or metadata.get("ownerReferences"):
        return False
    return bool(label) and ((obj.get("spec") or {}).get("selector") or {}) == {label: primary_value}


def primary_problem(primary: dict[str, Any], namespace: str, label: str, primary_value: str) -> str | None:
    """Why Flagger's primary cannot be adopted (its selector is not the one the canary routes by), or None."""
    selector = ((primary.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if selector.get(label) == primary_value:
        return None
    name = (primary.get("metadata") or {}).get("name", "?")
    return ("Deployment %s/%s selects pods by %s, but the canary's primary selects %s=%s: it is not the primary "
            "Flagger generates for this target; delete it or rename the target"
            % (namespace, name, selector or "nothing", label, primary_value))


def runs_target(primary: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether the adopted primary runs the target's pod spec (config references renamed), as after a promotion."""
    have = ((primary.get("spec") or {}).get("template") or {}).get("spec") or {}
    want = ((desired.get("spec") or {}).get("template") or {}).get("spec") or {}
    return have == want
