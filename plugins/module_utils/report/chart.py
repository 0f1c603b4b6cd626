# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draws a release's timeline as inline SVG: the canary weight, then one panel per metric.

All panels share one time axis so a failed check, the weight at that moment
and the rollback line can be read straight down the page. The sequential
judge's evidence gets a chart of its own on the same time axis, so it lines up
with the timeline above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.builtin_names import DURATION, SUCCESS_RATE
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import FAIL, PASS
from ansible_collections.progressive.delivery.plugins.module_utils.report.model import (
    PROMOTION,
    ROLLBACK,
    Event,
    EvidencePoint,
    Report,
    Threshold,
    format_e_value,
    format_value,
)
from ansible_collections.progressive.delivery.plugins.module_utils.report.text import escape

WIDTH = 1100
LEFT = 64
RIGHT = 28
TOP = 30
LABEL_BASELINE = 16
PANEL_TITLE = 42
WEIGHT_HEIGHT = 120
METRIC_HEIGHT = 140
AXIS = 30
MAX_SAMPLE_DOTS = 400
EVIDENCE_HEIGHT = 180

# The evidence axis, as a share of the rollback boundary: enough room below 0 to
# show evidence for the canary, a little above 1 to show a crossing. A caught
# canary's evidence can reach many times its boundary; those points are drawn at
# the edge and counted, or every other line would be squashed flat.
EVIDENCE_LOW = -0.5
EVIDENCE_HIGH = 1.2

# Blue first, as the metric lines above; red stays for thresholds, failures and rollbacks.
EVIDENCE_COLOURS = ("#0969da", "#8250df", "#bf8700", "#1b7c83", "#bc4c00", "#bf3989", "#6e7781", "#953800")

EVIDENCE_TESTS = {
    "rate": "error share against the threshold",
    "ratio": "error rate against the primary",
    "latency-limit": "p99 against the limit",
    "latency-order": "slower than the primary",
}

# Units of Flagger's builtin Istio metrics (its PromQL gives a percentage and a p99 in milliseconds). A custom
# metric's unit is whatever its query returns, which the report cannot know.
METRIC_UNITS = {SUCCESS_RATE: "%", DURATION: "ms"}

TIME_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400)


@dataclass(frozen=True)
class Panel:
    top: float
    height: float
    low: float
    high: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def y(self, value: float) -> float:
        if self.high == self.low:
            return self.top + self.height / 2
        clamped = min(max(value, self.low), self.high)
        return self.bottom - (clamped - self.low) / (self.high - self.low) * self.height


class TimeScale:
    def __init__(self, span: float) -> None:
        self.span = span if span > 0 else 1.0
        self.width = WIDTH - LEFT - RIGHT

    def x(self, offset: float) -> float:
        return LEFT + min(max(offset, 0.0), self.span) / self.span * self.width

    def ticks(self) -> list[float]:
        step = next((candidate for candidate in TIME_STEPS if self.span / candidate <= 8), TIME_STEPS[-1])
        count = int(math.floor(self.span / step + 1e-9))
        return [index * step for index in range(count + 1)]


def format_offset(seconds: float) -> str:
    """Time since the start as an axis label: 45s, 2m, 1m30s, 1h05m."""
    total = int(round(seconds))
    if total < 60:
        return "%ds" % total
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%dh%02dm" % (hours, minutes)
    return "%dm" % minutes if secs == 0 else "%dm%02ds" % (minutes, secs)


def nice_range(values: Iterable[float]) -> tuple[float, float, list[float]]:
    """(low, high, ticks): every value inside with a little headroom, ticks on round numbers within the range."""
    numbers = list(values)
    if not numbers:
        return 0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]
    smallest, largest = min(numbers), max(numbers)
    spread = largest - smallest
    padding = spread * 0.08 if spread > 0 else max(abs(largest) * 0.05, 1.0)
    low, high = smallest - padding, largest + padding
    # A range of positive values should not show a negative axis only because of the headroom.
    if smallest >= 0 > low:
        low = 0.0
    raw_step = (high - low) / 4
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(factor * magnitude for factor in (1, 2, 2.5, 5, 10) if factor * magnitude >= raw_step)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    ticks = [round(index * step, 10) for index in range(first, last + 1)]
    return low, high, ticks


def metric_unit(metric: str) -> str:
    """The unit of a metric's values, or "" when it is not known."""
    return METRIC_UNITS.get(metric, "")


