# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads a release report (the JSON the canary role writes) into typed, validated values.

A report is written by a run that may have been interrupted or may have failed
half-way, so every field is optional here: missing or malformed values become
``None`` instead of errors, and the renderer shows what is known.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import FAIL, INCONCLUSIVE
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import parse_rfc3339

PROMOTION = "promotion"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Threshold:
    metric: str
    minimum: float | None
    maximum: float | None

    def describe(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append("min " + format_value(self.minimum))
        if self.maximum is not None:
            parts.append("max " + format_value(self.maximum))
        return ", ".join(parts) if parts else "no threshold"

    def breached_by(self, value: float) -> bool:
        return (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum)


@dataclass(frozen=True)
class MetricCheck:
    name: str
    value: float | None
    result: str
    minimum: float | None
    maximum: float | None
    reason: str


@dataclass(frozen=True)
class WebhookCall:
    name: str
    type: str
    passed: bool | None
    status: str


@dataclass(frozen=True)
class Event:
    time: datetime.datetime | None
    offset: float | None
    kind: str
    weight: float | None
    metrics: tuple[MetricCheck, ...]
    webhooks: tuple[WebhookCall, ...]
    failed_checks: int | None
    message: str

    @property
    def failed(self) -> bool:
        return any(check.result == FAIL for check in self.metrics) or any(hook.passed is False for hook in self.webhooks)


@dataclass(frozen=True)
class Sample:
    offset: float
    metric: str
    value: float
    weight: float | None


@dataclass(frozen=True)
class EvidencePoint:
    """One poll of one sequential test: how far its evidence against the canary has come toward rollback."""

    offset: float
    metric: str
    test: str
    log_e_value: float
    log_boundary: float
    weight: float | None

    @property
    def share(self) -> float:
        """The evidence as a share of the boundary: 0 is none either way, 1 rolls the canary back, below 0 favours it."""
        return self.log_e_value / self.log_boundary

    @property
    def crossed(self) -> bool:
        return self.log_e_value >= self.log_boundary


@dataclass(frozen=True)
class Report:
    name: str
    namespace: str
    run_id: str
    mode: str
    result: str
    reason: str
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    duration_seconds: float | None
    final_weight: float | None
    failed_checks: int | None
    threshold: int | None
    steps: tuple[float, ...]
    thresholds: tuple[Threshold, ...]
    events: tuple[Event, ...]
    samples: tuple[Sample, ...]
    span: float
    """Seconds from the first to the last known moment of the run (0 when no time is known)."""
    evidence: tuple[EvidencePoint, ...] = ()

    @property
    def metric_names(self) -> tuple[str, ...]:
        names: list[str] = [threshold.metric for threshold in self.thresholds]
        for event in self.events:
            names.extend(check.name for check in event.metrics)
        names.extend(sample.metric for sample in self.samples)
        return tuple(dict.fromkeys(name for name in names if name))

    def threshold_for(self, metric: str) -> Threshold:
        for threshold in self.thresholds:
            if threshold.metric == metric:
                return threshold
        # Older or partial reports carry the range only on each check.
        for event in self.events:
            for check in event.metrics:
                if check.name == metric and (check.minimum is not None or check.maximum is not None):
                    return Threshold(metric, check.minimum, check.maximum)
        return Threshold(metric, None, None)


def to_number(value: Any) -> float | None:
    """A finite float from a number or numeric text; anything else (bool, NaN, garbage) is unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int | None:
    number = to_number(value)
    return int(number) if number is not None else None


def to_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def parse_time(value: Any) -> datetime.datetime | None:
    """An aware datetime from ISO 8601 text (``Z`` suffix allowed) or epoch seconds; naive times are UTC."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str):
        return parse_rfc3339(value)
    else:
        seconds = to_number(value)
        if seconds is None:
            return None
        try:
            return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def format_value(value: float | None) -> str:
    """Short, stable text for a metric value or threshold: 99.65, 212.4, 500, 0.0012."""
    if value is None:
        return "–"
    if value == int(value) and abs(value) < 1e15:
        return "%d" % value
    magnitude = abs(value)
    if magnitude >= 100:
        text = "%.1f" % value
    elif magnitude >= 1:
        text = "%.2f" % value
    else:
        text = "%.3g" % value
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def format_e_value(log_value: float) -> str:
    """exp(log_value) as short text: 0.8, 400, 2.4e17, 5e-9; from the log, because a caught canary's e-value outgrows a float."""
    exponent = log_value / math.log(10)
    if -3 < exponent < 5:
        value = math.exp(log_value)
        return "%d" % round(value) if value >= 10 else format_value(float("%.2g" % value))
    power = math.floor(exponent)
    mantissa = round(10 ** (exponent - power), 1)
    if mantissa >= 10:
        mantissa, power = mantissa / 10, power + 1
    return "%se%d" % (format_value(mantissa), power)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return ("%.1f s" % seconds) if seconds < 10 and seconds != int(seconds) else "%d s" % round(seconds)
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%d h %02d min %02d s" % (hours, minutes, secs)
    return "%d min %02d s" % (minutes, secs)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else ()


def _read_check(raw: Mapping[str, Any]) -> MetricCheck:
    return MetricCheck(
        name=to_text(raw.get("name")),
        value=to_number(raw.get("value")),
        result=to_text(raw.get("result")).lower() or INCONCLUSIVE,
        minimum=to_number(raw.get("min")),
        maximum=to_number(raw.get("max")),
        reason=to_text(raw.get("reason")),
    )


def _read_webhook(raw: Mapping[str, Any]) -> WebhookCall:
    passed = raw.get("passed")
    return WebhookCall(
        name=to_text(raw.get("name")),
        type=to_text(raw.get("type")),
        passed=passed if isinstance(passed, bool) else None,
        status=to_text(raw.get("status")),
    )


def _read_evidence(raw: Mapping[str, Any]) -> tuple[datetime.datetime, EvidencePoint] | None:
    """A point only when every part the chart needs is there; a boundary must be above 0 (an e-value above 1) to mean anything.

    The offset is filled in once the run's first moment is known.
    """
    moment = parse_time(raw.get("time"))
    metric, test = to_text(raw.get("metric")), to_text(raw.get("test"))
    log_e_value, log_boundary = to_number(raw.get("log_e_value")), to_number(raw.get("log_boundary"))
    if moment is None or not metric or not test or log_e_value is None or log_boundary is None or log_boundary <= 0:
        return None
    return moment, EvidencePoint(offset=0.0, metric=metric, test=test, log_e_value=log_e_value, log_boundary=log_boundary,
                                 weight=to_number(raw.get("weight")))


def _offset(moment: datetime.datetime | None, origin: datetime.datetime | None) -> float | None:
    if moment is None or origin is None:
        return None
    return (moment - origin).total_seconds()


def load_report(data: Mapping[str, Any]) -> Report:
    canary = _mapping(data.get("canary"))
    started_at = parse_time(data.get("started_at"))
    finished_at = parse_time(data.get("finished_at"))

    raw_events = [_mapping(item) for item in _sequence(data.get("timeline"))]
    raw_samples = [_mapping(item) for item in _sequence(data.get("samples"))]
    read_evidence = [point for point in (_read_evidence(_mapping(item)) for item in _sequence(data.get("evidence"))) if point is not None]
    event_times = [parse_time(item.get("time")) for item in raw_events]
    sample_times = [parse_time(item.get("time")) for item in raw_samples]
    evidence_times = [moment for moment, _point in read_evidence]

    known = [moment for moment in [started_at, finished_at, *event_times, *sample_times, *evidence_times] if moment is not None]
    origin = min(known) if known else None
    end = max(known) if known else None
    if started_at is not None and finished_at is None and origin is not None:
        duration = to_number(data.get("duration_seconds"))
        if duration is not None and duration > 0:
            end = max(end or origin, started_at + datetime.timedelta(seconds=duration))

    events = tuple(
        Event(
            time=moment,
            offset=_offset(moment, origin),
            kind=to_text(raw.get("kind")).lower() or "event",
            weight=to_number(raw.get("weight")),
            metrics=tuple(_read_check(_mapping(item)) for item in _sequence(raw.get("metrics"))),
            webhooks=tuple(_read_webhook(_mapping(item)) for item in _sequence(raw.get("webhooks"))),
            failed_checks=to_int(raw.get("failed_checks")),
            message=to_text(raw.get("message")),
        )
        for raw, moment in zip(raw_events, event_times)
    )

    samples = []
    for raw, moment in zip(raw_samples, sample_times):
        value = to_number(raw.get("value"))
        offset = _offset(moment, origin)
        metric = to_text(raw.get("metric"))
        if value is None or offset is None or not metric:
            continue
        samples.append(Sample(offset=offset, metric=metric, value=value, weight=to_number(raw.get("weight"))))
    samples.sort(key=lambda sample: sample.offset)

    evidence = sorted((dataclasses.replace(point, offset=_offset(moment, origin) or 0.0) for moment, point in read_evidence),
                      key=lambda point: point.offset)

    thresholds = tuple(
        Threshold(to_text(item.get("metric")), to_number(item.get("min")), to_number(item.get("max")))
        for item in (_mapping(raw) for raw in _sequence(data.get("thresholds")))
        if to_text(item.get("metric"))
    )

    return Report(
        name=to_text(canary.get("name")),
        namespace=to_text(canary.get("namespace")),
        run_id=to_text(data.get("run_id")),
        mode=to_text(data.get("mode")),
        result=to_text(data.get("result")),
        reason=to_text(data.get("reason")),
        started_at=started_at,
        finished_at=finished_at,
        duration_seconds=to_number(data.get("duration_seconds")),
        final_weight=to_number(data.get("final_weight")),
        failed_checks=to_int(data.get("failed_checks")),
        threshold=to_int(data.get("threshold")),
        steps=tuple(number for number in (to_number(step) for step in _sequence(data.get("steps"))) if number is not None),
        thresholds=thresholds,
        events=events,
        samples=tuple(samples),
        span=(end - origin).total_seconds() if origin is not None and end is not None else 0.0,
        evidence=tuple(evidence),
    )
