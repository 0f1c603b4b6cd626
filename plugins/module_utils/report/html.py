# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renders a release report as one self-contained HTML page (inline CSS and SVG, no scripts).

The page is also well-formed XML, so strict tools can read it and every piece of
text from the report (metric names, webhook messages, reasons) goes through one
escaping function.
"""

from __future__ import annotations

import datetime
from typing import Any, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.report.chart import (
    EVIDENCE_HIGH,
    EVIDENCE_LOW,
    EvidenceSeries,
    charted_metrics,
    clipped_points,
    evidence_series,
    evidence_svg,
    format_metric_value,
    format_offset,
    format_share,
    has_timeline,
    metric_title,
    timeline_svg,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import FAIL, PASS
from ansible_collections.progressive.delivery.plugins.module_utils.report.model import (
    PROMOTION,
    ROLLBACK,
    Event,
    MetricCheck,
    Report,
    format_duration,
    format_e_value,
    format_value,
    load_report,
)
from ansible_collections.progressive.delivery.plugins.module_utils.report.text import escape

RESULT_CLASSES = {"succeeded": "good", "initialized": "good", "failed": "bad", "error": "bad", "nothingtodo": "neutral"}

VERDICT_SYMBOLS = {PASS: "\u2713", FAIL: "\u2717"}

STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: #1f2328;
  font: 14px/1.45 -apple-system, "Segoe UI", "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 24px 40px; }
header.report { background: #fff; border: 1px solid #d0d7de; border-left: 6px solid #8c959f; border-radius: 8px; padding: 18px 22px; }
header.report.good { border-left-color: #1a7f37; }
header.report.bad { border-left-color: #cf222e; }
header.report.other { border-left-color: #bf8700; }
h1 { margin: 0; font-size: 22px; font-weight: 600; display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
h1 .namespace { color: #57606a; font-weight: 400; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.badge { display: inline-block; padding: 2px 12px; border-radius: 999px; font-size: 13px; font-weight: 600; color: #fff; background: #8c959f; }
.badge.good { background: #1a7f37; }
.badge.bad { background: #cf222e; }
.badge.other { background: #bf8700; }
.reason { margin: 10px 0 14px; font-size: 15px; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px 24px; margin: 0; }
dl.facts div { min-width: 0; }
dl.facts dt { color: #57606a; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
dl.facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
section.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 14px 18px; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 20px; margin: 0 0 8px; padding: 0; color: #57606a; font-size: 13px; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
svg.timeline { width: 100%; height: auto; display: block; }
svg text { font-family: -apple-system, "Segoe UI", "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
.panel { fill: #fff; stroke: #d0d7de; }
.grid { stroke: #eaeef2; stroke-width: 1; }
.tick { fill: #57606a; font-size: 11px; }
.panel-title { fill: #1f2328; font-size: 13px; font-weight: 600; }
.panel-note { fill: #57606a; font-size: 12px; }
.empty-note { fill: #8c959f; font-size: 13px; font-style: italic; }
.weight-line { fill: none; stroke: #0969da; stroke-width: 2.5; stroke-linejoin: round; }
.weight-area { fill: #0969da; fill-opacity: .08; stroke: none; }
.weight-dot { fill: #0969da; }
.failed-mark { fill: #cf222e; }
.sample-line { fill: none; stroke: #0969da; stroke-width: 1.5; stroke-opacity: .75; stroke-linejoin: round; }
.sample { fill: #0969da; }
.sample-bad { fill: #cf222e; }
.bad-zone { fill: #cf222e; fill-opacity: .07; }
.threshold { stroke: #cf222e; stroke-width: 1.5; stroke-dasharray: 6 4; }
.threshold-label { fill: #cf222e; font-size: 11px; font-weight: 600; }
.check-pass { fill: #fff; stroke: #1a7f37; stroke-width: 2.5; }
.check-fail { fill: #cf222e; stroke: #fff; stroke-width: 1.5; }
.check-other { fill: #fff; stroke: #8c959f; stroke-width: 2; }
.decision { stroke-width: 2; stroke-dasharray: 3 3; }
.decision.promotion { stroke: #1a7f37; }
.decision.rollback { stroke: #cf222e; }
.decision-label { font-size: 12px; font-weight: 700; }
.decision-label.promotion { fill: #1a7f37; }
.decision-label.rollback { fill: #cf222e; }
.table-wrap { overflow-x: auto; }
table.steps { border-collapse: collapse; width: 100%; font-size: 13px; }
table.steps th { text-align: left; color: #57606a; font-weight: 600; border-bottom: 2px solid #d0d7de; padding: 6px 8px; white-space: nowrap; }
table.steps td { border-bottom: 1px solid #eaeef2; padding: 6px 8px; vertical-align: top; }
table.steps td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.steps td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.steps td.time small { color: #57606a; display: block; }
table.steps tr.failed td { background: #fff5f5; }
table.steps tr.rollback td { background: #ffebe9; }
table.steps tr.promotion td { background: #eafbee; }
.kind { font-weight: 600; }
.verdict { white-space: nowrap; font-variant-numeric: tabular-nums; }
.verdict.pass { color: #1a7f37; }
.verdict.fail { color: #cf222e; font-weight: 700; }
.verdict.other { color: #6e7781; }
.verdict small { display: block; color: #6e7781; font-weight: 400; white-space: normal; }
ul.hooks { list-style: none; margin: 0; padding: 0; }
.message { overflow-wrap: anywhere; }
p.empty { color: #57606a; font-style: italic; }
footer { color: #6e7781; font-size: 12px; margin-top: 24px; }
"""

