"""The sequential judge's evidence in the release report: reading it, its chart and its summary table."""

from __future__ import annotations

import math

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.report.chart import (
    EVIDENCE_HIGH,
    EVIDENCE_LOW,
    evidence_series,
    evidence_svg,
    timeline_svg,
    weight_changes,
)
from ansible_collections.progressive.delivery.plugins.module_utils.report.html import render_report_html
from ansible_collections.progressive.delivery.plugins.module_utils.report.model import format_e_value, load_report
from tests.unit.report_samples import failed_report, iso, succeeded_report
from tests.unit.test_report_html import find_all, parse, text_of

# Four tests share alpha = 0.01 (Bonferroni), so each rolls back at an e-value of 400.
BOUNDARY = math.log(400)
TESTS = (("request-success-rate", "rate"), ("request-success-rate", "ratio"),
         ("request-duration", "latency-limit"), ("request-duration", "latency-order"))


def point(seconds: float, metric: str, test: str, log_e_value: float, weight: int = 10) -> dict:
    return {"time": iso(seconds), "weight": weight, "metric": metric, "test": test,
            "log_e_value": log_e_value, "log_boundary": BOUNDARY}


def with_evidence(report: dict, caught: bool = False) -> dict:
    """One point per sample second and test; with ``caught`` the error-share test crosses and overshoots once weight reaches 30."""
    seconds = sorted({sample["time"]: sample["weight"] for sample in report["samples"]}.items())
    evidence = []
    for index, (moment, weight) in enumerate(seconds):
        for metric, test in TESTS:
            value = -0.05 * index
            if caught and test == "rate" and weight >= 30:
                value = 2.5 * index - 20
            evidence.append({"time": moment, "weight": weight, "metric": metric, "test": test,
                             "log_e_value": value, "log_boundary": BOUNDARY})
    report["evidence"] = evidence
    return report


def evidence_chart(page: str):
    charts = find_all(parse(page), "svg", "evidence-chart")
    assert len(charts) == 1
    return charts[0]


def polyline_ys(element) -> list[float]:
    return [float(pair.split(",")[1]) for pair in element.get("points").split()]


def test_load_report_keeps_well_formed_points_in_time_order_and_drops_the_rest():
    report = succeeded_report()
    report["evidence"] = [
        point(4, "request-success-rate", "rate", 1.5),
        point(2, "request-success-rate", "rate", "-0.25"),
        None,
        "not a point",
        {**point(3, "request-success-rate", "rate", 1.0), "time": "later"},
        {**point(3, "request-success-rate", "rate", 1.0), "time": None},
        {**point(3, "request-success-rate", "rate", 1.0), "metric": ""},
        {**point(3, "request-success-rate", "rate", 1.0), "test": None},
        point(3, "request-success-rate", "rate", float("nan")),
        point(3, "request-success-rate", "rate", True),
        point(3, "request-success-rate", "rate", "strong"),
        {**point(3, "request-success-rate", "rate", 1.0), "log_boundary": 0},
        {**point(3, "request-success-rate", "rate", 1.0), "log_boundary": -2},
        {**point(3, "request-success-rate", "rate", 1.0), "log_boundary": None},
        {**point(5, "request-duration", "latency-order", 0.5), "weight": "ten"},
    ]
    evidence = load_report(report).evidence
    assert [(item.offset, item.metric, item.test, item.log_e_value) for item in evidence] == [
        (2.0, "request-success-rate", "rate", -0.25),
        (4.0, "request-success-rate", "rate", 1.5),
        (5.0, "request-duration", "latency-order", 0.5),
    ]
    assert evidence[0].weight == 10 and evidence[2].weight is None
    assert evidence[1].share == pytest.approx(1.5 / BOUNDARY)


@pytest.mark.parametrize("evidence", [None, "none", {"time": iso(1)}, 42])
def test_evidence_that_is_not_a_list_is_no_evidence(evidence):
    report = succeeded_report()
    report["evidence"] = evidence
    assert load_report(report).evidence == ()


