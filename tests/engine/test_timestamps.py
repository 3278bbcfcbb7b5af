"""`range` and `freshness` on timestamps mean instants: naive values are wall times in the dataset's
`timezone`, PostgreSQL `timestamptz` is right whatever the session TimeZone, SQLite text with an
offset is an instant; SQL, pandas and Great Expectations agree."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.gx_runner import run_gx_on_frame, run_gx_on_table
from airflow_dataops.engine.pandas_runner import run_checks_on_frame
from airflow_dataops.engine.sql_runner import run_checks

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
BERLIN = "Europe/Berlin"  # UTC+2 in June
# The same three instants, 08:00Z, 09:30Z and 09:50Z, written three ways.
WALL_BERLIN = ["2024-06-01 10:00:00", "2024-06-01 11:30:00", "2024-06-01 11:50:00"]
WITH_OFFSETS = ["2024-06-01T08:00:00+00:00", "2024-06-01T11:30:00+02:00", "2024-06-01T09:50:00Z"]
MIXED = ["2024-06-01 10:00:00", "2024-06-01T09:30:00+00:00", "2024-06-01 11:50:00"]  # naive ones are Berlin wall times

CHECKS = [
    # (check, invalid rows or freshness age in seconds)
    ({"type": "range", "column": "{c}", "max": "2024-06-01T11:00:00+00:00", "name": "before_11z"}, 0),
    ({"type": "range", "column": "{c}", "max": "2024-06-01T09:40:00+00:00", "name": "before_0940z"}, 1),
    ({"type": "range", "column": "{c}", "min": "2024-06-01T09:30:00+00:00", "name": "from_0930z"}, 1),  # inclusive
    ({"type": "range", "column": "{c}", "max": "2024-06-01T11:40:00", "name": "naive_bound_is_berlin"}, 1),
    ({"type": "range", "column": "{c}", "min": "2024-06-01", "max": "2024-06-02", "name": "dates_are_berlin_midnight"}, 0),
    ({"type": "freshness", "column": "{c}", "max_age": "3 hours", "name": "age"}, 7800.0),
]


def _checks(column: str):
    return parse_checks([{**c, "column": column} for c, _ in CHECKS])


def _observed(results) -> list:
    return [(r.name, r.status == "error" and r.error or r.observed) for r in results]


EXPECTED = [(c["name"], observed) for c, observed in CHECKS]


@pytest.fixture()
def sqlite_events(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'events.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE events (id INTEGER, wall TIMESTAMP, offsets TEXT, mixed TEXT)")
        for i, row in enumerate(zip(WALL_BERLIN, WITH_OFFSETS, MIXED, strict=True)):
            conn.exec_driver_sql("INSERT INTO events VALUES (?, ?, ?, ?)", (i, *row))
    yield engine
    engine.dispose()


def _pg_events(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE events (id INTEGER, wall TIMESTAMP, offsets TIMESTAMPTZ)")
        for i, row in enumerate(zip(WALL_BERLIN, WITH_OFFSETS, strict=True)):
            conn.exec_driver_sql("INSERT INTO events VALUES (%s, %s, %s)", (i, *row))
    engine.dispose()


def test_sqlite_naive_offset_and_mixed_text(sqlite_events):
    for column in ("wall", "offsets", "mixed"):
        results = run_checks(sqlite_events, "events", _checks(column), now=NOW, timestamp_column=None, timezone=BERLIN)
        assert _observed(results) == EXPECTED, column


@pytest.mark.integration
@pytest.mark.parametrize("session_tz", ["UTC", "America/New_York", "Asia/Tokyo"])
def test_postgresql_timestamp_and_timestamptz_whatever_the_session_timezone(pg_url, session_tz):
    _pg_events(pg_url)
    engine = sa.create_engine(pg_url, connect_args={"options": f"-c timezone={session_tz}"})
    try:
        for column in ("wall", "offsets"):
            results = run_checks(engine, "events", _checks(column), now=NOW, timestamp_column=None, timezone=BERLIN)
            assert _observed(results) == EXPECTED, (column, session_tz)
    finally:
        engine.dispose()


def test_without_a_timezone_naive_values_are_utc(sqlite_events):
    (result,) = run_checks(sqlite_events, "events", parse_checks([{"type": "range", "column": "wall", "max": "2024-06-01T11:00:00+00:00"}]),
                           now=NOW, timestamp_column=None)
    assert result.observed == 2  # 11:30 and 11:50 read as UTC are after 11:00Z


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"c": pd.to_datetime(WALL_BERLIN)}),  # naive datetime64: Berlin wall times
    pd.DataFrame({"c": WALL_BERLIN}),  # naive text
    pd.DataFrame({"c": WITH_OFFSETS}),  # text with offsets
    pd.DataFrame({"c": MIXED}),
    pd.DataFrame({"c": pd.to_datetime(WITH_OFFSETS, format="ISO8601", utc=True).tz_convert("America/New_York")}),
], ids=["datetime64", "naive-text", "offset-text", "mixed-text", "aware-datetime64"])
def test_pandas_agrees(frame):
    results = run_checks_on_frame(frame, _checks("c"), now=NOW, timestamp_column=None, timezone=BERLIN)
    assert _observed(results) == EXPECTED


def test_great_expectations_on_sqlite_agrees(sqlite_events):
    for column in ("wall", "offsets", "mixed"):
        results = run_gx_on_table(sqlite_events, "events", _checks(column), now=NOW, timestamp_column=None, timezone=BERLIN)
        assert _observed(results) == EXPECTED, column


@pytest.mark.integration
def test_great_expectations_on_postgresql_agrees(pg_url):
    _pg_events(pg_url)
    engine = sa.create_engine(pg_url, connect_args={"options": "-c timezone=America/New_York"})
    try:
        for column in ("wall", "offsets"):
            results = run_gx_on_table(engine, "events", _checks(column), now=NOW, timestamp_column=None, timezone=BERLIN)
            assert _observed(results) == EXPECTED, column
    finally:
        engine.dispose()


def test_great_expectations_on_a_frame_agrees():
    results = run_gx_on_frame(pd.DataFrame({"c": MIXED}), _checks("c"), now=NOW, timestamp_column=None, timezone=BERLIN)
    assert _observed(results) == EXPECTED


def test_a_boundary_value_is_inside_the_range_in_every_engine(sqlite_events):
    """The review's SQLite case: GX compared '...10:00:00' < '...10:00:00.000000' as text."""
    check = parse_checks([{"type": "range", "column": "wall", "min": "2024-06-01T10:00:00"}])
    sql = run_checks(sqlite_events, "events", check, now=NOW, timestamp_column=None)
    gx = run_gx_on_table(sqlite_events, "events", check, now=NOW, timestamp_column=None)
    frame = run_checks_on_frame(pd.DataFrame({"wall": WALL_BERLIN}), check, now=NOW, timestamp_column=None)
    assert [r[0].observed for r in (sql, gx, frame)] == [0, 0, 0]


def test_sqlite_freshness_scans_again_only_when_the_text_carries_offsets(sqlite_events):
    """Naive text (the common case) costs the one shared scan; text with offsets, whose text maximum
    need not be the newest instant, costs one more statement that normalises every value."""
    from tests.engine.conftest import StatementCounter

    for column, statements in (("wall", 1), ("offsets", 2)):
        with StatementCounter(sqlite_events) as counter:
            (result,) = run_checks(sqlite_events, "events", parse_checks([{"type": "freshness", "column": column, "max_age": "3 hours"}]),
                                   now=NOW, timestamp_column=None, timezone=BERLIN)
        assert (result.observed, len(counter.statements)) == (7800.0, statements), column
