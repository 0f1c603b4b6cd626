"""Which Prometheus answers each metric: metricsServer, MetricTemplate provider.address and secretRef credentials.

One local HTTP server plays the Kubernetes API (Secrets, MetricTemplates) and several Prometheus servers under
different path prefixes, so every request, and the credentials it carried, is seen where it landed.
"""

from __future__ import annotations

import base64
import json

import pytest
from werkzeug import Response

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.cluster_templates import ClusterTemplateError, read_templates
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.template_refs import missing_template_refs, template_refs
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.providers import (
    ClientPool,
    ProviderError,
    build_gate,
    credentials_from_secret,
    gate_for,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import RenderContext, resolve_metric
from tests.support.kube_api import client_for, json_response, status_body
from tests.support.modules import run_module


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(**data) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-auth", "namespace": "flagger"},
            "data": {key: b64(value) for key, value in data.items()}}


def vector(value) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000, str(value)]}]}}


class Proms:
    """Prometheus servers at /<name>/api/v1/query, each answering one value and recording the Authorization header."""

    def __init__(self, httpserver, **values):
        self.seen: list[tuple[str, str | None, str]] = []
        for name, value in values.items():
            httpserver.expect_request("/%s/api/v1/query" % name).respond_with_handler(self._handler(name, value))
        self.url = lambda name: httpserver.url_for("/" + name)

    def _handler(self, name, value):
        def handle(request):
            self.seen.append((name, request.headers.get("Authorization"), request.args["query"]))
            return Response(json.dumps(vector(value)), content_type="application/json")
        return handle

    def servers_of(self, fragment: str) -> list[str]:
        return [name for name, _auth, query in self.seen if fragment in query]


def template(name="queue-depth", namespace="flagger", query='max(queue_depth{app="{{ target }}"})', **provider):
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate", "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": dict({"type": "prometheus"}, **provider), "query": query}}


def plan(*metrics, metrics_server=None):
    return {"name": "podinfo", "namespace": "test", "target": "podinfo", "service_name": "podinfo",
            "metrics": list(metrics), "metrics_server": metrics_server}


SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
INLINE = {"name": "inline", "query": 'sum(inline_total{app="{{ target }}"})', "thresholdRange": {"max": 1000}}


def templated(tpl, name="queue"):
    return {"name": name, "templateRef": tpl["metadata"]["name"], "template": tpl, "thresholdRange": {"max": 1000}}


# -- credentials -------------------------------------------------------------------------------------------------


def test_token_wins_over_basic_auth_and_loses_its_newline():
    assert credentials_from_secret(secret(token="abc\n", username="u", password="p"), "Secret x") == {"prometheus_token": "abc"}


def test_basic_auth_needs_both_keys_and_the_error_names_keys_never_values():
    assert credentials_from_secret(secret(username="u", password="p"), "Secret x") == {
        "prometheus_username": "u", "prometheus_password": "p"}
    with pytest.raises(ProviderError) as caught:
        credentials_from_secret(secret(username="hunter-user", other="s3cr3t-value"), "Secret flagger/prom-auth")
    message = caught.value.message
    assert "Secret flagger/prom-auth has no 'password'" in message and "keys found: other, username" in message
    assert "hunter-user" not in message and "s3cr3t-value" not in message


def test_secret_value_that_is_not_base64_is_named_by_key():
    with pytest.raises(ProviderError, match="key 'token' is not base64"):
        credentials_from_secret({"data": {"token": "not base64!"}}, "Secret x")


# -- routing -----------------------------------------------------------------------------------------------------


def test_builtins_and_inline_queries_go_to_metrics_server_templates_to_their_address(httpserver):
    proms = Proms(httpserver, main=1, mserver=100, tpl=5)
    httpserver.expect_request("/api/v1/namespaces/flagger/secrets/prom-auth").respond_with_json(secret(token="tpl-token"))
    tpl = template(address=proms.url("tpl"), secretRef={"name": "prom-auth"})
    no_address = template(name="plain", query='sum(plain_total{app="{{ target }}"})')
    connection = {"prometheus_url": proms.url("main"), "prometheus_token": "main-token"}

    gate = build_gate(plan(SUCCESS, INLINE, templated(tpl), templated(no_address, "plain"), metrics_server=proms.url("mserver")),
                      connection, client_for(httpserver))
    result = gate.once()

    assert result["passed"] is True, result
    assert proms.servers_of("istio_requests_total") == ["mserver"]
    assert proms.servers_of("inline_total") == ["mserver"]
    assert proms.servers_of("queue_depth") == ["tpl"]
    # Flagger never applies metricsServer to a template; without an address it is the task's connection here.
    assert proms.servers_of("plain_total") == ["main"]
    auth = {name: header for name, header, _query in proms.seen}
    assert auth == {"mserver": None, "tpl": "Bearer tpl-token", "main": "Bearer main-token"}
    by_name = {m["name"]: m["prometheus"] for m in result["metrics"]}
    assert by_name["queue"] == proms.url("tpl") and by_name["plain"] == proms.url("main")


