# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which MetricTemplates a Canary refers to, and which of them a run was not given.

Kept apart from the code that reads them from the cluster: the role's filters use it, and a filter plugin must not
import the Kubernetes client, which every task that templates a filter of the collection would then import again.
"""

from __future__ import annotations

from typing import Any, Mapping


def _name_and_namespace(document: Mapping[str, Any]) -> tuple[str, str | None]:
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        return "", None
    return str(metadata.get("name") or ""), metadata.get("namespace")


def template_refs(canary: Any) -> list[dict[str, str]]:
    """The templateRefs of a Canary's ``analysis.metrics``, each as ``{name, namespace}``, in order, once each.

    A ref without a namespace means the Canary's own, as in Flagger; refs that name no template, or whose namespace
    cannot be known, are left to the plan's validation, which explains them.
    """
    if not isinstance(canary, Mapping):
        return []
    namespace = _name_and_namespace(canary)[1]
    spec = canary.get("spec") if isinstance(canary.get("spec"), Mapping) else {}
    analysis = spec.get("analysis") if isinstance(spec.get("analysis"), Mapping) else {}
    metrics = analysis.get("metrics") if isinstance(analysis.get("metrics"), list) else []
    refs: list[dict[str, str]] = []
    for metric in metrics:
        ref = metric.get("templateRef") if isinstance(metric, Mapping) else None
        if isinstance(ref, str):
            ref = {"name": ref}
        if not isinstance(ref, Mapping) or not ref.get("name"):
            continue
        wanted = {"name": str(ref["name"]), "namespace": str(ref.get("namespace") or namespace or "")}
        if wanted["namespace"] and wanted not in refs:
            refs.append(wanted)
    return refs


def missing_template_refs(canary: Any, templates: list[Any]) -> list[dict[str, str]]:
    """The Canary's templateRefs that none of the given templates satisfies (same matching rule as the plan)."""
    given = [_name_and_namespace(t) for t in templates
             if isinstance(t, Mapping) and t.get("kind", "MetricTemplate") == "MetricTemplate"]
    return [ref for ref in template_refs(canary)
            if not any(name == ref["name"] and namespace in (None, ref["namespace"]) for name, namespace in given)]
