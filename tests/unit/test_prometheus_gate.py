"""The gate's modes and the module, against a local HTTP server that answers like Prometheus per query."""

from __future__ import annotations

import json
import math

import pytest
from werkzeug import Response

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import Gate, GateConfigError, parse_time, run_mode
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import RenderContext, resolve_metric
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import PrometheusClient
from tests.support.modules import run_module

SUCCESS = {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "1m"}


def vector(*values, labels=None):
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": dict(labels or {}, i=str(i)), "value": [1700000000, str(v)]} for i, v in enumerate(values)]}}


class FakePrometheus:
    """Answers each query by the first rule whose fragments all occur in it; records every query."""

    def __init__(self, httpserver):
        self.rules: list[tuple[tuple[str, ...], object]] = []
        self.queries: list[str] = []
        httpserver.expect_request("/api/v1/query").respond_with_handler(self._handle)
        httpserver.expect_request("/api/v1/query_range").respond_with_handler(self._handle)
        self.url = httpserver.url_for("/")

    def on(self, *fragments, answer):
        self.rules.append((fragments, answer))
        return self

    def _handle(self, request):
        query = request.args["query"]
        self.queries.append(query)
        for fragments, answer in self.rules:
            if all(f in query for f in fragments):
                if callable(answer) and not isinstance(answer, Response):
                    answer = answer()
                if isinstance(answer, Response):
                    return answer
                return Response(json.dumps(answer), content_type="application/json")
        return Response(json.dumps(vector()), content_type="application/json")


@pytest.fixture
def prom(httpserver):
    return FakePrometheus(httpserver)


def gate(prom, *metrics, target="podinfo", templates=None):
    specs = [resolve_metric(m, templates) for m in metrics]
    return Gate(PrometheusClient(prom.url, timeout=2), specs, RenderContext("test", target))


def test_once_passes_healthy_workload(prom):
    prom.on("istio_requests_total", answer=vector(99.95)).on("histogram_quantile", answer=vector(42.5))
    result = gate(prom, SUCCESS, DURATION).once()
    assert result["passed"] is True and result["verdict"] == "pass"
    assert [(m["name"], m["value"], m["result"]) for m in result["metrics"]] == [
        ("request-success-rate", 99.95, "pass"), ("request-duration", 42.5, "pass")]
    assert 'destination_workload=~"podinfo"' in result["metrics"][0]["query"]


def test_once_fails_on_breach_with_reason(prom):
    prom.on("istio_requests_total", answer=vector(80))
    result = gate(prom, SUCCESS).once()
    assert result["passed"] is False and result["metrics"][0]["result"] == "fail"
    assert "80 is below the minimum 99" in result["metrics"][0]["reason"]


def test_worst_of_several_series_decides(prom):
    prom.on("x_total", answer=vector(99.9, 97, 99.8))
    result = gate(prom, {"name": "custom", "query": "sum by (pod) (x_total)", "thresholdRange": {"min": 99}}).once()
    metric = result["metrics"][0]
    assert (metric["value"], metric["series"], metric["result"]) == (97.0, 3, "fail")
    assert "worst of 3 series" in metric["reason"]


def test_nan_with_existing_series_is_no_traffic(prom):
    prom.on("count(istio_requests_total", "destination_workload=~", answer=vector(4))
    prom.on("increase(istio_requests_total", answer=vector(0))
    prom.on("sum( rate( istio_requests_total", answer=vector("NaN"))
    metric = gate(prom, SUCCESS).once()["metrics"][0]
    assert metric["result"] == "no_data" and metric["ok"] is False
    assert "NaN" in metric["reason"] and "no traffic" in metric["reason"] and "on_no_data: fail" in metric["reason"]


def test_empty_without_workload_telemetry_suggests_missing_sidecar(prom):
    prom.on('count(istio_requests_total{reporter="destination",destination_workload_namespace="test"})', answer=vector(12))
    metric = gate(prom, SUCCESS).once()["metrics"][0]
    assert metric["result"] == "no_data"
    assert "no Istio telemetry for workload test/podinfo" in metric["reason"] and "sidecar missing?" in metric["reason"]


def test_empty_without_any_istio_series(prom):
    metric = gate(prom, SUCCESS).once()["metrics"][0]
    assert "no istio_requests_total series at all" in metric["reason"]


@pytest.mark.parametrize("on_no_data, result, ok", [("pass", "no_data", True), ("skip", "skipped", True), ("fail", "no_data", False)])
def test_on_no_data(prom, on_no_data, result, ok):
    outcome = gate(prom, dict(SUCCESS, on_no_data=on_no_data)).once()
    assert (outcome["metrics"][0]["result"], outcome["metrics"][0]["ok"], outcome["passed"]) == (result, ok, ok)


def test_bad_query_is_a_configuration_error(prom):
    prom.on("sum(by", answer=Response(json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}), status=400))
    with pytest.raises(GateConfigError, match="metric 'broken'.*parse error"):
        gate(prom, {"name": "broken", "query": "sum(by"}).once()


