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


# Names the SQL layer refuses even if a model let them through: `$` in a regex matches before a
# final newline, and SQLAlchemy would send "id\n" unquoted.
TRAILING_NEWLINE_NAMES = ["id\n", "orders\n", "analytics.orders\n", "id\r\n"]


def test_hostile_column_names_never_reach_the_database_even_past_the_models(db):
    """Checks built without validation (model_construct) still never send a hostile name as SQL."""
    from airflow_dataops.config.checks import NullCheck

    for name in HOSTILE_NAMES + TRAILING_NEWLINE_NAMES:
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
    # The review's exploit: a backtick hidden in a PostgreSQL dollar quote fooled the old scanner.
    "$q$`$q$ = 'a'); COMMIT; DROP TABLE victim; SELECT ('a' = $q$`$q$",
    "$q$'$q$ = 'a'); COMMIT; DROP TABLE victim; SELECT ('a' = $q$'$q$",
    "status = $tag$x$tag$",
    "status = $1",
    "`status` = 'a'",  # backticks quote names on MySQL only
    "status = '`'); DROP TABLE victim; --`'",
    # Backslashes change where a string ends on MySQL and in PostgreSQL E'' strings.
    "status = E'\\''); DROP TABLE victim; --'",
    "status = e'x'",
    "status = U&'x'",
    "status = N'x'",
    "status = q'[x]'",
    "status = 'a\\' OR 1=1",
    'status = "a\\"" OR 1=1',
    "status = 'a' OR x = 1\\",
    "1=1 # MySQL comment",
    "1=1 --",
    "1=1 /*! executable on MySQL */",
    "1=1 /* nested /* */ ; DROP TABLE victim; */",
    "status = ?",
    "status = {fn user()}",
    "1=1;",
    "1=1 ;; ",
    "1=1\n;DROP TABLE victim",
    "((1=1)",
    "1=1))",
    ")(",
    "status = 'it''s",
]
# SQLite and SQL Server quote names with [..] (a ' inside does not start a string there); on
# PostgreSQL brackets are array subscripts and these are mere syntax errors.
HOSTILE_UNLESS_POSTGRES = ["[status] = 'a'", "[a'] = 1); DROP TABLE victim; --']"]


def hostile_wheres(dialect: str | None) -> list[str]:
    return HOSTILE_WHERES + (HOSTILE_UNLESS_POSTGRES if dialect != "postgresql" else [])


@pytest.mark.parametrize("dialect", [None, "sqlite", "postgresql"])
@pytest.mark.parametrize("where", HOSTILE_WHERES + HOSTILE_UNLESS_POSTGRES)
def test_hostile_where_is_rejected(where, dialect):
    if where not in hostile_wheres(dialect):
        pytest.skip(f"harmless on {dialect}")
    with pytest.raises(UnsafeFilterError, match="`where` filter") as info:
        validate_where(where, dialect)
    if where.strip() and "{{" not in where:
        assert "A filter is one SQL condition" in str(info.value), "the error says how to rewrite it"


def test_refusals_say_what_and_how():
    with pytest.raises(UnsafeFilterError, match=r"contains a `\$` outside a string.*use '\.\.\.' strings"):
        validate_where("$q$`$q$ = 'a'); COMMIT; DROP TABLE victim; SELECT ('a' = $q$`$q$", "postgresql")
    with pytest.raises(UnsafeFilterError, match="backslash inside a quoted string.*write a quote as ''"):
        validate_where("status = 'a\\' OR 1=1", "postgresql")
    with pytest.raises(UnsafeFilterError, match="backtick.*MySQL/MariaDB.*double quotes"):
        validate_where("`status` = 'a'", "postgresql")
    with pytest.raises(UnsafeFilterError, match="prefixed literal.*plain '...' string"):
        validate_where("status = E'x'", "postgresql")


