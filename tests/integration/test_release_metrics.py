"""Flagger's release series, pushed to the lab's real Pushgateway by a real release and read back through PromQL."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from lab.testing import wait_for
from tests.support.releases import Release, short_manifest

pytestmark = pytest.mark.slow

ERROR_RATE = "lab.progressive.delivery/error-rate"


def query_range(lab, promql: str, start: float, end: float) -> list[tuple[float, float]]:
    """The one series of a range query, one point per 0.5 s (Prometheus scrapes the Pushgateway every second)."""
    params = urllib.parse.urlencode({"query": promql, "start": start, "end": end, "step": "0.5"})
    with urllib.request.urlopen(lab.prometheus_url + "/api/v1/query_range?" + params, timeout=10) as response:
        result = json.load(response)["data"]["result"]
    assert len(result) <= 1, result
    return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []


def changes(points: list[tuple[float, float]]) -> list[float]:
    """The values a series took, in order, each once per run of equal values."""
    values: list[float] = []
    for _, value in points:
        if not values or values[-1] != value:
            values.append(value)
    return values


def series(namespace: str, family: str, **labels: str) -> str:
    selector = ",".join('%s="%s"' % item for item in dict(labels, namespace=namespace, job="progressive-delivery").items())
    return "%s{%s}" % (family, selector)


def scraped(lab, promql: str, expected: float) -> None:
    """Wait until Prometheus has scraped the last push."""
    wait_for(lambda: lab.query_value(promql) == expected, timeout=15, interval=0.2,
             message="%s == %s in Prometheus" % (promql, expected))


def test_the_release_series_follow_each_step_then_the_outcome(lab, namespace, tmp_path):
    assert lab.pushgateway_url, "the lab records no pushgateway_url in lab.json"
    release = Release(lab, namespace, tmp_path, manifest=short_manifest(namespace))
    push = {"canary_pushgateway_url": lab.pushgateway_url}
    assert release.run(**push).returncode == 0
    status = series(namespace, "flagger_canary_status", name="app")
    canary_weight = series(namespace, "flagger_canary_weight", workload="app")
    primary_weight = series(namespace, "flagger_canary_weight", workload="app-primary")
    scraped(lab, status, 1)  # Initialized

    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    started = time.time()
    result = release.run(**push)
    assert result.returncode == 0, result.stdout[-4000:]
    scraped(lab, canary_weight, 0)
    scraped(lab, status, 1)
    ended = time.time() + 1
    # Every step of the analysis at its weight while running (status 0), then promoted and back to the primary.
    weights = query_range(lab, canary_weight, started, ended)
    assert changes(weights) == [0, 30, 60, 0], weights
    assert [changes(query_range(lab, primary_weight, started, ended))] == [[100, 70, 40, 100]]
    status_points = dict(query_range(lab, status, started, ended))
    assert {status_points[t] for t, w in weights if w == 30} == {0}
    assert changes(list(status_points.items()))[-1] == 1
    for name in ("request-success-rate", "request-duration"):
        assert lab.query_value(series(namespace, "flagger_canary_metric_analysis", name="app", metric=name)) is not None
    assert lab.query_value('sum by (namespace) (flagger_canary_total{namespace="%s"})' % namespace) == 1
    elapsed = lab.query_value(series(namespace, "flagger_canary_duration_seconds_sum", name="app"))
    assert 0 < elapsed <= ended - started

    # A failing revision: the analysis fails its checks, and the run's push replaces the last run's series.
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.2", annotations={ERROR_RATE: "0.5"})
    result = release.run(**push)
    assert result.returncode != 0, result.stdout[-4000:]
    scraped(lab, status, 2)
    scraped(lab, canary_weight, 0)
    assert lab.query_value(primary_weight) == 100
    # The series of this run's analyses only: the promoted run's duration is gone with its group.
    assert lab.query_value(series(namespace, "flagger_canary_duration_seconds_count", name="app")) == 1
    # The analysis that decided the rollback is the one the series shows: the success rate that missed its 99 %.
    success = series(namespace, "flagger_canary_metric_analysis", name="app", metric="request-success-rate")
    wait_for(lambda: (lambda value: value is not None and value < 99)(lab.query_value(success)), timeout=15,
             interval=0.2, message="the failing success rate of the rollback in Prometheus")
