"""Hostile identifiers never reach the database; a `where` filter cannot add a statement."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.sql_objects import UnsafeFilterError, sql_table, validate_where
from airflow_dataops.engine.sql_runner import run_checks
from tests.engine.conftest import NOW, StatementCounter

HOSTILE_NAMES = [
    'orders"; DROP TABLE orders; --',
    "orders'; DROP TABLE orders; --",
    "orders;",
    "orders -- comment",
    "orders/* c */",
    "{{ 7 * 7 }}",
    "{% raw %}x{% endraw %}",
    'or"ders',
    "`orders`",
    "[orders]",
    "o rders",
    "orders\x00",
    "1orders",
    "ｏrders",  # full-width letter
    "a.b.c.d",
    "",
]


def _orders_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one()


def test_hostile_column_names_are_rejected_by_the_models(db):
    for name in HOSTILE_NAMES:
        with pytest.raises(ValidationError, match="not a valid column name|Jinja|expected a name"):
            parse_checks([{"type": "null_check", "columns": [name]}])
    assert _orders_count(db) == 5


def test_hostile_column_names_never_reach_the_database_even_past_the_models(db):
    """Checks built without validation (model_construct) still never send a hostile name as SQL."""
    from airflow_dataops.config.checks import NullCheck

    for name in HOSTILE_NAMES:
        check = NullCheck.model_construct(type="null_check", columns=[name], action="fail", name=None, where=None,
                                          conn_id=None, table=None, engine=None, source_task=None,
                                          max_nulls=None, max_null_pct=None)
        with StatementCounter(db) as counter:
            try:
                results = run_checks(db, "orders", [check], now=NOW, timestamp_column=None)
            except ValueError:
                results = []
        assert all(r.status == "error" for r in results), (name, results)
        assert not any(name and name in statement for statement in counter.statements), (name, counter.statements)
    assert _orders_count(db) == 5


def test_hostile_table_names_are_rejected_before_any_sql(db):
    for name in HOSTILE_NAMES:
        with pytest.raises(ValidationError):
            parse_checks([{"type": "row_count", "min": 1, "table": name}])
        with pytest.raises(ValidationError):
            parse_checks([{"type": "referential", "column": "customer_id", "parent_table": name, "parent_column": "id"}])
        with StatementCounter(db) as counter, pytest.raises(ValueError, match="not a valid table name|expected a name"):
            run_checks(db, name, parse_checks([{"type": "row_count", "min": 1}]), now=NOW, timestamp_column=None)
        assert counter.statements == [], name
    assert _orders_count(db) == 5


def test_unusual_but_valid_names_are_quoted_by_the_dialect(db):
    with db.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "Mixed$Case" ("Select" INTEGER, "order" INTEGER)')
        conn.exec_driver_sql('INSERT INTO "Mixed$Case" VALUES (1, NULL)')
    checks = parse_checks([{"type": "null_check", "columns": ["Select", "order"], "max_nulls": 1}])
    (result,) = run_checks(db, "Mixed$Case", checks, now=NOW, timestamp_column=None)
    assert (result.status, result.observed) == ("passed", {"Select": 0, "order": 1})


HOSTILE_WHERES = [
    "1=1; DROP TABLE orders",
    "1=1 -- and the rest",
    "1=1 /* hidden */",
    "1=1 */",
    "1=1) OR (1=1",
    "(1=1",
    "status = 'unterminated",
    'status = "unterminated',
    "status = $$x$$",
    "status = 'a\\'; DROP TABLE orders; --'",
    "status = '{{ params.evil }}'",
    "1=1\x00",
    "   ",
]


@pytest.mark.parametrize("where", HOSTILE_WHERES)
def test_hostile_where_is_rejected(where):
    with pytest.raises(UnsafeFilterError, match="`where` filter"):
        validate_where(where)


def test_hostile_where_never_reaches_the_database(db):
    for where in HOSTILE_WHERES:
        checks = parse_checks([{"type": "row_count", "min": 1, "where": where},
                               {"type": "referential", "column": "customer_id", "parent_table": "customers",
                                "parent_column": "id", "where": where}])
        with StatementCounter(db) as counter:
            results = run_checks(db, "orders", checks, now=NOW, timestamp_column=None)
        assert counter.statements == [], where
        assert all(r.status == "error" and r.error.startswith("configuration: ") and "`where` filter" in r.error for r in results)
    assert _orders_count(db) == 5


ORDINARY_WHERES = [
    ("email <> 'a;b--c/*d'", 4),  # separators inside a literal are data
    ("status = 'it''s'", 0),
    ("updated_at >= '2024-06-01 09:30:00'", 2),  # colons are not bind parameters
    ("(status = 'paid' OR status = 'new') AND amount < 100", 3),
    ("id IN (SELECT id FROM customers)", 3),
]


def test_ordinary_filters_run(db):
    checks = parse_checks([{"type": "row_count", "min": 0, "where": w, "name": f"rows_{i}"} for i, (w, _) in enumerate(ORDINARY_WHERES)])
    results = run_checks(db, "orders", checks, now=NOW, timestamp_column=None)
    assert [(r.status, r.observed) for r in results] == [("passed", rows) for _, rows in ORDINARY_WHERES]


def test_hostile_values_are_bound_parameters(db):
    evil = "x'); DROP TABLE orders; --"
    checks = parse_checks([{"type": "accepted_values", "column": "status", "values": ["new", "paid", "shipped", evil]},
                           {"type": "pattern", "column": "email", "regex": "'; DROP TABLE orders; --|@"}])
    with StatementCounter(db) as counter:
        results = run_checks(db, "orders", checks, now=NOW, timestamp_column=None)
    assert [r.status for r in results] == ["passed", "failed"]
    assert all(evil not in s and "DROP" not in s for s in counter.statements)
    assert _orders_count(db) == 5


def test_sql_table_helper_rejects_what_the_models_reject():
    for name in HOSTILE_NAMES:
        with pytest.raises(ValueError):
            sql_table(name)