def test_backticks_quote_names_on_mysql_only():
    assert validate_where("`status` = 'a'", "mysql") == "`status` = 'a'"
    with pytest.raises(UnsafeFilterError):
        validate_where("`a'` = 1); DROP TABLE victim; --`", "postgresql")
    with pytest.raises(UnsafeFilterError):  # a doubled backtick stays inside; the `;` after it is refused
        validate_where("`a``'` = 1; DROP TABLE victim", "mysql")


def test_array_subscripts_are_fine_on_postgresql_only():
    assert validate_where("tags[1] = 'x'", "postgresql") == "tags[1] = 'x'"
    with pytest.raises(UnsafeFilterError):
        validate_where("tags[1] = 'x'", "sqlite")


@pytest.fixture()
def victim(db):
    """The orders database with a table the hostile SQL tries to drop."""
    with db.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE victim (id INTEGER)")
    return db


def _victim_exists(engine) -> bool:
    return sa.inspect(engine).has_table("victim")


def test_hostile_where_never_reaches_the_database(victim):
    db = victim
    for where in hostile_wheres(db.dialect.name):
        checks = parse_checks([{"type": "row_count", "min": 1, "where": where},
                               {"type": "referential", "column": "customer_id", "parent_table": "customers",
                                "parent_column": "id", "where": where},
                               {"type": "unique", "columns": ["id", "status"], "where": where},
                               {"type": "freshness", "column": "updated_at", "max_age": "1 day", "where": where}])
        with StatementCounter(db) as counter:
            results = run_checks(db, "orders", checks, now=NOW, timestamp_column=None)
        assert counter.data_statements() == [], where
        assert all(r.status == "error" and r.error.startswith("configuration: ") and "`where` filter" in r.error for r in results)
    assert _orders_count(db) == 5
    assert _victim_exists(db)


def test_hostile_where_through_great_expectations_never_reaches_the_database(victim):
    db = victim
    checks = parse_checks([{"type": "row_count", "min": 1, "where": where, "engine": "great_expectations", "name": f"w{i}"}
                           for i, where in enumerate(hostile_wheres(db.dialect.name))])
    with StatementCounter(db) as counter:
        results = run_checks(db, "orders", checks, now=NOW, timestamp_column=None)
    assert all(r.status == "error" and r.error.startswith("configuration: ") for r in results), results
    assert counter.statements == []
    assert _victim_exists(db) and _orders_count(db) == 5


@pytest.mark.integration
def test_the_review_exploit_is_harmless_on_postgresql(postgresql_engine):
    """The statement the old validator let through dropped the victim table; now nothing is sent."""
    with postgresql_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE victim (id INTEGER)")
    where = "$q$`$q$ = 'a'); COMMIT; DROP TABLE victim; SELECT ('a' = $q$`$q$"
    with StatementCounter(postgresql_engine) as counter:
        (result,) = run_checks(postgresql_engine, "orders", parse_checks([{"type": "row_count", "min": 1, "where": where}]),
                               now=NOW, timestamp_column=None)
    assert result.status == "error" and "`$`" in result.error
    assert not any("victim" in s for s in counter.statements)
    assert _victim_exists(postgresql_engine)


HOSTILE_SQL = [
    # (sql, dialects whose lexer must refuse it before anything is sent)
    ("SELECT 1) AS x; DROP TABLE victim; SELECT * FROM (SELECT 1", ("sqlite", "postgresql")),
    ("SELECT * FROM orders; DROP TABLE victim", ("sqlite", "postgresql")),
    ("SELECT * FROM orders;\nDROP TABLE victim;\n-- end", ("sqlite", "postgresql")),
    # one statement only where backslashes are literal (SQLite; PostgreSQL only if standard_conforming_strings)
    ("SELECT * FROM orders WHERE status = 'a\\'; DROP TABLE victim; --'", ("postgresql",)),
    ("SELECT E'\\''; DROP TABLE victim; --'", ("postgresql",)),  # E'' strings always escape
    ("SELECT 1 /* /* */ ; DROP TABLE victim; */", ("sqlite", "postgresql")),  # nested on PostgreSQL only
    ("SELECT 'unterminated", ("sqlite", "postgresql")),
    ("SELECT $a$ unterminated", ("postgresql",)),
    ("SELECT 1 /* unterminated", ("sqlite", "postgresql")),
    ("SELECT (1", ("sqlite", "postgresql")),
    ("SELECT 1)", ("sqlite", "postgresql")),
    ("   ;  ", ("sqlite", "postgresql")),
]


