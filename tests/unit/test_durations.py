# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import re

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.durations import (
    GO,
    PROMETHEUS,
    PROMETHEUS_DURATION_PATTERN,
    DurationError,
    go_duration_seconds,
    is_prometheus_duration,
    prometheus_duration_seconds,
    to_seconds,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("500ms", 0.5),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("250\u03bcs", 0.00025),
        ("10ns", 1e-8),
        ("3m0.5s", 180.5),
        ("0", 0.0),
        ("0s", 0.0),
        ("+2m", 120.0),
        ("-2m", -120.0),
        ("  45s ", 45.0),
    ],
)
def test_go_durations(text, seconds):
    assert go_duration_seconds(text) == pytest.approx(seconds, rel=1e-12, abs=0)


@pytest.mark.parametrize("text", ["", "-", "10", "1m30", "1 m", "m", "1x", "1d", "1.2.3s", "s5", "m5", "1m 30s", "--1s", "."])
def test_go_durations_refuse_what_go_refuses(text):
    with pytest.raises(DurationError, match="is not a Go duration"):
        go_duration_seconds(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m30s", 90), ("250ms", 0.25), ("2d", 172800), ("1w", 604800), ("1y", 31536000), ("1h0m", 3600)],
)
def test_prometheus_durations(text, seconds):
    assert prometheus_duration_seconds(text) == pytest.approx(seconds)
    assert is_prometheus_duration(text)


@pytest.mark.parametrize("text", ["", "1", "1.5m", "-1m", "250us", "1m 30s", "s", "1M"])
def test_prometheus_durations_are_whole_numbers_with_prometheus_units(text):
    assert not is_prometheus_duration(text)
    with pytest.raises(DurationError, match="is not a Prometheus duration"):
        prometheus_duration_seconds(text)


def test_the_prometheus_pattern_embeds_in_larger_expressions():
    relative = re.compile(r"^now-(%s)$" % PROMETHEUS_DURATION_PATTERN)
    assert relative.match("now-1h30m").group(1) == "1h30m"
    assert relative.match("now-1.5h") is None


@pytest.mark.parametrize("grammar", [GO, PROMETHEUS])
@pytest.mark.parametrize(("value", "seconds"), [(10, 10.0), (2.5, 2.5), ("10", 10.0), (" 2.5 ", 2.5), ("-3", -3.0), (0, 0.0)])
def test_numbers_are_seconds_in_either_grammar(grammar, value, seconds):
    result = to_seconds(value, grammar)
    assert isinstance(result, float) and result == seconds


def test_text_follows_the_chosen_grammar():
    assert to_seconds("1m30s", GO) == 90.0
    assert to_seconds("1m30s", PROMETHEUS) == 90.0
    assert to_seconds("1.5m", GO) == 90.0
    assert to_seconds("2d", PROMETHEUS) == 172800
    with pytest.raises(DurationError):
        to_seconds("1.5m", PROMETHEUS)
    with pytest.raises(DurationError):
        to_seconds("2d", GO)


@pytest.mark.parametrize("value", [True, False, None])
def test_booleans_and_none_are_not_durations(value):
    with pytest.raises(DurationError, match=re.escape(repr(value))):
        to_seconds(value)


def test_other_objects_are_read_by_their_text():
    with pytest.raises(DurationError, match=re.escape("'[1]'")):
        to_seconds([1])


def test_duration_errors_are_value_errors():
    assert issubclass(DurationError, ValueError)
