"""Pure pieces behind the HTML report: reading a report, number and time formatting, chart scales."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.report.chart import (
    TimeScale,
    format_offset,
    nice_range,
    weight_points,
)
from ansible_collections.progressive.delivery.plugins.module_utils.report.model import (
    format_duration,
    format_value,
    load_report,
    parse_time,
    to_number,
)
from tests.unit.report_samples import failed_report, iso, succeeded_report

UTC = datetime.timezone.utc


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-03-14T09:30:05Z", datetime.datetime(2025, 3, 14, 9, 30, 5, tzinfo=UTC)),
    ("2025-03-14T09:30:05.250+00:00", datetime.datetime(2025, 3, 14, 9, 30, 5, 250000, tzinfo=UTC)),
    ("2025-03-14T11:30:05+02:00", datetime.datetime(2025, 3, 14, 9, 30, 5, tzinfo=UTC)),
    ("2025-03-14T09:30:05", datetime.datetime(2025, 3, 14, 9, 30, 5, tzinfo=UTC)),
    (1741944605, datetime.datetime(2025, 3, 14, 9, 30, 5, tzinfo=UTC)),
    ("soon", None),
    ("", None),
    (None, None),
    (True, None),
])
def test_parse_time(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    (99.5, 99.5), (3, 3.0), (" 12.5 ", 12.5), ("abc", None), (True, None), (None, None),
    (float("nan"), None), (float("inf"), None), ("1e999", None), ([1], None),
])
def test_to_number_keeps_only_finite_numbers(raw, expected):
    assert to_number(raw) == expected


@pytest.mark.parametrize(("value", "text"), [
    (500, "500"), (99.0, "99"), (99.65, "99.65"), (212.44, "212.4"), (0.00123, "0.00123"), (1.5, "1.5"), (-2.25, "-2.25"), (None, "–"),
])
def test_format_value(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (2.5, "2.5 s"), (28, "28 s"), (59.6, "60 s"), (95, "1 min 35 s"), (3725, "1 h 02 min 05 s"), (None, "–"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45, "45s"), (120, "2m"), (90, "1m30s"), (3900, "1h05m")])
def test_format_offset(seconds, text):
    assert format_offset(seconds) == text


@pytest.mark.parametrize("values", [[99.2, 99.9, 99], [0.0, 0.0], [500, 212, 230], [-3, 4], [71.5, 100, 99], [1e-4, 3e-4]])
def test_nice_range_covers_every_value_with_round_ticks_inside(values):
    low, high, ticks = nice_range(values)
    assert low < min(values) or min(values) == 0 == low
    assert high > max(values)
    assert 2 <= len(ticks) <= 8
    assert all(low - 1e-9 <= tick <= high + 1e-9 for tick in ticks)
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1


def test_nice_range_of_positive_values_does_not_go_negative():
    low, _, ticks = nice_range([0.5, 30])
    assert low == 0 and ticks[0] == 0


@pytest.mark.parametrize("span", [0, 3, 17, 28, 95, 600, 3700, 40000])
def test_time_scale_ticks_and_mapping(span):
    scale = TimeScale(span)
    ticks = scale.ticks()
    assert ticks[0] == 0 and len(ticks) <= 9
    assert ticks[-1] <= scale.span
    positions = [scale.x(tick) for tick in ticks]
    assert positions == sorted(positions)
    assert scale.x(-5) == scale.x(0) and scale.x(scale.span * 2) == scale.x(scale.span)


def test_load_report_measures_offsets_from_the_start():
    report = load_report(failed_report())
    assert report.name == "backend-service" and report.namespace == "prod"
    assert report.span == pytest.approx(17)
    assert report.events[0].offset == 0
    assert [event.offset for event in report.events] == sorted(event.offset for event in report.events)
    assert report.metric_names == ("request-success-rate", "request-duration")
    assert report.threshold_for("request-duration").maximum == 500
    assert sum(1 for event in report.events if event.failed) == 5


def test_threshold_falls_back_to_the_range_on_checks():
    data = {"timeline": [{"time": iso(1), "kind": "check", "metrics": [{"name": "latency-p99", "value": 3, "min": None, "max": 2}]}]}
    threshold = load_report(data).threshold_for("latency-p99")
    assert (threshold.minimum, threshold.maximum) == (None, 2)
    assert threshold.breached_by(3) and not threshold.breached_by(1.5)


def test_weight_points_follow_the_recorded_steps_and_end_at_the_final_weight():
    report = load_report(succeeded_report())
    points = weight_points(report)
    weights = [weight for _, weight in points]
    changes = [weight for previous, weight in zip([None] + weights, weights) if weight != previous]
    assert changes == [0, 10, 20, 30, 40, 50, 0]
    assert points[-1] == (report.span, 0)
    offsets = [offset for offset, _ in points]
    assert offsets == sorted(offsets)


def test_weight_points_use_sample_weights_between_events():
    data = {"started_at": iso(0), "samples": [{"time": iso(2), "metric": "m", "value": 1, "weight": 20},
                                              {"time": iso(4), "metric": "m", "value": 1, "weight": 40}]}
    assert weight_points(load_report(data)) == [(0.0, 0.0), (2.0, 20.0), (4.0, 40.0)]


def test_a_step_starts_at_its_first_sample_when_only_its_check_is_recorded():
    data = {"started_at": iso(0),
            "timeline": [{"time": iso(11), "kind": "check", "weight": 10}, {"time": iso(16), "kind": "check", "weight": 20}],
            "samples": [{"time": iso(t), "metric": "m", "value": 1, "weight": 10} for t in (7, 8, 9, 10)]
            + [{"time": iso(t), "metric": "m", "value": 1, "weight": 20} for t in (12, 13, 14, 15)]}
    steps = [(offset, weight) for (offset, weight), previous in zip(weight_points(load_report(data))[1:], weight_points(load_report(data)))
             if weight != previous[1]]
    assert steps == [(7.0, 10.0), (12.0, 20.0)]


def test_an_event_wins_over_a_sample_at_the_same_moment():
    data = {"started_at": iso(0), "timeline": [{"time": iso(5), "kind": "weight", "weight": 20}],
            "samples": [{"time": iso(5), "metric": "m", "value": 1, "weight": 10}]}
    assert weight_points(load_report(data))[-1] == (5.0, 20.0)


def test_rollback_without_weight_returns_traffic_to_the_primary():
    data = {"started_at": iso(0), "timeline": [{"time": iso(1), "kind": "weight", "weight": 30},
                                               {"time": iso(3), "kind": "rollback"}]}
    assert weight_points(load_report(data)) == [(0.0, 0.0), (1.0, 30.0), (3.0, 0.0)]