def metric_title(metric: str) -> str:
    """A metric's name with its unit, for a panel title or a column header: request-duration (ms)."""
    unit = metric_unit(metric)
    return "%s (%s)" % (metric, unit) if unit else metric


def format_metric_value(metric: str, value: float | None) -> str:
    """A value with its metric's unit: 212.4 ms, 99.5 %."""
    unit = metric_unit(metric)
    text = format_value(value)
    return "%s %s" % (text, unit) if unit and value is not None else text


def describe_threshold(threshold: Threshold) -> str:
    """The range with units: min 99 %, max 500 ms."""
    parts = []
    if threshold.minimum is not None:
        parts.append("min " + format_metric_value(threshold.metric, threshold.minimum))
    if threshold.maximum is not None:
        parts.append("max " + format_metric_value(threshold.metric, threshold.maximum))
    return ", ".join(parts) if parts else "no threshold"


def charted_metrics(report: Report) -> tuple[str, ...]:
    """The metrics that get a panel and a column: all of them once the run analysed anything (a metric without
    values then says so), none for a run that never analysed (an Initialized run), which would only draw empty frames."""
    analysed = bool(report.samples) or any(event.metrics for event in report.events)
    return report.metric_names if analysed else ()


def has_timeline(report: Report) -> bool:
    """Whether the run has anything to chart: a metric value or check, or traffic on the canary."""
    return bool(charted_metrics(report)) or any(weight for _offset, weight in weight_points(report))


def _num(value: float) -> str:
    return ("%.1f" % value).rstrip("0").rstrip(".")


def _title(text: str) -> str:
    return "<title>%s</title>" % escape(text)


def _text(x: float, y: float, content: str, css_class: str, anchor: str = "start") -> str:
    return '<text x="%s" y="%s" class="%s" text-anchor="%s">%s</text>' % (_num(x), _num(y), css_class, anchor, escape(content))


def _frame(panel: Panel, scale: TimeScale, ticks: list[float], labels: list[str]) -> list[str]:
    parts = ['<rect x="%d" y="%s" width="%s" height="%s" class="panel"/>' % (LEFT, _num(panel.top), _num(scale.width), _num(panel.height))]
    for tick in scale.ticks():
        x = _num(scale.x(tick))
        parts.append('<line x1="%s" x2="%s" y1="%s" y2="%s" class="grid"/>' % (x, x, _num(panel.top), _num(panel.bottom)))
    for value, label in zip(ticks, labels):
        y = panel.y(value)
        parts.append('<line x1="%d" x2="%s" y1="%s" y2="%s" class="grid"/>' % (LEFT, _num(LEFT + scale.width), _num(y), _num(y)))
        parts.append(_text(LEFT - 8, y + 4, label, "tick", "end"))
    return parts


def _event_label(event: Event) -> str:
    parts = [format_offset(event.offset or 0.0), event.kind]
    if event.weight is not None:
        parts.append("weight %s%%" % format_value(event.weight))
    if event.message:
        parts.append(event.message)
    return " · ".join(parts)


def weight_points(report: Report) -> list[tuple[float, float]]:
    """(offset, weight) in time order; traffic is all on the primary until the first recorded weight.

    Samples carry the weight they were taken at, so they show a step's start even when the
    report records the step only when it is judged. At the same moment an event wins over a
    sample, because events record changes and samples only observe.
    """
    points: list[tuple[float, float]] = [(0.0, 0.0)]
    timed: list[tuple[float, int, float]] = []
    for event in report.events:
        if event.offset is None:
            continue
        weight = event.weight if event.weight is not None else (0.0 if event.kind == ROLLBACK else None)
        if weight is not None:
            timed.append((event.offset, 1, weight))
    timed.extend((sample.offset, 0, sample.weight) for sample in report.samples if sample.weight is not None)
    timed.sort(key=lambda point: (point[0], point[1]))
    points.extend((offset, weight) for offset, _priority, weight in timed)
    if report.final_weight is not None and report.finished_at is not None:
        points.append((report.span, report.final_weight))
    return points


