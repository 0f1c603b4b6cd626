# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``plan`` stage of canary_analysis: the Canary manifest and its MetricTemplates read, checked and planned.

The files are read where the controller runs, relative paths next to the playbook and then in the directory
ansible-playbook runs in (an AWX job's project root); the MetricTemplates the manifest refers to and was not given
are read from the cluster, as Flagger does. One task, where the role had one per file, lookup and check.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.template_refs import missing_template_refs
from ansible_collections.progressive.delivery.plugins.module_utils.plan.documents import DocumentError, load_documents
from ansible_collections.progressive.delivery.plugins.module_utils.plan.manifest import CanarySpecError, build_plan
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import manifest_secrets, mask
from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import Strategy

GATEWAY_API = "gatewayapi"


class PlanTaskError(DeliveryError):
    """The release cannot be planned; the message never quotes webhook metadata or credentials."""


def find_file(path: str, playbook_dir: str) -> str:
    """The file a path names: as given when absolute; otherwise next to the playbook, else in the working directory."""
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return path
    candidates = [os.path.normpath(os.path.join(playbook_dir, path)), os.path.normpath(os.path.join(os.getcwd(), path))]
    return next((candidate for candidate in candidates if os.path.isfile(candidate)), path)


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and "\n" not in value


def _read(value: Any, option: str, playbook_dir: str) -> Any:
    if not _is_path(value):
        return value
    path = find_file(value, playbook_dir)
    if not os.path.isfile(path):
        where = "" if os.path.isabs(path) else (
            " next to the playbook (%s) or in the directory ansible-playbook runs in" % playbook_dir)
        raise PlanTaskError("%s: no file %s%s" % (option, path, where))
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def plan_line(plan: Mapping[str, Any], run_id: str, mode: str) -> str:
    """The plan as the play shows it: strategy, steps, interval, threshold, metrics and what the plan noted."""
    strategy = Strategy.from_plan(plan)
    metrics = ", ".join(t["metric"] for t in plan.get("thresholds") or []) or "none"
    notes = ("; notes: " + "; ".join(plan["notes"])) if plan.get("notes") else ""
    return "Canary %s/%s (run %s, %s mode): %s strategy, %s every %s, threshold %s, metrics %s%s" % (
        plan["namespace"], plan["name"], run_id, mode, plan.get("strategy") or "canary",
        ", ".join(strategy.label(i) for i in range(len(plan["steps"]))), plan["interval"], plan["threshold"],
        metrics, notes)


def check_adoption(plan: Mapping[str, Any], virtual_service: Mapping[str, Any], http_route: Mapping[str, Any]) -> None:
    gateway_api = (plan.get("provider") or "istio") == GATEWAY_API
    if gateway_api and virtual_service:
        raise PlanTaskError("canary_virtual_service names a VirtualService, but the canary's spec.provider routes through "
                            "a Gateway API HTTPRoute: use canary_http_route {adopt: <name>, rule: <rule name>}")
    if not gateway_api and http_route:
        raise PlanTaskError("canary_http_route names a Gateway API HTTPRoute, but the provider is istio, which routes "
                            "through a VirtualService: use canary_virtual_service {adopt: <name>, route: <route name>}, "
                            "or set spec.provider: gatewayapi:v1")


def plan_release(args: Mapping[str, Any], playbook_dir: str,
                 read_cluster_templates: Callable[[list[dict[str, str]]], list[dict[str, Any]]]) -> dict[str, Any]:
    """Read, check and plan; returns the plan and the MetricTemplates read from the cluster."""
    manifest = args.get("manifest")
    if manifest is None or (isinstance(manifest, (str, list, dict)) and len(manifest) == 0):
        raise PlanTaskError("canary_manifest is required: a path to the Canary manifest, its YAML text, or a dict")
    manifest = _read(manifest, "canary_manifest", playbook_dir)
    given = [_read(item, "canary_metric_templates", playbook_dir) for item in args.get("metric_templates") or []]
    providers = [_read(item, "canary_alert_providers", playbook_dir) for item in args.get("alert_providers") or []]
    try:
        documents = load_documents(manifest, "the Canary manifest")
        templates = [d for d in documents if isinstance(d, dict) and d.get("kind") == "MetricTemplate"]
        for item in given:
            templates.extend(load_documents(item, "a MetricTemplate"))
    except DocumentError as exc:
        raise PlanTaskError(exc.message) from None
    canaries = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Canary"]
    if len(canaries) > 1:
        raise PlanTaskError("the manifest holds %d Canary documents; give one per run" % len(canaries))
    chosen = canaries[0] if canaries else (documents[0] if len(documents) == 1 else None)
    refs = missing_template_refs(chosen, templates)
    from_cluster = read_cluster_templates(refs) if refs else []
    try:
        plan = build_plan(chosen, templates + from_cluster, interval_override=args.get("interval") or None,
                          metric_interval_override=args.get("metric_interval") or None,
                          critical_metrics=args.get("critical_metrics"), mesh_provider=args.get("mesh_provider") or None)
    except CanarySpecError as exc:
        # A refused field is quoted in the message; webhook metadata and credentials in addresses never are.
        raise PlanTaskError(mask(exc.describe(), manifest_secrets(chosen, templates + from_cluster))) from None
    check_adoption(plan, args.get("virtual_service") or {}, args.get("http_route") or {})
    return {"changed": False, "plan": plan, "cluster_templates": len(from_cluster), "alert_providers": providers}
