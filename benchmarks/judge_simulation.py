"""False rollbacks and bad requests served, per judge, over thousands of simulated releases (no lab).

Each judge (``flagger``, ``fast``, ``sequential``) runs the seed manifest's release (stepWeight 10, maxWeight 50,
threshold 5, request-success-rate min 99) on a synthetic request stream, and sees the counts as Prometheus would
give them:

* Traffic: Poisson arrivals at --rps (50) in total, the canary's share the step's weight; successes and 5xx of
  each version are independent Poisson counts per 1 s tick (thinning keeps the arrivals Poisson). Prometheus
  scrapes every tick (1 s, as in the lab); a judge polling at time t sees every scrape up to t. Module calls and
  scrape lag take no time here, so every judge is slightly flattered alike.
* ``flagger`` and ``fast`` read Flagger's request-success-rate: sum over series of rate(...[window]) of the non-5xx
  over all of the canary's, times 100. rate() is modelled as last minus first sample of each series inside the
  window (its extrapolation aside): a series needs two samples in the window, and a series born inside it (the
  canary's first 200, its first 503) counts from its first sample, so the requests before that sample are lost,
  as they are today. No series, or no non-5xx series, is no data; no data fails the check (on_no_data: fail).
  Their decisions are release.decision.decide itself: failed checks cumulative, rollback at the threshold, and in
  fast mode a hard breach (under 79.2 %, margin 0.2) at once. ``flagger`` checks once per interval, one interval
  after each shift (Flagger's scheduler); ``fast`` watches every --poll seconds through the interval, stops at the
  first breach, and re-checks --poll seconds after a failed check (prometheus_gate's watch, step_loop's hold).
* ``sequential`` is the role's ``canary_analysis_mode: sequential``: its SequentialJudge (metrics/sequential_judge.py)
  polls every --poll seconds on exact counts since the release's start (release_counts: births from zero) and runs
  both tests at alpha / 2 each: the canary's error share against p0 = 1 % (counting only the polls in which the
  primary was itself within p0 over the last interval) and its error rate against the primary's. A crossing rolls
  back at once; an interval that ends with fewer than 10 canary requests is a failed check (Flagger's no-data rule);
  otherwise release.decision.decide advances at the end of each interval, as fast mode does when nothing failed.

Scenarios: good canaries (baseline error share 0.5 % for both versions) with steady traffic, with diurnal traffic
(the rate swings between 0.25x and 1.75x of --rps over one release), and under a service-wide incident (both
versions at 5 % errors for 60 s starting at a random time in the release); bad canaries at 1.5x, 2x, 5x and 20x the
baseline error share. A release ends at rollback or at promotion after the analysis at 50 %.

To compare at an equal false-rollback rate, the sequential judge also runs at alpha = the highest false-rollback
rate of flagger and of fast over the good scenarios (capped at 0.5), when that is above --alpha.

Usage: nice -n 19 .venv/bin/python benchmarks/judge_simulation.py [--releases 600] [--seed 1] [--alpha 0.01] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import pathlib
import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.modules import ensure_collection_layout  # noqa: E402  pylint: disable=wrong-import-position

sys.path.insert(0, str(ensure_collection_layout()))

# pylint: disable=wrong-import-position
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.release_counts import (  # noqa: E402
    CANARY,
    PRIMARY,
    ReleaseCounts,
    VersionCounts,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.sequential_judge import (  # noqa: E402
    SequentialJudge,
    SequentialSettings,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import (  # noqa: E402
    MetricSpec,
    ThresholdRange,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.verdicts import FAIL, PASS  # noqa: E402
from ansible_collections.progressive.delivery.plugins.module_utils.release.decision import (  # noqa: E402
    ADVANCE,
    FAST,
    FLAGGER,
    HOLD,
    ROLLBACK,
    SEQUENTIAL,
    Observation,
    Position,
    Settings,
    decide,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.judge import is_hard_breach  # noqa: E402

JUDGES = (FLAGGER, FAST, SEQUENTIAL)

STEPS = (10, 20, 30, 40, 50)
THRESHOLD = 5
SUCCESS_MIN = 99.0
HARD_BREACH_MARGIN = 0.2
SUCCESS_SPEC = MetricSpec("request-success-rate", "", "builtin:request-success-rate", "1m", ThresholdRange(min=SUCCESS_MIN))
BASELINE_ERROR_SHARE = 0.005
INCIDENT_ERROR_SHARE = 0.05
INCIDENT_SECONDS = 60
DIURNAL_SWING = 0.75
GOOD_SCENARIOS = ("good", "good-diurnal", "good-incident")
BAD_RATIOS = (1.5, 2.0, 5.0, 20.0)


def bad_scenario(ratio: float) -> str:
    return "bad-%gx" % ratio


SCENARIOS = GOOD_SCENARIOS + tuple(bad_scenario(r) for r in BAD_RATIOS)


@dataclass(frozen=True)
class Config:
    rps: float
    interval: int
    poll: int
    alpha: float

    @property
    def release_seconds(self) -> int:
        return self.interval * len(STEPS)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: inversion for small means, Hormann's PTRS transformed rejection for large ones."""
    if mean <= 0.0:
        return 0
    if mean < 12.0:
        limit, product, count = math.exp(-mean), rng.random(), 0
        while product > limit:
            product *= rng.random()
            count += 1
        return count
    root = math.sqrt(mean)
    b = 0.931 + 2.53 * root
    a = -0.059 + 0.02483 * b
    inverse_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    log_mean = math.log(mean)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= v_r:
            return int(k)
        if k < 0 or (us < 0.013 and v > us):
            continue
        if (math.log(v) + math.log(inverse_alpha) - math.log(a / (us * us) + b)
                <= -mean + k * log_mean - math.lgamma(k + 1.0)):
            return int(k)