# Only pages with an evidence chart carry these rules, so a report without evidence is the same page as before.
EVIDENCE_STYLE = """
svg.evidence-chart { width: 100%; height: auto; display: block; }
.zero-line { stroke: #8c959f; stroke-width: 1; }
.evidence-line { fill: none; stroke-width: 2; stroke-linejoin: round; }
.weight-change { stroke: #0969da; stroke-width: 1; stroke-opacity: .45; stroke-dasharray: 2 3; }
.weight-change-label { fill: #0969da; font-size: 11px; }
p.note { color: #57606a; margin: 8px 0 12px; font-size: 13px; }
"""

LEGEND = (
    ("canary weight", '<path d="M1 12 H9 V4 H19" fill="none" stroke="#0969da" stroke-width="2.5"/>'),
    ("metric value", '<circle cx="10" cy="8" r="2.5" fill="#0969da"/>'),
    ("check passed", '<circle cx="10" cy="8" r="5" fill="#fff" stroke="#1a7f37" stroke-width="2.5"/>'),
    ("check failed", '<path d="M10 2 l6 6 l-6 6 l-6 -6 Z" fill="#cf222e"/>'),
    ("failed check (on the weight line)", '<path d="M10 13 l-5 -9 h10 Z" fill="#cf222e"/>'),
    ("no data / error", '<rect x="5.5" y="3.5" width="9" height="9" fill="#fff" stroke="#8c959f" stroke-width="2"/>'),
    ("threshold (shaded: outside range)", '<rect x="0" y="0" width="20" height="8" fill="#cf222e" fill-opacity=".12"/>'
                                          '<line x1="0" x2="20" y1="8" y2="8" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="4 3"/>'),
    ("promotion", '<line x1="10" x2="10" y1="0" y2="16" stroke="#1a7f37" stroke-width="2" stroke-dasharray="3 3"/>'),
    ("rollback", '<line x1="10" x2="10" y1="0" y2="16" stroke="#cf222e" stroke-width="2" stroke-dasharray="3 3"/>'),
)


EVIDENCE_LEGEND = (
    ("rollback boundary (1/alpha)", '<rect x="0" y="0" width="20" height="8" fill="#cf222e" fill-opacity=".12"/>'
                                    '<line x1="0" x2="20" y1="8" y2="8" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="4 3"/>'),
    ("weight change", '<line x1="10" x2="10" y1="0" y2="16" stroke="#0969da" stroke-opacity=".6" stroke-dasharray="2 3"/>'),
    ("outside the chart", '<path d="M10 2 l-4 6 h8 Z" fill="#57606a"/>'),
    ("promotion", LEGEND[-2][1]),
    ("rollback", LEGEND[-1][1]),
)


def _result_class(result: str) -> str:
    return RESULT_CLASSES.get(result.lower(), "other") if result else "other"


