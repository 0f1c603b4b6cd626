# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The marker that tells objects the collection created from objects people own.

Every object a canary creates carries the ``managed-by`` label and an
annotation naming the canary.  Anything without both is someone else's and is
never rewritten.
"""

from __future__ import annotations

import copy
from typing import Any

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "progressive.delivery"
CANARY_ANNOTATION = "progressive.delivery/canary"


def canary_key(namespace: str, name: str) -> str:
    return "%s/%s" % (namespace, name)


def mark(obj: dict[str, Any], namespace: str, canary: str) -> dict[str, Any]:
    """Return a copy of ``obj`` carrying the ownership label and annotation."""
    marked = copy.deepcopy(obj)
    metadata = marked.setdefault("metadata", {})
    labels = dict(metadata.get("labels") or {})
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    metadata["labels"] = labels
    annotations = dict(metadata.get("annotations") or {})
    annotations[CANARY_ANNOTATION] = canary_key(namespace, canary)
    metadata["annotations"] = annotations
    return marked


def owner_of(obj: dict[str, Any] | None) -> str | None:
    """The canary (``namespace/name``) an object belongs to, or None when it is not ours."""
    if not obj:
        return None
    metadata = obj.get("metadata") or {}
    if (metadata.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return None
    return (metadata.get("annotations") or {}).get(CANARY_ANNOTATION)


def ownership_problem(obj: dict[str, Any] | None, kind: str, namespace: str, canary: str) -> str | None:
    """A sentence explaining why ``obj`` may not be written by this canary, or None when it may."""
    if obj is None:
        return None
    name = (obj.get("metadata") or {}).get("name", "?")
    owner = owner_of(obj)
    if owner == canary_key(namespace, canary):
        return None
    if owner:
        return ("%s %s/%s belongs to canary %s, not to %s: give each canary its own target and service "
                "names" % (kind, namespace, name, owner, canary_key(namespace, canary)))
    return ("%s %s/%s exists but was not created by progressive.delivery: delete it or adopt it (add the label "
            "%s=%s and the annotation %s=%s) so canary %s can manage it"
            % (kind, namespace, name, MANAGED_BY_LABEL, MANAGED_BY_VALUE, CANARY_ANNOTATION,
               canary_key(namespace, canary), canary))
