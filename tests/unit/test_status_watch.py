"""The live status (release/status_watch.py): its line, when it ends, its timeout; the state's plain kubectl keys."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.release import state as st
from ansible_collections.progressive.delivery.plugins.module_utils.release.status_watch import (
    MAX_LINES,
    WatchOptions,
    WatchReadError,
    follow,
    last_metrics,
    release_over,
    timeout_message,
    watch_line,
)
from ansible_collections.progressive.delivery.plugins.module_utils.release.step_task import (
    StepOptionError,
    argument_spec,
    check_options,
    step_params,
)

FREE = {"held": False, "holder": None, "run_id": None}
HELD = {"held": True, "holder": "awx job 42 on host a", "run_id": "run-1"}
CHECK = {"time": "2026-11-28T08:00:00Z", "iteration": 1, "weight": 30, "phase": "Progressing", "failedChecks": 1,
         "metrics": [{"name": "request-success-rate", "value": 97.5, "result": "fail", "min": 99, "max": None},
                     {"name": "request-duration", "value": 24.0, "result": "pass", "min": None, "max": 500},
                     {"name": "latency-p99", "value": 1234.5678, "result": "pass", "min": None, "max": 2000}]}


def state(phase, weight=0, failed=0, history=()):
    return {"phase": phase, "canaryWeight": weight, "failedChecks": failed, "history": list(history)}


def test_a_line_has_phase_weight_failed_checks_the_last_metrics_and_the_lock_holder():
    line = watch_line(state("Progressing", 30, 1, [CHECK]), HELD)
    assert line == ("Progressing, weight 30%, failed checks 1, request-success-rate=97.5(fail) request-duration=24 "
                    "latency-p99=1234.57, lock: awx job 42 on host a")
    assert watch_line(state(""), FREE) == "not initialized, weight 0%, failed checks 0, no lock"
    # A holder without a description is named by its run id.
    assert watch_line(state("Succeeded"), {"held": True, "holder": "", "run_id": "run-9"}).endswith("lock: run-9")


def test_metrics_of_a_previous_release_are_not_shown_once_the_next_one_starts():
    start = {"action": "start", "phase": "Progressing", "weight": 0, "message": "new revision"}
    assert last_metrics([CHECK, start]) == ""
    later = dict(CHECK, metrics=[{"name": "errors", "value": None, "result": "no_data"}])
    assert last_metrics([CHECK, start, later]) == "errors=n/a"
    # Transition entries without metrics do not hide the last analysis of the release.
    assert last_metrics([CHECK, {"action": "promote", "phase": "Finalising"}]).startswith("request-success-rate=97.5")


@pytest.mark.parametrize("phase", sorted(st.IN_PROGRESS))
def test_a_release_in_progress_has_not_ended_with_or_without_the_lock(phase):
    assert not release_over(phase, True) and not release_over(phase, False)


@pytest.mark.parametrize("phase", [st.NONE, st.INITIALIZED, st.SUCCEEDED, st.FAILED])
def test_a_final_phase_ends_the_watch_once_no_run_holds_the_lock(phase):
    # A run holding the lock in a final phase is about to start, or is writing its report: not over yet.
    assert release_over(phase, False) and not release_over(phase, True)


class Script:
    """What observe returns at each read, a clock that the sleeps move, and the sleeps asked for."""

    def __init__(self, reads):
        self.reads = list(reads)
        self.now = 1_795_000_000.0
        self.slept = []

    def observe(self):
        read = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        if isinstance(read, Exception):
            raise read
        return read

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def run(script, timeout=60.0, interval=0.5):
    said = []
    result = follow(script.observe, WatchOptions(interval, timeout, said.append), script.clock, script.sleep)
    return result, said


def test_follow_prints_one_line_per_change_and_ends_with_the_final_phase():
    script = Script([(state("Initialized"), HELD), (state("Progressing", 30), HELD), (state("Progressing", 30), HELD),
                     (state("Progressing", 60, history=[CHECK]), HELD), (state("Finalising", 60), HELD),
                     (state("Succeeded"), HELD), (state("Succeeded"), FREE), (state("Progressing"), HELD)])
    result, said = run(script)
    assert result.ended and said == result.lines
    bare = [line.split(" ", 1)[1] for line in result.lines]
    assert [line.split(",")[0] for line in bare] == ["Initialized", "Progressing", "Progressing", "Finalising",
                                                     "Succeeded", "Succeeded"]
    assert bare[-1] == "Succeeded, weight 0%, failed checks 0, no lock"
    # Lines start with the UTC time of day; the reads were 0.5 s apart, and none after the end.
    assert all(line[2] == ":" and line[5] == ":" for line in result.lines)
    assert script.slept == [0.5] * 6 and script.reads == [(state("Progressing"), HELD)]
    assert result.to_dict()["timed_out"] is False


def test_follow_stops_at_its_timeout_without_the_release_ending():
    script = Script([(state("Progressing", 30), HELD)])
    result, said = run(script, timeout=2.0, interval=0.75)
    assert not result.ended and len(said) == 1
    # The last sleep is cut to the time left: the watch ends on time.
    assert script.slept == [0.75, 0.75, 0.5] and result.seconds == pytest.approx(2.0)
    message = timeout_message("Canary prod/web", result, 2.0)
    assert "did not end within the watch timeout of 2 s" in message
    assert "last seen: Progressing, weight 30%" in message and "a run holds the lock" in message
    assert result.to_dict()["timed_out"] is True


def test_a_timeout_without_a_lock_holder_says_the_next_run_resumes_it():
    result, _said = run(Script([(state("Progressing", 30), FREE)]), timeout=1.0)
    assert "the next canary run resumes or rolls it back" in timeout_message("Canary prod/web", result, 1.0)


def test_a_failed_first_read_is_raised_and_a_later_one_is_a_line():
    with pytest.raises(WatchReadError, match="forbidden"):
        run(Script([WatchReadError("forbidden")]))
    script = Script([(state("Progressing", 30), HELD), WatchReadError("connection refused"), (state("Failed"), FREE)])
    result, _said = run(script)
    assert result.ended
    assert [line.split(" ", 1)[1].split(",")[0] for line in result.lines] == [
        "Progressing", "cannot read the state: connection refused", "Failed"]


def test_the_lines_kept_are_bounded():
    reads = [(state("Progressing", weight % 100), HELD) for weight in range(MAX_LINES + 10)] + [(state("Failed"), FREE)]
    result, said = run(Script(reads), timeout=10 ** 6)
    assert len(said) == MAX_LINES + 11 and len(result.lines) == MAX_LINES and result.lines[-1] == said[-1]


def test_the_state_configmap_carries_plain_keys_kubectl_reads():
    canary = st.CanaryState(phase=st.PROGRESSING, canary_weight=30, failed_checks=1, iterations=4,
                            last_transition_time="2026-11-28T08:00:00Z")
    assert st.summary_data(canary) == {"phase": "Progressing", "canaryWeight": "30", "failedChecks": "1",
                                       "iterations": "4", "lastTransitionTime": "2026-11-28T08:00:00Z"}
    assert tuple(st.summary_data(st.CanaryState())) == st.SUMMARY_KEYS
    assert st.summary_data(st.CanaryState())["lastTransitionTime"] == ""


def options(**values):
    spec = argument_spec()
    params = {key: spec[key].get("default") for key in spec}
    params.update(action="status", name="web", namespace="prod")
    params.update(values)
    return params


def test_watch_options_are_checked_and_turned_into_seconds():
    params = step_params(options(watch=True, watch_interval="500ms", watch_timeout="2m"))
    assert (params.watch.interval, params.watch.timeout) == (0.5, 120.0)
    assert step_params(options()).watch is None
    for bad, message in ((dict(watch_interval="soon"), "watch_interval 'soon' is not a number of seconds"),
                         (dict(watch_timeout=0), "watch_timeout must be positive"),
                         (dict(watch=True, action="start"), "watch follows a release with action=status only"),
                         (dict(action="store_report"), "action=store_report needs report"),
                         (dict(reports_kept=0), "reports_kept must be at least 1")):
        with pytest.raises(StepOptionError, match=message):
            check_options(options(**bad))
