# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The analysis of one weight step, repeated until the decision leaves the step.

A step may take one analysis or thousands: failed checks are re-checked, and a
closed gate holds the release for as long as it stays closed. That loop runs
here, in one Python call, so its cost per round is flat and its length has no
limit. Everything that talks to the outside world is a :class:`Ports` method,
so the loop itself is tested with fakes and driven against a cluster by the
``canary_analysis`` action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import (
    ADVANCE,
    HOLD,
    Move,
    Observation,
    Position,
    Settings,
    decide,
    gate_type,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import Assessment, assess
from ansible_collections.progressive.delivery.plugins.module_utils.release.narration import (
    check_entry,
    gate_opened_line,
    step_label,
    step_line,
)

CONFIRM_ROLLOUT = "confirm-rollout"
GATE_OPEN = "open"
GATE_TIMED_OUT = "timed_out"
ROLLBACK_REQUESTED = "rollback_requested"


@dataclass(frozen=True)
class Checks:
    """What one analysis measured: the metric gate's result (None before the first step), a comparison, webhook results."""

    gate: Mapping[str, Any] | None = None
    compare: Mapping[str, Any] | None = None
    webhooks: tuple[Mapping[str, Any], ...] = ()


class Ports(Protocol):
    """The outside world of the loop: webhooks, Prometheus, the cluster, the play's output, time."""

    def rollback_requested(self) -> tuple[str, ...]:
        """Names of the rollback webhooks that ask for a rollback now."""

    def run_checks(self, index: int, weight: int) -> Checks:
        """Pre-rollout (index -1) or rollout webhooks, then the metrics at ``weight``."""

    def gate_open(self, gate: str) -> bool | None:
        """Ask every webhook of type ``gate`` once: True when all pass, None when there is none."""

    def shift(self, index: int) -> None:
        """Route traffic as step ``index`` of the plan's strategy says."""

    def record(self, move: Move, index: int, summary: str, assessment: Assessment | None) -> None:
        """Store the position in the canary's state (renewing the lease) and tell the event webhooks."""

    def keep_lock(self) -> None:
        """Renew the lease when it is due; called often while waiting."""

    def say(self, line: str) -> None:
        """Print one line in the play's output, now."""

    def clock(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass
class StepOutcome:
    """How the step ended, and what it adds to the run's report."""

    move: Move
    analyses: int = 0
    gate_asks: int = 0
    timeline: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    # Sequential mode: each test's evidence at each poll, for the report's chart.
    evidence: list[dict[str, Any]] = field(default_factory=list)


class StepLoop:
    def __init__(self, plan: Mapping[str, Any], settings: Settings, ports: Ports, gate_poll: float,
                 hard_breach_margin: float = 0.2, timestamp: Callable[[], str] | None = None) -> None:
        self.plan = plan
        self.settings = settings
        self.ports = ports
        self.gate_poll = gate_poll
        self.hard_breach_margin = hard_breach_margin
        self.timestamp = timestamp

    def run(self, position: Position) -> StepOutcome:
        """Analyse at ``position`` until the decision advances, promotes or rolls back."""
        outcome = StepOutcome(move=Move(HOLD, position, position.weight(self.settings.steps), "", 0.0))
        while True:
            move = self._analyse(position, outcome)
            if move.action == HOLD:
                move = self._hold(move, outcome)
            if move.action == ADVANCE:
                self.ports.shift(move.position.index)
                message = "step %d/%d: %s" % (move.position.index + 1, len(self.settings.steps), step_label(self.settings, move))
                self.ports.record(move, move.position.index, message, None)
                outcome.timeline.append(self._event("weight", message, move.weight))
                # Flagger analyses a weight one interval after moving to it: the metrics' window must hold the
                # new weight's traffic before the next check reads it (fast mode watches through the interval).
                self._wait(move.pause)
            if move.action != HOLD:
                outcome.move = move
                return outcome
            position = move.position

    def run_release(self, position: Position) -> StepOutcome:
        """Analyse step after step from ``position`` until a decision promotes, rolls back or stops the release.

        The same rounds as :meth:`run`, one step after the other, so the whole analysis of a release costs one task:
        at most one :meth:`run` per remaining step, as a loop over the steps would do.
        """
        release = StepOutcome(move=Move(HOLD, position, position.weight(self.settings.steps), "", 0.0))
        for _step in range(position.index, len(self.settings.steps)):
            step = self.run(position)
            release.move = step.move
            release.analyses += step.analyses
            release.gate_asks += step.gate_asks
            release.timeline.extend(step.timeline)
            release.samples.extend(step.samples)
            release.evidence.extend(step.evidence)
            if step.move.action != ADVANCE:
                break
            position = step.move.position
        return release

    def _analyse(self, position: Position, outcome: StepOutcome) -> Move:
        ports, settings = self.ports, self.settings
        weight = position.weight(settings.steps)
        requested = ports.rollback_requested()
        checks = Checks() if requested else ports.run_checks(position.index, weight)
        assessment = assess(self.plan, weight, position.index, gate=checks.gate, webhooks=list(checks.webhooks),
                            compare=checks.compare, hard_breach_margin=self.hard_breach_margin)
        gate_open = None
        gate = gate_type(settings, position)
        if gate and not requested and not assessment.failed:
            gate_open = ports.gate_open(gate)
            outcome.gate_asks += gate_open is not None
        move = decide(settings, position, Observation(
            now=ports.clock(), failed=assessment.failed, causes=assessment.causes,
            hard_breaches=assessment.hard_breaches, rollback_requested_by=requested, gate_open=gate_open))
        line = step_line(assessment, move, settings, requested)
        ports.say(line)
        ports.record(move, position.index, line, assessment)
        outcome.analyses += 1
        outcome.timeline.append(check_entry(assessment, move, line, weight))
        outcome.samples.extend(dict(s) for s in assessment.samples)
        outcome.evidence.extend(dict(point, weight=weight) for point in (checks.gate or {}).get("evidence") or [])
        return move

    def _hold(self, move: Move, outcome: StepOutcome) -> Move:
        """Wait ``move.pause`` before the next analysis; a closed gate is asked again all along, and may end the wait."""
        ports = self.ports
        if not move.waiting_for:
            self._wait(move.pause)
            return move
        deadline = ports.clock() + move.pause
        while True:
            ports.keep_lock()
            remaining = deadline - ports.clock()
            if remaining <= 0:
                return move
            # Short sleeps keep the lease renewed through long pauses.
            ports.sleep(min(self.gate_poll, remaining))
            opened = ports.gate_open(move.waiting_for)
            outcome.gate_asks += 1
            after = decide(self.settings, move.position, Observation(now=ports.clock(), gate_open=opened))
            if after.action == HOLD:
                move = after
                continue
            line = gate_opened_line(move.waiting_for, after, self.settings) if opened else "%s -> rolling back" % after.reason
            ports.say(line)
            ports.record(after, move.position.index, line, None)
            outcome.timeline.append(self._event("gate", line, move.weight))
            return after

    def _wait(self, seconds: float) -> None:
        wait_renewing_the_lease(self.ports, seconds, self.gate_poll)

    def _event(self, kind: str, message: str, weight: int) -> dict[str, Any]:
        entry: dict[str, Any] = {"kind": kind, "message": message, "weight": weight, "metrics": [], "webhooks": []}
        if self.timestamp is not None:
            entry["time"] = self.timestamp()
        return entry


def wait_renewing_the_lease(ports: Any, seconds: float, slice_seconds: float) -> None:
    """Sleep ``seconds`` in slices of ``slice_seconds``, keeping the lease renewed (``ports``: keep_lock, clock, sleep)."""
    deadline = ports.clock() + seconds
    while True:
        ports.keep_lock()
        remaining = deadline - ports.clock()
        if remaining <= 0:
            return
        ports.sleep(min(slice_seconds, remaining))


def wait_for_confirm_rollout(ports: Ports, gate_poll: float, gate_timeout: float) -> tuple[str, float, int]:
    """Ask the confirm-rollout gates until they open, a rollback is asked for, or ``gate_timeout`` (0: none) passes.

    Returns the outcome, the seconds waited and the number of asks.
    """
    started = ports.clock()
    asks = 0
    said = False
    while True:
        asks += 1
        if ports.gate_open(CONFIRM_ROLLOUT) is not False:
            if said:
                ports.say("confirm-rollout gate open after %.1f s" % (ports.clock() - started))
            return GATE_OPEN, ports.clock() - started, asks
        if ports.rollback_requested():
            return ROLLBACK_REQUESTED, ports.clock() - started, asks
        waited = ports.clock() - started
        if gate_timeout > 0 and waited >= gate_timeout:
            return GATE_TIMED_OUT, waited, asks
        if not said:
            ports.say("waiting for the confirm-rollout gate")
            said = True
        ports.keep_lock()
        ports.sleep(gate_poll if gate_timeout <= 0 else max(0.0, min(gate_poll, gate_timeout - waited)))