def _weight_panel(report: Report, scale: TimeScale, top: float) -> list[str]:
    panel = Panel(top=top, height=WEIGHT_HEIGHT, low=0.0, high=100.0)
    ticks = [0.0, 25.0, 50.0, 75.0, 100.0]
    parts = [_text(LEFT, top - 10, "Canary weight", "panel-title")]
    maximum = max(report.steps) if report.steps else None
    if maximum is not None:
        parts.append(_text(LEFT + scale.width, top - 10, "steps " + ", ".join(format_value(step) for step in report.steps) + " %",
                           "panel-note", "end"))
    parts.extend(_frame(panel, scale, ticks, ["%d%%" % tick for tick in ticks]))

    points = weight_points(report)
    path = ["M%s %s" % (_num(scale.x(points[0][0])), _num(panel.y(points[0][1])))]
    for offset, weight in points[1:]:
        path.append("H%s V%s" % (_num(scale.x(offset)), _num(panel.y(weight))))
    path.append("H%s" % _num(scale.x(report.span)))
    line = " ".join(path)
    parts.append('<path d="%s V%s H%d Z" class="weight-area"/>' % (line, _num(panel.bottom), LEFT))
    parts.append('<path d="%s" class="weight-line"/>' % line)

    previous = None
    for offset, weight in points[1:]:
        if weight != previous:
            parts.append('<circle cx="%s" cy="%s" r="3" class="weight-dot">%s</circle>' % (
                _num(scale.x(offset)), _num(panel.y(weight)), _title("%s: weight %s%%" % (format_offset(offset), format_value(weight)))))
        previous = weight

    for event in report.events:
        if event.offset is not None and event.failed:
            x = scale.x(event.offset)
            parts.append('<path d="M%s %s l-5 -9 h10 Z" class="failed-mark">%s</path>' % (
                _num(x), _num(panel.top + 10), _title("failed check at " + _event_label(event))))
    return parts


@dataclass(frozen=True)
class PlottedCheck:
    event: Event
    offset: float
    value: float | None
    result: str
    reason: str


def _metric_values(report: Report, metric: str) -> tuple[list[tuple[float, float]], list[PlottedCheck]]:
    samples = [(sample.offset, sample.value) for sample in report.samples if sample.metric == metric]
    checks = [
        PlottedCheck(event, event.offset, check.value, check.result, check.reason)
        for event in report.events if event.offset is not None
        for check in event.metrics if check.name == metric
    ]
    return samples, checks


def _threshold_lines(threshold: Threshold, panel: Panel, scale: TimeScale) -> list[str]:
    # Labels sit at the left edge: the right edge is where promotion and rollback lines usually fall.
    parts = []
    right = LEFT + scale.width
    label_x = LEFT + 6
    if threshold.minimum is not None:
        y = panel.y(threshold.minimum)
        parts.append('<rect x="%d" y="%s" width="%s" height="%s" class="bad-zone"/>' % (LEFT, _num(y), _num(scale.width), _num(panel.bottom - y)))
        parts.append('<line x1="%d" x2="%s" y1="%s" y2="%s" class="threshold"/>' % (LEFT, _num(right), _num(y), _num(y)))
        label_y = y + 14 if panel.bottom - y >= 18 else y - 5
        parts.append(_text(label_x, label_y, "min " + format_metric_value(threshold.metric, threshold.minimum), "threshold-label"))
    if threshold.maximum is not None:
        y = panel.y(threshold.maximum)
        parts.append('<rect x="%d" y="%s" width="%s" height="%s" class="bad-zone"/>' % (LEFT, _num(panel.top), _num(scale.width), _num(y - panel.top)))
        parts.append('<line x1="%d" x2="%s" y1="%s" y2="%s" class="threshold"/>' % (LEFT, _num(right), _num(y), _num(y)))
        label_y = y - 5 if y - panel.top >= 18 else y + 14
        parts.append(_text(label_x, label_y, "max " + format_metric_value(threshold.metric, threshold.maximum), "threshold-label"))
    return parts


def _check_marker(x: float, y: float, result: str, label: str) -> str:
    if result == PASS:
        return '<circle cx="%s" cy="%s" r="5" class="check-pass">%s</circle>' % (_num(x), _num(y), _title(label))
    if result == FAIL:
        return '<path d="M%s %s l6 6 l-6 6 l-6 -6 Z" class="check-fail">%s</path>' % (_num(x), _num(y - 6), _title(label))
    return '<rect x="%s" y="%s" width="9" height="9" class="check-other">%s</rect>' % (_num(x - 4.5), _num(y - 4.5), _title(label))


