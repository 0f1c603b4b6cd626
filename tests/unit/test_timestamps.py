"""The one RFC 3339 parser and formatter (plugins/module_utils/timestamps.py)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.timestamps import (
    format_rfc3339,
    parse_rfc3339,
    parse_rfc3339_epoch,
)

NOW = 1_700_000_000.0
UTC = datetime.timezone.utc


@pytest.mark.parametrize("text, expected", [
    ("2023-11-14T22:13:20Z", datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("2023-11-14t22:13:20.5z", datetime.datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)),
    ("2023-11-15T00:13:20+02:00", datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("2023-11-14T22:13:20", datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    (" 2023-11-14T22:13:20Z ", datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("not a time", None),
    ("", None),
    (None, None),
])
def test_parse_rfc3339(text, expected):
    assert parse_rfc3339(text) == expected


def test_epoch_and_micro_time_round_trip():
    text = format_rfc3339(NOW + 0.123456)
    assert text == "2023-11-14T22:13:20.123456Z"
    assert parse_rfc3339_epoch(text) == pytest.approx(NOW + 0.123456, abs=1e-6)
    assert parse_rfc3339_epoch("2023-11-14T22:13:20Z") == NOW
    assert parse_rfc3339_epoch("not a time") is None
    assert parse_rfc3339_epoch(None) is None


def test_format_rfc3339_precision():
    assert format_rfc3339(NOW) == "2023-11-14T22:13:20.000000Z"
    assert format_rfc3339(NOW + 0.25, timespec="milliseconds") == "2023-11-14T22:13:20.250Z"
    assert format_rfc3339(0, timespec="seconds") == "1970-01-01T00:00:00Z"
