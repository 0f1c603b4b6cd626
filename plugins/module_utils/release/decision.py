# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The next move of a release after one analysis, after Flagger's ``advanceCanary``.

One pure function, :func:`decide`, takes where the release stands, what this
analysis observed and how the run is configured, and says what happens next:
advance to the next weight, hold where it is, promote, or roll back, with the
phase to record, how long to wait before the next analysis and why. It does no
I/O and reads no clock, so every rule below is a row in a unit-test table.

The rules, in the order they apply:

1. A rollback webhook that asks for a rollback wins over everything (Flagger's
   manual rollback).
2. A failed check (a metric not ok, including no data and an unreachable
   Prometheus, or a failed pre-rollout/rollout webhook) adds one to the failed
   checks. Failed checks are cumulative over the release, as in Flagger. At the
   plan's threshold the release rolls back. In ``fast`` mode a failed metric
   marked critical, or a value far outside its range (a hard breach), rolls
   back at once; so does, in ``sequential`` mode, a sequential test that
   crosses its boundary. Otherwise the release holds at its weight.
3. The checks passed: a closed ``confirm-traffic-increase`` or
   ``confirm-promotion`` gate holds the release (``WaitingPromotion`` at the
   last step, and from then on until the promotion starts, as in Flagger) and
   rolls it back once it has been closed for ``gate_timeout`` seconds.
4. Otherwise the release advances to the next step, or is promoted after the
   analysis at the last step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from ansible_collections.progressive.delivery.plugins.module_utils.release.strategy import Strategy

FAST = "fast"
FLAGGER = "flagger"
SEQUENTIAL = "sequential"
MODES = (FAST, FLAGGER, SEQUENTIAL)
# Modes that watch through each interval and roll back at once on a hard breach (or a sequential test's crossing).
WATCHING_MODES = (FAST, SEQUENTIAL)

ADVANCE = "advance"
HOLD = "hold"
PROMOTE = "promote"
ROLLBACK = "rollback"

PROGRESSING = "Progressing"
WAITING_PROMOTION = "WaitingPromotion"
PROMOTING = "Promoting"
FAILED = "Failed"

CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
CONFIRM_PROMOTION = "confirm-promotion"

# Position.index before the first step: the pre-rollout checks run with all traffic on the primary.
BEFORE_FIRST_STEP = -1


@dataclass(frozen=True)
class Settings:
    """How the run judges: the plan's threshold and interval, and the role's mode, poll and gate timeout."""

    steps: tuple[int, ...]
    threshold: int
    interval: float
    mode: str = FAST
    poll: float = 5.0
    gate_timeout: float = 0.0
    # Which gates guard which step; the canary strategy's rule when not given.
    strategy: Strategy | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError("mode must be one of %s, got %r" % (", ".join(MODES), self.mode))
        if not self.steps:
            raise ValueError("a release needs at least one weight step")
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1, got %r" % self.threshold)


@dataclass(frozen=True)
class Position:
    """Where the release stands; stored in the canary's state, so a later run resumes from it."""

    index: int = BEFORE_FIRST_STEP
    failed_checks: int = 0
    gate_closed_since: float | None = None
    held_for_promotion: bool = False

    def weight(self, steps: Sequence[int]) -> int:
        return steps[self.index] if self.index >= 0 else 0


@dataclass(frozen=True)
class Observation:
    """What one analysis saw.

    ``failed`` and the causes come from the assessment of the metrics and webhooks
    (see ``judge.assess``); ``hard_breaches`` name the metrics that, in fast mode,
    roll back at once. ``gate_open`` is None when no gate was asked (none is
    configured, or the checks failed so none needed asking).
    """

    now: float
    failed: bool = False
    causes: tuple[str, ...] = ()
    hard_breaches: tuple[str, ...] = ()
    rollback_requested_by: tuple[str, ...] = ()
    gate_open: bool | None = None