def _metric_panel(report: Report, metric: str, scale: TimeScale, top: float) -> list[str]:
    threshold = report.threshold_for(metric)
    samples, checks = _metric_values(report, metric)
    values = [sample[1] for sample in samples] + [check.value for check in checks if check.value is not None]
    bounds = [bound for bound in (threshold.minimum, threshold.maximum) if bound is not None]
    low, high, ticks = nice_range(values + bounds)
    panel = Panel(top=top, height=METRIC_HEIGHT, low=low, high=high)

    failed = sum(1 for check in checks if check.result == FAIL)
    note = describe_threshold(threshold)
    last = samples[-1][1] if samples else next((check.value for check in reversed(checks) if check.value is not None), None)
    if last is not None:
        note += " · last " + format_metric_value(metric, last)
    if failed:
        note += " · %d failed check%s" % (failed, "" if failed == 1 else "s")
    parts = [_text(LEFT, top - 10, metric_title(metric), "panel-title"), _text(LEFT + scale.width, top - 10, note, "panel-note", "end")]
    parts.extend(_frame(panel, scale, ticks, [format_metric_value(metric, tick) for tick in ticks]))
    parts.extend(_threshold_lines(threshold, panel, scale))

    if len(samples) > 1:
        points = " ".join("%s,%s" % (_num(scale.x(offset)), _num(panel.y(value))) for offset, value in samples)
        parts.append('<polyline points="%s" class="sample-line"/>' % points)
    if len(samples) <= MAX_SAMPLE_DOTS:
        for offset, value in samples:
            breach = threshold.breached_by(value)
            parts.append('<circle cx="%s" cy="%s" r="%s" class="%s">%s</circle>' % (
                _num(scale.x(offset)), _num(panel.y(value)), "2.5" if breach else "2", "sample-bad" if breach else "sample",
                _title("%s: %s %s" % (format_offset(offset), metric, format_metric_value(metric, value)))))

    for check in checks:
        y = panel.y(check.value) if check.value is not None else panel.bottom - 8
        label = "%s: %s %s — %s" % (format_offset(check.offset), metric, format_metric_value(metric, check.value),
                                    check.result.replace("_", " "))
        if check.reason:
            label += " (%s)" % check.reason
        if check.event.message:
            label += "; " + check.event.message
        parts.append(_check_marker(scale.x(check.offset), y, check.result, label))

    if not values:
        parts.append(_text(LEFT + scale.width / 2, panel.top + panel.height / 2 + 4, "no values recorded", "empty-note", "middle"))
    return parts


def _decisions(report: Report) -> list[tuple[float, str, str]]:
    """(offset, css class, label) of every promotion and rollback; a failed run without a recorded rollback is marked at its end."""
    decisions = [(event.offset, event.kind, _event_label(event)) for event in report.events
                 if event.offset is not None and event.kind in (PROMOTION, ROLLBACK)]
    if report.result.lower() == "failed" and not any(decision[1] == ROLLBACK for decision in decisions):
        decisions.append((report.span, ROLLBACK, "failed: " + (report.reason or "no rollback step was recorded")))
    return decisions


def _decision_lines(report: Report, scale: TimeScale, bottom: float) -> list[str]:
    parts = []
    labelled: list[float] = []
    for offset, kind, description in _decisions(report):
        x = scale.x(offset)
        label = "promoted" if kind == PROMOTION else "rolled back"
        parts.append('<line x1="%s" x2="%s" y1="%s" y2="%s" class="decision %s">%s</line>' % (
            _num(x), _num(x), _num(LABEL_BASELINE + 4), _num(bottom), kind, _title(description)))
        if all(abs(x - other) > 90 for other in labelled):
            anchor = "end" if x > WIDTH - RIGHT - 80 else "start"
            parts.append(_text(x + (-5 if anchor == "end" else 5), LABEL_BASELINE, "%s at %s" % (label, format_offset(offset)),
                               "decision-label " + kind, anchor))
            labelled.append(x)
    return parts


def timeline_svg(report: Report) -> str:
    scale = TimeScale(report.span)
    metrics = charted_metrics(report)
    top = TOP + PANEL_TITLE
    panels_bottom = top + WEIGHT_HEIGHT + len(metrics) * (PANEL_TITLE + METRIC_HEIGHT)
    height = panels_bottom + AXIS

    parts = _weight_panel(report, scale, top)
    position = top + WEIGHT_HEIGHT
    for metric in metrics:
        position += PANEL_TITLE
        parts.extend(_metric_panel(report, metric, scale, position))
        position += METRIC_HEIGHT

    for tick in scale.ticks():
        parts.append(_text(scale.x(tick), panels_bottom + 18, format_offset(tick), "tick", "middle"))
    parts.extend(_decision_lines(report, scale, panels_bottom))

    description = "Timeline of canary %s: weight%s over %s" % (
        report.name or "release", "".join(", " + metric for metric in metrics), format_offset(report.span))
    return ('<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 %d %s" role="img" aria-label="%s">%s%s</svg>' % (
        WIDTH, _num(height), escape(description), _title(description), "".join(parts)))


