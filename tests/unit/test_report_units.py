"""The HTML report says what its numbers are: units of the builtin metrics, a legend for every mark, no empty panels."""

from __future__ import annotations

import re

from ansible_collections.progressive.delivery.plugins.module_utils.report.html import LEGEND, render_report_html
from ansible_collections.progressive.delivery.plugins.module_utils.report.timeline import build_report, timeline_event
from tests.unit.report_samples import THRESHOLDS, failed_report, iso, succeeded_report
from tests.unit.test_report_html import find_all, parse, text_of


def panel_ticks(svg, title: str) -> list[str]:
    """The y-axis labels of the metric panel with this title (they follow its title, up to the next panel's)."""
    texts = [element for element in find_all(svg, "text") if (element.get("class") or "") in ("panel-title", "tick")]
    start = next(index for index, element in enumerate(texts) if text_of(element) == title)
    ticks = []
    for element in texts[start + 1:]:
        if element.get("class") == "panel-title":
            break
        if element.get("text-anchor") == "end":
            ticks.append(text_of(element))
    return ticks


def test_latency_axis_threshold_and_note_carry_milliseconds():
    svg = find_all(parse(render_report_html(failed_report())), "svg", "timeline")[0]
    ticks = panel_ticks(svg, "request-duration (ms)")
    assert ticks and all(re.fullmatch(r"-?[\d.]+ ms", tick) for tick in ticks), ticks
    rate_ticks = panel_ticks(svg, "request-success-rate (%)")
    assert rate_ticks and all(tick.endswith(" %") for tick in rate_ticks), rate_ticks
    notes = [text_of(element) for element in find_all(svg, "text", "panel-note")]
    assert any(note.startswith("max 500 ms · last ") and note.split(" · ")[1].endswith(" ms") for note in notes), notes
    values = [match for title in find_all(svg, "title")
              for match in re.findall(r"request-duration [\d.]+(?: ms)?", text_of(title))]
    assert values and all(value.endswith(" ms") for value in values), values


def test_latency_cells_of_the_steps_table_carry_milliseconds():
    report = succeeded_report()
    root = parse(render_report_html(report))
    table = find_all(root, "table", "steps")[0]
    headers = [text_of(element) for element in find_all(table, "th")]
    column = headers.index("request-duration (ms)")
    values = [text_of(find_all(row, "td")[column]) for row in find_all(find_all(table, "tbody")[0], "tr")]
    measured = [value for value in values if value.strip()]
    assert measured and all(re.fullmatch(r"\u2713 [\d.]+ ms", value) for value in measured), measured
    limits = [find_all(row, "td")[column].find(".//*[@title]") for row in find_all(find_all(table, "tbody")[0], "tr")]
    assert all("max 500 ms" in span.get("title") for span in limits if span is not None)


def test_a_custom_metric_gets_no_invented_unit():
    report = succeeded_report()
    report["thresholds"].append({"metric": "queue-depth", "min": None, "max": 100})
    svg = find_all(parse(render_report_html(report)), "svg", "timeline")[0]
    assert "queue-depth" in [text_of(element) for element in find_all(svg, "text", "panel-title")]
    assert "max 100" in [text_of(element) for element in find_all(svg, "text", "threshold-label")]


def test_every_mark_of_the_timeline_is_in_the_legend():
    root = parse(render_report_html(failed_report()))
    svg = find_all(root, "svg", "timeline")[0]
    marks = find_all(svg, "path", "failed-mark")
    assert marks, "the failed run must show failed checks on the weight panel"
    legend = find_all(root, "ul", "legend")[0]
    labels = [text_of(item) for item in find_all(legend, "li")]
    assert "failed check (on the weight line)" in labels
    # The legend's icon is the chart's mark: a triangle pointing down (l-5 -9 h10 Z).
    icon = dict(LEGEND)["failed check (on the weight line)"]
    assert "l-5 -9 h10 Z" in icon and all("l-5 -9 h10 Z" in mark.get("d") for mark in marks)


def initialized_report(timeline):
    plan = {"name": "backend-service", "namespace": "prod", "target": "backend-service", "steps": [10, 20, 30],
            "threshold": 5, "thresholds": THRESHOLDS}
    return build_report(plan, "run-1", "fast", "Initialized", "primary and routing created", iso(0), iso(2), 0, 0,
                        timeline, [], None)


def test_an_initialized_run_draws_no_empty_panels():
    drift = timeline_event("drift", "backend-service-canary repaired", weight=0, time=iso(1))
    root = parse(render_report_html(initialized_report([drift])))
    assert not find_all(root, "svg", "timeline")
    assert not [element for element in find_all(root, "text", "empty-note")]
    empties = [text_of(element) for element in find_all(root, "p", "empty")]
    assert empties == ["No analysis ran in this run: the canary took no traffic and no metric was checked."]
    headers = [text_of(element) for element in find_all(find_all(root, "table", "steps")[0], "th")]
    assert headers == ["#", "Time", "Event", "Weight", "Webhooks", "Failed checks", "Message"]


def test_an_initialized_run_without_events_says_nothing_was_recorded():
    root = parse(render_report_html(initialized_report([])))
    assert not find_all(root, "svg", "timeline")
    assert [text_of(element) for element in find_all(root, "p", "empty")] == [
        "No steps or samples were recorded for this run.", "No steps were recorded."]
