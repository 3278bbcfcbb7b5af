"""Aggregate checks on one table with one filter are ONE statement (one scan); golden SQL per dialect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.sql_aggregates import build_scan
from airflow_dataops.engine.sql_runner import run_checks
from tests.engine.conftest import NOW, StatementCounter

GOLDEN = Path(__file__).parent / "golden"

EIGHT = [
    {"type": "row_count", "min": 1},
    {"type": "null_check", "columns": ["id"]},
    {"type": "null_check", "columns": ["status"]},
    {"type": "unique", "columns": ["id"]},
    {"type": "accepted_values", "column": "status", "values": ["new", "paid", "shipped"]},
    {"type": "range", "column": "amount", "min": 0, "max": 1000},
    {"type": "freshness", "max_age": "1 day"},
    {"type": "completeness", "columns": ["email"], "min_pct": "50%"},
]


def test_eight_aggregate_checks_are_one_statement(db):
    checks = parse_checks(EIGHT)
    with StatementCounter(db) as counter:
        results = run_checks(db, "orders", checks, now=NOW, timestamp_column="updated_at")
    assert len(counter.data_statements()) == 1, counter.statements
    assert counter.data_statements()[0].count("FROM orders") == 1
    assert [r.status for r in results] == ["passed"] * 3 + ["failed"] + ["passed"] * 4
    # Measures are shared: one count(*) for every check that needs the row count.
    assert counter.data_statements()[0].lower().count("count(*)") == 1


def test_postgresql_is_set_local_then_one_scan_with_the_combination_folded_in(postgresql_engine):
    checks = parse_checks(EIGHT + [{"type": "unique", "columns": ["status", "amount"]}])
    for _ in range(2):  # the same on a fresh and on a pooled connection: nothing is cached in the session
        with StatementCounter(postgresql_engine) as counter:
            results = run_checks(postgresql_engine, "orders", checks, now=NOW, timestamp_column="updated_at")
        assert counter.statements[0] == "SET LOCAL statement_timeout = 300000" and len(counter.statements) == 2
        assert "count(DISTINCT (orders.status, orders.amount))" in counter.data_statements()[0]  # the combination folded in
        assert (results[-1].status, results[-1].observed) == ("failed", 1)


def test_sqlite_runs_a_combination_unique_separately(sqlite_engine):
    checks = parse_checks(EIGHT + [{"type": "unique", "columns": ["status", "amount"]}])
    with StatementCounter(sqlite_engine) as counter:
        results = run_checks(sqlite_engine, "orders", checks, now=NOW, timestamp_column="updated_at")
    assert len(counter.statements) == 2 and "GROUP BY" in counter.statements[1]
    assert (results[-1].status, results[-1].observed) == ("failed", 1)


def test_each_distinct_filter_is_one_more_scan(db):
    checks = parse_checks(EIGHT + [
        {"type": "row_count", "min": 1, "where": "status = 'paid'", "name": "paid_rows"},
        {"type": "null_check", "columns": ["email"], "where": "status = 'paid'", "name": "paid_emails", "action": "warn"},
    ])
    with StatementCounter(db) as counter:
        results = run_checks(db, "orders", checks, now=NOW, timestamp_column="updated_at")
    assert len(counter.data_statements()) == 2
    assert [(r.name, r.status, r.observed) for r in results[-2:]] == [("paid_rows", "passed", 2), ("paid_emails", "warned", {"email": 1})]


def test_failing_row_samples_cost_one_statement_per_failed_check(db):
    checks = parse_checks(EIGHT)
    with StatementCounter(db) as counter:
        run_checks(db, "orders", checks, now=NOW, timestamp_column="updated_at", failing_rows_sample=5)
    assert len(counter.data_statements()) == 2  # the scan + the unique check's sample


EXTRA = {
    "sqlite": [{"type": "range", "column": "updated_at", "min": "2024-05-01", "max": "2024-06-01T12:00:00+00:00"}],
    "postgresql": [{"type": "range", "column": "updated_at", "min": "2024-05-01", "max": "2024-06-01T12:00:00+00:00"},
                   {"type": "unique", "columns": ["status", "amount"]}],
}


def _render(name, dialect) -> str:
    checks = parse_checks(EIGHT + EXTRA[name])
    stmt = build_scan("analytics.orders", "status <> 'void'", checks, timestamp_column="updated_at",
                      dialect=name, timezone="Europe/Berlin").statement()
    compiled = stmt.compile(dialect=dialect)
    params = {k: (v if not isinstance(v, list) else list(v)) for k, v in compiled.params.items()}
    return f"{compiled}\n-- params: {params}\n"


@pytest.mark.parametrize("name,dialect", [("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())])
def test_golden_sql(name, dialect):
    path = GOLDEN / f"scan_{name}.sql"
    text = _render(name, dialect)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"generated SQL changed: review it, then UPDATE_GOLDEN=1 to accept ({path})"
