"""The same checks on the same data give the same results with SQL, pandas and Great Expectations."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.gx_runner import run_gx_on_frame, run_gx_on_table
from airflow_dataops.engine.pandas_runner import run_checks_on_frame
from airflow_dataops.engine.sql_runner import run_checks
from tests.engine.conftest import NOW, order_dicts

STANDARD = [
    {"type": "row_count", "min": 6, "name": "rows"},
    {"type": "null_check", "columns": ["customer_id", "email"]},
    {"type": "null_check", "columns": ["email"], "max_null_pct": "25%", "name": "email_nulls_pct"},
    {"type": "completeness", "columns": ["email"], "min_pct": "90%", "action": "warn"},
    {"type": "unique", "columns": ["id"]},
    {"type": "unique", "columns": ["email"]},
    {"type": "unique", "columns": ["status", "amount"]},
    {"type": "accepted_values", "column": "status", "values": ["new", "paid"]},
    {"type": "range", "column": "amount", "min": 0, "max": 100},
    {"type": "range", "column": "updated_at", "max": "2024-06-01T09:30:00", "name": "ts_range"},
    {"type": "pattern", "column": "email", "regex": "^[a-z]+@x\\.io$"},
    {"type": "freshness", "column": "updated_at", "warn_after": "30 minutes", "error_after": "2 hours"},
    {"type": "volume_anomaly", "max_change_pct": "10%"},
    {"type": "schema", "columns": [{"name": "id", "type": "integer"}, {"name": "amount", "type": "float"}]},
]
# GX counts every row of a repeated value for `unique`; the verdict is the same.
GX_UNIQUE_OBSERVED = {"unique_id": 2, "unique_status_amount": 2}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(order_dicts())


def _history(name, n):
    return [5, 5, 6][:n]


def test_pandas_matches_sql(db):
    checks = parse_checks(STANDARD)
    on_sql = run_checks(db, "orders", checks, now=NOW, timestamp_column="updated_at", history=_history)
    on_frame = run_checks_on_frame(_frame(), checks, now=NOW, timestamp_column="updated_at", history=_history)
    assert [(r.name, r.status, r.observed) for r in on_frame] == [(r.name, r.status, r.observed) for r in on_sql]
    assert {r.status for r in on_sql} == {"passed", "warned", "failed"}
    assert all(r.engine == "pandas" for r in on_frame)


def test_great_expectations_matches_sql(db):
    checks = parse_checks([c for c in STANDARD if c["type"] != "schema"])
    on_sql = run_checks(db, "orders", checks, now=NOW, timestamp_column="updated_at", history=_history)
    on_gx = run_gx_on_table(db, "orders", checks, now=NOW, timestamp_column="updated_at", history=_history)
    expected = [(r.name, r.status, GX_UNIQUE_OBSERVED.get(r.name, r.observed)) for r in on_sql]
    assert [(r.name, r.status, r.observed) for r in on_gx] == expected
    assert all(r.engine == "great_expectations" for r in on_gx)


def test_great_expectations_on_a_frame_matches_sql(sqlite_engine):
    checks = parse_checks([c for c in STANDARD if c["type"] != "schema"])
    on_sql = run_checks(sqlite_engine, "orders", checks, now=NOW, timestamp_column="updated_at", history=_history)
    on_gx = run_gx_on_frame(_frame(), checks, now=NOW, timestamp_column="updated_at", history=_history)
    expected = [(r.name, r.status, GX_UNIQUE_OBSERVED.get(r.name, r.observed)) for r in on_sql]
    assert [(r.name, r.status, r.observed) for r in on_gx] == expected


def test_engine_great_expectations_routes_a_block_through_gx(sqlite_engine):
    checks = parse_checks([{"type": "null_check", "columns": ["email"], "engine": "great_expectations"},
                           {"type": "null_check", "columns": ["id"]}])
    via_gx, via_sql = run_checks(sqlite_engine, "orders", checks, now=NOW, timestamp_column=None)
    assert (via_gx.engine, via_gx.status, via_gx.observed) == ("great_expectations", "failed", {"email": 1})
    assert (via_sql.engine, via_sql.status) == ("sql", "passed")


@pytest.mark.parametrize("check,error", [
    ({"type": "expectation", "expectation": "expect_column_to_be_teapot"}, "has no expectation"),
    ({"type": "expectation", "expectation": "expect_column_values_to_be_between", "kwargs": {"colum": "amount"}}, "kwargs"),
    ({"type": "expectation", "expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "ghost"}}, "ghost"),
    ({"type": "referential", "column": "customer_id", "parent_table": "customers", "parent_column": "id",
      "engine": "great_expectations"}, "use the SQL engine"),
])
def test_gx_problems_are_error_results(sqlite_engine, check, error):
    (result,) = run_checks(sqlite_engine, "orders", parse_checks([check]), now=NOW, timestamp_column=None)
    assert result.status == "error" and error in result.error


def test_frame_only_refuses_what_needs_a_database():
    checks = parse_checks([
        {"type": "referential", "column": "customer_id", "parent_table": "customers", "parent_column": "id"},
        {"type": "sql", "sql": "select 1"},
        {"type": "row_count", "min": 1, "where": "status = 'paid'"},
        {"type": "null_check", "columns": ["ghost"]},
    ])
    results = run_checks_on_frame(_frame(), checks, now=NOW, timestamp_column=None, source="task extract")
    assert [r.status for r in results] == ["error"] * 4
    assert "needs a database" in results[0].error and "needs a database" in results[1].error
    assert "filter the frame" in results[2].error
    assert results[3].error.startswith("column ghost not found in task extract")


def test_frame_samples_are_bounded_and_json_safe():
    checks = parse_checks([{"type": "range", "column": "amount", "max": 15}])
    (result,) = run_checks_on_frame(_frame(), checks, now=NOW, timestamp_column=None, failing_rows_sample=2)
    assert len(result.failing_rows) == 2
    assert result.to_record()["failing_rows"].startswith("[{")


FILTERED = [
    {"type": "row_count", "min": 3, "where": "status <> 'new'", "name": "not_new_rows"},
    {"type": "null_check", "columns": ["customer_id"], "where": "status = 'paid'", "name": "paid_customers"},
    {"type": "accepted_values", "column": "status", "values": ["paid"], "where": "amount = 20", "name": "twenties_paid"},
    {"type": "null_check", "columns": ["email"], "name": "emails_unfiltered"},
]


def test_great_expectations_applies_where_like_sql(db):
    checks = parse_checks(FILTERED)
    on_sql = run_checks(db, "orders", checks, now=NOW, timestamp_column=None)
    on_gx = run_checks(db, "orders", parse_checks([{**c, "engine": "great_expectations"} for c in FILTERED]),
                       now=NOW, timestamp_column=None)
    assert [(r.name, r.status, r.observed) for r in on_gx] == [(r.name, r.status, r.observed) for r in on_sql]
    assert [r.observed for r in on_sql] == [3, {"customer_id": 1}, 0, {"email": 1}]
    assert all(r.engine == "great_expectations" for r in on_gx)


ENDLESS = "id < (WITH RECURSIVE n(y) AS (SELECT 1 UNION ALL SELECT y + 1 FROM n) SELECT count(*) FROM n)"


def test_great_expectations_queries_carry_the_statement_timeout(db):
    import time

    check = parse_checks([{"type": "row_count", "min": 1, "where": ENDLESS, "engine": "great_expectations"}])
    started = time.monotonic()
    (result,) = run_checks(db, "orders", check, now=NOW, timestamp_column=None, statement_timeout_s=1)
    assert time.monotonic() - started < 30
    assert result.status == "error" and "timed out after 1s ([dataops] statement_timeout)" in result.error, result.error


def test_expectation_results_name_their_columns_and_what_was_observed(sqlite_engine):
    checks = parse_checks([
        {"type": "expectation", "expectation": "expect_column_values_to_be_in_set", "name": "in_set",
         "kwargs": {"column": "status", "value_set": ["new", "paid"]}},
        {"type": "expectation", "expectation": "expect_column_pair_values_a_to_be_greater_than_b", "name": "pair",
         "kwargs": {"column_A": "amount", "column_B": "id"}},
        {"type": "expectation", "expectation": "expect_table_row_count_to_equal", "name": "rows", "kwargs": {"value": 5}},
    ])
    in_set, pair, rows = run_checks(sqlite_engine, "orders", checks, now=NOW, timestamp_column=None)
    assert (in_set.columns, in_set.observed, in_set.status) == (("status",), 1, "failed")
    assert (pair.columns, pair.status) == (("amount", "id"), "passed") and pair.observed == 0
    assert (rows.columns, rows.observed, rows.status) == ((), 5, "passed")
    assert all("partial_unexpected" not in str(r.to_xcom()) for r in (in_set, pair, rows))
