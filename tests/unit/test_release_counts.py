"""Counts since the release's start, read from a real local HTTP server answering as Prometheus' /api/v1/query."""

from __future__ import annotations

import json
import math

import pytest
from werkzeug import Request, Response

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import (
    PrometheusClient,
    PrometheusUnavailable,
    Series,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.release_counts import (
    CANARY,
    PRIMARY,
    CounterBaseline,
    IstioCountQueries,
    ReleaseCounter,
    ReleaseCountsError,
)

QUERY = "/api/v1/query"
NAMESPACE = "test"
TARGET = "podinfo"
PRIMARY_NAME = "podinfo-primary"
SELECTOR = ('reporter="destination",destination_workload_namespace="test",'
            'destination_workload=~"podinfo|podinfo-primary"')
REQUESTS = "istio_requests_total{%s}" % SELECTOR
DURATIONS = "istio_request_duration_milliseconds_bucket{%s}" % SELECTOR
T0 = 1700000000.0


def request_series(workload: str, code: str, value: float, pod: str = "a") -> tuple[dict[str, str], float]:
    # A subset of Istio's labels plus the scrape's pod/instance: enough to make series that sum() would merge.
    return ({
        "reporter": "destination",
        "destination_workload": workload,
        "destination_workload_namespace": NAMESPACE,
        "source_workload": "loadtester",
        "response_code": code,
        "response_flags": "-",
        "pod": "%s-%s" % (workload, pod),
        "instance": "10.0.0.%d:15020" % (ord(pod[0]) % 250),
    }, value)


def bucket_series(workload: str, le: str, value: float, pod: str = "a") -> tuple[dict[str, str], float]:
    labels, _ = request_series(workload, "200", value, pod)
    return dict(labels, le=le), value


class FakePrometheus:
    """Answers the two counter queries from the series the test sets, as Prometheus shapes them.

    A plain selector's answer carries ``__name__``; last_over_time() drops it, as Prometheus does, so the
    tracker must name a series the same way in both answers.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], float]] = []
        self.durations: list[tuple[dict[str, str], float]] = []
        self.fail_durations = False

    def handle(self, request: Request) -> Response:
        query = request.args["query"]
        evaluated_at = float(request.args.get("time", "0"))
        if "istio_requests_total" in query:
            name, samples = "istio_requests_total", self.requests
        elif "istio_request_duration_milliseconds_bucket" in query:
            if self.fail_durations:
                return Response(json.dumps({"status": "error", "errorType": "unavailable", "error": "overloaded"}),
                                status=503, content_type="application/json")
            name, samples = "istio_request_duration_milliseconds_bucket", self.durations
        else:
            return Response(json.dumps({"status": "error", "errorType": "bad_data", "error": "unexpected query"}),
                            status=400, content_type="application/json")
        keep_name = not query.startswith("last_over_time(")
        result = [{"metric": dict(labels, __name__=name) if keep_name else dict(labels),
                   "value": [evaluated_at, format(value, "g")]} for labels, value in samples]
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def prometheus(httpserver):
    fake = FakePrometheus()
    httpserver.expect_request(QUERY).respond_with_handler(fake.handle)
    return fake


@pytest.fixture
def counter(httpserver, prometheus):
    client = PrometheusClient(httpserver.url_for("/"), timeout=2)
    return ReleaseCounter(client, NAMESPACE, TARGET, PRIMARY_NAME, clock=lambda: T0)


def sent_queries(httpserver) -> list[tuple[str, str]]:
    return [(request.args["query"], request.args.get("time")) for request, _ in httpserver.log]


def test_promql_sent_is_the_raw_counters_with_flaggers_selectors(httpserver, counter):
    counter.start(T0)
    counter.poll(T0 + 10)
    assert sent_queries(httpserver) == [
        ("last_over_time(%s[1h])" % REQUESTS, "1700000000.000"),
        ("last_over_time(%s[1h])" % DURATIONS, "1700000000.000"),
        (REQUESTS, "1700000010.000"),
        (DURATIONS, "1700000010.000"),
    ]
    for query, _ in sent_queries(httpserver):
        assert "sum" not in query and "rate(" not in query and "increase(" not in query


def test_baseline_is_subtracted_per_series(prometheus, counter):
    prometheus.requests = [request_series(TARGET, "200", 7), request_series(PRIMARY_NAME, "200", 5000),
                           request_series(PRIMARY_NAME, "503", 40)]
    counter.start()
    prometheus.requests = [request_series(TARGET, "200", 19), request_series(PRIMARY_NAME, "200", 5090),
                           request_series(PRIMARY_NAME, "503", 42)]
    counts = counter.poll(T0 + 15)
    assert (counts.totals[CANARY].requests, counts.totals[CANARY].errors) == (12, 0)
    assert (counts.totals[PRIMARY].requests, counts.totals[PRIMARY].errors) == (92, 2)
    assert counts.time == T0 + 15 and counts.started_at == T0
    assert counts.new_series == 0 and counts.resets == 0


def test_a_canarys_first_5xx_series_counts_from_zero(prometheus, counter):
    # The case rate()/increase() miss: the 503 series did not exist at the start, its first sample is 3 errors.
    prometheus.requests = [request_series(TARGET, "200", 10), request_series(PRIMARY_NAME, "200", 1000)]
    counter.start(T0)
    prometheus.requests = [request_series(TARGET, "200", 17), request_series(TARGET, "503", 3),
                           request_series(PRIMARY_NAME, "200", 1100)]
    counts = counter.poll(T0 + 10)
    assert (counts.totals[CANARY].requests, counts.totals[CANARY].errors) == (10, 3)
    assert (counts.increments[CANARY].requests, counts.increments[CANARY].errors) == (10, 3)
    assert counts.totals[PRIMARY].requests == 100
    assert counts.new_series == 1


def test_a_canary_with_no_series_at_the_start_counts_everything(prometheus, counter):
    prometheus.requests = [request_series(PRIMARY_NAME, "200", 1000)]
    counter.start(T0)
    prometheus.requests = [request_series(TARGET, "200", 4), request_series(TARGET, "500", 1, pod="b"),
                           request_series(PRIMARY_NAME, "200", 1000)]
    counts = counter.poll(T0 + 5)
    assert (counts.totals[CANARY].requests, counts.totals[CANARY].errors) == (5, 1)
    assert counts.totals[PRIMARY].requests == 0


def test_a_counter_reset_counts_the_new_value_as_new(prometheus, counter):
    prometheus.requests = [request_series(TARGET, "200", 100)]
    counter.start(T0)
    prometheus.requests = [request_series(TARGET, "200", 130)]
    assert counter.poll(T0 + 10).totals[CANARY].requests == 30
    # The sidecar restarted: the same series starts again from zero and has counted 8 since.
    prometheus.requests = [request_series(TARGET, "200", 8)]
    counts = counter.poll(T0 + 20)
    assert counts.increments[CANARY].requests == 8
    assert counts.totals[CANARY].requests == 38
    assert counts.resets == 1
    prometheus.requests = [request_series(TARGET, "200", 20)]
    assert counter.poll(T0 + 30).totals[CANARY].requests == 50


def test_a_vanished_series_keeps_what_it_counted(prometheus, counter):
    prometheus.requests = [request_series(TARGET, "200", 0, pod="a"), request_series(TARGET, "200", 0, pod="b")]
    counter.start(T0)
    prometheus.requests = [request_series(TARGET, "200", 50, pod="a"), request_series(TARGET, "503", 5, pod="a"),
                           request_series(TARGET, "200", 60, pod="b")]
    assert counter.poll(T0 + 10).totals[CANARY].requests == 115
    # Pod a is gone. A sum over pods would drop from 115 to 61 here and look like a reset.
    prometheus.requests = [request_series(TARGET, "200", 61, pod="b")]
    counts = counter.poll(T0 + 20)
    assert (counts.totals[CANARY].requests, counts.totals[CANARY].errors) == (116, 5)
    assert counts.increments[CANARY].requests == 1 and counts.resets == 0


def test_increments_are_per_poll_and_add_up_to_the_totals(prometheus, counter):
    prometheus.requests = [request_series(TARGET, "200", 0), request_series(PRIMARY_NAME, "200", 300)]
    counter.start(T0)
    steps = [(10, 0, 320), (25, 2, 350), (25, 2, 350), (40, 9, 410)]
    seen = []
    for index, (ok, errors, primary) in enumerate(steps, start=1):
        prometheus.requests = [request_series(TARGET, "200", ok), request_series(PRIMARY_NAME, "200", primary)]
        if errors:
            prometheus.requests.append(request_series(TARGET, "503", errors))
        counts = counter.poll(T0 + 10 * index)
        step = counts.increments
        seen.append((step[CANARY].requests, step[CANARY].errors, step[PRIMARY].requests))
    assert seen == [(10, 0, 20), (17, 2, 30), (0, 0, 0), (22, 7, 60)]
    assert (counts.totals[CANARY].requests, counts.totals[CANARY].errors) == (49, 9)
    assert counts.totals[PRIMARY].requests == 110


def test_latency_buckets_per_version(prometheus, counter):
    prometheus.durations = [bucket_series(TARGET, "10", 1), bucket_series(TARGET, "+Inf", 2),
                            bucket_series(PRIMARY_NAME, "10", 90), bucket_series(PRIMARY_NAME, "+Inf", 100)]
    counter.start(T0)
    prometheus.durations = [bucket_series(TARGET, "10", 4), bucket_series(TARGET, "+Inf", 12),
                            bucket_series(TARGET, "10", 3, pod="b"), bucket_series(TARGET, "+Inf", 3, pod="b"),
                            bucket_series(PRIMARY_NAME, "10", 180), bucket_series(PRIMARY_NAME, "+Inf", 200)]
    counts = counter.poll(T0 + 10)
    assert counts.totals[CANARY].buckets == {10.0: 6, math.inf: 13}
    assert counts.totals[PRIMARY].buckets == {10.0: 90, math.inf: 100}
    assert counts.as_dict()["totals"][CANARY]["buckets"] == {"10": 6, "+Inf": 13}


def test_a_failed_query_leaves_the_counts_where_they_were(prometheus, counter):
    prometheus.requests = [request_series(TARGET, "200", 0)]
    counter.start(T0)
    prometheus.requests = [request_series(TARGET, "200", 10)]
    prometheus.fail_durations = True
    with pytest.raises(PrometheusUnavailable):
        counter.poll(T0 + 10)
    prometheus.fail_durations = False
    prometheus.requests = [request_series(TARGET, "200", 15)]
    counts = counter.poll(T0 + 20)
    assert counts.increments[CANARY].requests == 15
    assert counts.totals[CANARY].requests == 15


def test_state_carries_the_counts_to_the_next_process(httpserver, prometheus, counter):
    prometheus.requests = [request_series(TARGET, "200", 100)]
    counter.start(T0)
    prometheus.requests = [request_series(TARGET, "200", 110), request_series(TARGET, "503", 1)]
    counter.poll(T0 + 10)
    state = json.loads(json.dumps(counter.to_state()))

    following = ReleaseCounter(PrometheusClient(httpserver.url_for("/"), timeout=2), NAMESPACE, TARGET, PRIMARY_NAME)
    following.restore(state)
    prometheus.requests = [request_series(TARGET, "200", 4), request_series(TARGET, "503", 3)]
    counts = following.poll(T0 + 20)
    assert (counts.totals[CANARY].requests, counts.totals[CANARY].errors) == (17, 3)
    assert (counts.increments[CANARY].requests, counts.increments[CANARY].errors) == (6, 2)
    assert counts.started_at == T0 and counts.resets == 1 and counts.new_series == 1


def test_poll_before_start_and_time_going_back_are_refused(prometheus, counter):
    with pytest.raises(ReleaseCountsError, match="before start"):
        counter.poll(T0)
    counter.start(T0)
    counter.poll(T0 + 10)
    with pytest.raises(ReleaseCountsError, match="before the previous poll"):
        counter.poll(T0 + 5)


def test_other_workloads_are_not_counted(prometheus, counter):
    counter.start(T0)
    prometheus.requests = [request_series("podinfo-canary-old", "200", 50), request_series(TARGET, "200", 1)]
    counts = counter.poll(T0 + 10)
    assert counts.totals[CANARY].requests == 1 and counts.totals[PRIMARY].requests == 0


def test_workload_names_are_regex_literals_in_the_selector():
    queries = IstioCountQueries("shop", "web.v2", "web.v2-primary")
    assert queries.requests == ('istio_requests_total{reporter="destination",destination_workload_namespace="shop",'
                                'destination_workload=~"web\\\\.v2|web\\\\.v2-primary"}')
    assert queries.version_of({"destination_workload": "web.v2"}) == CANARY
    assert queries.version_of({"destination_workload": "webxv2"}) is None


def test_counter_baseline_ignores_nan_and_the_metric_name():
    baseline = CounterBaseline()
    baseline.start([Series({"a": "1"}, 5.0), Series({"a": "2"}, math.nan)])
    increments = baseline.observe([Series({"__name__": "x", "a": "1"}, 9.0), Series({"a": "2"}, 4.0)])
    assert increments == {(("a", "1"),): 4.0, (("a", "2"),): 4.0}
    assert baseline.births == 1 and baseline.resets == 0
