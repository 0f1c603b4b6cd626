# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One interval of sequential analysis: the builtin metrics from exact counts, every other metric as ``watch`` does.

Every ``poll`` seconds the counters of the canary and the primary are read (``release_counts``), the sequential
tests take the new requests, and the other metrics (MetricTemplates, custom queries) are evaluated against their
thresholds. The interval stops at the first failure. Its result has the shape of ``Gate.watch``'s, so the step
loop's assessment reads it the same way, plus the tests' evidence and the state the next interval goes on from.
"""

from __future__ import annotations

import time as _time
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import (
    Gate,
    GateConfigError,
    isoformat,
    parse_step,
    parse_time,
    watch_result,
    watch_sample,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import PrometheusUnavailable
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.release_counts import IstioCountQueries, ReleaseCounter
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_judge import (
    Judgement,
    SequentialConfigError,
    SequentialJudge,
    SequentialSettings,
    sequential_specs,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import MetricSpec
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import primary_name
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import (
    ERROR,
    FAIL,
    INCONCLUSIVE,
    SKIPPED,
)


class SequentialGate:
    """The gate of one release in sequential mode; keep one per release and pass its state between processes."""

    def __init__(self, gate: Gate, primary: str, settings: SequentialSettings, interval: float,
                 state: Mapping[str, Any] | None = None) -> None:
        self.gate = gate
        self.primary = primary
        self.specs = sequential_specs(gate.specs)
        names = {spec.name for spec in self.specs}
        self.others = [spec for spec in gate.specs if spec.name not in names]
        self.judge = SequentialJudge(self.specs, settings, interval)
        self.counter: ReleaseCounter | None = None
        if self.specs:
            context = gate.context
            self.counter = ReleaseCounter(gate.client_for(self.specs[0]), context.namespace, context.target, primary,
                                          clock=gate.clock)
        state = state or {}
        # When the canary began taking traffic; the counts start there (a later start would miss its first errors).
        self.traffic_since: float | None = state.get("traffic_since")
        if self.counter is not None and state.get("counter"):
            self.counter.restore(state["counter"])
            self.judge.restore(state.get("judge") or {})

    @property
    def clock(self) -> Callable[[], float]:
        return self.gate.clock

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"traffic_since": self.traffic_since}
        if self.counter is not None and self.counter.started_at is not None:
            state.update(counter=self.counter.to_state(), judge=self.judge.to_state())
        return state

    def watch(self, poll: float, duration: float) -> dict[str, Any]:
        """Poll for ``duration`` seconds, or until a test crosses its boundary or another metric fails."""
        start = self.clock()
        self._start_counting(start)
        self.judge.begin_interval()
        deadline = start + duration
        samples: list[dict[str, Any]] = []
        evidence: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        while True:
            taken = self.clock()
            judgements = self._judge(taken)
            last = taken >= deadline
            results = [self._entry(j, last) for j in judgements] + [self.gate.evaluate_metric(s) for s in self.others]
            evidence.extend(dict(point, time=isoformat(taken)) for j in judgements if isinstance(j, Judgement)
                            for point in j.evidence())
            samples.append(watch_sample(taken, start, results))
            if any(r["result"] == FAIL for r in results) or last:
                break
            next_time = min(start + len(samples) * poll, deadline)
            self.gate.sleep(max(0.0, next_time - self.clock()))
        failed = [r for r in results if r["result"] == FAIL]
        if failed and not last:
            # Stopped early: the sequential metrics that had not failed stay as they were, not a verdict.
            results = [r if r["result"] == FAIL or not r.get("sequential") else dict(r, result=INCONCLUSIVE, ok=True)
                       for r in results]
        return dict(watch_result(results, samples, bool(failed)), evidence=evidence)

    def _start_counting(self, now: float) -> None:
        if self.counter is None or self.counter.started_at is not None:
            return
        if self.traffic_since is None or self.traffic_since > now:
            self.traffic_since = now
        self.counter.start(self.traffic_since)

    def _judge(self, at: float) -> list[Judgement | PrometheusUnavailable]:
        if self.counter is None:
            return []
        try:
            counts = self.counter.poll(at)
        except PrometheusUnavailable as exc:
            # The counters keep their last answer, so the next poll still covers every request since it.
            return [exc] * len(self.specs)
        return list(self.judge.observe(counts))

    def _entry(self, judged: Judgement | PrometheusUnavailable, last: bool) -> dict[str, Any]:
        spec = self.specs[0] if isinstance(judged, PrometheusUnavailable) else self._spec(judged.name)
        if isinstance(judged, PrometheusUnavailable):
            return self._base(spec, result=ERROR, ok=False, reason="check failed, Prometheus did not answer: %s" % judged)
        if last:
            judged = self.judge.conclude(judged)
        entry = self._base(spec, value=judged.value, result=judged.result, ok=judged.result != FAIL,
                           reason=judged.reason, sequential=[v.as_dict() for v in judged.verdicts])
        if judged.result == INCONCLUSIVE and last:
            return _as_no_data(entry, spec)
        return entry

    def _spec(self, name: str) -> MetricSpec:
        return next(spec for spec in self.specs if spec.builtin == name)

    def _base(self, spec: MetricSpec, **fields: Any) -> dict[str, Any]:
        queries = IstioCountQueries(self.gate.context.namespace, self.gate.context.target, self.primary)
        started = self.counter.started_at if self.counter is not None else None
        entry = self.gate.metric_entry(spec, "%s and %s since %s" % (queries.requests, queries.durations,
                                                                     isoformat(started or 0)))
        entry.update(fields)
        return entry


def _as_no_data(entry: dict[str, Any], spec: MetricSpec) -> dict[str, Any]:
    """An interval that ends without enough requests counts as Flagger's no data does (the metric's on_no_data)."""
    if spec.on_no_data == "skip":
        return dict(entry, result=SKIPPED, ok=True, reason=entry["reason"] + " (on_no_data: skip)")
    return dict(entry, result=INCONCLUSIVE, ok=spec.on_no_data == "pass",
                reason=entry["reason"] + " (on_no_data: %s)" % spec.on_no_data)


def run_sequential(gate: Gate, options: Mapping[str, Any]) -> dict[str, Any]:
    """prometheus_gate's ``mode: sequential``: one interval, going on from ``sequential.state`` when given."""
    settings = dict(options.get("sequential") or {})
    state = settings.pop("state", None) or {}
    try:
        chosen = SequentialSettings(**{key: value for key, value in settings.items() if value is not None})
    except SequentialConfigError as exc:
        raise GateConfigError("sequential: %s" % exc) from None
    poll = parse_step(options.get("poll") if options.get("poll") is not None else 5, "poll")
    duration = parse_step(options.get("duration") if options.get("duration") is not None else 60, "duration")
    if not sequential_specs(gate.specs):
        raise GateConfigError("mode 'sequential' tests the builtin request-success-rate (with thresholdRange.min) and "
                              "request-duration (with thresholdRange.max); none of the metrics is one of them")
    if options.get("start") not in (None, "") and "traffic_since" not in state:
        state = dict(state, traffic_since=parse_time(options["start"], gate.clock()))
    primary = options.get("primary") or primary_name(gate.context.target)
    sequential = SequentialGate(gate, primary, chosen, duration, state)
    result = sequential.watch(poll, duration)
    result["sequential"] = sequential.to_state()
    return result
