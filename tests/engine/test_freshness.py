"""Freshness arithmetic shared with the freshness sensor, and dbt-like warn/error thresholds."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.dialects import postgresql

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.evaluate import EvalContext, evaluate
from airflow_dataops.engine.freshness import freshness_lag, newest_timestamp_stmt
from airflow_dataops.engine.sql_objects import UnsafeFilterError

UTC = dt.timezone.utc
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("newest,tz,lag", [
    (dt.datetime(2024, 6, 1, 11, 0), None, 3600),
    ("2024-06-01 11:00:00", None, 3600),
    ("2024-06-01T11:00:00Z", None, 3600),
    ("2024-06-01 11:00:00.500000", None, 3599.5),
    (dt.datetime(2024, 6, 1, 11, 0), "Europe/Berlin", 3 * 3600),  # naive, in the dataset's zone (UTC+2)
    (dt.datetime(2024, 6, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))), "Europe/Berlin", 3600),  # aware wins
    (dt.date(2024, 6, 1), None, 12 * 3600),
    (dt.datetime(2024, 6, 1, 13, 0), None, -3600),  # clock skew: a future row counts as fresh
])
def test_freshness_lag(newest, tz, lag):
    assert freshness_lag(newest, NOW, tz) == dt.timedelta(seconds=lag)


def test_freshness_lag_edge_cases():
    assert freshness_lag(None, NOW) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        freshness_lag("2024-06-01", NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="cannot read 'yesterday'"):
        freshness_lag("yesterday", NOW)
    with pytest.raises(ValueError, match="unknown timezone"):
        freshness_lag("2024-06-01", NOW, "Mars/Olympus")


def test_newest_timestamp_stmt_is_quoted_and_filtered():
    stmt = newest_timestamp_stmt("analytics.Orders", "updated_at", "region = 'eu'")
    assert str(stmt.compile(dialect=postgresql.dialect())) == (
        'SELECT max(analytics."Orders".updated_at) AS newest \nFROM analytics."Orders" \nWHERE (region = \'eu\')'
    )
    with pytest.raises(UnsafeFilterError):
        newest_timestamp_stmt("orders", "updated_at", "1=1; DELETE FROM orders")
    with pytest.raises(ValueError):
        newest_timestamp_stmt("orders", "updated_at; --", None)


@pytest.mark.parametrize("config,age_h,status", [
    ({"max_age": "2h"}, 1, "passed"),
    ({"max_age": "2h"}, 3, "failed"),
    ({"max_age": "2h", "action": "warn"}, 3, "warned"),
    ({"warn_after": "1h", "error_after": "4h"}, 0.5, "passed"),
    ({"warn_after": "1h", "error_after": "4h"}, 2, "warned"),  # dbt: past warn_after only -> warning, even with action fail
    ({"warn_after": "1h", "error_after": "4h"}, 5, "failed"),
    ({"warn_after": "1h", "error_after": "4h", "action": "warn"}, 5, "warned"),  # action warn never fails
    ({"warn_after": "1h"}, 2, "warned"),
    ({"error_after": "4h"}, 5, "failed"),
])
def test_warn_after_error_after_follow_dbt(config, age_h, status):
    from airflow_dataops.engine.outcome import from_verdict

    (check,) = parse_checks([{"type": "freshness", "column": "ts", **config}])
    verdict = evaluate(check, {"newest": NOW - dt.timedelta(hours=age_h)}, EvalContext(now=NOW))
    assert from_verdict(check, verdict, table="t", engine="sql", now=NOW).status == status
