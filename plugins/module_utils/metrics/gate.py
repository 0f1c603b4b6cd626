# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs metric checks against Prometheus in the gate's modes: once, watch, compare, at and range."""

from __future__ import annotations

import math
import re
import time as _time
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import (
    ERROR,
    FAIL,
    INCONCLUSIVE,
    NO_DATA,
    PASS,
    SKIPPED,
    Verdict,
    check_threshold,
    compare_error_rates,
    compare_latency,
    compare_values,
    decisive_value,
    describe_range,
    format_number,
    overall,
)
from ansible_collections.progressive.delivery.plugins.module_utils.durations import (
    PROMETHEUS,
    PROMETHEUS_DURATION_PATTERN,
    DurationError,
    prometheus_duration_seconds,
    to_seconds,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import (
    COUNT_QUERIES,
    PROBE_QUERIES,
    MetricSpec,
    RenderContext,
    TemplateError,
    render_metric,
    render_named,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import primary_name
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import format_rfc3339, parse_rfc3339_epoch
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import (
    PrometheusClient,
    PrometheusError,
    PrometheusQueryError,
    PrometheusUnavailable,
    QueryResult,
    collapse_whitespace,
)


class GateConfigError(DeliveryError):
    """The gate is misconfigured; retrying cannot help, so the task fails at once."""


def isoformat(timestamp: float) -> str:
    return format_rfc3339(timestamp, timespec="milliseconds")


_RELATIVE = re.compile(r"^(?:now)?\s*([+-])\s*(%s)$" % PROMETHEUS_DURATION_PATTERN)


# Prometheus and datetime both stop somewhere; anything outside this range is a typo.
LATEST_TIME = 253402300799.0  # 9999-12-31T23:59:59Z


def parse_time(value: Any, now: float) -> float:
    """Unix seconds from a number, RFC 3339 text, ``now``, or an offset such as ``-2h`` / ``now-30m``."""
    seconds = _parse_time(value, now)
    if not 0 <= seconds <= LATEST_TIME:
        raise GateConfigError("time %r is outside 1970-01-01 .. 9999-12-31" % (value,))
    return seconds


def _parse_time(value: Any, now: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text == "now":
        return now
    relative = _RELATIVE.match(text)
    if relative:
        offset = prometheus_duration_seconds(relative.group(2))
        return now - offset if relative.group(1) == "-" else now + offset
    try:
        return float(text)
    except ValueError:
        pass
    seconds = parse_rfc3339_epoch(text)
    if seconds is None:
        raise GateConfigError(
            "time %r is not understood; use RFC 3339 (2024-05-07T14:00:00Z), unix seconds, 'now', or an offset like -2h" % (value,)
        )
    return seconds


def parse_step(value: Any, option: str = "step") -> float:
    """Positive seconds from a number or a Prometheus duration such as ``30s`` or ``1m``; see ``durations``."""
    try:
        seconds = to_seconds(value, PROMETHEUS)
    except DurationError:
        raise GateConfigError("%s %r is not a number of seconds or a duration like 30s" % (option, value)) from None
    if seconds <= 0:
        raise GateConfigError("%s must be positive, got %r" % (option, value))
    return seconds


class Gate:
    def __init__(
        self,
        client: PrometheusClient,
        specs: list[MetricSpec],
        context: RenderContext,
        clock: Callable[[], float] = _time.time,
        sleep: Callable[[float], None] = _time.sleep,
        clients: Mapping[str, PrometheusClient] | None = None,
    ):
        self.client = client
        self.specs = specs
        self.context = context
        self.clock = clock
        self.sleep = sleep
        # Per metric name, the Prometheus that answers it when it is not ``client`` (see metrics/providers.py).
        self.clients = dict(clients or {})

    def client_for(self, spec: MetricSpec) -> PrometheusClient:
        return self.clients.get(spec.name, self.client)

    # -- single evaluation -------------------------------------------------------------------

    def render(self, spec: MetricSpec, context: RenderContext | None = None) -> str:
        try:
            return collapse_whitespace(render_metric(spec, context or self.context))
        except TemplateError as exc:
            raise GateConfigError(str(exc)) from None

    def _query(self, spec: MetricSpec, query: str, at: float | None) -> QueryResult:
        try:
            return self.client_for(spec).query(query, at)
        except PrometheusQueryError as exc:
            raise GateConfigError("metric '%s': %s" % (spec.name, exc)) from None

    def evaluate(self, at: float | None = None) -> list[dict[str, Any]]:
        return [self.evaluate_metric(spec, at) for spec in self.specs]

    def metric_entry(self, spec: MetricSpec, query: str) -> dict[str, Any]:
        """A metric's result before it is judged: where and how it is asked, and its bounds."""
        return {
            "name": spec.name,
            "source": spec.source,
            "prometheus": self.client_for(spec).display_url,
            "query": query,
            "interval": spec.interval,
            "threshold_range": spec.threshold_range.as_dict() if spec.threshold_range else None,
            "on_no_data": spec.on_no_data,
            "critical": spec.critical,
            "value": None,
            "series": 0,
        }

    def evaluate_metric(self, spec: MetricSpec, at: float | None = None) -> dict[str, Any]:
        query = self.render(spec)
        entry = self.metric_entry(spec, query)
        try:
            result = self._query(spec, query, at)
        except PrometheusUnavailable as exc:
            return dict(entry, result=ERROR, ok=False, reason="check failed, Prometheus did not answer: %s" % exc)
        entry["series"] = len(result.series)
        values = result.finite_values()
        if not values:
            return self._no_data(entry, spec, result, at)
        value = decisive_value(values, spec.threshold_range)
        verdict = check_threshold(value, spec.threshold_range)
        reason = verdict.reason
        if len(values) > 1:
            reason += " (worst of %d series)" % len(values)
        return dict(entry, value=value, result=verdict.result, ok=verdict.result == PASS, reason=reason)

    def _no_data(self, entry: dict[str, Any], spec: MetricSpec, result: QueryResult | None, at: float | None,
                 context: RenderContext | None = None) -> dict[str, Any]:
        context = context or self.context
        if result is not None and result.series:
            what = "the query returned NaN (typically 0/0: no requests in the %s window)" % spec.interval
        else:
            what = "the query returned no data"
        diagnosis = self.diagnose(context, spec.interval, at, self.client_for(spec))
        reason = "%s; %s" % (what, diagnosis)
        if spec.on_no_data == "skip":
            return dict(entry, result=SKIPPED, ok=True, reason=reason + " (on_no_data: skip)")
        if spec.on_no_data == "pass":
            return dict(entry, result=NO_DATA, ok=True, reason=reason + " (on_no_data: pass)")
        return dict(entry, result=NO_DATA, ok=False, reason=reason + " (on_no_data: fail)")

    def diagnose(self, context: RenderContext, interval: str, at: float | None = None,
                 client: PrometheusClient | None = None) -> str:
        """Say why a workload's metric is likely empty: no telemetry at all, or telemetry without traffic."""
        workload = "%s/%s" % (context.namespace, context.target)
        # Asked of the Prometheus that came back empty: another one may well see the workload.
        client = client or self.client

        def probe(key: str) -> float:
            query = render_named(PROBE_QUERIES[key], context, interval)
            values = client.query(query, at).finite_values()
            return values[0] if values else 0.0

        try:
            if probe("workload_series") > 0:
                requests = probe("workload_requests")
                if requests < 0.5:
                    return ("Istio series exist for workload %s but it received no requests in the last %s: no traffic "
                            "(check the VirtualService weights and that clients or a load generator call the service)" % (workload, interval))
                return ("Istio telemetry shows %s requests to %s in the last %s, so the query's own selectors or "
                        "arithmetic produce nothing; check its label names and values" % (format_number(round(requests)), workload, interval))
            if probe("namespace_series") > 0:
                return ("no Istio telemetry for workload %s while other workloads in namespace %s report: "
                        "sidecar missing? (check sidecar injection for its pods), or no request ever reached it "
                        "(check that its Service and the VirtualService route to it)" % (workload, context.namespace))
            if probe("any_series") > 0:
                return ("no Istio telemetry in namespace %s at all: sidecar missing? "
                        "(is injection enabled for the namespace?)" % context.namespace)
            return "Prometheus has no istio_requests_total series at all: is it scraping the Istio proxies?"
        except PrometheusError as exc:
            return "diagnosis not possible: %s" % exc

    # -- modes -------------------------------------------------------------------------------

    def once(self, at: float | None = None) -> dict[str, Any]:
        evaluated_at = at if at is not None else self.clock()
        results = self.evaluate(at)
        passed, verdict = overall(results)
        return {"passed": passed, "verdict": verdict, "metrics": results, "evaluated_at": isoformat(evaluated_at)}

    def watch(self, poll: float, duration: float) -> dict[str, Any]:
        """Evaluate every ``poll`` seconds until ``duration`` has passed; stop at the first breach."""
        start = self.clock()
        deadline = start + duration
        samples: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        breach = False
        while True:
            taken = self.clock()
            results = self.evaluate()
            samples.append(watch_sample(taken, start, results))
            breach = any(r["result"] == FAIL for r in results)
            if breach or taken >= deadline:
                break
            next_time = min(start + len(samples) * poll, deadline)
            self.sleep(max(0.0, next_time - self.clock()))
        return watch_result(results, samples, breach)

    def range(self, start: float, end: float, step: float) -> dict[str, Any]:
        """Replay the checks over past data, one evaluation per ``step``, as the gate would have seen it."""
        if end <= start:
            raise GateConfigError("range needs end after start (start %s, end %s)" % (isoformat(start), isoformat(end)))
        points = int(math.floor((end - start) / step)) + 1
        if points > 11000:
            raise GateConfigError("range %s..%s at step %gs has %d points; Prometheus allows 11000, use a larger step" % (
                isoformat(start), isoformat(end), step, points))
        per_time: dict[float, list[dict[str, Any]]] = {}
        results = []
        for spec in self.specs:
            query = self.render(spec)
            entry = self.metric_entry(spec, query)
            try:
                data = self.client_for(spec).query_range(query, start, end, step)
            except PrometheusQueryError as exc:
                raise GateConfigError("metric '%s': %s" % (spec.name, exc)) from None
            except PrometheusUnavailable as exc:
                results.append(dict(entry, result=ERROR, ok=False, reason="check failed, Prometheus did not answer: %s" % exc))
                continue
            results.append(self._judge_range(spec, entry, data, end, per_time))
        samples = [
            {"timestamp": t, "at": isoformat(t), "passed": all(m["result"] != FAIL for m in metrics), "metrics": metrics}
            for t, metrics in sorted(per_time.items())
        ]
        passed, verdict = overall(results)
        return {"passed": passed, "verdict": verdict, "metrics": results, "samples": samples, "evaluated_at": isoformat(end)}

    def _judge_range(self, spec: MetricSpec, entry: dict[str, Any], data: QueryResult, end: float,
                     per_time: dict[float, list[dict[str, Any]]]) -> dict[str, Any]:
        by_time: dict[float, list[float]] = {}
        for series in data.series:
            for timestamp, value in series.values:
                if not math.isnan(value):
                    by_time.setdefault(timestamp, []).append(value)
        entry["series"] = len(data.series)
        if not by_time:
            return self._no_data(entry, spec, data, end)
        breaches = []
        worst: float | None = None
        for timestamp in sorted(by_time):
            value = decisive_value(by_time[timestamp], spec.threshold_range)
            verdict = check_threshold(value, spec.threshold_range)
            per_time.setdefault(timestamp, []).append({"name": spec.name, "value": value, "result": verdict.result})
            if verdict.result == FAIL:
                breaches.append((timestamp, value))
            if worst is None or decisive_value([worst, value], spec.threshold_range) == value:
                worst = value
        checked = len(by_time)
        entry.update(value=worst, steps=checked, breaches=len(breaches))
        if breaches:
            first_time, first_value = breaches[0]
            entry["first_breach_at"] = isoformat(first_time)
            return dict(entry, result=FAIL, ok=False, reason="%d of %d evaluations breached %s; first at %s with %s" % (
                len(breaches), checked, describe_range(spec.threshold_range), isoformat(first_time), format_number(first_value)))
        return dict(entry, result=PASS, ok=True, reason="all %d evaluations within %s (worst %s)" % (
            checked, describe_range(spec.threshold_range), format_number(worst)))

    def compare(self, primary: str, confidence: float, min_requests: int, latency_tolerance: float,
                at: float | None = None) -> dict[str, Any]:
        """Judge the canary against the primary over the same window instead of against fixed numbers alone."""
        evaluated_at = at if at is not None else self.clock()
        primary_context = self.context.for_target(primary)
        results = [self._compare_metric(spec, primary_context, confidence, min_requests, latency_tolerance, at) for spec in self.specs]
        passed, verdict = overall(results)
        comparison = {
            "verdict": verdict,
            "canary": self.context.target,
            "primary": primary,
            "confidence": confidence,
            "min_requests": min_requests,
            "latency_tolerance": latency_tolerance,
            "metrics": [{"name": r["name"], "result": r["result"], "reason": r["reason"], **r.get("comparison", {})} for r in results],
        }
        return {"passed": passed, "verdict": verdict, "metrics": results, "comparison": comparison, "evaluated_at": isoformat(evaluated_at)}

    def _compare_metric(self, spec: MetricSpec, primary_context: RenderContext, confidence: float, min_requests: int,
                        latency_tolerance: float, at: float | None) -> dict[str, Any]:
        canary_entry = self.evaluate_metric(spec, at)
        if canary_entry["result"] in (ERROR, NO_DATA, SKIPPED):
            return canary_entry
        primary_query = self.render(spec, primary_context)
        try:
            primary_result = self._query(spec, primary_query, at)
            primary_values = primary_result.finite_values()
            primary_value = decisive_value(primary_values, spec.threshold_range) if primary_values else None
            if spec.builtin == "request-success-rate":
                verdict = self._compare_success(spec, primary_context, confidence, min_requests, at)
            elif spec.builtin == "request-duration":
                verdict = self._compare_duration(spec, primary_context, latency_tolerance, confidence, min_requests, at)
            elif primary_value is None:
                verdict = Verdict(canary_entry["result"], "primary %s has no data to compare with; judged on the threshold alone: %s" % (
                    primary_context.target, canary_entry["reason"]))
            else:
                verdict = compare_values(canary_entry["value"], primary_value, spec.threshold_range)
        except PrometheusUnavailable as exc:
            return dict(canary_entry, result=ERROR, ok=False, reason="comparison failed, Prometheus did not answer: %s" % exc)
        details = dict(verdict.details, canary_value=canary_entry["value"], primary_value=primary_value)
        return dict(
            canary_entry,
            primary_query=primary_query,
            primary_value=primary_value,
            result=verdict.result,
            ok=verdict.result == PASS,
            reason=verdict.reason,
            comparison=details,
        )

    def _scalar(self, spec: MetricSpec, key: str, context: RenderContext, at: float | None) -> float | None:
        query = render_named(COUNT_QUERIES[key], context, spec.interval)
        values = self._query(spec, query, at).finite_values()
        return values[0] if values else None

    def _compare_success(self, spec: MetricSpec, primary_context: RenderContext, confidence: float, min_requests: int,
                         at: float | None) -> Verdict:
        canary_requests = self._scalar(spec, "requests", self.context, at)
        canary_errors = self._scalar(spec, "errors", self.context, at) or 0.0
        primary_requests = self._scalar(spec, "requests", primary_context, at)
        primary_errors = self._scalar(spec, "errors", primary_context, at) or 0.0
        return compare_error_rates(canary_requests, canary_errors, primary_requests, primary_errors, confidence, min_requests)

    def _buckets(self, spec: MetricSpec, context: RenderContext, at: float | None) -> dict[float, float]:
        query = render_named(COUNT_QUERIES["duration_buckets"], context, spec.interval)
        buckets: dict[float, float] = {}
        for series in self._query(spec, query, at).series:
            try:
                bound = float(series.labels.get("le", ""))
            except ValueError:
                continue
            if series.value is not None and not math.isnan(series.value):
                buckets[bound] = series.value
        return buckets

    def _compare_duration(self, spec: MetricSpec, primary_context: RenderContext, tolerance: float, confidence: float,
                          min_requests: int, at: float | None) -> Verdict:
        return compare_latency(self._buckets(spec, self.context, at), self._buckets(spec, primary_context, at), tolerance, confidence, min_requests)


def watch_result(results: list[dict[str, Any]], samples: list[dict[str, Any]], breached: bool) -> dict[str, Any]:
    """What a watch returns: the last evaluation's verdict, every sample, and whether it stopped at a breach."""
    passed, verdict = overall(results)
    return {
        "passed": passed,
        "verdict": verdict,
        "metrics": results,
        "samples": samples,
        "breached": breached,
        "evaluated_at": isoformat(samples[-1]["timestamp"]),
    }


def watch_sample(taken: float, start: float, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "timestamp": taken,
        "at": isoformat(taken),
        "elapsed": round(taken - start, 3),
        "passed": all(r["result"] != FAIL for r in results) and all(r["ok"] for r in results),
        "metrics": [{"name": r["name"], "value": r["value"], "result": r["result"], "reason": r["reason"]} for r in results],
    }


MODES = ("once", "watch", "compare", "at", "range")


def run_mode(gate: Gate, options: dict[str, Any]) -> dict[str, Any]:
    """Dispatch on ``options['mode']`` with the module's option names; returns the module's result keys."""
    mode = options.get("mode") or "once"
    now = gate.clock()
    if mode == "once":
        return gate.once()
    if mode == "at":
        if options.get("time") in (None, ""):
            raise GateConfigError("mode 'at' needs the option 'time'")
        return gate.once(parse_time(options["time"], now))
    if mode == "watch":
        poll = parse_step(options.get("poll") if options.get("poll") is not None else 5, "poll")
        duration = _non_negative_seconds(options.get("duration") if options.get("duration") is not None else 60, "duration")
        return gate.watch(poll, duration)
    if mode == "compare":
        confidence = float(options.get("confidence") if options.get("confidence") is not None else 0.95)
        if not 0.5 <= confidence < 1.0:
            raise GateConfigError("confidence must be at least 0.5 and below 1, got %g" % confidence)
        tolerance = float(options.get("latency_tolerance") if options.get("latency_tolerance") is not None else 1.2)
        if tolerance < 1.0:
            raise GateConfigError("latency_tolerance is a ratio of canary to primary latency and must be at least 1, got %g" % tolerance)
        primary = options.get("primary") or primary_name(gate.context.target)
        at = parse_time(options["time"], now) if options.get("time") not in (None, "") else None
        min_requests = int(options.get("min_requests") if options.get("min_requests") is not None else 50)
        return gate.compare(primary, confidence, min_requests, tolerance, at)
    if mode == "range":
        if options.get("start") in (None, ""):
            raise GateConfigError("mode 'range' needs the option 'start'")
        start = parse_time(options["start"], now)
        end = parse_time(options.get("end") or "now", now)
        return gate.range(start, end, parse_step(options.get("step") or "1m"))
    raise GateConfigError("mode must be one of %s, got %r" % (", ".join(MODES), mode))


def _non_negative_seconds(value: Any, option: str) -> float:
    try:
        seconds = to_seconds(value, PROMETHEUS)
    except DurationError:
        raise GateConfigError("%s %r is not a number of seconds or a duration like 5m" % (option, value)) from None
    if seconds < 0:
        raise GateConfigError("%s must be 0 or more, got %r" % (option, value))
    return seconds


def summarize(result: dict[str, Any]) -> str:
    """One line for people: the verdict and, when it is not a pass, every metric that made it so."""
    metrics = result.get("metrics") or []
    if result.get("passed"):
        return "metric gate passed: %s" % "; ".join("%s %s" % (m["name"], format_number(m.get("value"))) for m in metrics)
    blocking = [m for m in metrics if not m.get("ok") or m.get("result") == INCONCLUSIVE]
    return "metric gate %s: %s" % (
        {"fail": "failed", "inconclusive": "inconclusive"}.get(result.get("verdict"), result.get("verdict")),
        "; ".join("%s [%s] %s" % (m["name"], m["result"], m["reason"]) for m in blocking),
    )