def test_missing_template_variable_is_a_configuration_error(prom):
    with pytest.raises(GateConfigError, match="variables.code"):
        gate(prom, {"name": "m", "query": 'x{c="{{ variables.code }}"}'}).once()
    assert prom.queries == []


def test_prometheus_5xx_is_a_failed_check_not_a_pass(prom):
    prom.on("istio", answer=Response("overloaded", status=503))
    result = gate(prom, SUCCESS).once()
    assert result["passed"] is False and result["metrics"][0]["result"] == "error"
    assert "HTTP 503: overloaded" in result["metrics"][0]["reason"]


def test_watch_returns_at_the_first_breaching_poll(prom):
    answers = iter([99.9, 99.7, 90.0, 99.9])
    prom.on("istio_requests_total", answer=lambda: vector(next(answers)))
    result = gate(prom, SUCCESS).watch(poll=0.05, duration=30)
    assert result["breached"] is True and result["passed"] is False
    assert [s["metrics"][0]["value"] for s in result["samples"]] == [99.9, 99.7, 90.0]
    assert [s["passed"] for s in result["samples"]] == [True, True, False]
    gaps = [b["timestamp"] - a["timestamp"] for a, b in zip(result["samples"], result["samples"][1:])]
    assert all(0.04 <= gap < 1.0 for gap in gaps)


def test_watch_without_breach_runs_for_duration_and_last_sample_decides(prom):
    answers = iter([None, 99.9, 99.9, 99.9, 99.9, 99.9, 99.9, 99.9])
    prom.on("istio_requests_total", answer=lambda: vector(*([] if (v := next(answers)) is None else [v])))
    result = gate(prom, dict(SUCCESS, on_no_data="fail")).watch(poll=0.1, duration=0.3)
    assert result["breached"] is False and result["passed"] is True
    assert result["samples"][0]["metrics"][0]["result"] == "no_data"
    assert result["samples"][-1]["elapsed"] >= 0.3
    assert 4 <= len(result["samples"]) <= 5


def counts(workload, requests, errors):
    return [
        (("increase(istio_requests_total", 'destination_workload=~"%s"' % workload, 'response_code=~"5.*"'), vector(errors)),
        (("increase(istio_requests_total", 'destination_workload=~"%s"' % workload), vector(requests)),
    ]


def serve_counts(prom, canary, primary):
    for fragments, answer in counts("podinfo-primary", *primary) + counts("podinfo", *canary):
        prom.on(*fragments, answer=answer)
    prom.on('destination_workload=~"podinfo-primary"', answer=vector(round(100 * (1 - primary[1] / primary[0]), 3)))
    prom.on('destination_workload=~"podinfo"', answer=vector(round(100 * (1 - canary[1] / canary[0]), 3)))


def test_compare_passes_service_wide_incident(prom):
    serve_counts(prom, canary=(1200, 240), primary=(10800, 2200))
    result = gate(prom, SUCCESS).compare("podinfo-primary", 0.95, 50, 1.2)
    metric = result["metrics"][0]
    assert metric["value"] == 80.0 and metric["result"] == "pass" and result["passed"] is True
    assert result["comparison"]["metrics"][0]["canary_requests"] == 1200
    assert result["comparison"]["metrics"][0]["primary_errors"] == 2200


def test_compare_fails_three_times_worse_canary_inside_absolute_threshold(prom):
    serve_counts(prom, canary=(3000, 24), primary=(27000, 72))  # 0.8 % vs 0.27 %: both above min 99 % success
    result = gate(prom, dict(SUCCESS, thresholdRange={"min": 99})).compare("podinfo-primary", 0.95, 50, 1.2)
    assert result["metrics"][0]["value"] == 99.2
    assert result["metrics"][0]["result"] == "fail" and result["verdict"] == "fail"
    assert "higher than primary's" in result["metrics"][0]["reason"]


def test_compare_with_too_little_traffic_is_inconclusive(prom):
    serve_counts(prom, canary=(10, 5), primary=(10800, 20))
    result = gate(prom, SUCCESS).compare("podinfo-primary", 0.95, 50, 1.2)
    assert result["verdict"] == "inconclusive" and result["passed"] is False


def test_range_reports_first_breach(prom):
    body = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[1000, "99.9"], [1060, "99.5"], [1120, "95"], [1180, "NaN"], [1240, "96"]]}]}}
    prom.on("istio_requests_total", answer=body)
    result = gate(prom, SUCCESS).range(1000, 1240, 60)
    metric = result["metrics"][0]
    assert (metric["result"], metric["breaches"], metric["steps"], metric["value"]) == ("fail", 2, 4, 95.0)
    assert metric["first_breach_at"] == "1970-01-01T00:18:40.000Z"
    assert [s["passed"] for s in result["samples"]] == [True, True, False, False]