class Stream:
    """The requests of one release, tick by tick: cumulative successes and 5xx of canary and primary.

    Generated lazily, since the canary's weight at each tick depends on the judge's own decisions.
    """

    def __init__(self, rng: random.Random, scenario: str, config: Config) -> None:
        self.rng = rng
        self.config = config
        self.weight = 0
        # Index k holds the counts after tick k (the scrape at second k); index 0 is the release's start.
        self.canary_ok = [0]
        self.canary_5xx = [0]
        self.primary_ok = [0]
        self.primary_5xx = [0]
        self.canary_share_5xx = BASELINE_ERROR_SHARE
        if scenario.startswith("bad-"):
            self.canary_share_5xx = BASELINE_ERROR_SHARE * float(scenario[4:-1])
        self.diurnal_phase = rng.uniform(0.0, 2.0 * math.pi) if scenario == "good-diurnal" else None
        self.incident = None
        if scenario == "good-incident":
            start = rng.uniform(0.0, config.release_seconds)
            self.incident = (start, start + INCIDENT_SECONDS)

    def rate(self, second: int) -> float:
        if self.diurnal_phase is None:
            return self.config.rps
        angle = 2.0 * math.pi * second / self.config.release_seconds + self.diurnal_phase
        return self.config.rps * (1.0 + DIURNAL_SWING * math.sin(angle))

    def error_shares(self, second: int) -> tuple[float, float]:
        if self.incident and self.incident[0] <= second < self.incident[1]:
            return max(self.canary_share_5xx, INCIDENT_ERROR_SHARE), INCIDENT_ERROR_SHARE
        return self.canary_share_5xx, BASELINE_ERROR_SHARE

    def run_to(self, second: int) -> None:
        """Serve the requests up to `second` at the current weight."""
        rng = self.rng
        while len(self.canary_ok) <= second:
            tick = len(self.canary_ok) - 1
            rate = self.rate(tick)
            canary_share, primary_share = self.error_shares(tick)
            canary_rate = rate * self.weight / 100.0
            primary_rate = rate - canary_rate
            self.canary_ok.append(self.canary_ok[-1] + poisson(rng, canary_rate * (1.0 - canary_share)))
            self.canary_5xx.append(self.canary_5xx[-1] + poisson(rng, canary_rate * canary_share))
            self.primary_ok.append(self.primary_ok[-1] + poisson(rng, primary_rate * (1.0 - primary_share)))
            self.primary_5xx.append(self.primary_5xx[-1] + poisson(rng, primary_rate * primary_share))

    def canary_counts(self, second: int) -> tuple[int, int]:
        """Exact requests and 5xx of the canary since the start, at `second`."""
        self.run_to(second)
        return self.canary_ok[second] + self.canary_5xx[second], self.canary_5xx[second]

    def primary_counts(self, second: int) -> tuple[int, int]:
        self.run_to(second)
        return self.primary_ok[second] + self.primary_5xx[second], self.primary_5xx[second]

    def success_rate(self, second: int, window: int) -> float | None:
        """Flagger's request-success-rate of the canary at `second` as Prometheus computes it; None is no data."""
        self.run_to(second)
        succeeded = _window_increase(self.canary_ok, second, window)
        failed = _window_increase(self.canary_5xx, second, window)
        if succeeded is None:
            return None  # sum() over no non-5xx series is empty, and so is the ratio
        total = succeeded + (failed or 0)
        if total == 0:
            return None  # 0/0 is NaN: no requests in the window
        return 100.0 * succeeded / total


