"""Flagger's release series in the text exposition format, and the push client against a real local HTTP server."""

from __future__ import annotations

import socket

import pytest
from werkzeug import Response

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.pushgateway import (
    CONTENT_TYPE,
    GAUGE,
    Family,
    PushOptions,
    Sample,
    exposition,
    grouping_path,
    histogram_samples,
    push,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.release_metrics import (
    canary_status,
    grouping_key,
    push_release_metrics,
    release_families,
)
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339

GROUP = "/metrics/job/progressive-delivery/namespace/test/name/podinfo"
NOW = 1_700_000_100.0


def samples(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` of every sample line."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines}


def progressing_state(**changes) -> st.CanaryState:
    state = st.CanaryState(phase=st.PROGRESSING, canary_weight=30, run_id="run-2", target="podinfo",
                           started_at=format_rfc3339(NOW - 42.0))
    state.history = [
        {"runId": "run-1", "metrics": [{"name": "request-success-rate", "value": 12.0}]},
        {"runId": "run-2", "iteration": 1, "metrics": [{"name": "request-success-rate", "value": 99.5},
                                                        {"name": "request-duration", "value": 250}]},
        {"runId": "run-2", "action": "start", "message": "a transition without metrics"},
    ]
    for key, value in changes.items():
        setattr(state, key, value)
    return state


def test_exposition_escapes_labels_and_help_and_leaves_empty_families_out():
    text = exposition([
        Family("x_total", GAUGE, "line one\nline two", [Sample({"a": 'say "hi"\\now\n'}, 1.5)]),
        Family("empty", GAUGE, "nothing", []),
    ])
    assert text == ('# HELP x_total line one\\nline two\n# TYPE x_total gauge\n'
                    'x_total{a="say \\"hi\\"\\\\now\\n"} 1.5\n')


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    text = exposition([Family("d_seconds", "histogram", "d", histogram_samples({"name": "p"}, [0.3, 7.0], (0.5, 10)))])
    assert samples(text) == {'d_seconds_bucket{name="p",le="0.5"}': 1, 'd_seconds_bucket{name="p",le="10"}': 2,
                             'd_seconds_bucket{name="p",le="+Inf"}': 2, 'd_seconds_sum{name="p"}': 7.3,
                             'd_seconds_count{name="p"}': 2}


def test_grouping_path_encodes_values_that_cannot_be_path_segments():
    assert grouping_path(grouping_key("test", "podinfo")) == GROUP
    assert grouping_path({"job": "j", "name": "a/b", "x": ""}) == "/metrics/job/j/name@base64/YS9i/x@base64/="
    with pytest.raises(ValueError):
        grouping_path({"name": "a"})


@pytest.mark.parametrize("phase, status", [(st.PROGRESSING, 0), (st.FAILED, 2), (st.SUCCEEDED, 1),
                                           (st.INITIALIZED, 1), (st.WAITING_PROMOTION, 1)])
def test_status_has_flaggers_meaning(phase, status):
    assert canary_status(phase) == status


def test_release_series_have_flaggers_names_labels_and_values():
    values = samples(exposition(release_families(progressing_state(), "test", "podinfo", NOW)))
    assert values['flagger_canary_status{name="podinfo",namespace="test"}'] == 0
    assert values['flagger_canary_weight{workload="podinfo-primary",namespace="test"}'] == 70
    assert values['flagger_canary_weight{workload="podinfo",namespace="test"}'] == 30
    assert values['flagger_canary_total{namespace="test"}'] == 1
    # The latest analysis of this run that measured something, not the previous run's.
    assert values['flagger_canary_metric_analysis{name="podinfo",namespace="test",metric="request-success-rate"}'] == 99.5
    assert values['flagger_canary_metric_analysis{name="podinfo",namespace="test",metric="request-duration"}'] == 250
    assert values['flagger_canary_duration_seconds_sum{name="podinfo",namespace="test"}'] == pytest.approx(42.0)
    assert values['flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="10"}'] == 0
    assert values['flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="+Inf"}'] == 1


def test_a_new_run_has_no_metric_values_before_its_first_analysis():
    state = progressing_state(run_id="run-3", started_at=None, phase=st.FAILED, canary_weight=0)
    state.history = state.history[:1]
    text = exposition(release_families(state, "test", "podinfo", NOW))
    assert "flagger_canary_metric_analysis" not in text and "flagger_canary_duration_seconds" not in text
    assert samples(text)['flagger_canary_status{name="podinfo",namespace="test"}'] == 2


def test_pushing_is_off_without_a_url():
    assert PushOptions.from_params({"pushgateway_url": ""}) is None
    assert PushOptions.from_params({}) is None
    assert push_release_metrics(None, progressing_state(), "test", "podinfo", NOW) is None


def test_a_push_replaces_the_canarys_group_with_put(httpserver):
    httpserver.expect_oneshot_request(GROUP, method="PUT", headers={"Content-Type": CONTENT_TYPE,
                                                                     "Authorization": "Bearer s3cret-token"}
                                      ).respond_with_data("", status=200)
    options = PushOptions.from_params({"pushgateway_url": httpserver.url_for("/") + "/", "pushgateway_token": "s3cret-token"})
    assert push_release_metrics(options, progressing_state(), "test", "podinfo", NOW) is None
    (request, _response), = httpserver.log
    body = request.get_data(as_text=True)
    assert '# TYPE flagger_canary_status gauge\nflagger_canary_status{name="podinfo",namespace="test"} 0\n' in body
    assert samples(body)['flagger_canary_weight{workload="podinfo",namespace="test"}'] == 30


def test_a_refused_push_is_a_warning_that_keeps_secrets_out(httpserver):
    httpserver.expect_request(GROUP, method="PUT").respond_with_response(
        Response("pushed metrics are invalid or inconsistent with existing metrics", status=400))
    url = httpserver.url_for("/").replace("://", "://user:hunter22@")
    warning = push(PushOptions(url=url, token="s3cret-token"), grouping_key("test", "podinfo"), [])
    assert warning.startswith("release metrics were not pushed to http://***@localhost:")
    assert "HTTP 400 (pushed metrics are invalid" in warning
    assert "hunter22" not in warning and "s3cret-token" not in warning


def test_an_unreachable_pushgateway_is_a_warning():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    warning = push(PushOptions(url="http://127.0.0.1:%d" % port, timeout=2), grouping_key("test", "podinfo"), [])
    assert warning == "release metrics were not pushed to http://127.0.0.1:%d: Connection refused" % port