def _format_time(moment: datetime.datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fact(label: str, value: str) -> str:
    return "<div><dt>%s</dt><dd>%s</dd></div>" % (escape(label), escape(value))


def _header(report: Report) -> str:
    css = _result_class(report.result)
    name = report.name or "unnamed canary"
    namespace = ' <span class="namespace">in %s</span>' % escape(report.namespace) if report.namespace else ""
    failed = "–" if report.failed_checks is None else str(report.failed_checks)
    if report.threshold is not None:
        failed += " of %d allowed" % report.threshold
    facts = [
        _fact("Duration", format_duration(report.duration_seconds if report.duration_seconds is not None else
                                          (report.span if report.started_at and report.finished_at else None))),
        _fact("Run id", report.run_id or "–"),
        _fact("Analysis mode", report.mode or "–"),
        _fact("Started", _format_time(report.started_at)),
        _fact("Finished", _format_time(report.finished_at)),
        _fact("Final canary weight", "–" if report.final_weight is None else format_value(report.final_weight) + " %"),
        _fact("Failed checks", failed),
        _fact("Weight steps", ", ".join(format_value(step) + " %" for step in report.steps) or "–"),
    ]
    reason = '<p class="reason">%s</p>' % escape(report.reason) if report.reason else ""
    return ('<header class="report %s"><h1>%s%s <span class="badge %s">%s</span></h1>%s<dl class="facts">%s</dl></header>' % (
        css, escape(name), namespace, css, escape(report.result or "Unknown"), reason, "".join(facts)))


def _legend(entries: tuple[tuple[str, str], ...] = LEGEND) -> str:
    items = "".join('<li><svg xmlns="http://www.w3.org/2000/svg" width="20" height="16" viewBox="0 0 20 16" aria-hidden="true">%s</svg>%s</li>' % (
        icon, escape(label)) for label, icon in entries)
    return '<ul class="legend">%s</ul>' % items


def _timeline(report: Report) -> str:
    if not report.events and not report.samples:
        body = '<p class="empty">No steps or samples were recorded for this run.</p>'
    elif not has_timeline(report):
        body = '<p class="empty">No analysis ran in this run: the canary took no traffic and no metric was checked.</p>'
    else:
        body = _legend() + timeline_svg(report)
    return '<h2>Timeline</h2><section class="card">%s</section>' % body


def _evidence_table(series_list: list[EvidenceSeries]) -> str:
    header = ["Metric", "Test", "Last poll", "Weight", "E-value", "Boundary (1/alpha)", "Share of boundary", "Highest share", "Outcome"]
    rows = []
    for series in series_list:
        last, peak, crossing = series.last, series.peak, series.first_crossing
        outcome = ('<span class="verdict fail">\u2717 crossed at +%s</span>' % escape(format_offset(crossing.offset)) if crossing
                   else '<span class="verdict pass">\u2713 below the boundary</span>')
        cells = [
            "<td>%s</td>" % escape(series.metric),
            '<td><svg xmlns="http://www.w3.org/2000/svg" width="20" height="10" viewBox="0 0 20 10" aria-hidden="true">'
            '<line x1="0" x2="20" y1="5" y2="5" stroke="%s" stroke-width="2.5"/></svg> %s</td>' % (
                series.colour, escape(series.test_name)),
            '<td class="time">+%s</td>' % escape(format_offset(last.offset)),
            '<td class="num">%s</td>' % ("" if last.weight is None else escape(format_value(last.weight)) + " %"),
            '<td class="num">%s</td>' % escape(format_e_value(last.log_e_value)),
            '<td class="num">%s</td>' % escape(format_e_value(last.log_boundary)),
            '<td class="num">%s</td>' % escape(format_share(last.share)),
            '<td class="num">%s</td>' % escape(format_share(peak.share)),
            "<td>%s</td>" % outcome,
        ]
        rows.append('<tr%s>%s</tr>' % (' class="failed"' if crossing else "", "".join(cells)))
    head = "".join("<th>%s</th>" % escape(title) for title in header)
    return '<div class="table-wrap"><table class="steps evidence-table"><thead><tr>%s</tr></thead><tbody>%s</tbody></table></div>' % (
        head, "".join(rows))


def _evidence(report: Report) -> str:
    """The sequential judge's chart and its final values; nothing at all for a report without evidence."""
    series_list = evidence_series(report)
    if not series_list:
        return ""
    legend = tuple((series.label, '<line x1="0" x2="20" y1="8" y2="8" stroke="%s" stroke-width="2.5"/>' % series.colour)
                   for series in series_list) + EVIDENCE_LEGEND
    explanation = ("Each line is one sequential test's evidence that the canary is worse, as a share of the e-value that rolls it back "
                   "(1/alpha): 0% is no evidence either way, 100% rolls the canary back, below 0% the data favours the canary.")
    clipped = clipped_points(report)
    if clipped:
        explanation += " %d point%s outside %s to %s of the boundary %s drawn at the chart's edge; the table has the real values." % (
            len(clipped), "" if len(clipped) == 1 else "s", format_share(EVIDENCE_LOW), format_share(EVIDENCE_HIGH),
            "is" if len(clipped) == 1 else "are")
    return '<h2>Evidence against the canary</h2><section class="card evidence">%s<p class="note">%s</p>%s%s</section>' % (
        _legend(legend), escape(explanation), evidence_svg(report), _evidence_table(series_list))


def _metric_cell(check: MetricCheck | None) -> str:
    if check is None:
        return "<td></td>"
    css = check.result if check.result in (PASS, FAIL) else "other"
    symbol = VERDICT_SYMBOLS.get(check.result, "\u2013")
    value = format_metric_value(check.name, check.value) if check.value is not None else check.result.replace("_", " ")
    limits = []
    if check.minimum is not None:
        limits.append("min " + format_metric_value(check.name, check.minimum))
    if check.maximum is not None:
        limits.append("max " + format_metric_value(check.name, check.maximum))
    detail = check.reason if check.result != PASS else ""
    tooltip = "; ".join(part for part in (check.result.replace("_", " "), ", ".join(limits), check.reason) if part)
    return '<td><span class="verdict %s" title="%s">%s %s%s</span></td>' % (
        css, escape(tooltip), symbol, escape(value), "<small>%s</small>" % escape(detail) if detail else "")


def _webhooks_cell(event: Event) -> str:
    if not event.webhooks:
        return "<td></td>"
    items = []
    for hook in event.webhooks:
        css = {True: "pass", False: "fail"}.get(hook.passed, "other")
        symbol = {True: "\u2713", False: "\u2717"}.get(hook.passed, "\u2013")
        label = hook.name or hook.type or "webhook"
        extra = " ".join(part for part in (hook.type if hook.name else "", hook.status) if part)
        items.append('<li class="verdict %s">%s %s%s</li>' % (css, symbol, escape(label), " <small>%s</small>" % escape(extra) if extra else ""))
    return '<td><ul class="hooks">%s</ul></td>' % "".join(items)


def _row_class(event: Event) -> str:
    if event.kind in (ROLLBACK, PROMOTION):
        return event.kind
    return "failed" if event.failed else ""


def _steps_table(report: Report) -> str:
    if not report.events:
        return '<h2>Steps</h2><section class="card"><p class="empty">No steps were recorded.</p></section>'
    metrics = charted_metrics(report)
    header = ["#", "Time", "Event", "Weight"] + [metric_title(metric) for metric in metrics] + ["Webhooks", "Failed checks", "Message"]
    rows = []
    for index, event in enumerate(report.events, start=1):
        checks = {check.name: check for check in event.metrics}
        offset = "+" + format_offset(event.offset) if event.offset is not None else ""
        time_text = event.time.astimezone(datetime.timezone.utc).strftime("%H:%M:%S") if event.time else "–"
        cells = [
            '<td class="num">%d</td>' % index,
            '<td class="time">%s<small>%s</small></td>' % (escape(time_text), escape(offset)),
            '<td class="kind">%s</td>' % escape(event.kind.replace("_", " ")),
            '<td class="num">%s</td>' % ("" if event.weight is None else escape(format_value(event.weight)) + " %"),
        ]
        cells.extend(_metric_cell(checks.get(metric)) for metric in metrics)
        cells.append(_webhooks_cell(event))
        failed_checks = "" if event.failed_checks is None else str(event.failed_checks)
        if failed_checks and report.threshold is not None:
            failed_checks += " / %d" % report.threshold
        cells.append('<td class="num">%s</td>' % escape(failed_checks))
        cells.append('<td class="message">%s</td>' % escape(event.message))
        css = _row_class(event)
        rows.append('<tr%s>%s</tr>' % (' class="%s"' % css if css else "", "".join(cells)))
    head = "".join("<th>%s</th>" % escape(title) for title in header)
    return ('<h2>Steps</h2><section class="card table-wrap"><table class="steps"><thead><tr>%s</tr></thead><tbody>%s</tbody></table></section>' % (
        head, "".join(rows)))


def render_report_html(data: Mapping[str, Any]) -> str:
    """One self-contained HTML page for a release report dict (see the role's report JSON)."""
    report = load_report(data)
    subject = report.name or "canary"
    if report.namespace:
        subject += " (%s)" % report.namespace
    title = "%s: %s" % (subject, report.result or "Unknown")
    footer = "progressive.delivery canary report%s" % (" · run " + report.run_id if report.run_id else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        "<title>%s</title><style>%s</style></head>\n<body><main>%s%s%s<footer>%s</footer></main></body></html>\n"
    ) % (escape(title), STYLE + (EVIDENCE_STYLE if report.evidence else ""), _header(report), _timeline(report) + _evidence(report),
         _steps_table(report), escape(footer))