@dataclass(frozen=True)
class Move:
    """The decision: what to do, the position and phase after it, the wait before the next analysis, and why."""

    action: str
    position: Position
    weight: int
    phase: str
    pause: float
    reason: str = ""
    waiting_for: str = ""


def gate_type(settings: Settings, position: Position) -> str | None:
    """The gate asked before leaving ``position``, or None.

    In the canary strategy: promotion after the last step, traffic increase before the others. The iteration
    strategies (A/B testing, blue/green) ask only for the promotion, as Flagger does.
    """
    if settings.strategy is not None:
        return settings.strategy.gate_before_leaving(position.index)
    return CONFIRM_PROMOTION if position.index >= len(settings.steps) - 1 else CONFIRM_TRAFFIC_INCREASE


def decide(settings: Settings, position: Position, seen: Observation) -> Move:
    """The next move after one analysis at ``position``."""
    weight = position.weight(settings.steps)
    if seen.rollback_requested_by:
        return _rollback(position, weight, "rollback webhook %s asked for a rollback at weight %d%%"
                         % (", ".join(seen.rollback_requested_by), weight))
    if seen.failed:
        return _after_failed_check(settings, position, seen, weight)
    if seen.gate_open is False:
        return _held_by_gate(settings, position, seen, weight)
    if position.index >= len(settings.steps) - 1:
        return Move(PROMOTE, replace(position, gate_closed_since=None), weight, PROMOTING, 0.0,
                    "analysis passed at every step up to %d%%" % weight)
    following = replace(position, index=position.index + 1, gate_closed_since=None)
    # Fast mode watches through the next interval itself; Flagger analyses once per interval.
    pause = settings.interval if settings.mode == FLAGGER else 0.0
    return Move(ADVANCE, following, following.weight(settings.steps), _phase(following), pause)


def _after_failed_check(settings: Settings, position: Position, seen: Observation, weight: int) -> Move:
    counted = replace(position, failed_checks=position.failed_checks + 1)
    if settings.mode in WATCHING_MODES and seen.hard_breaches:
        what = "evidence of a regression" if settings.mode == SEQUENTIAL else "hard breach"
        return _rollback(counted, weight, "%s at weight %d%%: %s (%s)"
                         % (what, weight, "; ".join(seen.hard_breaches), "; ".join(seen.causes)))
    if counted.failed_checks >= settings.threshold:
        return _rollback(counted, weight, "failed checks threshold reached %d/%d at weight %d%%: %s"
                         % (counted.failed_checks, settings.threshold, weight, "; ".join(seen.causes)))
    return Move(HOLD, counted, weight, _phase(counted), _retry_pause(settings))


def _held_by_gate(settings: Settings, position: Position, seen: Observation, weight: int) -> Move:
    gate = gate_type(settings, position) or CONFIRM_PROMOTION
    closed_since = position.gate_closed_since if position.gate_closed_since is not None else seen.now
    if settings.gate_timeout > 0 and seen.now - closed_since >= settings.gate_timeout:
        return _rollback(position, weight, "the %s gate stayed closed longer than %g s (canary_webhook_gate_timeout)"
                         % (gate, settings.gate_timeout))
    # Once held at the last step, the canary stays WaitingPromotion until the promotion starts, as in Flagger.
    held = replace(position, gate_closed_since=closed_since,
                   held_for_promotion=position.held_for_promotion or gate == CONFIRM_PROMOTION)
    return Move(HOLD, held, weight, _phase(held), _retry_pause(settings), waiting_for=gate)


def _rollback(position: Position, weight: int, reason: str) -> Move:
    return Move(ROLLBACK, position, weight, FAILED, 0.0, reason)


def _phase(position: Position) -> str:
    return WAITING_PROMOTION if position.held_for_promotion else PROGRESSING


def _retry_pause(settings: Settings) -> float:
    return settings.interval if settings.mode == FLAGGER else settings.poll
