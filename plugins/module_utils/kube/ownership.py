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
import json
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


# The keys of user-given labels and annotations (Flagger's spec.service.apex/primary/canary) last written on an
# object, so a key dropped from the settings is removed on the next write while keys others added survive.
OWNED_METADATA_ANNOTATION = "progressive.delivery/owned-metadata"
METADATA_KINDS = ("labels", "annotations")


def _recorded_keys(metadata: dict[str, Any]) -> dict[str, list[str]]:
    text = (metadata.get("annotations") or {}).get(OWNED_METADATA_ANNOTATION)
    try:
        recorded = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {kind: [key for key in recorded.get(kind) or [] if isinstance(key, str)] for kind in METADATA_KINDS}


def with_owned_metadata(obj: dict[str, Any], labels: dict[str, str] | None,
                        annotations: dict[str, str] | None) -> dict[str, Any]:
    """A copy of ``obj`` carrying the given labels and annotations, their keys recorded as ours.

    Keys already set on ``obj`` (the selector label, the ownership marker) win over the given ones.
    """
    marked = copy.deepcopy(obj)
    metadata = marked.setdefault("metadata", {})
    given = {"labels": dict(labels or {}), "annotations": dict(annotations or {})}
    given["annotations"].pop(OWNED_METADATA_ANNOTATION, None)
    for kind in METADATA_KINDS:
        merged = {str(k): str(v) for k, v in given[kind].items()}
        merged.update(metadata.get(kind) or {})
        given[kind] = {k: v for k, v in merged.items() if k in given[kind] and k not in (metadata.get(kind) or {})}
        metadata[kind] = merged
    if given["labels"] or given["annotations"]:
        metadata["annotations"][OWNED_METADATA_ANNOTATION] = json.dumps(
            {kind: sorted(given[kind]) for kind in METADATA_KINDS}, sort_keys=True, separators=(",", ":"))
    return marked


def merged_metadata(existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``existing``'s labels and annotations with ``desired``'s set and the keys we wrote before and no longer want removed."""
    have = existing.get("metadata") or {}
    want = desired.get("metadata") or {}
    before = _recorded_keys(have)
    merged: dict[str, dict[str, str]] = {}
    for kind in METADATA_KINDS:
        wanted = want.get(kind) or {}
        result = {k: v for k, v in (have.get(kind) or {}).items() if k in wanted or k not in before.get(kind, [])}
        result.update(wanted)
        merged[kind] = result
    if OWNED_METADATA_ANNOTATION not in (want.get("annotations") or {}):
        merged["annotations"].pop(OWNED_METADATA_ANNOTATION, None)
    return merged


def metadata_differs(existing: dict[str, Any], desired: dict[str, Any]) -> bool:
    have = existing.get("metadata") or {}
    merged = merged_metadata(existing, desired)
    return any((have.get(kind) or {}) != merged[kind] for kind in METADATA_KINDS)