def _window_increase(counter: Sequence[int], second: int, window: int) -> int | None:
    """increase() of one series over (second - window, second], counting from its first sample in the window.

    The series exists from the first scrape that sees a count (its birth); with fewer than two samples in the
    window it yields nothing.
    """
    first = max(second - window + 1, 0)
    if counter[second] == 0:
        return None
    if counter[first] == 0:
        # born inside the window: find the first scrape with a count (binary search over a non-decreasing list)
        low, high = first, second
        while low < high:
            middle = (low + high) // 2
            if counter[middle] > 0:
                high = middle
            else:
                low = middle + 1
        first = low
    if first >= second:
        return None
    return counter[second] - counter[first]


@dataclass
class Outcome:
    rolled_back: bool
    seconds: int
    canary_requests: int
    canary_5xx: int


def _ended(stream: Stream, rolled_back: bool, second: int) -> Outcome:
    requests, errors = stream.canary_counts(second)
    return Outcome(rolled_back, second, requests, errors)


def _check(stream: Stream, second: int, window: int) -> tuple[bool, bool, float | None]:
    """(failed, hard breach, value) of one evaluation of request-success-rate."""
    value = stream.success_rate(second, window)
    if value is None:
        return True, False, None
    breached = value < SUCCESS_MIN
    return breached, breached and is_hard_breach(value, {"min": SUCCESS_MIN}, HARD_BREACH_MARGIN), value


def run_threshold_judge(stream: Stream, config: Config, mode: str) -> Outcome:
    """flagger or fast mode: the checks and release.decision.decide, from the pre-rollout checks to the end."""
    settings = Settings(steps=STEPS, threshold=THRESHOLD, interval=float(config.interval), mode=mode,
                        poll=float(config.poll))
    now = 0
    move = decide(settings, Position(), Observation(now=0.0))
    while True:
        if move.action == ADVANCE:
            stream.run_to(now)
            stream.weight = move.weight
            if mode == FLAGGER:
                now += int(move.pause)  # Flagger's scheduler analyses one interval after the shift
        elif move.action == HOLD:
            now += int(move.pause)
        else:
            return _ended(stream, move.action == ROLLBACK, now)
        if mode == FLAGGER:
            failed, hard, _value = _check(stream, now, config.interval)
        else:
            failed, hard, now = _watch(stream, now, config)
        move = decide(settings, move.position, Observation(
            now=float(now), failed=failed, hard_breaches=("request-success-rate",) if hard else ()))


def _watch(stream: Stream, start: int, config: Config) -> tuple[bool, bool, int]:
    """prometheus_gate's watch: evaluate every poll through the interval, stop at the first breach.

    The verdict is the last evaluation's; no data is not a breach, so it stops nothing but fails at the end.
    """
    now = start
    while True:
        failed, hard, value = _check(stream, now, config.interval)
        if (failed and value is not None) or now >= start + config.interval:
            return failed, hard, now
        now = min(now + config.poll, start + config.interval)


