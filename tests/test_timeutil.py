"""timeutil: UTC moments and human durations, the one implementation every module uses."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_dataops.timeutil import UTC, as_utc, human_duration, parse_utc


def test_naive_is_taken_as_utc_and_aware_is_converted():
    assert as_utc(dt.datetime(2026, 1, 1, 12)) == dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    berlin = dt.timezone(dt.timedelta(hours=1))
    converted = as_utc(dt.datetime(2026, 1, 1, 12, tzinfo=berlin))
    assert converted == dt.datetime(2026, 1, 1, 11, tzinfo=UTC) and converted.tzinfo is UTC
    assert parse_utc("2026-01-02T05:04:05+02:00").isoformat() == "2026-01-02T03:04:05+00:00"
    assert parse_utc("2026-01-02T05:04:05").tzinfo is UTC


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (20, "20s"), (60, "1m 0s"), (10831, "3h 0m 31s"), (90061.4, "1d 1h 1m 1s"), (-75, "-1m 15s"), (None, "?"),
])
def test_durations_read_like_a_person_would_say_them(seconds, text):
    assert human_duration(seconds) == text
