# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side filters of the canary role: the release plan, timeline entries and the report."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.progressive.delivery.plugins.module_utils.report.timeline import build_report, timeline_event
from ansible_collections.progressive.delivery.plugins.module_utils.plan.documents import DocumentError, load_documents
from ansible_collections.progressive.delivery.plugins.module_utils.plan.manifest import CanarySpecError, build_plan
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import manifest_secrets, mask


def _load_documents(value: Any, what: str) -> list[Any]:
    try:
        return load_documents(to_text(value) if isinstance(value, bytes) else value, what)
    except DocumentError as exc:
        raise AnsibleFilterError(exc.message) from None


def canary_plan(manifest: Any, metric_templates: Any = None, interval: str | None = None,
                metric_interval: str | None = None, critical_metrics: list[str] | None = None,
                mesh_provider: str | None = None) -> dict[str, Any]:
    documents = _load_documents(manifest, "the Canary manifest")
    canaries = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Canary"]
    templates = [d for d in documents if isinstance(d, dict) and d.get("kind") == "MetricTemplate"]
    for item in metric_templates or []:
        templates.extend(_load_documents(item, "a MetricTemplate"))
    if len(canaries) > 1:
        raise AnsibleFilterError("the manifest holds %d Canary documents; give one per run" % len(canaries))
    chosen = canaries[0] if canaries else (documents[0] if len(documents) == 1 else None)
    try:
        return build_plan(chosen, templates, interval_override=interval or None,
                          metric_interval_override=metric_interval or None, critical_metrics=critical_metrics,
                          mesh_provider=mesh_provider or None)
    except CanarySpecError as exc:
        # A refused field is quoted in the message; webhook metadata and credentials in addresses never are.
        raise AnsibleFilterError(mask(exc.describe(), manifest_secrets(chosen, templates))) from None


def canary_event(kind: str, message: str, weight: int | None = None, time: str | None = None, webhooks: Any = None,
                 failed_checks: int | None = None) -> dict[str, Any]:
    return timeline_event(kind, message, weight=weight, time=time, webhooks=webhooks or [], failed_checks=failed_checks)


def canary_report(plan: dict[str, Any], run_id: str, mode: str, result: str, reason: str, started_at: str,
                  final_weight: int = 0, failed_checks: int = 0, timeline: Any = None, samples: Any = None,
                  finished_at: str | None = None, extra: Any = None) -> dict[str, Any]:
    return build_report(plan, run_id, mode, result, reason, started_at, finished_at, int(final_weight), int(failed_checks),
                        timeline or [], samples or [], extra or None)


class FilterModule:
    """The canary role's controller-side logic."""

    def filters(self) -> dict[str, Any]:
        return {
            "canary_plan": canary_plan,
            "canary_event": canary_event,
            "canary_report": canary_report,
        }
