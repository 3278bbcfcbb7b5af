"""One bad literal or regular expression errors its own check only: when the shared scan fails, the
checks are split until the culprit is found, and accepted values are bound as the column's type."""

from __future__ import annotations

import pytest

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.sql_runner import run_checks
from tests.engine.conftest import NOW, StatementCounter

HEALTHY = [
    {"type": "row_count", "min": 1},
    {"type": "null_check", "columns": ["id", "status"]},
    {"type": "unique", "columns": ["id"]},
    {"type": "range", "column": "amount", "min": 0, "max": 1000},
    {"type": "freshness", "column": "updated_at", "max_age": "1 day"},
    {"type": "completeness", "columns": ["email"], "min_pct": "50%"},
    {"type": "accepted_values", "column": "status", "values": ["new", "paid", "shipped"]},
]
HEALTHY_STATUSES = ["passed", "passed", "failed", "passed", "passed", "passed", "passed"]


def test_mixed_accepted_values_are_bound_as_the_column_type(db):
    """[1, "x"] on an integer column: PostgreSQL refused `integer <> varchar` for the whole scan."""
    checks = parse_checks(HEALTHY + [
        {"type": "accepted_values", "column": "customer_id", "values": [1, 2, 3, "x"], "name": "known_customers"},
        {"type": "accepted_values", "column": "customer_id", "values": ["1", "2", "3", "9"], "name": "text_ids"},
        {"type": "accepted_values", "column": "status", "values": ["new", "paid", "shipped", 7], "name": "status_and_a_number"},
    ])
    results = run_checks(db, "orders", checks, now=NOW, timestamp_column=None)
    assert [r.status for r in results] == HEALTHY_STATUSES + ["failed", "passed", "passed"], [r.error for r in results]
    assert results[-3].observed == 1  # customer 9 is not in {1, 2, 3}; "x" can never match an integer


@pytest.mark.integration
def test_an_invalid_regex_errors_only_its_own_check(postgresql_engine):
    """`(?P<n>...)` is valid Python but not a PostgreSQL regular expression."""
    checks = parse_checks(HEALTHY + [{"type": "pattern", "column": "email", "regex": r"(?P<user>\w+)@", "name": "python_only"}])
    with StatementCounter(postgresql_engine) as counter:
        results = run_checks(postgresql_engine, "orders", checks, now=NOW, timestamp_column=None)
    assert [r.status for r in results] == HEALTHY_STATUSES + ["error"]
    bad = results[-1]
    assert bad.error.startswith("configuration: the pattern check's query failed: invalid regular expression")
    assert bad.message.startswith("check 'python_only' on orders could not run")
    # One failed scan, then halves: far fewer statements than one per check.
    assert len(counter.data_statements()) <= 2 * len(checks)


def test_a_failing_expression_is_found_among_many(sqlite_engine):
    """SQLite: a regex that only breaks at run time (a Python function raising) is isolated too."""
    from airflow_dataops.config.checks import PatternCheck

    evil = PatternCheck.model_construct(type="pattern", column="email", regex="(", action="fail", name="broken",
                                        where=None, conn_id=None, table=None, engine=None, source_task=None)
    checks = parse_checks(HEALTHY) + [evil]
    results = run_checks(sqlite_engine, "orders", checks, now=NOW, timestamp_column=None)
    assert [r.status for r in results] == HEALTHY_STATUSES + ["error"]
    assert results[-1].error.startswith("configuration: ") and "broken" in results[-1].message


ENDLESS = "id < (WITH RECURSIVE n(y) AS (SELECT 1 UNION ALL SELECT y + 1 FROM n) SELECT count(*) FROM n)"


def test_a_timeout_is_not_bisected(db):
    """A timeout hits every check of the scan at once (splitting would only multiply the wait)."""
    checks = parse_checks([{**c, "where": ENDLESS} for c in HEALTHY[:4]])
    with StatementCounter(db) as counter:
        results = run_checks(db, "orders", checks, now=NOW, timestamp_column=None, statement_timeout_s=1)
    assert all(r.status == "error" and "timed out after 1s" in r.error for r in results), [r.error for r in results]
    assert not any(r.error.startswith("configuration: ") for r in results), "a timeout may pass on retry"
    assert len(counter.data_statements()) == 1