def test_run_mode_at_sends_the_time_to_prometheus(prom, httpserver):
    prom.on("istio_requests_total", answer=vector(99.9))
    result = run_mode(gate(prom, SUCCESS), {"mode": "at", "time": "2024-05-07T14:00:00Z"})
    assert result["evaluated_at"] == "2024-05-07T14:00:00.000Z"
    assert httpserver.log[-1][0].args["time"] == "%.3f" % parse_time("2024-05-07T14:00:00Z", 0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "at"}, "needs the option 'time'"),
        ({"mode": "range"}, "needs the option 'start'"),
        ({"mode": "range", "start": "-1m", "end": "-2m"}, "end after start"),
        ({"mode": "range", "start": "-1d", "step": "1s"}, "Prometheus allows 11000"),
        ({"mode": "compare", "confidence": 1.5}, "confidence"),
        ({"mode": "compare", "latency_tolerance": 0.8}, "latency_tolerance"),
        ({"mode": "watch", "poll": "soon"}, "^poll 'soon' is not a number of seconds"),
        ({"mode": "watch", "poll": "0s"}, "^poll must be positive"),
        ({"mode": "watch", "duration": "-5m"}, "^duration '-5m' is not a number of seconds"),
        ({"mode": "range", "start": "-1h", "step": "1.5m"}, "^step '1.5m' is not a number of seconds"),
    ],
)
def test_run_mode_rejects_bad_options_before_querying(prom, options, message):
    with pytest.raises(GateConfigError, match=message):
        run_mode(gate(prom, SUCCESS), options)
    assert prom.queries == []


def test_parse_time_forms():
    assert parse_time("now-1h", 10000.0) == 6400.0
    assert parse_time("-30m", 10000.0) == 8200.0
    assert parse_time(1700000000, 0) == 1700000000.0
    assert parse_time("1970-01-01T00:01:00Z", 0) == 60.0
    with pytest.raises(GateConfigError, match="not understood"):
        parse_time("last tuesday", 0)
    # Offsets use Prometheus units, days included, where Go durations stop at hours.
    assert parse_time("now-2d", 200000.0) == 200000.0 - 172800


# -- the module, run as Ansible runs it ----------------------------------------------------

def module_args(prom, **extra):
    return dict({"prometheus_url": prom.url, "namespace": "test", "target": "podinfo", "metrics": [SUCCESS]}, **extra)


def test_module_returns_failed_gate_without_failing_the_task(prom):
    prom.on("istio_requests_total", answer=vector(90))
    result = run_module("prometheus_gate", module_args(prom))
    assert result.get("failed") is not True and result["passed"] is False and result["changed"] is False
    assert result["metrics"][0]["result"] == "fail" and "metric gate failed" in result["msg"]


def test_module_fail_on_breach_fails_the_task(prom):
    prom.on("istio_requests_total", answer=vector(90))
    result = run_module("prometheus_gate", module_args(prom, fail_on_breach=True))
    assert result["failed"] is True and "below the minimum 99" in result["msg"]


def test_module_bad_query_fails_at_once_as_configuration_error(prom):
    prom.on("oops", answer=Response(json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}), status=400))
    result = run_module("prometheus_gate", module_args(prom, metrics=[{"name": "x", "query": "oops("}]))
    assert result["failed"] is True and result["config_error"] is True
    assert "configuration error" in result["msg"] and "parse error at char 5" in result["msg"]
    assert "Traceback" not in result["_stderr"]


def test_module_unreachable_prometheus_is_a_failed_check_without_traceback():
    result = run_module("prometheus_gate", {"prometheus_url": "http://127.0.0.1:9", "namespace": "n", "target": "t",
                                            "metrics": [SUCCESS]}, check_mode=True)
    assert result.get("failed") is not True and result["passed"] is False
    assert result["metrics"][0]["result"] == "error" and "cannot connect" in result["metrics"][0]["reason"]
    assert "Traceback" not in result["_stderr"]


def test_module_reads_url_from_environment_and_hides_token(prom):
    prom.on("istio_requests_total", answer=vector(99.9))
    result = run_module("prometheus_gate", {"namespace": "test", "target": "podinfo", "metrics": [SUCCESS], "prometheus_headers": {"X-Token": "hush"}},
                        env={"PROMETHEUS_URL": prom.url})
    assert result["passed"] is True and math.isclose(result["metrics"][0]["value"], 99.9)
    assert "hush" not in json.dumps(result)


@pytest.mark.parametrize("zero", [0, "0", "0s", "0m", 0.0])
def test_watch_duration_zero_in_any_unit_is_one_evaluation(zero):
    from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import _non_negative_seconds
    assert _non_negative_seconds(zero, "duration") == 0.0


@pytest.mark.parametrize("bad", ["-1", "soon", -5])
def test_watch_duration_rejects_negative_and_words(bad):
    from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import GateConfigError, _non_negative_seconds
    with pytest.raises(GateConfigError, match="duration"):
        _non_negative_seconds(bad, "duration")
