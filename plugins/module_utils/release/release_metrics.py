# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flagger's ``flagger_canary_*`` series for one canary, from its stored state, pushed after every state write.

Names, labels and meanings follow Flagger's metrics recorder, so the dashboards and alerts built on Flagger keep
working. Where a playbook run sees the release differently from Flagger's long-lived controller (the total of
canaries, the duration), docs/metrics.md says how.
"""

from __future__ import annotations

from ansible_collections.progressive.delivery.plugins.module_utils.metrics.pushgateway import (
    GAUGE,
    HISTOGRAM,
    Family,
    PushOptions,
    Sample,
    histogram_samples,
    push,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.names import primary_name
from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import parse_rfc3339_epoch

JOB = "progressive-delivery"
# Flagger's (client_golang's default) histogram buckets.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RUNNING, SUCCESSFUL, FAILED = 0, 1, 2


def canary_status(phase: str) -> int:
    """Flagger's flagger_canary_status: 0 while Progressing, 2 once Failed, 1 in every other phase."""
    if phase == st.PROGRESSING:
        return RUNNING
    if phase == st.FAILED:
        return FAILED
    return SUCCESSFUL


def last_metric_values(state: st.CanaryState) -> dict[str, float]:
    """Each metric's value in this run's latest analysis that measured it."""
    for entry in reversed(state.history):
        if entry.get("runId") not in (None, state.run_id):
            break
        values = {str(m["name"]): float(m["value"]) for m in entry.get("metrics") or []
                  if m.get("name") and isinstance(m.get("value"), (int, float)) and not isinstance(m.get("value"), bool)}
        if values:
            return values
    return {}


def grouping_key(namespace: str, target: str) -> dict[str, str]:
    """One group per canary: a run's push replaces the previous run's series of the same canary, and only those."""
    return {"job": JOB, "namespace": namespace, "name": target}


def release_families(state: st.CanaryState, namespace: str, target: str, now: float) -> list[Family]:
    """The series Flagger exports for one canary, as the stored state has them now."""
    labels = {"name": target, "namespace": namespace}
    families = [
        Family("flagger_canary_total", GAUGE, "Total number of canary object", [Sample({"namespace": namespace}, 1)]),
    ]
    if state.phase:
        families.append(Family("flagger_canary_status", GAUGE, "Last canary analysis result",
                               [Sample(labels, canary_status(state.phase))]))
    weight = int(state.canary_weight or 0)
    families.append(Family("flagger_canary_weight", GAUGE, "The virtual service destination weight current value", [
        Sample({"workload": primary_name(target), "namespace": namespace}, 100 - weight),
        Sample({"workload": target, "namespace": namespace}, weight),
    ]))
    values = last_metric_values(state)
    families.append(Family("flagger_canary_metric_analysis", GAUGE, "Last canary analysis result per metric",
                           [Sample(dict(labels, metric=name), value) for name, value in sorted(values.items())]))
    started = parse_rfc3339_epoch(state.started_at) if state.started_at else None
    if started is not None:
        families.append(Family("flagger_canary_duration_seconds", HISTOGRAM, "Seconds spent performing canary analysis.",
                               histogram_samples(labels, [max(0.0, now - started)], DURATION_BUCKETS)))
    return families


def push_release_metrics(options: PushOptions | None, state: st.CanaryState, namespace: str, target: str,
                         now: float) -> str | None:
    """Push the canary's series; None when pushed or when pushing is off, else the warning to show."""
    if options is None:
        return None
    return push(options, grouping_key(namespace, target), release_families(state, namespace, target, now))
