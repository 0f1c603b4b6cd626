"""The Prometheus client against a real local HTTP server speaking the Prometheus API's response shapes."""

from __future__ import annotations

import json
import math
import time

import pytest
from werkzeug import Response

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import (
    PrometheusClient,
    PrometheusConfigError,
    PrometheusQueryError,
    PrometheusUnavailable,
    client_from_params,
    resolve_connection,
)

QUERY = "/api/v1/query"


def vector(*values, labels=None):
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": dict(labels or {}, idx=str(i)), "value": [1700000000.5, v]} for i, v in enumerate(values)],
        },
    }


@pytest.fixture
def client(httpserver):
    return PrometheusClient(httpserver.url_for("/"), timeout=2)


def test_vector_value(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json(vector("99.5"))
    result = client.query("up")
    assert result.result_type == "vector"
    assert [s.value for s in result.series] == [99.5]
    assert result.series[0].timestamp == 1700000000.5


def test_scalar_value(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json({"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "42"]}})
    assert client.query("scalar(up)").finite_values() == [42.0]


def test_empty_vector(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json(vector())
    result = client.query("nothing")
    assert result.empty and result.finite_values() == []


def test_nan_and_infinities(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json(vector("NaN", "+Inf", "-Inf"))
    values = [s.value for s in client.query("x").series]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf
    assert client.query("x").finite_values() == [math.inf, -math.inf]


def test_several_series_keep_their_labels(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json(vector("1", "2", labels={"destination_workload": "w"}))
    series = client.query("x").series
    assert [(s.labels["idx"], s.value) for s in series] == [("0", 1.0), ("1", 2.0)]


def test_query_whitespace_is_collapsed_and_time_and_timeout_are_sent(httpserver, client):
    httpserver.expect_request(QUERY, query_string={"query": "sum( rate(x[1m]) )", "time": "1700000000.000", "timeout": "1.8s"}).respond_with_json(vector("1"))
    assert client.query("sum(\n\t rate(x[1m])\n)", time=1700000000).finite_values() == [1.0]


def test_range_query(httpserver, client):
    body = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"a": "b"}, "values": [[100, "1"], [160, "NaN"], [220, "3"]]}]}}
    query = {"query": "x", "start": "100.000", "end": "220.000", "step": "60s", "timeout": "1.8s"}
    httpserver.expect_request("/api/v1/query_range", query_string=query).respond_with_json(body)
    series = client.query_range("x", 100, 220, 60).series[0]
    assert series.values[0] == (100.0, 1.0) and math.isnan(series.values[1][1]) and series.value == 3.0


def test_bad_query_is_a_query_error_with_prometheus_message(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json(
        {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected <by>"}, status=400)
    with pytest.raises(PrometheusQueryError) as info:
        client.query("sum(by)")
    assert "parse error: unexpected <by>" in str(info.value) and "sum(by)" in str(info.value)
    assert info.value.status == 400 and info.value.error_type == "bad_data"


def test_execution_error_422_is_a_query_error(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json(
        {"status": "error", "errorType": "execution", "error": "many-to-many matching not allowed"}, status=422)
    with pytest.raises(PrometheusQueryError, match="many-to-many"):
        client.query("a / b")


def test_503_is_unavailable_not_a_config_error(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_data("Service Unavailable", status=503)
    with pytest.raises(PrometheusUnavailable, match="HTTP 503: Service Unavailable"):
        client.query("up")


def test_error_json_with_5xx_reports_the_error(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json({"status": "error", "errorType": "internal", "error": "tsdb closed"}, status=500)
    with pytest.raises(PrometheusUnavailable, match="tsdb closed"):
        client.query("up")


def test_slow_response_times_out_as_unavailable(httpserver):
    def slow(_request):
        time.sleep(1.5)
        return Response(json.dumps(vector("1")), content_type="application/json")

    httpserver.expect_request(QUERY).respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(PrometheusUnavailable, match="did not answer within 0.5s"):
        PrometheusClient(httpserver.url_for("/"), timeout=0.5).query("up")
    assert time.monotonic() - started < 1.4


def test_connection_refused_is_unavailable():
    with pytest.raises(PrometheusUnavailable, match="cannot connect to Prometheus at http://127.0.0.1:9"):
        PrometheusClient("http://127.0.0.1:9", timeout=1).query("up")


def test_not_json_is_unavailable(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_data("<html>login</html>", content_type="text/html")
    with pytest.raises(PrometheusUnavailable, match="not a Prometheus API response"):
        client.query("up")


def test_401_and_404_are_configuration_errors(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_data("unauthorized", status=401)
    with pytest.raises(PrometheusConfigError, match="refused the credentials"):
        client.query("up")
    httpserver.clear()
    httpserver.expect_request(QUERY).respond_with_data("404 page not found", status=404)
    with pytest.raises(PrometheusConfigError, match="no Prometheus API"):
        client.query("up")


def test_bearer_token_and_extra_headers_are_sent(httpserver):
    httpserver.expect_request(QUERY, headers={"Authorization": "Bearer s3cret", "X-Scope-OrgID": "tenant-a"}).respond_with_json(vector("1"))
    client = PrometheusClient(httpserver.url_for("/"), token="s3cret", headers={"X-Scope-OrgID": "tenant-a"})
    assert client.query("up").finite_values() == [1.0]


def test_basic_auth_is_sent(httpserver):
    httpserver.expect_request(QUERY, headers={"Authorization": "Basic dXNlcjpwdw=="}).respond_with_json(vector("1"))
    assert PrometheusClient(httpserver.url_for("/"), username="user", password="pw").query("up").finite_values() == [1.0]


def test_path_prefix_is_kept(httpserver):
    httpserver.expect_request("/prometheus/api/v1/query").respond_with_json(vector("7"))
    assert PrometheusClient(httpserver.url_for("/prometheus/")).query("up").finite_values() == [7.0]


def test_url_and_token_fall_back_to_environment(httpserver):
    httpserver.expect_request(QUERY, headers={"Authorization": "Bearer from-env"}).respond_with_json(vector("1"))
    environ = {"PROMETHEUS_URL": httpserver.url_for("/"), "PROMETHEUS_TOKEN": "from-env"}
    assert resolve_connection({"prometheus_url": None}, environ)["prometheus_url"] == httpserver.url_for("/")
    assert client_from_params({"prometheus_url": None, "prometheus_token": None}, environ).query("up").finite_values() == [1.0]


def test_missing_url_is_a_configuration_error():
    with pytest.raises(PrometheusConfigError, match="PROMETHEUS_URL"):
        client_from_params({}, environ={})


def test_request_count(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json(vector("1"))
    client.query("a")
    client.query("b")
    assert client.request_count == 2


def test_malformed_result_is_unavailable_not_a_traceback(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}})
    with pytest.raises(PrometheusUnavailable, match="malformed result"):
        client.query("up")


def test_string_result_is_a_configuration_error(httpserver, client):
    httpserver.expect_request(QUERY).respond_with_json({"status": "success", "data": {"resultType": "string", "result": [1, "x"]}})
    with pytest.raises(PrometheusConfigError, match="returns a string"):
        client.query('"x"')


def test_connection_refused_is_short_and_names_no_query():
    from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import PrometheusClient, PrometheusUnavailable
    client = PrometheusClient("http://127.0.0.1:9", timeout=2)
    with pytest.raises(PrometheusUnavailable) as caught:
        client.query('sum(rate(istio_requests_total{destination_workload="web"}[1m]))')
    message = str(caught.value)
    assert message.startswith("cannot connect to Prometheus at http://127.0.0.1:9 (Connection refused)")
    assert "istio_requests_total" not in message and "Max retries" not in message
    assert len(message) < 200