def test_evidence_after_the_last_event_extends_the_shared_time_axis():
    report = succeeded_report()
    late = report["duration_seconds"] + 30
    report["evidence"] = [point(late, "request-success-rate", "rate", 0.1)]
    assert load_report(report).span == late


@pytest.mark.parametrize(("log_e_value", "text"), [
    (math.log(0.8), "0.8"),
    (0.0, "1"),
    (math.log(400), "400"),
    (math.log(12.3), "12"),
    (17 * math.log(10), "1e17"),
    (40.0, "2.4e17"),
    (-20.0, "2.1e-9"),
    (1000.0, "2e434"),
])
def test_format_e_value_is_short_and_survives_values_no_float_holds(log_e_value, text):
    assert format_e_value(log_e_value) == text


def test_a_report_without_evidence_is_the_same_page_and_has_no_evidence_chart():
    for build in (succeeded_report, failed_report):
        plain = render_report_html(build())
        for evidence in ([], [None, {"metric": "request-success-rate"}]):
            report = build()
            report["evidence"] = evidence
            assert render_report_html(report) == plain
        root = parse(plain)
        assert not find_all(root, "svg", "evidence-chart")
        assert "Evidence against the canary" not in [text_of(heading) for heading in find_all(root, "h2")]
        assert "evidence-chart" not in plain and "evidence-line" not in plain


def test_one_line_per_metric_and_test_in_the_judges_order():
    page = render_report_html(with_evidence(succeeded_report()))
    root = parse(page)
    assert "Evidence against the canary" in [text_of(heading) for heading in find_all(root, "h2")]
    chart = evidence_chart(page)
    lines = find_all(chart, "polyline", "evidence-line")
    assert len(lines) == len(TESTS)
    assert [text_of(line).split(":")[0] for line in lines] == [
        "request-success-rate · error share against the threshold", "request-success-rate · error rate against the primary",
        "request-duration · p99 against the limit", "request-duration · slower than the primary"]
    assert len({line.get("stroke") for line in lines}) == len(TESTS)
    seconds = len({sample["time"] for sample in succeeded_report()["samples"]})
    assert all(len(polyline_ys(line)) == seconds for line in lines)
    # The legend names each line in the colour it is drawn with.
    legend = find_all(root, "section", "evidence")[0]
    legend_colours = [line.get("stroke") for line in find_all(find_all(legend, "ul", "legend")[0], "line")][:len(TESTS)]
    assert legend_colours == [line.get("stroke") for line in lines]


def test_the_boundary_is_a_dashed_line_where_the_evidence_reaches_its_boundary():
    report = succeeded_report()
    report["evidence"] = [point(2, "request-success-rate", "rate", 0.0), point(3, "request-success-rate", "rate", BOUNDARY),
                          point(4, "request-success-rate", "rate", -BOUNDARY / 4)]
    chart = evidence_chart(render_report_html(report))
    boundary = find_all(chart, "line", "evidence-boundary")
    assert len(boundary) == 1 and "threshold" in boundary[0].get("class").split()
    assert boundary[0].get("y1") == boundary[0].get("y2")
    zero = find_all(chart, "line", "zero-line")[0]
    at_zero, at_boundary, for_canary = polyline_ys(find_all(chart, "polyline", "evidence-line")[0])
    assert at_boundary == float(boundary[0].get("y1"))
    assert at_zero == float(zero.get("y1"))
    assert for_canary > at_zero > at_boundary
    assert "rollback boundary (1/alpha)" in [text_of(label) for label in find_all(chart, "text", "threshold-label")]
    assert "rollback at e-value 400 (1/alpha)" in text_of(find_all(chart, "text", "evidence-note")[0])


