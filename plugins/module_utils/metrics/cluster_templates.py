# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MetricTemplates kept in the cluster as ``metrictemplates.flagger.app`` objects, as Flagger reads them.

A team migrating from Flagger keeps its templates in the cluster; the role reads the ones the manifest refers to and
was not given, before it plans the release.
"""

from __future__ import annotations

from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_auth, resolve_auth
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError

FLAGGER_GROUP = "flagger.app"
# The only version Flagger serves MetricTemplates in.
TEMPLATE_API_VERSION = "flagger.app/v1beta1"
TEMPLATE_PLURAL = "metrictemplates"


class ClusterTemplateError(DeliveryError):
    """A MetricTemplate the manifest refers to cannot be read from the cluster."""


def _without_server_fields(template: Mapping[str, Any]) -> dict[str, Any]:
    # What the plan needs is the template as written; status and managedFields only make the plan bigger.
    metadata = {k: v for k, v in (template.get("metadata") or {}).items() if k in ("name", "namespace", "labels", "annotations")}
    return {"apiVersion": template.get("apiVersion", TEMPLATE_API_VERSION), "kind": "MetricTemplate",
            "metadata": metadata, "spec": template.get("spec") or {}}


def read_templates(kube: Any, refs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Read each referenced MetricTemplate; a missing CRD and a missing object are different errors naming the ref."""
    if not refs:
        return []
    described = ", ".join("%s/%s" % (ref.get("namespace"), ref.get("name")) for ref in refs)
    try:
        versions = kube.served_versions(FLAGGER_GROUP)
    except KubeApiError as exc:
        raise ClusterTemplateError("reading MetricTemplate %s: %s" % (
            described, exc.explain("list", "API versions of", FLAGGER_GROUP))) from None
    if TEMPLATE_API_VERSION.split("/")[1] not in versions:
        served = ", ".join(versions) or "none"
        raise ClusterTemplateError(
            "the manifest refers to MetricTemplate %s, which was not given in canary_metric_templates, and the cluster "
            "does not serve %s (served versions of %s: %s): the Flagger MetricTemplate CRD "
            "(metrictemplates.flagger.app) is not installed. Pass the templates in canary_metric_templates, or install "
            "the CRD and the templates" % (described, TEMPLATE_API_VERSION, FLAGGER_GROUP, served))
    templates = []
    for ref in refs:
        name, namespace = str(ref.get("name") or ""), str(ref.get("namespace") or "")
        if not name or not namespace:
            raise ClusterTemplateError("a MetricTemplate reference needs a name and a namespace, got %r" % (dict(ref),))
        try:
            found = kube.get_or_none(TEMPLATE_API_VERSION, TEMPLATE_PLURAL, name, namespace)
        except KubeApiError as exc:
            raise ClusterTemplateError(exc.explain("get", "MetricTemplate", name, namespace)) from None
        if found is None:
            raise ClusterTemplateError(
                "MetricTemplate %s/%s was not given in canary_metric_templates and is not in the cluster: create it "
                "(kubectl get metrictemplates -n %s lists those that exist), fix the templateRef, or pass it in "
                "canary_metric_templates" % (namespace, name, namespace))
        templates.append(_without_server_fields(found))
    return templates


def fetch_templates(args: Mapping[str, Any]) -> dict[str, Any]:
    """The ``templates`` stage of canary_analysis: read ``args['template_refs']`` with the task's Kubernetes auth."""
    refs = list(args.get("template_refs") or [])
    if not refs:
        return {"changed": False, "templates": []}
    try:
        kube = client_from_auth(resolve_auth(args))
    except KubeApiError as exc:
        raise ClusterTemplateError("reading MetricTemplates from the cluster: %s" % exc.message) from None
    return {"changed": False, "templates": read_templates(kube, refs)}