@dataclass(frozen=True)
class EvidenceSeries:
    """One sequential test of one metric, poll by poll, with the colour it has in the chart and the legend."""

    metric: str
    test: str
    points: tuple[EvidencePoint, ...]
    colour: str

    @property
    def test_name(self) -> str:
        return EVIDENCE_TESTS.get(self.test, self.test)

    @property
    def label(self) -> str:
        return "%s · %s" % (self.metric, self.test_name)

    @property
    def last(self) -> EvidencePoint:
        return self.points[-1]

    @property
    def peak(self) -> EvidencePoint:
        return max(self.points, key=lambda point: point.share)

    @property
    def first_crossing(self) -> EvidencePoint | None:
        return next((point for point in self.points if point.crossed), None)


def evidence_series(report: Report) -> list[EvidenceSeries]:
    """One series per (metric, test): metrics in the report's order, tests in the judge's order, unknown ones after."""
    grouped: dict[tuple[str, str], list[EvidencePoint]] = {}
    for point in report.evidence:
        grouped.setdefault((point.metric, point.test), []).append(point)
    metrics = list(report.metric_names)
    tests = list(EVIDENCE_TESTS)

    def order(key: tuple[str, str]) -> tuple[int, int]:
        metric, test = key
        return (metrics.index(metric) if metric in metrics else len(metrics),
                tests.index(test) if test in tests else len(tests))

    keys = sorted(grouped, key=order)
    return [EvidenceSeries(metric, test, tuple(grouped[(metric, test)]), EVIDENCE_COLOURS[index % len(EVIDENCE_COLOURS)])
            for index, (metric, test) in enumerate(keys)]


def format_share(share: float) -> str:
    return "%d%%" % round(share * 100)


def describe_evidence(point: EvidencePoint) -> str:
    """E-value against boundary in words a person reads: e-value 0.8 of 400 (-4% of the boundary)."""
    return "e-value %s of %s (%s of the boundary)" % (
        format_e_value(point.log_e_value), format_e_value(point.log_boundary), format_share(point.share))


def clipped_points(report: Report) -> list[EvidencePoint]:
    """The points outside the drawn range, which the chart shows at its edge."""
    return [point for point in report.evidence if not EVIDENCE_LOW <= point.share <= EVIDENCE_HIGH]


def weight_changes(report: Report) -> list[tuple[float, float]]:
    """(offset, new weight) each time the traffic split changed, as the weight line draws it."""
    changes = []
    previous = 0.0
    for offset, weight in weight_points(report)[1:]:
        if weight != previous:
            changes.append((offset, weight))
        previous = weight
    return changes


def _weight_change_marks(report: Report, panel: Panel, scale: TimeScale) -> list[str]:
    parts = []
    labelled: list[float] = []
    for offset, weight in weight_changes(report):
        x = scale.x(offset)
        text = "%s%%" % format_value(weight)
        parts.append('<line x1="%s" x2="%s" y1="%s" y2="%s" class="weight-change">%s</line>' % (
            _num(x), _num(x), _num(panel.top), _num(panel.bottom), _title("%s: weight %s" % (format_offset(offset), text))))
        if all(abs(x - other) > 34 for other in labelled):
            # Near the right edge the label goes left of its line, or it would run out of the chart.
            at_edge = x > LEFT + scale.width - 34
            parts.append(_text(x - 3 if at_edge else x + 3, panel.top + 12, text, "weight-change-label", "end" if at_edge else "start"))
            labelled.append(x)
    return parts


def _clip_marker(x: float, point: EvidencePoint, series: EvidenceSeries, panel: Panel) -> str:
    # A small arrow at the edge, pointing the way the real value lies.
    if point.share > EVIDENCE_HIGH:
        shape = "M%s %s l-4 6 h8 Z" % (_num(x), _num(panel.top))
    else:
        shape = "M%s %s l-4 -6 h8 Z" % (_num(x), _num(panel.bottom))
    return '<path d="%s" class="evidence-clipped" fill="%s">%s</path>' % (
        shape, series.colour, _title("%s: %s, %s (outside the chart)" % (format_offset(point.offset), series.label, describe_evidence(point))))


