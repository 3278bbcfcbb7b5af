"""The `schema` check compares the database's own type names: timestamptz is not timestamp, an
integer array is not an integer, and the usual aliases still match."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.sql_runner import run_checks
from tests.engine.conftest import NOW

PG_CASES = [
    # (column, expected type, passes)
    ("id", "integer", True), ("id", "int4", True), ("id", "bigint", False),
    ("ts", "timestamp", True), ("ts", "timestamptz", False),
    ("tstz", "timestamptz", True), ("tstz", "timestamp with time zone", True), ("tstz", "timestamp", False),
    ("v", "varchar", True), ("v", "text", True), ("v", "varchar(10)", True),
    ("n", "numeric", True), ("n", "decimal(10,2)", True),
    ("f", "double precision", True), ("f", "float8", True),
    ("j", "jsonb", True), ("j", "json", True),
    ("arr", "int[]", True), ("arr", "integer[]", True), ("arr", "integer", False), ("arr", "text[]", False),
]


@pytest.mark.integration
def test_postgresql_types(postgresql_engine):
    with postgresql_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE typed (id int, ts timestamp, tstz timestamptz, v varchar(10), n numeric(10,2), "
                             "f double precision, j jsonb, arr int[])")
    checks = parse_checks([{"type": "schema", "columns": [{"name": c, "type": t}], "name": f"{c}_{i}"}
                           for i, (c, t, _) in enumerate(PG_CASES)])
    results = run_checks(postgresql_engine, "typed", checks, now=NOW, timestamp_column=None)
    wrong = [(c, t, r.observed) for (c, t, ok), r in zip(PG_CASES, results, strict=True) if r.passed is not ok]
    assert not wrong
    by_name = {r.name: r for r in results}
    assert by_name["tstz_7"].observed["type_mismatch"] == {"tstz": "TIMESTAMP WITH TIME ZONE"}
    assert by_name["arr_19"].observed["type_mismatch"] == {"arr": "INTEGER[]"}


def test_sqlite_types(sqlite_engine):
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE typed (id INTEGER, ts TIMESTAMP, dt DATETIME, v VARCHAR(10), n NUMERIC(10,2), b BOOLEAN)")
    cases = [("id", "integer", True), ("ts", "timestamp", True), ("dt", "timestamp", True), ("v", "varchar", True),
             ("n", "numeric", True), ("b", "boolean", True), ("id", "varchar", False), ("ts", "timestamptz", False)]
    checks = parse_checks([{"type": "schema", "columns": [{"name": c, "type": t}], "name": f"{c}_{i}"}
                           for i, (c, t, _) in enumerate(cases)])
    results = run_checks(sqlite_engine, "typed", checks, now=NOW, timestamp_column=None)
    assert [r.passed for r in results] == [ok for *_, ok in cases], [r.observed for r in results]


def test_normalize_type_families():
    from airflow_dataops.engine.sql_separate import normalize_type

    assert normalize_type("TIMESTAMP(3) WITH TIME ZONE") == "timestamptz"
    assert normalize_type("timestamp without time zone") == "timestamp"
    assert normalize_type("int[]") == normalize_type("INTEGER[]") == normalize_type("_int4") == "integer[]"
    assert normalize_type("VARCHAR(100)") == "text"


def test_a_type_the_dialect_cannot_render_still_gets_a_name():
    from airflow_dataops.engine.sql_separate import column_type_name

    assert column_type_name(sa.types.NullType(), sa.dialects.sqlite.dialect()) == "NULL"