def test_points_outside_the_range_are_clipped_and_said_to_be():
    report = succeeded_report()
    report["evidence"] = [point(2, "request-success-rate", "rate", 0.5), point(3, "request-success-rate", "rate", 40.0),
                          point(4, "request-duration", "latency-limit", -30.0), point(5, "request-duration", "latency-limit", -0.5)]
    page = render_report_html(report)
    chart = evidence_chart(page)
    panel = find_all(chart, "rect", "panel")[0]
    top = float(panel.get("y"))
    bottom = top + float(panel.get("height"))
    rate, latency = find_all(chart, "polyline", "evidence-line")
    assert polyline_ys(rate)[1] == top and polyline_ys(latency)[0] == bottom
    assert "2 points beyond %d%%…%d%%, drawn at the edge" % (EVIDENCE_LOW * 100, EVIDENCE_HIGH * 100) in text_of(
        find_all(chart, "text", "evidence-note")[0])
    markers = find_all(chart, "path", "evidence-clipped")
    assert len(markers) == 2
    assert "e-value 2.4e17 of 400" in text_of(markers[0])
    note = text_of(find_all(parse(page), "p", "note")[0])
    assert "2 points outside -50% to 120% of the boundary are drawn at the chart's edge" in note


def test_nothing_is_said_about_clipping_when_every_point_fits():
    page = render_report_html(with_evidence(succeeded_report()))
    chart = evidence_chart(page)
    assert not find_all(chart, "path", "evidence-clipped")
    assert "beyond" not in text_of(find_all(chart, "text", "evidence-note")[0])
    assert "outside" not in text_of(find_all(parse(page), "p", "note")[0])


def test_the_summary_table_gives_each_tests_final_e_value_and_boundary():
    report = with_evidence(failed_report(), caught=True)
    page = render_report_html(report)
    table = find_all(parse(page), "table", "evidence-table")[0]
    rows = find_all(find_all(table, "tbody")[0], "tr")
    assert len(rows) == len(TESTS)
    cells = [[text_of(cell).strip() for cell in find_all(row, "td")] for row in rows]
    rate = cells[0]
    last = max(item["log_e_value"] for item in report["evidence"] if item["test"] == "rate")
    assert rate[0] == "request-success-rate" and rate[1] == "error share against the threshold"
    assert rate[4] == format_e_value(last) and rate[5] == "400"
    assert rate[-1].startswith("\u2717 crossed at +")
    assert "failed" in rows[0].get("class").split()
    assert all(row[-1] == "\u2713 below the boundary" for row in cells[1:])
    assert all(row[5] == "400" for row in cells)
    description = text_of(find_all(evidence_chart(page), "desc")[0])
    assert "error share against the threshold: e-value %s of 400" % format_e_value(last) in description
    assert "crossed at" in description


def test_the_evidence_chart_shares_the_timelines_time_axis_and_marks():
    report = with_evidence(failed_report(), caught=True)
    page = render_report_html(report)
    root = parse(page)
    timeline, evidence = find_all(root, "svg", "timeline")[0], evidence_chart(page)
    assert timeline.get("viewBox").split()[2] == evidence.get("viewBox").split()[2]
    assert [line.get("x1") for line in find_all(evidence, "line", "rollback")] == [line.get("x1") for line in find_all(timeline, "line", "rollback")]
    model = load_report(report)
    changes = find_all(evidence, "line", "weight-change")
    assert len(changes) == len(weight_changes(model)) > 0
    assert [text_of(change).split("weight ")[1] for change in changes] == ["%d%%" % weight for _offset, weight in weight_changes(model)]
    assert text_of(find_all(evidence, "text", "decision-label")[0]) == text_of(find_all(timeline, "text", "decision-label")[0])
    assert timeline_svg(model) in page and evidence_svg(model) in page


def test_evidence_text_is_escaped():
    report = succeeded_report()
    report["evidence"] = [point(2, "<script>alert(1)</script>", "ratio&more", 0.5)]
    page = render_report_html(report)
    assert "<script>" not in page
    series = evidence_series(load_report(report))
    assert series[0].label == "<script>alert(1)</script> · ratio&more"
    assert "ratio&more" in text_of(find_all(parse(page), "table", "evidence-table")[0])
