"""hey command lines from Flagger's docs, played through a recording send function."""

from __future__ import annotations

import pytest

from lab.hooks import CommandRunner
from lab.loadtest import LOADTESTER_WORKLOAD, parse_hey, play
from lab.testing import wait_for


def test_the_options_of_flaggers_docs_are_read():
    run = parse_hey(["hey", "-z", "1m", "-q", "10", "-c", "2", "-H", "Cookie: canary=always", "http://podinfo.test:9898/"])
    assert (run.host, run.path, run.duration, run.total, run.rate) == ("podinfo.test", "/", 60.0, None, 20.0)
    assert run.headers == {"Cookie": "canary=always"}


@pytest.mark.parametrize("argv, problem", [
    (["hey", "-z", "1m"], "needs a URL"),
    (["hey", "-H", "no colon", "http://a/"], "Name: value"),
    (["hey", "-z"], "needs a value"),
])
def test_command_lines_the_lab_cannot_play_are_refused(argv, problem):
    with pytest.raises(ValueError, match=problem):
        parse_hey(argv)


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_a_duration_is_played_at_the_rate_of_all_workers():
    sent = []
    time = FakeTime()
    count = play(parse_hey(["hey", "-z", "2s", "-q", "5", "-c", "2", "http://podinfo-canary.test:9898/status"]), "test",
                 lambda **kwargs: sent.append(kwargs), clock=time.clock, sleep=time.sleep)
    assert 19 <= count <= 21
    assert sum(call["count"] for call in sent) == count
    assert {(c["host"], c["path"], c["source_workload"]) for c in sent} == {("podinfo-canary.test", "/status", LOADTESTER_WORKLOAD)}


def test_a_request_count_stops_at_that_count():
    sent = []
    time = FakeTime()
    assert play(parse_hey(["hey", "-n", "7", "-q", "100", "-c", "1", "http://a.b/"]), "b", lambda **kw: sent.append(kw),
                clock=time.clock, sleep=time.sleep) == 7


def test_the_command_runner_plays_hey_instead_of_starting_a_process():
    sent = []
    runner = CommandRunner(send=lambda **kwargs: sent.append(kwargs))
    assert runner.submit("podinfo.test", "hey -n 3 http://podinfo.test:9898/")
    wait_for(lambda: runner.runs()[0]["finished"], timeout=5, message="hey finished")
    run = runner.runs()[0]
    assert run["exit_code"] == 0 and "3 requests" in run["output"]
    assert sum(call["count"] for call in sent) == 3 and sent[0]["namespace"] == "test"
