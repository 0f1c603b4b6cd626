"""One interval of sequential analysis against a real local HTTP server answering as Prometheus."""

from __future__ import annotations

import time

import pytest
from werkzeug import Request, Response

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import Gate
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import PrometheusClient
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_gate import SequentialGate
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_judge import SequentialSettings
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import (
    MetricSpec,
    RenderContext,
    ThresholdRange,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import FAIL, INCONCLUSIVE, PASS
from tests.support.modules import run_module
from tests.unit.test_release_counts import (  # pylint: disable=unused-import
    NAMESPACE,
    PRIMARY_NAME,
    QUERY,
    T0,
    TARGET,
    FakePrometheus,
    request_series,
)

SUCCESS = MetricSpec("request-success-rate", "", "builtin:request-success-rate", "1m", ThresholdRange(min=99))


class HistoryPrometheus(FakePrometheus):
    """Answers a query at a past time with the series as they were then, as Prometheus does."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[tuple[float, list]] = []

    def handle(self, request: Request) -> Response:
        at = float(request.args.get("time", "0"))
        earlier = [series for when, series in self.history if when <= at + 1e-6]
        self.requests = earlier[-1] if earlier else []
        return super().handle(request)


class Traffic:
    """The counters the fake Prometheus serves, advanced by the gate's own sleeps: time passes only when it waits."""

    def __init__(self, prometheus: HistoryPrometheus, canary_rps: int, canary_errors_per_s: int, primary_rps: int = 50):
        self.prometheus = prometheus
        self.now = T0
        self.canary_rps, self.canary_errors, self.primary_rps = canary_rps, canary_errors_per_s, primary_rps
        self.counts = {"ok": 0, "5xx": 0, "primary": 0}
        self.publish()

    def publish(self) -> None:
        series = [request_series(TARGET, "200", self.counts["ok"]), request_series(PRIMARY_NAME, "200", self.counts["primary"])]
        if self.counts["5xx"]:
            series.append(request_series(TARGET, "503", self.counts["5xx"]))
        self.prometheus.history.append((self.now, series))

    def sleep(self, seconds: float) -> None:
        whole = int(round(seconds))
        self.now += seconds
        self.counts["ok"] += whole * (self.canary_rps - self.canary_errors)
        self.counts["5xx"] += whole * self.canary_errors
        self.counts["primary"] += whole * self.primary_rps
        self.publish()


@pytest.fixture
def prometheus(httpserver):
    fake = HistoryPrometheus()
    httpserver.expect_request(QUERY).respond_with_handler(fake.handle)
    return fake


def sequential_gate(httpserver, traffic: Traffic, state=None, specs=(SUCCESS,), **settings) -> SequentialGate:
    client = PrometheusClient(httpserver.url_for("/"), timeout=2)
    gate = Gate(client, list(specs), RenderContext(NAMESPACE, TARGET), clock=lambda: traffic.now, sleep=traffic.sleep)
    return SequentialGate(gate, PRIMARY_NAME, SequentialSettings(**settings), interval=10.0, state=state)


def test_a_failing_canary_stops_the_interval_at_the_crossing(httpserver, prometheus):
    traffic = Traffic(prometheus, canary_rps=5, canary_errors_per_s=2)
    result = sequential_gate(httpserver, traffic).watch(poll=1.0, duration=10.0)
    assert result["breached"] and not result["passed"]
    assert len(result["samples"]) < 11, "the interval went on after the crossing"
    metric = result["metrics"][0]
    assert metric["result"] == FAIL and "crossed its boundary" in metric["reason"]
    assert {v["test"] for v in metric["sequential"]} == {"rate", "ratio"}
    assert {p["test"] for p in result["evidence"]} == {"rate", "ratio"} and all("time" in p for p in result["evidence"])


def test_a_good_canary_passes_the_interval_and_the_next_task_goes_on_from_its_counts(httpserver, prometheus):
    traffic = Traffic(prometheus, canary_rps=5, canary_errors_per_s=0)
    first = sequential_gate(httpserver, traffic)
    result = first.watch(poll=1.0, duration=10.0)
    assert result["passed"] and result["metrics"][0]["result"] == PASS
    assert "no regression found after 50 canary requests (50 this interval)" in result["metrics"][0]["reason"]
    state = first.to_state()
    assert state["traffic_since"] == T0
    second = sequential_gate(httpserver, traffic, state=state).watch(poll=1.0, duration=10.0)
    # Counted from the release's start, not from the second task's: 100 requests, 50 of them in its interval.
    assert "after 100 canary requests (50 this interval)" in second["metrics"][0]["reason"]


def test_counts_start_when_the_canary_first_took_traffic(httpserver, prometheus):
    traffic = Traffic(prometheus, canary_rps=5, canary_errors_per_s=0)
    traffic.sleep(4)  # the canary served 20 requests before its first analysis began
    result = sequential_gate(httpserver, traffic, state={"traffic_since": T0}).watch(poll=1.0, duration=2.0)
    # The requests served before the first analysis count in its first poll.
    assert "after 30 canary requests (30 this interval)" in result["metrics"][0]["reason"]


def test_too_few_requests_count_as_the_metrics_no_data_rule_says(httpserver, prometheus):
    traffic = Traffic(prometheus, canary_rps=1, canary_errors_per_s=0)
    result = sequential_gate(httpserver, traffic, min_requests=10).watch(poll=1.0, duration=3.0)
    metric = result["metrics"][0]
    assert metric["result"] == INCONCLUSIVE and metric["ok"] is False
    assert "3 canary requests this interval, 10 needed" in metric["reason"] and "(on_no_data: fail)" in metric["reason"]
    lenient = MetricSpec(SUCCESS.name, "", SUCCESS.source, "1m", ThresholdRange(min=99), on_no_data="pass")
    assert sequential_gate(httpserver, traffic, specs=(lenient,), min_requests=10).watch(1.0, 3.0)["metrics"][0]["ok"]


def test_other_metrics_are_judged_by_their_threshold_alongside(httpserver, prometheus):
    traffic = Traffic(prometheus, canary_rps=5, canary_errors_per_s=0)
    custom = MetricSpec("canary-requests", "sum(istio_requests_total)", "query", "1m", ThresholdRange(max=1))
    gate = sequential_gate(httpserver, traffic, specs=(SUCCESS, custom))
    assert [s.name for s in gate.others] == ["canary-requests"]
    result = gate.watch(poll=1.0, duration=2.0)
    assert [m["name"] for m in result["metrics"]] == ["request-success-rate", "canary-requests"]
    assert "sequential" not in result["metrics"][1]


def test_prometheus_down_at_the_last_poll_is_an_error_and_loses_no_request(httpserver, prometheus):
    traffic = Traffic(prometheus, canary_rps=5, canary_errors_per_s=0)
    gate = sequential_gate(httpserver, traffic)
    gate.watch(poll=1.0, duration=2.0)
    prometheus.fail_durations = True
    failed = gate.watch(poll=1.0, duration=2.0)
    assert failed["metrics"][0]["result"] == "error" and not failed["metrics"][0]["ok"]
    prometheus.fail_durations = False
    recovered = gate.watch(poll=1.0, duration=2.0)
    assert "after 30 canary requests" in recovered["metrics"][0]["reason"]


def module_args(httpserver, **options) -> dict:
    args = {"prometheus_url": httpserver.url_for("/"), "namespace": NAMESPACE, "target": TARGET, "mode": "sequential",
            "poll": 0.2, "duration": 0.5, "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}
    args.update(options)
    return args


def test_the_module_fails_a_canary_that_erred_since_its_start_and_returns_the_state_to_go_on(httpserver, prometheus):
    started = time.time() - 10
    prometheus.history = [(started, [request_series(TARGET, "200", 0), request_series(PRIMARY_NAME, "200", 0)]),
                          (started + 5, [request_series(TARGET, "200", 60), request_series(TARGET, "503", 40),
                                         request_series(PRIMARY_NAME, "200", 900)])]
    result = run_module("prometheus_gate", module_args(httpserver, start=started))
    assert result["passed"] is False and result["breached"] is True, result
    assert result["metrics"][0]["result"] == FAIL
    assert "crossed its boundary" in result["msg"]
    assert result["sequential"]["traffic_since"] == pytest.approx(started)
    assert {p["test"] for p in result["evidence"]} == {"rate", "ratio"}


def test_the_module_refuses_sequential_mode_without_a_builtin_it_can_test(httpserver, prometheus):
    custom = [{"name": "error-rate", "query": "sum(x)", "thresholdRange": {"max": 1}}]
    result = run_module("prometheus_gate", module_args(httpserver, metrics=custom))
    assert result.get("failed") and "none of the metrics is one of them" in result["msg"]
    refused = run_module("prometheus_gate", module_args(httpserver, sequential={"alpha": 0.9}))
    assert refused.get("failed") and "sequential: alpha must be above 0 and at most 0.5" in refused["msg"]
