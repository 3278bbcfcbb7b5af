"""Checks that cannot be folded into the shared scan: schema (inspector), referential (anti-join),
custom SQL, and ``unique`` over a combination of columns where the dialect cannot count distinct
combinations in the scan (needs GROUP BY).

Each returns a ``Verdict`` (shared verdict functions where a measure exists) and the SQL it ran.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from airflow_dataops.config.checks import ReferentialCheck, SchemaCheck, SqlCheck, UniqueCheck
from airflow_dataops.config.types import is_sql_file
from airflow_dataops.engine.evaluate import Verdict
from airflow_dataops.engine.sql_lexer import single_statement
from airflow_dataops.engine.sql_objects import split_table, sql_column, sql_table, where_clause


class CheckConfigError(ValueError):
    """The check cannot run as configured (retrying will not help)."""


# Loose type comparison: families of names databases use for the same kind of column.
_TYPE_FAMILIES = {
    "integer": {"int", "integer", "int4", "mediumint"},
    "bigint": {"bigint", "int8"},
    "smallint": {"smallint", "int2", "tinyint"},
    "text": {"varchar", "character varying", "text", "string", "char", "character", "nvarchar", "nchar", "clob", "bpchar"},
    "float": {"float", "double", "double precision", "float8", "real", "float4"},
    "numeric": {"numeric", "decimal", "number"},
    "boolean": {"bool", "boolean"},
    "timestamp": {"timestamp", "datetime", "timestamp without time zone"},
    "timestamptz": {"timestamptz", "timestamp with time zone"},
    "date": {"date"},
    "json": {"json", "jsonb"},
}
_FAMILY_OF = {name: family for family, names in _TYPE_FAMILIES.items() for name in names}


def normalize_type(type_name: str) -> str:
    """A type name's family (``int4`` -> ``integer``, ``timestamp(3) with time zone`` ->
    ``timestamptz``); arrays keep their brackets (``int[]`` -> ``integer[]``)."""
    base = re.sub(r"\(.*?\)", "", type_name.strip().lower())
    base = re.sub(r"\s+", " ", base).strip()
    dims = 0
    while base.endswith("[]"):
        base, dims = base[:-2].strip(), dims + 1
    if base.startswith("_") and not dims:  # PostgreSQL's internal array names: _int4
        base, dims = base[1:], 1
    return _FAMILY_OF.get(base, base) + "[]" * dims


def column_type_name(column_type, dialect) -> str:
    """A reflected type as the database writes it (TIMESTAMP WITH TIME ZONE, INTEGER[]): the
    dialect's own DDL, which keeps what ``str()`` drops (time zones, array element types)."""
    try:
        return column_type.compile(dialect=dialect)
    except Exception:  # a type the dialect cannot render (NullType of an unknown type)
        return str(column_type)


def types_match(expected: str, observed: str) -> bool:
    exp, obs = normalize_type(expected), normalize_type(observed)
    return exp == obs or obs.startswith(exp + " ")


def schema_check(conn: sa.Connection, table: str, check: SchemaCheck) -> tuple[Verdict, str]:
    schema, name = split_table(table)
    inspector = sa.inspect(conn)
    actual = {c["name"]: column_type_name(c["type"], conn.dialect) for c in inspector.get_columns(name, schema=schema)}
    lower = {k.lower(): k for k in actual}
    missing, mismatched = [], {}
    for col in check.columns:
        found = col.name if col.name in actual else lower.get(col.name.lower())
        if found is None:
            missing.append(col.name)
        elif col.type and not types_match(col.type, actual[found]):
            mismatched[col.name] = actual[found]
    expected_names = {c.name.lower() for c in check.columns}
    unexpected = sorted(k for k in actual if k.lower() not in expected_names) if check.strict else []
    observed = {"missing": missing, "type_mismatch": mismatched, "unexpected": unexpected}
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if mismatched:
        want = {c.name: c.type for c in check.columns if c.name in mismatched}
        problems.append(f"types differ: found {mismatched}, expected {want}")
    if unexpected:
        problems.append(f"unexpected columns {unexpected} (strict)")
    expected = {"columns": {c.name: c.type for c in check.columns}, "strict": check.strict}
    message = "; ".join(problems) or f"all {len(check.columns)} columns present with the expected types"
    return Verdict(not problems, observed, expected, message), f"inspector.get_columns({table!r})"