def _release_counts(stream: Stream, second: int, previous: tuple[int, int, int, int]) -> tuple[ReleaseCounts, tuple]:
    """The counts release_counts.ReleaseCounter gives at `second`: totals since the start, increments since `previous`."""
    canary_requests, canary_5xx = stream.canary_counts(second)
    primary_requests, primary_5xx = stream.primary_counts(second)
    now = (canary_requests, canary_5xx, primary_requests, primary_5xx)
    totals = {CANARY: VersionCounts(canary_requests, canary_5xx), PRIMARY: VersionCounts(primary_requests, primary_5xx)}
    increments = {CANARY: VersionCounts(now[0] - previous[0], now[1] - previous[1]),
                  PRIMARY: VersionCounts(now[2] - previous[2], now[3] - previous[3])}
    return ReleaseCounts(float(second), 0.0, totals, increments), now


def run_sequential_judge(stream: Stream, config: Config, alpha: float) -> Outcome:
    """The role's sequential mode: its SequentialJudge on exact counts since the start at every poll, and
    release.decision.decide on each interval's verdict (a crossing rolls back at once; an interval that ends with too
    few canary requests is a failed check, as no data is).
    """
    judge = SequentialJudge([SUCCESS_SPEC], SequentialSettings(alpha=alpha), float(config.interval))
    settings = Settings(steps=STEPS, threshold=THRESHOLD, interval=float(config.interval), mode=SEQUENTIAL,
                        poll=float(config.poll))
    seen = (0, 0, 0, 0)
    now = 0
    move = decide(settings, Position(), Observation(now=0.0))
    while True:
        if move.action == ADVANCE:
            stream.run_to(now)
            stream.weight = move.weight
        elif move.action == HOLD:
            now += int(move.pause)
        else:
            return _ended(stream, move.action == ROLLBACK, now)
        judge.begin_interval()
        end = now + config.interval
        while True:
            counts, seen = _release_counts(stream, now, seen)
            judgement = judge.observe(counts)[0]
            if judgement.result == FAIL or now >= end:
                break
            now = min(now + config.poll, end)
        crossed = judgement.result == FAIL
        concluded = judge.conclude(judgement)
        move = decide(settings, move.position, Observation(
            now=float(now), failed=concluded.result != PASS, hard_breaches=("request-success-rate",) if crossed else ()))


def matched(alpha: float) -> str:
    """The name of the sequential judge run at another level, to compare at an equal false-rollback rate."""
    return "%s@%.3g" % (SEQUENTIAL, alpha)


def judge_runner(judge: str, config: Config) -> Callable[[Stream], Outcome]:
    if judge.startswith(SEQUENTIAL):
        alpha = float(judge.split("@", 1)[1]) if "@" in judge else config.alpha
        return lambda stream: run_sequential_judge(stream, config, alpha)
    return lambda stream: run_threshold_judge(stream, config, judge)


def simulate_cell(job: tuple[str, str, Config, int, int, int]) -> list[dict]:
    """Releases [first, last) of one scenario under one judge; the same seed gives every judge the same stream
    up to where their decisions part."""
    judge, scenario, config, seed, first, last = job
    run = judge_runner(judge, config)
    results = []
    for release in range(first, last):
        stream = Stream(random.Random("%d:%s:%d" % (seed, scenario, release)), scenario, config)
        results.append(asdict(run(stream)))
    return results


