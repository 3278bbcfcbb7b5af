"""Every check type, passing and failing, on real SQLite and real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.sql_runner import run_checks
from tests.engine.conftest import NOW

HISTORY = {
    "volume_steady": [5, 5, 5], "volume_jump": [100, 100, 100], "volume_new": [],
    "volume_z_ok": [4, 5, 6], "volume_z_bad": [1, 1, 2],
}

# (check, expected status, expected observed or None to skip)
CASES = [
    ({"type": "row_count", "threshold": 5, "name": "rows_min5"}, "passed", 5),
    ({"type": "row_count", "min": 6, "name": "rows_min6"}, "failed", 5),
    ({"type": "row_count", "max": 4, "name": "rows_max4", "action": "warn"}, "warned", 5),
    ({"type": "row_count", "min": 2, "name": "rows_filtered", "where": "status = 'paid'"}, "passed", 2),
    ({"type": "null_check", "columns": ["id", "status"]}, "passed", {"id": 0, "status": 0}),
    ({"type": "null_check", "columns": ["customer_id"]}, "failed", {"customer_id": 1}),
    ({"type": "null_check", "columns": ["customer_id"], "max_nulls": 1, "name": "nulls_max1"}, "passed", {"customer_id": 1}),
    ({"type": "null_check", "columns": ["email"], "max_null_pct": "10%", "name": "nulls_pct"}, "failed", {"email": 1}),
    ({"type": "completeness", "columns": ["email"], "min_pct": "80%"}, "passed", {"email": 80.0}),
    ({"type": "completeness", "columns": ["email"], "min_pct": "90%", "name": "complete90"}, "failed", {"email": 80.0}),
    ({"type": "unique", "columns": ["id"]}, "failed", 1),
    ({"type": "unique", "columns": ["email"]}, "passed", 0),
    ({"type": "unique", "columns": ["id", "customer_id"]}, "passed", 0),
    ({"type": "unique", "columns": ["status", "amount"]}, "failed", 1),
    ({"type": "accepted_values", "column": "status", "values": ["new", "paid", "shipped"]}, "passed", 0),
    ({"type": "accepted_values", "column": "status", "values": ["new", "paid"], "name": "status_strict"}, "failed", 1),
    ({"type": "range", "column": "amount", "min": 0, "max": 1000}, "passed", 0),
    ({"type": "range", "column": "amount", "max": 100, "name": "amount_small"}, "failed", 1),
    ({"type": "range", "column": "updated_at", "min": "2024-05-31"}, "passed", 0),
    ({"type": "range", "column": "updated_at", "max": "2024-06-01T09:30:00", "name": "ts_max"}, "failed", 2),
    ({"type": "pattern", "column": "email", "regex": "^[a-z]+@x\\.io$"}, "failed", 1),
    ({"type": "pattern", "column": "email", "regex": "@|bad", "name": "email_loose"}, "passed", 0),
    ({"type": "freshness", "max_age": "2 hours"}, "passed", 3600.0),
    ({"type": "freshness", "max_age": "30 minutes", "name": "fresh_30m"}, "failed", 3600.0),
    ({"type": "freshness", "warn_after": "30 minutes", "error_after": "2 hours", "name": "fresh_warn"}, "warned", 3600.0),
    ({"type": "freshness", "warn_after": "10 minutes", "error_after": "20 minutes", "name": "fresh_err"}, "failed", 3600.0),
    ({"type": "schema", "columns": [{"name": "id", "type": "integer"}, {"name": "email", "type": "varchar"}]}, "passed", None),
    ({"type": "schema", "columns": [{"name": "id", "type": "varchar"}], "name": "schema_type"}, "failed", None),
    ({"type": "schema", "columns": [{"name": "id"}], "strict": True, "name": "schema_strict"}, "failed", None),
    ({"type": "schema", "columns": [{"name": "nope"}], "name": "schema_missing"}, "failed", None),
    ({"type": "referential", "column": "customer_id", "parent_table": "customers", "parent_column": "id"}, "failed", 1),
    ({"type": "referential", "column": "customer_id", "parent_table": "customers", "parent_column": "id",
      "where": "id < 4", "name": "ref_filtered"}, "passed", 0),
    ({"type": "sql", "sql": "select * from orders where amount < 0", "name": "sql_no_neg"}, "passed", 0),
    ({"type": "sql", "sql": "select * from orders where amount > 100;", "name": "sql_no_big"}, "failed", 1),
    ({"type": "sql", "sql": "select count(*) > 0 from orders", "expect": "truthy", "name": "sql_truthy"}, "passed", None),
    ({"type": "sql", "sql": "select count(*) from orders where amount < 0", "expect": "truthy", "name": "sql_falsy"}, "failed", 0),
    ({"type": "volume_anomaly", "max_change_pct": "10%", "name": "volume_steady"}, "passed", 5),
    ({"type": "volume_anomaly", "max_change_pct": "10%", "name": "volume_jump"}, "failed", 5),
    ({"type": "volume_anomaly", "max_change_pct": "10%", "name": "volume_new"}, "passed", 5),
    ({"type": "volume_anomaly", "max_stddev": 2, "name": "volume_z_ok"}, "passed", 5),
    ({"type": "volume_anomaly", "max_stddev": 2, "name": "volume_z_bad"}, "failed", 5),
    ({"type": "expectation", "expectation": "expect_column_values_to_be_between",
      "kwargs": {"column": "amount", "min_value": 0, "max_value": 1000}, "name": "gx_ok"}, "passed", None),
    ({"type": "expectation", "expectation": "expect_column_values_to_be_between",
      "kwargs": {"column": "amount", "min_value": 0, "max_value": 100}, "name": "gx_bad"}, "failed", 1),
]


def test_every_check_type_passes_and_fails(db):
    checks = parse_checks([case[0] for case in CASES])
    results = run_checks(db, "orders", checks, now=NOW, timestamp_column="updated_at",
                         history=lambda name, n: HISTORY[name][:n])
    assert [r.name for r in results] == [c.check_name for c in checks]
    mismatches = [(r.name, r.status, status, r.observed, observed, r.message)
                  for r, (_, status, observed) in zip(results, CASES, strict=True)
                  if r.status != status or (observed is not None and r.observed != observed)]
    assert not mismatches
    by_name = {r.name: r for r in results}
    assert by_name["volume_new"].message.endswith("(passes until then)")
    assert by_name["schema_type"].observed["type_mismatch"] == {"id": by_name["schema_type"].observed["type_mismatch"]["id"]}
    assert by_name["schema_strict"].observed["unexpected"] == ["amount", "customer_id", "email", "status", "updated_at"]
    assert by_name["schema_missing"].observed["missing"] == ["nope"]
    assert all(r.checked_at == NOW and r.engine in {"sql", "great_expectations"} for r in results)
    assert all(r.failing_rows == () for r in results), "samples are off by default"


def test_failing_rows_sampled_only_for_failed_checks_and_bounded(db):
    checks = parse_checks([
        {"type": "null_check", "columns": ["customer_id", "email"]},
        {"type": "range", "column": "amount", "max": 15},
        {"type": "unique", "columns": ["id"]},
        {"type": "accepted_values", "column": "status", "values": ["new", "paid", "shipped"]},
    ])
    results = run_checks(db, "orders", checks, now=NOW, timestamp_column="updated_at", failing_rows_sample=2)
    nulls, amounts, unique, accepted = results
    assert [row["id"] for row in nulls.failing_rows] == [3]
    assert len(amounts.failing_rows) == 2 and all(row["amount"] > 15 for row in amounts.failing_rows)
    assert sorted(row["id"] for row in unique.failing_rows) == [4, 4]
    assert accepted.passed and accepted.failing_rows == ()
    assert all("failing_rows" not in r.to_xcom() for r in results)


def test_naive_timestamps_read_in_the_dataset_timezone(db):
    # Rows are stored naive; read as UTC the newest is 1h old, read as UTC+2 (Berlin in June) it is 3h old.
    check = parse_checks([{"type": "freshness", "column": "updated_at", "max_age": "2 hours"}])
    (utc,) = run_checks(db, "orders", check, now=NOW, timestamp_column=None)
    (berlin,) = run_checks(db, "orders", check, now=NOW, timestamp_column=None, timezone="Europe/Berlin")
    assert (utc.status, utc.observed) == ("passed", 3600.0)
    assert (berlin.status, berlin.observed) == ("failed", 3 * 3600.0)


def test_freshness_of_an_empty_selection_is_stale(db):
    check = parse_checks([{"type": "freshness", "max_age": "1 day", "where": "status = 'refunded'"}])
    (result,) = run_checks(db, "orders", check, now=NOW, timestamp_column="updated_at")
    assert result.status == "failed" and "no rows" in result.message


def test_now_must_be_timezone_aware(db):
    with pytest.raises(ValueError, match="timezone-aware"):
        run_checks(db, "orders", parse_checks([{"type": "row_count", "min": 1}]), now=dt.datetime(2024, 1, 1), timestamp_column=None)


def test_backslashes_and_colons_in_custom_sql_and_where_reach_the_database_unchanged(tmp_path):
    """Regexes and LIKE ... ESCAPE need their backslashes as written; colons are not bind markers."""
    import datetime as dt

    import sqlalchemy as sa

    from airflow_dataops.config.checks import parse_checks
    from airflow_dataops.engine.sql_runner import run_checks

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v TEXT, at TEXT)")
        conn.exec_driver_sql(r"INSERT INTO t VALUES ('a\b', '12:30'), ('plain', '08:00')")
    checks = parse_checks([
        {"type": "sql", "name": "backslash_row_exists", "sql": r"SELECT count(*) FROM t WHERE v = 'a\b'", "expect": "truthy"},
        {"type": "row_count", "name": "rows_at_half_past", "min": 1, "max": 1, "where": "at = '12:30'"},
    ])
    results = {r.name: r for r in run_checks(engine, "t", checks, now=dt.datetime.now(dt.timezone.utc), timestamp_column=None)}
    engine.dispose()
    assert results["backslash_row_exists"].status == "passed", results["backslash_row_exists"]
    assert results["rows_at_half_past"].status == "passed" and results["rows_at_half_past"].observed == 1