def referential_stmt(table: str, where: str | None, check: ReferentialCheck, dialect: str | None = None) -> sa.Select:
    """Child rows whose non-null key has no parent, as NOT EXISTS (an anti-join).

    NOT EXISTS rather than LEFT JOIN so an unqualified ``where`` filter can only mean the child's
    columns (a join would make names present in both tables ambiguous)."""
    child = sql_table(table)
    parent = sql_table(check.parent_table, [check.parent_column]).alias("parent")
    child_col, parent_col = sql_column(child, check.column), parent.c[check.parent_column]
    orphan = ~sa.exists(sa.select(_one()).select_from(parent).where(parent_col == child_col))
    stmt = sa.select(sa.func.count()).select_from(child).where(child_col.is_not(None), orphan)
    clause = where_clause(where, dialect)
    return stmt.where(clause) if clause is not None else stmt


def _one() -> sa.ColumnElement:
    return sa.literal_column("1")


def referential_verdict(check: ReferentialCheck, orphans: int) -> Verdict:
    return Verdict(orphans == 0, orphans, 0,
                   f"{orphans} non-null values of {check.column} have no match in {check.parent_table}.{check.parent_column}")


def combo_unique_stmt(table: str, where: str | None, check: UniqueCheck, dialect: str | None = None) -> sa.Select:
    """Extra rows per repeated combination (rows with a NULL in the combination are ignored)."""
    tbl = sql_table(table)
    cols = [sql_column(tbl, c) for c in check.columns]
    groups = sa.select(sa.func.count().label("n")).select_from(tbl).where(*(c.is_not(None) for c in cols))
    clause = where_clause(where, dialect)
    if clause is not None:
        groups = groups.where(clause)
    groups = groups.group_by(*cols).having(sa.func.count() > 1).subquery("dup_groups")
    return sa.select(sa.func.coalesce(sa.func.sum(groups.c.n - 1), 0))


def load_sql(check: SqlCheck, base_dir: Path | None) -> str:
    """The check's SQL: inline, or the contents of a ``.sql`` file relative to ``base_dir``."""
    text = check.sql.strip()
    if is_sql_file(text):
        path = Path(text)
        if not path.is_absolute():
            if base_dir is None:
                raise CheckConfigError(f"sql check {check.check_name!r} names the file {text!r} but no base directory is known: use an absolute path")
            path = Path(base_dir) / path
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CheckConfigError(f"sql check {check.check_name!r}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise CheckConfigError(f"sql check {check.check_name!r} has empty SQL")
    return text


def check_sql(text: str, check: SqlCheck, dialect: str | None) -> str:
    """The check's SQL as ONE statement for ``dialect``, trailing semicolons and comments cut off
    (so it can be wrapped in a subquery); :class:`CheckConfigError` when it is more than one."""
    return single_statement(text, dialect, what=f"sql check {check.check_name!r}", error=CheckConfigError)


def user_sql(text: str) -> sa.TextClause:
    # Colons escaped: the user's SQL has no bind parameters (and may contain :: casts or times).
    # text() unescapes only "\:", so backslashes (regexes, LIKE ... ESCAPE) must stay as written.
    return sa.text(text.replace(":", "\\:"))


def _wrapped(text: str, alias: str) -> sa.Subquery:
    # A newline before the closing parenthesis: a trailing `--` comment cannot swallow it.
    return user_sql(text + "\n").columns().subquery(alias)


def sql_check_stmt(text: str, check: SqlCheck) -> sa.Select | sa.TextClause:
    """``no_rows``: the rows counted in the database; ``truthy``: the query itself, read as a
    stream of which only the first row is fetched (nothing buffered)."""
    if check.expect == "no_rows":
        return sa.select(sa.func.count()).select_from(_wrapped(text, "check_rows"))
    return user_sql(text)


def sql_check_verdict(check: SqlCheck, value: object) -> Verdict:
    if check.expect == "no_rows":
        rows = int(value or 0)
        return Verdict(rows == 0, rows, 0, f"the query returned {rows} rows (expected none)")
    truthy = bool(value) and str(value).strip().lower() not in {"0", "false", "f", "no", "n"}
    return Verdict(truthy, value, "truthy", f"the query's first value is {value!r} (expected a true value)")


def sql_check_sample(text: str, limit: int) -> sa.Select:
    return sa.select(sa.literal_column("*")).select_from(_wrapped(text, "check_rows")).limit(limit)