@pytest.mark.parametrize("sql,refused_on", HOSTILE_SQL)
def test_sql_checks_are_one_statement(victim, sql, refused_on):
    """Refused before anything is sent, or (where the dialect reads it as one statement) an
    error from the database; the victim table survives either way."""
    db = victim
    for expect in ("no_rows", "truthy"):
        with StatementCounter(db) as counter:
            (result,) = run_checks(db, "orders", parse_checks([{"type": "sql", "sql": sql, "expect": expect, "name": "custom"}]),
                                   now=NOW, timestamp_column=None)
        assert result.status == "error", result
        if db.dialect.name in refused_on:
            assert result.error.startswith("configuration: sql check 'custom'"), result
            assert counter.data_statements() == []
    assert _victim_exists(db) and _orders_count(db) == 5


ONE_STATEMENT_SQL = [
    # (sql, dialects where it is valid SQL, rows returned)
    ("SELECT id FROM orders WHERE email = 'a;b' -- trailing ; comment", ("sqlite", "postgresql"), 0),
    ("SELECT id FROM orders WHERE amount > 100;\n-- end", ("sqlite", "postgresql"), 1),
    ("-- orphans\nSELECT id FROM orders WHERE id > 100 -- none expected", ("sqlite", "postgresql"), 0),
    ("SELECT id FROM orders WHERE amount > 100 ; ; ", ("sqlite", "postgresql"), 1),
    ("SELECT id FROM orders /* ; */ WHERE status = $x$new;$x$", ("postgresql",), 0),
    ("SELECT id FROM orders WHERE status = $x$new$x$", ("postgresql",), 2),
    ("SELECT id FROM orders WHERE status ~ '^n\\w+$'", ("postgresql",), 2),
    ("SELECT id FROM orders WHERE status = E'new'", ("postgresql",), 2),
]


@pytest.mark.parametrize("sql,dialects,rows", ONE_STATEMENT_SQL)
def test_sql_checks_with_comments_and_semicolons_run(db, sql, dialects, rows):
    if db.dialect.name not in dialects:
        pytest.skip(f"not {db.dialect.name} SQL")
    (result,) = run_checks(db, "orders", parse_checks([{"type": "sql", "sql": sql}]), now=NOW, timestamp_column=None)
    assert result.status in {"passed", "failed"} and result.observed == rows, result


ORDINARY_WHERES = [
    ("email <> 'a;b--c/*d'", 4),  # separators inside a literal are data
    ("status = 'it''s'", 0),
    ("updated_at >= '2024-06-01 09:30:00'", 2),  # colons are not bind parameters
    ("(status = 'paid' OR status = 'new') AND amount < 100", 3),
    ("id IN (SELECT id FROM customers)", 3),
    ('"status" = \'paid\'', 2),  # quoted names
    ("status = ''''", 0),  # a string holding one quote
    ("email LIKE '%@x.io'", 3),  # percent signs are not parameter markers
    ("status <> 'a--b/*c*/;$$d$$#?'", 5),  # all data inside the string
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
    for name in HOSTILE_NAMES + TRAILING_NEWLINE_NAMES:
        with pytest.raises(ValueError):
            sql_table(name)


def test_a_table_name_with_a_trailing_newline_never_reaches_the_database(db):
    for name in TRAILING_NEWLINE_NAMES:
        with StatementCounter(db) as counter, pytest.raises(ValueError, match="not a valid table name"):
            run_checks(db, name, parse_checks([{"type": "row_count", "min": 1}]), now=NOW, timestamp_column=None)
        assert counter.statements == []
