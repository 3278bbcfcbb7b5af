"""A check that cannot run is an `error` result naming the check and the object, never a crash,
and never confused with a data failure."""

from __future__ import annotations

import time

import pytest

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.sql_runner import run_checks
from tests.engine.conftest import NOW


def test_missing_table_is_an_error_for_every_check(db):
    checks = parse_checks([
        {"type": "row_count", "min": 1}, {"type": "null_check", "columns": ["id"]},
        {"type": "schema", "columns": [{"name": "id"}]},
        {"type": "referential", "column": "customer_id", "parent_table": "customers", "parent_column": "id"},
        {"type": "unique", "columns": ["id", "status"]},
    ])
    results = run_checks(db, "analytics_missing", checks, now=NOW, timestamp_column=None)
    assert [r.status for r in results] == ["error"] * 5
    for r in results:
        assert "analytics_missing does not exist" in r.error
        assert r.message.startswith(f"check {r.name!r} on analytics_missing could not run")


def test_missing_column_errors_only_its_checks(db):
    checks = parse_checks([
        {"type": "row_count", "min": 1},
        {"type": "null_check", "columns": ["id", "ghost"]},
        {"type": "range", "column": "amount", "min": 0},
        {"type": "referential", "column": "phantom", "parent_table": "customers", "parent_column": "id"},
    ])
    results = run_checks(db, "orders", checks, now=NOW, timestamp_column=None)
    assert [r.status for r in results] == ["passed", "error", "passed", "error"]
    assert results[1].error == "column ghost not found in table orders"
    assert results[3].error == "column phantom not found in table orders"


def test_missing_parent_table_names_the_parent(db):
    check = parse_checks([{"type": "referential", "column": "customer_id", "parent_table": "clients", "parent_column": "id"}])
    (result,) = run_checks(db, "orders", check, now=NOW, timestamp_column=None)
    assert result.status == "error" and "clients.id" in result.error


def test_parent_on_another_connection_is_a_configuration_error(db):
    check = parse_checks([{"type": "referential", "column": "customer_id", "parent_table": "customers",
                           "parent_column": "id", "parent_conn_id": "crm"}])
    (result,) = run_checks(db, "orders", check, now=NOW, timestamp_column=None, conn_id="warehouse")
    assert result.status == "error" and result.error.startswith("configuration: ") and "'crm'" in result.error


def test_freshness_without_a_column_is_a_configuration_error(db):
    (result,) = run_checks(db, "orders", parse_checks([{"type": "freshness", "max_age": "1h"}]), now=NOW, timestamp_column=None)
    assert result.status == "error" and "timestamp_column" in result.error


def test_query_error_in_custom_sql(db):
    (result,) = run_checks(db, "orders", parse_checks([{"type": "sql", "sql": "select nonsense from nowhere"}]), now=NOW, timestamp_column=None)
    assert result.status == "error" and result.error.startswith("the sql query failed: ")
    assert "[SQL:" not in result.error


def test_sql_check_from_a_file_relative_to_base_dir(db, tmp_path):
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "big_orders.sql").write_text("-- orders over 100\nSELECT * FROM orders WHERE amount > 100;\n")
    checks = parse_checks([{"type": "sql", "sql": "checks/big_orders.sql"}, {"type": "sql", "sql": "checks/missing.sql", "name": "gone"}])
    big, gone = run_checks(db, "orders", checks, now=NOW, timestamp_column=None, base_dir=tmp_path)
    assert (big.status, big.observed) == ("failed", 1)
    assert gone.status == "error" and "missing.sql" in gone.error


def test_sqlite_statement_timeout(sqlite_engine):
    endless = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
    started = time.monotonic()
    (result,) = run_checks(sqlite_engine, "orders", parse_checks([{"type": "sql", "sql": endless, "expect": "truthy"}]),
                           now=NOW, timestamp_column=None, statement_timeout_s=1)
    assert time.monotonic() - started < 10
    assert result.status == "error" and "timed out after 1s" in result.error and "statement_timeout" in result.error


@pytest.mark.integration
def test_postgres_statement_timeout(postgresql_engine):
    started = time.monotonic()
    (result,) = run_checks(postgresql_engine, "orders", parse_checks([{"type": "sql", "sql": "SELECT pg_sleep(30) IS NULL", "expect": "truthy"}]),
                           now=NOW, timestamp_column=None, statement_timeout_s=1)
    assert time.monotonic() - started < 10
    assert result.status == "error" and "timed out after 1s" in result.error
    # The timeout was local to the check's transaction: the next check on a pooled connection is unaffected.
    (after,) = run_checks(postgresql_engine, "orders", parse_checks([{"type": "row_count", "min": 1}]), now=NOW,
                          timestamp_column=None, statement_timeout_s=0)
    assert after.status == "passed"


@pytest.mark.integration
def test_postgres_timeout_follows_the_setting_on_a_pooled_connection(postgresql_engine):
    """Each run applies its own setting on the same pooled connection: nothing is left from the one before."""
    slow = parse_checks([{"type": "sql", "sql": "SELECT 1 FROM pg_sleep(2)", "expect": "truthy"}])
    engine = postgresql_engine
    (first,) = run_checks(engine, "orders", parse_checks([{"type": "row_count", "min": 1}]), now=NOW, timestamp_column=None)
    (timed_out,) = run_checks(engine, "orders", slow, now=NOW, timestamp_column=None, statement_timeout_s=1)
    (unlimited,) = run_checks(engine, "orders", slow, now=NOW, timestamp_column=None, statement_timeout_s=0)
    assert first.status == "passed"
    assert timed_out.status == "error" and "timed out after 1s" in timed_out.error
    assert unlimited.status == "passed"
    assert engine.pool.checkedin() == 1, "all three runs used the one pooled connection"


def test_checks_routed_to_pandas_are_refused_on_a_table(db):
    check = parse_checks([{"type": "row_count", "min": 1, "source_task": "extract"}])
    (result,) = run_checks(db, "orders", check, now=NOW, timestamp_column=None)
    assert result.status == "error" and "source_task" in result.error


def test_pattern_on_a_database_without_regex_is_a_clear_error(sqlite_engine):
    from sqlalchemy.dialects.mssql.base import MSDialect

    from airflow_dataops.engine.evaluate import EvalContext
    from airflow_dataops.engine.sql_runner import _Runner

    # SQLAlchemy cannot compile regular expressions for SQL Server: the pattern check becomes an
    # error result and the other checks of the scan still run (here on SQLite, compiled as SQL Server).
    checks = parse_checks([{"type": "pattern", "column": "email", "regex": "@"}, {"type": "row_count", "min": 1}])
    with sqlite_engine.connect() as conn:
        runner = _Runner(conn, "orders", timeout_s=0, samples=0, ctx=EvalContext(now=NOW), timestamp_column=None,
                         base_dir=None, conn_id=None)
        runner.dialect = MSDialect()
        out = {}
        runner.scan(None, list(enumerate(checks)), out)
    assert out[0].status == "error" and "mssql has no regular-expression support" in out[0].error
    assert out[1].status == "passed"
