"""The HTML release report: page structure, chart content, escaping and degenerate reports."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.progressive.delivery.plugins.filter.report import FilterModule, canary_report_html
from ansible_collections.progressive.delivery.plugins.module_utils.report.html import render_report_html
from tests.unit.report_samples import failed_report, iso, succeeded_report


def parse(page: str) -> ET.Element:
    """Parse as XML: proves the page is well-formed (every tag closed, every entity valid)."""
    return ET.fromstring(page.split("\n", 1)[1])


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find_all(root: ET.Element, tag: str, css: str | None = None) -> list[ET.Element]:
    found = [element for element in root.iter() if local(element.tag) == tag]
    if css is not None:
        found = [element for element in found if css in (element.get("class") or "").split()]
    return found


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


def html_tags(page: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(page)
    collector.close()
    return collector


@pytest.fixture(params=["succeeded", "failed"])
def sample(request):
    return succeeded_report() if request.param == "succeeded" else failed_report()


def test_page_is_well_formed_and_self_contained(sample):
    page = render_report_html(sample)
    assert page.startswith("<!DOCTYPE html>")
    root = parse(page)
    assert local(root.tag) == "html"
    collector = html_tags(page)
    assert "script" not in collector.tags
    assert "link" not in collector.tags and "img" not in collector.tags
    names = {name for name, _ in collector.attributes}
    assert not names & {"src", "href"}
    assert not any(name.startswith("on") for name in names)
    style = text_of(find_all(root, "style")[0])
    assert "url(" not in style and "@import" not in style


def test_header_shows_result_reason_duration_run_and_mode():
    report = failed_report()
    root = parse(render_report_html(report))
    badge = find_all(root, "span", "badge")[0]
    assert text_of(badge) == "Failed"
    assert "bad" in badge.get("class").split()
    assert text_of(find_all(root, "p", "reason")[0]) == report["reason"]
    facts = {text_of(item[0]): text_of(item[1]) for item in find_all(find_all(root, "dl", "facts")[0], "div")}
    assert facts["Run id"] == report["run_id"]
    assert facts["Analysis mode"] == "fast"
    assert facts["Duration"] == "%d s" % report["duration_seconds"]
    assert facts["Failed checks"] == "5 of 5 allowed"
    assert text_of(find_all(root, "title")[0]) == "backend-service (prod): Failed"


def test_succeeded_badge_and_promotion_marker_without_rollback():
    root = parse(render_report_html(succeeded_report()))
    badge = find_all(root, "span", "badge")[0]
    assert text_of(badge) == "Succeeded" and "good" in badge.get("class").split()
    svg = find_all(root, "svg", "timeline")[0]
    promotion_lines = find_all(svg, "line", "promotion")
    assert len(promotion_lines) == 1
    assert not find_all(svg, "line", "rollback")
    labels = [text_of(element) for element in find_all(svg, "text", "decision-label")]
    assert labels == ["promoted at 26s"]
    assert not find_all(svg, "path", "check-fail")


def test_failed_release_marks_the_rollback_and_every_failed_check():
    report = failed_report()
    root = parse(render_report_html(report))
    svg = find_all(root, "svg", "timeline")[0]
    rollback = find_all(svg, "line", "rollback")
    assert len(rollback) == 1
    rollback_event = next(event for event in report["timeline"] if event["kind"] == "rollback")
    assert rollback_event["message"] in text_of(rollback[0])
    assert [text_of(element) for element in find_all(svg, "text", "decision-label")] == ["rolled back at 16s"]
    failed_checks = [check for event in report["timeline"] for check in event["metrics"] if check["result"] == "fail"]
    assert len(find_all(svg, "path", "check-fail")) == len(failed_checks) == 5
    # The weight panel flags the moment of each failed check too.
    assert len(find_all(svg, "path", "failed-mark")) == 5


def test_one_panel_per_metric_with_its_threshold():
    report = succeeded_report()
    report["thresholds"].append({"metric": "error-budget", "min": None, "max": 2})
    svg = find_all(parse(render_report_html(report)), "svg", "timeline")[0]
    titles = [text_of(element) for element in find_all(svg, "text", "panel-title")]
    assert titles == ["Canary weight", "request-success-rate (%)", "request-duration (ms)", "error-budget"]
    threshold_labels = sorted(text_of(element) for element in find_all(svg, "text", "threshold-label"))
    assert threshold_labels == ["max 2", "max 500 ms", "min 99 %"]
    assert len(find_all(svg, "rect", "bad-zone")) == 3
    # error-budget has no samples: the panel says so instead of drawing an empty frame.
    assert [text_of(element) for element in find_all(svg, "text", "empty-note")] == ["no values recorded"]


def test_samples_outside_the_threshold_are_drawn_as_breaches():
    report = failed_report()
    breaching = [sample for sample in report["samples"] if sample["metric"] == "request-success-rate" and sample["value"] < 99]
    svg = find_all(parse(render_report_html(report)), "svg", "timeline")[0]
    assert len(find_all(svg, "circle", "sample-bad")) == len(breaching) > 0


def test_steps_table_has_a_row_per_timeline_entry_and_a_column_per_metric(sample):
    root = parse(render_report_html(sample))
    table = find_all(root, "table", "steps")[0]
    headers = [text_of(element) for element in find_all(table, "th")]
    assert headers == ["#", "Time", "Event", "Weight", "request-success-rate (%)", "request-duration (ms)", "Webhooks", "Failed checks",
                       "Message"]
    rows = find_all(find_all(table, "tbody")[0], "tr")
    assert len(rows) == len(sample["timeline"])
    for row, event in zip(rows, sample["timeline"]):
        cells = find_all(row, "td")
        assert text_of(cells[2]) == event["kind"]
        assert text_of(cells[-1]) == event["message"]
        for check, cell in zip(event["metrics"], cells[4:6]):
            verdict = find_all(cell, "span", "verdict")[0]
            assert check["result"] in verdict.get("class").split()
        for hook in event["webhooks"]:
            assert hook["name"] in text_of(cells[6])


def test_failed_and_rollback_rows_are_highlighted():
    report = failed_report()
    rows = find_all(find_all(parse(render_report_html(report)), "tbody")[0], "tr")
    classes = [row.get("class") for row in rows]
    expected = ["rollback" if event["kind"] == "rollback" else
                "failed" if any(check["result"] == "fail" for check in event["metrics"]) else None
                for event in report["timeline"]]
    assert classes == expected
    assert classes.count("failed") == 5


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & </table>'


def test_every_text_field_is_escaped():
    report = failed_report()
    report["canary"]["name"] = HOSTILE
    report["run_id"] = HOSTILE
    report["reason"] = HOSTILE
    report["mode"] = HOSTILE
    report["result"] = HOSTILE
    report["thresholds"][0]["metric"] = HOSTILE
    for event in report["timeline"]:
        event["message"] = HOSTILE
        event["kind"] = HOSTILE if event["kind"] == "weight" else event["kind"]
        for check in event["metrics"]:
            if check["name"] == "request-success-rate":
                check["name"] = HOSTILE
            check["reason"] = HOSTILE
        for hook in event["webhooks"]:
            hook["name"] = HOSTILE
            hook["status"] = HOSTILE
    for sample in report["samples"]:
        if sample["metric"] == "request-success-rate":
            sample["metric"] = HOSTILE
    page = render_report_html(report)
    collector = html_tags(page)
    assert "script" not in collector.tags and "img" not in collector.tags
    assert not any(name.startswith("on") for name, _ in collector.attributes)
    root = parse(page)
    assert HOSTILE in text_of(find_all(root, "h1")[0])
    headers = [text_of(element) for element in find_all(root, "th")]
    assert HOSTILE in headers
    assert HOSTILE in [text_of(element) for element in find_all(root, "text", "panel-title")]
    # Attribute values (tooltips) are escaped as well: the parser sees the text, not markup.
    assert any(HOSTILE in (element.get("title") or "") for element in find_all(root, "span", "verdict"))


def test_control_characters_do_not_break_the_page():
    report = succeeded_report()
    report["timeline"][0]["message"] = "body: \x00\x07 end"
    root = parse(render_report_html(report))
    assert "body: \ufffd\ufffd end" in text_of(root)


def test_empty_timeline_renders_a_page_without_chart():
    report = {"canary": {"name": "backend-service", "namespace": "prod"}, "run_id": "r1", "mode": "fast",
              "result": "NothingToDo", "reason": "no new revision of backend-service", "started_at": iso(0),
              "finished_at": iso(1.5), "duration_seconds": 1.5, "timeline": [], "samples": []}
    root = parse(render_report_html(report))
    assert not find_all(root, "svg", "timeline")
    assert not find_all(root, "table")
    empties = [text_of(element) for element in find_all(root, "p", "empty")]
    assert empties == ["No steps or samples were recorded for this run.", "No steps were recorded."]
    assert "neutral" in find_all(root, "span", "badge")[0].get("class").split()
    assert text_of(find_all(root, "p", "reason")[0]) == "no new revision of backend-service"


def test_checks_without_data_points_are_drawn_and_listed():
    report = {"canary": {"name": "api"}, "result": "Failed", "reason": "no data", "started_at": iso(0), "finished_at": iso(20),
              "thresholds": [{"metric": "request-success-rate", "min": 99, "max": None}],
              "timeline": [{"time": iso(5 * index), "kind": "check", "weight": 10, "failed_checks": index,
                            "metrics": [{"name": "request-success-rate", "value": None, "result": "no_data",
                                         "reason": "the query returned no series"}], "webhooks": [], "message": "no data"}
                           for index in range(1, 4)],
              "samples": []}
    root = parse(render_report_html(report))
    svg = find_all(root, "svg", "timeline")[0]
    assert len(find_all(svg, "rect", "check-other")) == 3
    assert [text_of(element) for element in find_all(svg, "text", "empty-note")] == ["no values recorded"]
    cells = [find_all(row, "td")[4] for row in find_all(find_all(root, "tbody")[0], "tr")]
    assert all("no data" in text_of(cell) and "the query returned no series" in text_of(cell) for cell in cells)
    # A failed run with no recorded rollback step is still marked where it ended.
    assert [text_of(element) for element in find_all(svg, "text", "decision-label")] == ["rolled back at 20s"]


def test_malformed_fields_render_as_unknown_instead_of_failing():
    report = {"canary": "not a mapping", "result": None, "started_at": "yesterday", "duration_seconds": "n/a",
              "steps": "10,20", "thresholds": [None, {"metric": "m", "min": "abc", "max": float("nan")}],
              "timeline": [None, {"time": "not a time", "kind": "weight", "weight": "ten", "metrics": [{"name": "m", "value": "1e999"}],
                                  "webhooks": "none"}],
              "samples": [{"time": iso(1), "metric": "m", "value": True}, {"time": None, "metric": "m", "value": 3}]}
    root = parse(render_report_html(report))
    assert text_of(find_all(root, "span", "badge")[0]) == "Unknown"
    rows = find_all(find_all(root, "tbody")[0], "tr")
    assert len(rows) == 2
    facts = {text_of(item[0]): text_of(item[1]) for item in find_all(find_all(root, "dl", "facts")[0], "div")}
    assert facts["Duration"] == "–" and facts["Started"] == "–" and facts["Weight steps"] == "–"


def test_filter_accepts_a_dict_or_json_text_and_rejects_anything_else():
    report = succeeded_report()
    assert FilterModule().filters()["canary_report_html"] is canary_report_html
    assert canary_report_html(json.dumps(report)) == canary_report_html(copy.deepcopy(report)) == render_report_html(report)
    with pytest.raises(AnsibleFilterError, match="not a JSON report"):
        canary_report_html("{not json")
    with pytest.raises(AnsibleFilterError, match="expected the report as a dictionary.*got list"):
        canary_report_html([report])