def _evidence_panel(report: Report, series_list: list[EvidenceSeries], scale: TimeScale, top: float) -> list[str]:
    panel = Panel(top=top, height=EVIDENCE_HEIGHT, low=EVIDENCE_LOW, high=EVIDENCE_HIGH)
    ticks = [-0.5, 0.0, 0.5, 1.0]
    boundaries = sorted({point.log_boundary for point in report.evidence})
    note = ("rollback at e-value %s (1/alpha)" % format_e_value(boundaries[0]) if len(boundaries) == 1
            else "boundaries differ per test: see the table")
    clipped = clipped_points(report)
    if clipped:
        note += " · %d point%s beyond %s…%s, drawn at the edge" % (
            len(clipped), "" if len(clipped) == 1 else "s", format_share(EVIDENCE_LOW), format_share(EVIDENCE_HIGH))
    parts = [_text(LEFT, top - 10, "Evidence against the canary, in % of the rollback boundary", "panel-title"),
             _text(LEFT + scale.width, top - 10, note, "panel-note evidence-note", "end")]
    parts.extend(_frame(panel, scale, ticks, [format_share(tick) for tick in ticks]))

    right = LEFT + scale.width
    boundary_y = panel.y(1.0)
    zero_y = panel.y(0.0)
    parts.append('<rect x="%d" y="%s" width="%s" height="%s" class="bad-zone"/>' % (
        LEFT, _num(panel.top), _num(scale.width), _num(boundary_y - panel.top)))
    parts.append('<line x1="%d" x2="%s" y1="%s" y2="%s" class="zero-line"/>' % (LEFT, _num(right), _num(zero_y), _num(zero_y)))
    parts.append('<line x1="%d" x2="%s" y1="%s" y2="%s" class="threshold evidence-boundary"/>' % (
        LEFT, _num(right), _num(boundary_y), _num(boundary_y)))
    parts.append(_text(LEFT + 6, boundary_y + 14, "rollback boundary (1/alpha)", "threshold-label"))
    parts.extend(_weight_change_marks(report, panel, scale))

    draw_clipped = len(clipped) <= MAX_SAMPLE_DOTS
    for series in series_list:
        points = " ".join("%s,%s" % (_num(scale.x(point.offset)), _num(panel.y(point.share))) for point in series.points)
        parts.append('<polyline points="%s" class="evidence-line" stroke="%s">%s</polyline>' % (
            points, series.colour, _title("%s: last %s" % (series.label, describe_evidence(series.last)))))
        if draw_clipped:
            parts.extend(_clip_marker(scale.x(point.offset), point, series, panel) for point in series.points
                         if not EVIDENCE_LOW <= point.share <= EVIDENCE_HIGH)
        last = series.last
        parts.append('<circle cx="%s" cy="%s" r="3" class="evidence-last" fill="%s">%s</circle>' % (
            _num(scale.x(last.offset)), _num(panel.y(last.share)), series.colour,
            _title("%s: %s, %s" % (format_offset(last.offset), series.label, describe_evidence(last)))))
    return parts


def evidence_summary(series_list: list[EvidenceSeries]) -> str:
    """One sentence per test for the chart's description: where its evidence ended against its boundary."""
    return "; ".join("%s: %s%s" % (series.label, describe_evidence(series.last),
                                   ", crossed at %s" % format_offset(series.first_crossing.offset) if series.first_crossing else "")
                     for series in series_list)


def evidence_svg(report: Report) -> str:
    """The sequential tests' evidence on the timeline's time axis; empty when the report carries none."""
    series_list = evidence_series(report)
    if not series_list:
        return ""
    scale = TimeScale(report.span)
    top = TOP + PANEL_TITLE
    bottom = top + EVIDENCE_HEIGHT
    parts = _evidence_panel(report, series_list, scale, top)
    for tick in scale.ticks():
        parts.append(_text(scale.x(tick), bottom + 18, format_offset(tick), "tick", "middle"))
    parts.extend(_decision_lines(report, scale, bottom))

    title = "Evidence against canary %s: %d sequential test%s over %s" % (
        report.name or "release", len(series_list), "" if len(series_list) == 1 else "s", format_offset(report.span))
    return ('<svg xmlns="http://www.w3.org/2000/svg" class="evidence-chart" viewBox="0 0 %d %s" role="img" aria-label="%s">'
            "%s<desc>%s</desc>%s</svg>" % (WIDTH, _num(bottom + AXIS), escape(title), _title(title),
                                           escape(evidence_summary(series_list)), "".join(parts)))
