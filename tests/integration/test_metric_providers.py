"""MetricTemplates kept in the cluster, answered by the Prometheus their spec.provider.address names.

The template and its Secret live in the lab's real kube-apiserver; the address is a local proxy in front of the lab's
real Prometheus, because that Prometheus checks no credentials: the proxy records the Authorization header each query
carried, so the test sees the Secret's token arrive where the template sends its queries, and nowhere else.
"""

from __future__ import annotations

import base64

import pytest
import requests
from werkzeug import Response

from ansible_collections.progressive.delivery.plugins.filter.canary_plan import canary_plan
from ansible_collections.progressive.delivery.plugins.filter.canary_templates import canary_template_refs
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_auth, resolve_auth
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.cluster_templates import (
    ClusterTemplateError,
    fetch_templates,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.providers import build_gate
from tests.support.releases import short_manifest

TOKEN = "token-from-the-secret"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "metrictemplates.flagger.app"},
    "spec": {"group": "flagger.app", "scope": "Namespaced",
             "names": {"plural": "metrictemplates", "singular": "metrictemplate", "kind": "MetricTemplate",
                       "listKind": "MetricTemplateList"},
             "versions": [{"name": "v1beta1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def metric_template_crd(lab, lab_api_client):
    """Flagger's MetricTemplate kind, as the Flagger chart installs it (schema left open: this test needs the kind)."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    extensions = client.ApiextensionsV1Api(lab_api_client)
    try:
        extensions.create_custom_resource_definition(CRD)
    except ApiException as error:
        if error.status != 409:
            raise
    kube = client_from_auth(resolve_auth({"kubeconfig": lab.kubeconfig}, environ={}))
    for _ in range(100):
        if "v1beta1" in kube.served_versions("flagger.app"):
            return
        import time  # pylint: disable=import-outside-toplevel
        time.sleep(0.1)
    pytest.fail("the MetricTemplate CRD was not served within 10 s")


@pytest.fixture
def recording_proxy(httpserver, lab):
    """A Prometheus address that forwards to the lab's Prometheus and records each query's Authorization header."""
    seen: list[tuple[str | None, str]] = []

    def forward(request):
        seen.append((request.headers.get("Authorization"), request.args.get("query", "")))
        answer = requests.get(lab.prometheus_url + request.path, params=request.args, timeout=10)
        return Response(answer.content, status=answer.status_code, content_type="application/json")

    httpserver.expect_request("/api/v1/query").respond_with_handler(forward)
    return httpserver.url_for("/").rstrip("/"), seen


def test_template_from_the_cluster_is_answered_at_its_address_with_the_secrets_token(
        lab, lab_api_client, namespace, metric_template_crd, recording_proxy):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    address, seen = recording_proxy
    client.CoreV1Api(lab_api_client).create_namespaced_secret(namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-auth"},
        "data": {"token": base64.b64encode(TOKEN.encode()).decode()}})
    client.CustomObjectsApi(lab_api_client).create_namespaced_custom_object("flagger.app", "v1beta1", namespace, "metrictemplates", {
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate", "metadata": {"name": "scraped-targets"},
        "spec": {"provider": {"type": "prometheus", "address": address, "secretRef": {"name": "prom-auth"}},
                 # 2 without waiting for a scrape; the namespace placeholder shows the template was rendered.
                 "query": 'sum(absent(up{job="{{ namespace }}"})) + 1'}})
    manifest = short_manifest(namespace, metrics=[
        {"name": "targets", "templateRef": {"name": "scraped-targets"}, "thresholdRange": {"min": 1}, "interval": "1m"}])

    refs = canary_template_refs(manifest)
    assert refs == [{"name": "scraped-targets", "namespace": namespace}]
    fetched = fetch_templates({"kubeconfig": lab.kubeconfig, "template_refs": refs})
    plan = canary_plan(manifest, fetched["templates"])
    kube = client_from_auth(resolve_auth({"kubeconfig": lab.kubeconfig}, environ={}))
    # The task's own connection points elsewhere and carries another token: neither may be used for this metric.
    gate = build_gate(plan, {"prometheus_url": "http://127.0.0.1:9", "prometheus_token": "connection-token"}, kube)
    result = gate.once()

    assert result["passed"] is True, result
    assert result["metrics"][0]["value"] == 2 and result["metrics"][0]["prometheus"] == address
    assert seen and all(auth == "Bearer " + TOKEN for auth, _query in seen)
    assert 'job="%s"' % namespace in seen[0][1]


def test_a_template_missing_from_the_cluster_is_named(lab, namespace, metric_template_crd):
    with pytest.raises(ClusterTemplateError) as caught:
        fetch_templates({"kubeconfig": lab.kubeconfig, "template_refs": [{"name": "nowhere", "namespace": namespace}]})
    assert "MetricTemplate %s/nowhere was not given in canary_metric_templates and is not in the cluster" % namespace \
        in caught.value.message