def test_metrics_server_equal_to_the_connection_keeps_its_credentials(httpserver):
    proms = Proms(httpserver, main=100)
    connection = {"prometheus_url": proms.url("main") + "/", "prometheus_token": "main-token"}
    build_gate(plan(SUCCESS, metrics_server=proms.url("main")), connection, None).once()
    assert [auth for _name, auth, _query in proms.seen] == ["Bearer main-token"]


def test_one_client_per_distinct_server_however_many_metrics():
    made = []

    def factory(params):
        made.append(params["prometheus_url"])
        return resolve_metric  # any object: only counted

    pool = ClientPool(factory)
    specs = [resolve_metric(m) for m in (SUCCESS, dict(SUCCESS, name="request-duration"), INLINE,
                                         templated(template(address="http://a:9090")),
                                         templated(template(name="b", address="http://a:9090"), "b"))]
    gate = gate_for(specs, RenderContext("test", "podinfo"), {"prometheus_url": "http://main:9090"}, None, None, pool)
    assert sorted(made) == ["http://a:9090", "http://main:9090"]
    assert gate.clients["queue"] is gate.clients["b"] and gate.clients["inline"] is gate.client


def test_the_connection_token_never_goes_to_another_address_and_transport_options_do(httpserver):
    seen = []
    pool = ClientPool(lambda params: seen.append(dict(params)) or object())
    spec = resolve_metric(templated(template(address="https://other:9090", insecureSkipVerify=True)))
    gate_for([spec], RenderContext("test", "podinfo"), {
        "prometheus_url": "http://main:9090", "prometheus_token": "main-token", "prometheus_headers": {"X-Scope-OrgID": "t"},
        "prometheus_ca_cert": "/ca.pem", "prometheus_timeout": 3.0}, None, None, pool)
    assert seen == [{"prometheus_url": "https://other:9090", "prometheus_timeout": 3.0, "prometheus_validate_certs": False}]


def test_secret_ref_without_cluster_access_is_an_error_naming_the_secret_and_the_options():
    spec = resolve_metric(templated(template(address="http://other:9090", secretRef={"name": "prom-auth"})))
    with pytest.raises(ProviderError) as caught:
        gate_for([spec], RenderContext("test", "podinfo"), {"prometheus_url": "http://main:9090"}, None, None, ClientPool(lambda p: object()))
    assert "Secret flagger/prom-auth" in caught.value.message and "prometheus_url to http://other:9090" in caught.value.message


def test_secret_ref_without_address_is_refused():
    spec = resolve_metric(templated(template(secretRef={"name": "prom-auth"})))
    with pytest.raises(ProviderError, match="no spec.provider.address"):
        gate_for([spec], RenderContext("test", "podinfo"), {"prometheus_url": "http://main:9090"}, object(), None, ClientPool(lambda p: object()))


def test_address_that_is_not_a_url_is_refused_with_the_template_named():
    spec = resolve_metric(templated(template(address="prometheus:9090")))
    with pytest.raises(ProviderError, match="spec.provider.address of MetricTemplate flagger/queue-depth"):
        gate_for([spec], RenderContext("test", "podinfo"), {}, None, None, ClientPool(lambda p: object()))


def test_unreadable_secret_is_explained_without_a_traceback(httpserver):
    httpserver.expect_request("/api/v1/namespaces/flagger/secrets/prom-auth").respond_with_response(
        json_response(status_body(403, "Forbidden", 'secrets "prom-auth" is forbidden'), 403))
    spec = resolve_metric(templated(template(address="http://other:9090", secretRef={"name": "prom-auth"})))
    with pytest.raises(ProviderError) as caught:
        gate_for([spec], RenderContext("test", "podinfo"), {}, client_for(httpserver), None, ClientPool(lambda p: object()))
    assert "Secret flagger/prom-auth" in caught.value.message and "'get' verb" in caught.value.message


def test_plan_provider_entry_names_the_secret_namespace():
    metric = dict(templated(template(namespace=None, address="http://a:9090")),
                  provider={"address": "http://b:9090", "secret_ref": {"name": "s", "namespace": "ops"},
                            "insecure_skip_verify": False})
    provider = resolve_metric(metric).provider
    assert (provider.address, provider.namespace, provider.secret_name, provider.template) == ("http://b:9090", "ops", "s", "ops/queue-depth")


# -- templates in the cluster ------------------------------------------------------------------------------------