def quantile(values: Sequence[float], share: float) -> float:
    """Nearest-rank quantile; releases never rolled back count as infinite, so a quantile may be too."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def wilson_upper(hits: int, total: int, z: float = 1.96) -> float:
    if total == 0:
        return math.nan
    share = hits / total
    centre = share + z * z / (2 * total)
    spread = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    return (centre + spread) / (1 + z * z / total)


def summarise(outcomes: list[dict]) -> dict:
    rolled = [o for o in outcomes if o["rolled_back"]]
    count = len(outcomes)

    def censored(key: str) -> list[float]:
        return [o[key] if o["rolled_back"] else math.inf for o in outcomes]

    summary = {"releases": count, "rollbacks": len(rolled), "rollback_rate": len(rolled) / count if count else math.nan,
               "rollback_rate_upper95": wilson_upper(len(rolled), count)}
    for key in ("canary_requests", "canary_5xx", "seconds"):
        values = censored(key)
        summary[key] = {"median": quantile(values, 0.5), "p95": quantile(values, 0.95)}
    return summary


def simulate(judges: Sequence[str], config: Config, releases: int, seed: int, jobs: int) -> dict[str, dict[str, dict]]:
    chunk = max(1, min(100, releases // max(1, jobs)))
    work = [(judge, scenario, config, seed, first, min(first + chunk, releases))
            for judge in judges for scenario in SCENARIOS for first in range(0, releases, chunk)]
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            parts = pool.map(simulate_cell, work)
    else:
        parts = [simulate_cell(job) for job in work]
    collected: dict[tuple[str, str], list[dict]] = {}
    for job, part in zip(work, parts):
        collected.setdefault((job[0], job[1]), []).extend(part)
    return {judge: {scenario: summarise(collected[(judge, scenario)]) for scenario in SCENARIOS} for judge in judges}


def _number(value: float) -> str:
    if math.isinf(value):
        return "never"
    if math.isnan(value):
        return "-"
    return "%d" % value if float(value).is_integer() else "%.1f" % value


def worst_false_rollbacks(cells: dict[str, dict]) -> tuple[float, float]:
    """The highest false-rollback rate over the good scenarios, and its 95 % upper bound."""
    worst = max(GOOD_SCENARIOS, key=lambda scenario: cells[scenario]["rollback_rate"])
    return cells[worst]["rollback_rate"], cells[worst]["rollback_rate_upper95"]


def matched_levels(results: dict[str, dict[str, dict]], alpha: float) -> dict[str, float]:
    """For flagger and fast, the level at which the sequential judge's false rollbacks may reach theirs."""
    levels = {}
    for other in (FLAGGER, FAST):
        if other in results:
            rate = worst_false_rollbacks(results[other])[0]
            if rate > alpha:
                levels[other] = min(rate, 0.5)
    return levels


def targets(results: dict[str, dict[str, dict]], alpha: float, levels: dict[str, float]) -> list[dict]:
    """The issue's targets, each with whether it is met.

    The comparison with flagger and fast uses the sequential judge at alpha, or, where their false-rollback rate
    is higher than alpha, at a level equal to that rate (its own rate then stays at or below it). It counts as
    at an equal false-rollback rate when the sequential judge's worst rate is within the other's 95 % bound.
    """
    checks = []
    sequential = results.get(SEQUENTIAL)
    if sequential is None:
        return checks
    for scenario in GOOD_SCENARIOS:
        rate = sequential[scenario]["rollback_rate"]
        checks.append({"target": "sequential false rollbacks <= alpha (%g), %s" % (alpha, scenario),
                       "value": rate, "met": rate <= alpha})
    for other, factor in ((FLAGGER, 5.0), (FAST, 2.0)):
        if other not in results:
            continue
        mine_name = matched(levels[other]) if other in levels else SEQUENTIAL
        mine_cells = results[mine_name]
        comparable = worst_false_rollbacks(mine_cells)[0] <= worst_false_rollbacks(results[other])[1]
        for ratio in BAD_RATIOS:
            scenario = bad_scenario(ratio)
            mine = mine_cells[scenario]["canary_5xx"]["median"]
            theirs = results[other][scenario]["canary_5xx"]["median"]
            if math.isinf(mine):
                fewer = 1.0 if math.isinf(theirs) else 0.0
            else:
                fewer = theirs / mine if mine > 0 else (math.inf if theirs > 0 else 1.0)
            checks.append({
                "target": ">= %gx fewer bad requests (median 5xx served) than %s at %s, %s"
                          % (factor, other, scenario, mine_name),
                "value": fewer, "met": comparable and fewer >= factor,
                "note": "" if comparable else "%s rolls back more good canaries than %s" % (mine_name, other),
            })
    return checks


