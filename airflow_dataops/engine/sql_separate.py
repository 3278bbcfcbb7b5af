"""Checks that cannot be folded into the shared scan: schema (inspector), referential (anti-join),
custom SQL, and ``unique`` over a combination of columns (needs GROUP BY).

Each returns a ``Verdict`` (shared verdict functions where a measure exists) and the SQL it ran.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from airflow_dataops.config.checks import ReferentialCheck, SchemaCheck, SqlCheck, UniqueCheck
from airflow_dataops.config.types import is_sql_file
from airflow_dataops.engine.evaluate import Verdict
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
    base = re.sub(r"\(.*?\)", "", type_name.strip().lower())
    base = re.sub(r"\s+", " ", base).strip()
    return _FAMILY_OF.get(base, base)


def types_match(expected: str, observed: str) -> bool:
    exp, obs = normalize_type(expected), normalize_type(observed)
    return exp == obs or obs.startswith(exp + " ")


def schema_check(conn: sa.Connection, table: str, check: SchemaCheck) -> tuple[Verdict, str]:
    schema, name = split_table(table)
    inspector = sa.inspect(conn)
    actual = {c["name"]: str(c["type"]) for c in inspector.get_columns(name, schema=schema)}
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


def referential_stmt(table: str, where: str | None, check: ReferentialCheck) -> sa.Select:
    """Child rows whose non-null key has no parent, as NOT EXISTS (an anti-join).

    NOT EXISTS rather than LEFT JOIN so an unqualified ``where`` filter can only mean the child's
    columns (a join would make names present in both tables ambiguous)."""
    child = sql_table(table)
    parent = sql_table(check.parent_table, [check.parent_column]).alias("parent")
    child_col, parent_col = sql_column(child, check.column), parent.c[check.parent_column]
    orphan = ~sa.exists(sa.select(_one()).select_from(parent).where(parent_col == child_col))
    stmt = sa.select(sa.func.count()).select_from(child).where(child_col.is_not(None), orphan)
    clause = where_clause(where)
    return stmt.where(clause) if clause is not None else stmt


def _one() -> sa.ColumnElement:
    return sa.literal_column("1")


def referential_verdict(check: ReferentialCheck, orphans: int) -> Verdict:
    return Verdict(orphans == 0, orphans, 0,
                   f"{orphans} non-null values of {check.column} have no match in {check.parent_table}.{check.parent_column}")


def combo_unique_stmt(table: str, where: str | None, check: UniqueCheck) -> sa.Select:
    """Extra rows per repeated combination (rows with a NULL in the combination are ignored)."""
    tbl = sql_table(table)
    cols = [sql_column(tbl, c) for c in check.columns]
    groups = sa.select(sa.func.count().label("n")).select_from(tbl).where(*(c.is_not(None) for c in cols))
    clause = where_clause(where)
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
    text = text.rstrip().rstrip(";").rstrip()
    if not text:
        raise CheckConfigError(f"sql check {check.check_name!r} has empty SQL")
    return text


def user_sql(text: str) -> sa.TextClause:
    # Colons escaped: the user's SQL has no bind parameters (and may contain :: casts or times).
    # text() unescapes only "\:", so backslashes (regexes, LIKE ... ESCAPE) must stay as written.
    return sa.text(text.replace(":", "\\:"))


def sql_check_stmt(text: str, check: SqlCheck) -> sa.Select | sa.TextClause:
    if check.expect == "no_rows":
        return sa.select(sa.func.count()).select_from(user_sql(text).columns().subquery("check_rows"))
    return user_sql(text)


def sql_check_verdict(check: SqlCheck, value: object) -> Verdict:
    if check.expect == "no_rows":
        rows = int(value or 0)
        return Verdict(rows == 0, rows, 0, f"the query returned {rows} rows (expected none)")
    truthy = bool(value) and str(value).strip().lower() not in {"0", "false", "f", "no", "n"}
    return Verdict(truthy, value, "truthy", f"the query's first value is {value!r} (expected a true value)")


def sql_check_sample(text: str, limit: int) -> sa.Select:
    return sa.select(sa.literal_column("*")).select_from(user_sql(text).columns().subquery("check_rows")).limit(limit)