CANARY = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "podinfo", "namespace": "test"},
          "spec": {"analysis": {"metrics": [
              {"name": "a", "templateRef": {"name": "error-rate"}},
              {"name": "b", "templateRef": {"name": "latency", "namespace": "flagger"}},
              {"name": "c", "templateRef": {"name": "error-rate"}},
              SUCCESS]}}}


def test_template_refs_default_to_the_canary_namespace_once_each():
    assert template_refs(CANARY) == [{"name": "error-rate", "namespace": "test"}, {"name": "latency", "namespace": "flagger"}]


def test_given_templates_satisfy_refs_by_name_and_namespace():
    given = [template(name="latency", namespace="other"), template(name="error-rate", namespace=None)]
    assert missing_template_refs(CANARY, given) == [{"name": "latency", "namespace": "flagger"}]
    assert missing_template_refs(CANARY, given + [template(name="latency")]) == []
    assert missing_template_refs({"kind": "Canary"}, []) == []


def test_canary_template_refs_filter_reads_yaml_with_its_templates():
    from ansible_collections.progressive.delivery.plugins.filter.canary_templates import canary_template_refs

    text = "---\n" + json.dumps(CANARY) + "\n---\n" + json.dumps(template(name="latency"))
    assert canary_template_refs(text, [template(name="error-rate", namespace="test")]) == []
    assert canary_template_refs(text) == [{"name": "error-rate", "namespace": "test"}]


def served(httpserver, versions):
    if versions is None:
        httpserver.expect_request("/apis/flagger.app").respond_with_response(
            json_response(status_body(404, "NotFound", "the server could not find the requested resource"), 404))
    else:
        httpserver.expect_request("/apis/flagger.app").respond_with_json(
            {"kind": "APIGroup", "name": "flagger.app", "versions": [{"groupVersion": "flagger.app/" + v, "version": v} for v in versions]})


def test_read_templates_strips_server_fields(httpserver):
    served(httpserver, ["v1beta1"])
    stored = dict(template(name="latency"), status={"conditions": []})
    stored["metadata"] = dict(stored["metadata"], resourceVersion="7", managedFields=[{}], uid="u")
    httpserver.expect_request("/apis/flagger.app/v1beta1/namespaces/flagger/metrictemplates/latency").respond_with_json(stored)
    assert read_templates(client_for(httpserver), [{"name": "latency", "namespace": "flagger"}]) == [template(name="latency")]


def test_missing_crd_and_missing_template_are_two_errors_naming_the_ref(httpserver):
    served(httpserver, None)
    with pytest.raises(ClusterTemplateError) as caught:
        read_templates(client_for(httpserver), [{"name": "latency", "namespace": "flagger"}])
    assert "flagger/latency" in caught.value.message and "CRD (metrictemplates.flagger.app) is not installed" in caught.value.message
    httpserver.clear()
    served(httpserver, ["v1beta1"])
    httpserver.expect_request("/apis/flagger.app/v1beta1/namespaces/flagger/metrictemplates/latency").respond_with_response(
        json_response(status_body(404, "NotFound", 'metrictemplates.flagger.app "latency" not found'), 404))
    with pytest.raises(ClusterTemplateError) as caught:
        read_templates(client_for(httpserver), [{"name": "latency", "namespace": "flagger"}])
    assert "MetricTemplate flagger/latency was not given in canary_metric_templates and is not in the cluster" in caught.value.message


# -- the module --------------------------------------------------------------------------------------------------


def test_prometheus_gate_module_sends_a_template_to_its_address(httpserver):
    proms = Proms(httpserver, main=100, tpl=5)
    result = run_module("prometheus_gate", {
        "prometheus_url": proms.url("main"), "namespace": "test", "target": "podinfo",
        "metric_templates": [template(address=proms.url("tpl"))],
        "metrics": [SUCCESS, {"name": "queue", "templateRef": "queue-depth", "thresholdRange": {"max": 10}}]})
    assert result["passed"] is True, result["msg"]
    assert proms.servers_of("queue_depth") == ["tpl"] and proms.servers_of("istio_requests_total") == ["main"]


def test_prometheus_gate_module_refuses_a_secret_it_cannot_read(httpserver):
    proms = Proms(httpserver, main=100, tpl=5)
    result = run_module("prometheus_gate", {
        "prometheus_url": proms.url("main"), "namespace": "test", "target": "podinfo",
        "metrics": [{"name": "queue", "template": template(address=proms.url("tpl"), secretRef={"name": "prom-auth"}),
                     "thresholdRange": {"max": 10}}]})
    assert result.get("failed") and result["config_error"] is True
    assert "Secret flagger/prom-auth" in result["msg"] and proms.seen == []