def print_report(results: dict[str, dict[str, dict]], checks: list[dict], levels: dict[str, float], config: Config,
                 releases: int, elapsed: float) -> None:
    judges = list(results)
    print("Judges on simulated releases: %d releases per cell, seed manifest (steps %s, threshold %d, min %g), "
          "interval %d s, poll %d s, scrape 1 s, %g rps, baseline 5xx %g %%, alpha %g"
          % (releases, "/".join(map(str, STEPS)), THRESHOLD, SUCCESS_MIN, config.interval, config.poll, config.rps,
             100 * BASELINE_ERROR_SHARE, config.alpha))
    print()
    print("False rollbacks of good canaries (share of releases rolled back; 95 % upper bound)")
    print("%-16s" % "scenario" + "".join("%22s" % judge for judge in judges))
    for scenario in GOOD_SCENARIOS:
        cells = ["%.2f %% (<%.2f %%)" % (100 * results[j][scenario]["rollback_rate"],
                                          100 * results[j][scenario]["rollback_rate_upper95"]) for j in judges]
        print("%-16s" % scenario + "".join("%22s" % cell for cell in cells))
    print()
    print("Bad canaries: rolled back; canary requests / 5xx served / seconds until rollback, median and p95 "
          "(never = promoted)")
    for scenario in SCENARIOS[len(GOOD_SCENARIOS):]:
        print(scenario)
        for judge in judges:
            cell = results[judge][scenario]
            print("  %-17s rolled back %6.1f %%   requests %6s / %6s   5xx %5s / %5s   seconds %4s / %4s" % (
                judge, 100 * cell["rollback_rate"],
                _number(cell["canary_requests"]["median"]), _number(cell["canary_requests"]["p95"]),
                _number(cell["canary_5xx"]["median"]), _number(cell["canary_5xx"]["p95"]),
                _number(cell["seconds"]["median"]), _number(cell["seconds"]["p95"])))
    print()
    print("Targets")
    for other, level in sorted(levels.items()):
        print("  (against %s: sequential at alpha %.3g, %s's highest false-rollback rate, capped at 0.5)"
              % (other, level, other))
    for check in checks:
        value = check["value"]
        shown = ("%.2f %%" % (100 * value)) if "alpha" in check["target"] else (
            "inf" if math.isinf(value) else "%.1fx" % value)
        print("  %-4s %s: %s%s" % ("MET" if check["met"] else "MISSED", check["target"], shown,
                                   " (%s)" % check["note"] if check.get("note") else ""))
    print()
    print("%.0f s" % elapsed)


def _finite(data: object) -> object:
    """JSON has no infinity: a quantile of releases never rolled back becomes null."""
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_finite(value) for value in data]
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--releases", type=int, default=600, help="simulated releases per scenario and judge")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--alpha", type=float, default=0.01, help="the sequential judge's level")
    parser.add_argument("--rps", type=float, default=50.0, help="requests per second, canary and primary together")
    parser.add_argument("--interval", type=int, default=30, help="analysis interval and metric window, seconds")
    parser.add_argument("--poll", type=int, default=5, help="seconds between polls of fast and sequential")
    parser.add_argument("--judges", default=",".join(JUDGES),
                        help="comma-separated, of %s" % ", ".join(JUDGES))
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    judges = [judge for judge in args.judges.split(",") if judge]
    unknown = [judge for judge in judges if judge not in JUDGES]
    if unknown or not 0 < args.alpha < 1 or args.releases < 1 or args.interval % args.poll:
        parser.error("judges of %s, 0 < alpha < 1, releases >= 1, interval a multiple of poll"
                     % ", ".join(JUDGES))
    config = Config(rps=args.rps, interval=args.interval, poll=args.poll, alpha=args.alpha)
    started = time.monotonic()
    results = simulate(judges, config, args.releases, args.seed, args.jobs)
    levels = matched_levels(results, args.alpha) if SEQUENTIAL in results else {}
    extra = sorted({matched(level) for level in levels.values()})
    if extra:
        results.update(simulate(extra, config, args.releases, args.seed, args.jobs))
    checks = targets(results, args.alpha, levels)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps(_finite({"config": asdict(config), "releases": args.releases, "seed": args.seed,
                                  "results": results, "matched_levels": levels, "targets": checks,
                                  "seconds": round(elapsed, 1)}),
                         indent=2))
    else:
        print_report(results, checks, levels, config, args.releases, elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
