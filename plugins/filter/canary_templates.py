# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The MetricTemplates a Canary refers to that the run was not given, so the role can read them from the cluster."""

from __future__ import annotations

from typing import Any

from ansible_collections.progressive.delivery.plugins.filter.canary_plan import _load_documents
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.template_refs import missing_template_refs


def canary_template_refs(manifest: Any, metric_templates: Any = None) -> list[dict[str, str]]:
    documents = _load_documents(manifest, "the Canary manifest")
    canaries = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Canary"]
    templates = [d for d in documents if isinstance(d, dict) and d.get("kind") == "MetricTemplate"]
    for item in metric_templates or []:
        templates.extend(_load_documents(item, "a MetricTemplate"))
    # Several or no Canary documents: the plan says what is wrong with the manifest, nothing to read here.
    chosen = canaries[0] if len(canaries) == 1 else (documents[0] if not canaries and len(documents) == 1 else None)
    return missing_template_refs(chosen, templates)


class FilterModule:
    """MetricTemplates to read from the cluster."""

    def filters(self) -> dict[str, Any]:
        return {"canary_template_refs": canary_template_refs}
