"""Aggregate checks as labelled expressions of ONE ``SELECT ... FROM table [WHERE filter]``.

Each check asks for measures (row count, non-null count per column, distinct count, invalid-value
counts, max timestamp); identical measures are shared (one ``count(*)`` for every check), so eight
checks on a table cost one scan. ``unique`` over a combination of columns needs a GROUP BY and is
therefore measured by its own statement (see ``sql_separate``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from airflow_dataops.config.checks import BaseCheck, UniqueCheck
from airflow_dataops.engine.sql_objects import sql_column, sql_table, where_clause

Key = tuple
_ONE = sa.literal_column("1")


class as_time(FunctionElement):  # noqa: N801 - reads like the SQL function it stands for
    """A timestamp comparable across dialects: SQLite stores text, so both sides are normalised
    with ``strftime`` there (a date, a timestamp and an ISO string then compare as instants)."""

    inherit_cache = True
    name = "as_time"


@compiles(as_time)
def _as_time_default(element, compiler, **kw):
    return compiler.process(element.clauses.clauses[0], **kw)


@compiles(as_time, "sqlite")
def _as_time_sqlite(element, compiler, **kw):
    return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s)" % compiler.process(element.clauses.clauses[0], **kw)


def _bound(value: Any) -> tuple[Any, bool]:
    """(bound value, is a point in time). Dates mean their midnight; aware times become naive UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value, True
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()), True
    return value, False


def _compare(col: sa.ColumnElement, op: str, value: Any) -> sa.ColumnElement:
    bound, is_time = _bound(value)
    left, right = (as_time(col), as_time(sa.literal(bound, sa.DateTime()))) if is_time else (col, sa.literal(bound))
    return left < right if op == "<" else left > right


def foldable(check: BaseCheck) -> bool:
    """Checks measured inside the shared single-scan SELECT."""
    if not check.aggregate:
        return False
    return not (isinstance(check, UniqueCheck) and len(check.columns) > 1)


class MissingColumnName(ValueError):
    pass


@dataclass
class CheckPlan:
    check: BaseCheck
    finish: Callable[[dict[Key, Any]], dict]
    columns: tuple[str, ...]


@dataclass
class ScanPlan:
    table: sa.TableClause
    where: str | None
    exprs: dict[Key, sa.ColumnElement] = field(default_factory=dict)
    checks: list[CheckPlan] = field(default_factory=list)

    def need(self, key: Key, build: Callable[[], sa.ColumnElement]) -> Key:
        if key not in self.exprs:
            self.exprs[key] = build()
        return key

    def statement(self) -> sa.Select:
        labelled = [expr.label(f"m{i}") for i, expr in enumerate(self.exprs.values())]
        stmt = sa.select(*labelled).select_from(self.table)
        clause = where_clause(self.where)
        return stmt.where(clause) if clause is not None else stmt

    def measures(self, row: Sequence[Any]) -> dict[Key, Any]:
        return dict(zip(self.exprs.keys(), row, strict=True))


def freshness_column(check: BaseCheck, timestamp_column: str | None) -> str:
    column = getattr(check, "column", None) or timestamp_column
    if not column:
        raise MissingColumnName(
            f"freshness check {check.check_name!r} names no `column` and the dataset has no "
            "`timestamp_column`: set one of them"
        )
    return column


def _count_where(condition: sa.ColumnElement) -> sa.ColumnElement:
    # count(CASE WHEN cond THEN 1 END): 0 on an empty table, NULL conditions not counted.
    return sa.func.count(sa.case((condition, _ONE)))


def invalid_condition(check: BaseCheck, tbl: sa.TableClause) -> sa.ColumnElement | None:
    """Rows that make a value check fail (NULLs never match: SQL three-valued logic)."""
    t = check.type
    if t == "accepted_values":
        return sql_column(tbl, check.column).not_in([sa.literal(v) for v in check.values])
    if t == "range":
        col = sql_column(tbl, check.column)
        parts = []
        if check.min is not None:
            parts.append(_compare(col, "<", check.min))
        if check.max is not None:
            parts.append(_compare(col, ">", check.max))
        return sa.or_(*parts)
    if t == "pattern":
        return sa.not_(sa.cast(sql_column(tbl, check.column), sa.String).regexp_match(check.regex))
    if t in {"null_check", "completeness"}:
        return sa.or_(*(sql_column(tbl, c).is_(None) for c in check.columns))
    return None


def add_check(plan: ScanPlan, check: BaseCheck, *, timestamp_column: str | None) -> None:
    tbl, t = plan.table, check.type
    rows = plan.need(("rows",), lambda: sa.func.count())
    if t in {"row_count", "volume_anomaly"}:
        plan.checks.append(CheckPlan(check, lambda m: {"rows": m[rows]}, ()))
        return
    if t in {"null_check", "completeness"}:
        keys = {c: plan.need(("nonnull", c), lambda c=c: sa.func.count(sql_column(tbl, c))) for c in check.columns}
        if t == "null_check":
            finish = lambda m: {"rows": m[rows], "nulls": {c: m[rows] - m[k] for c, k in keys.items()}}  # noqa: E731
        else:
            finish = lambda m: {"rows": m[rows], "non_null": {c: m[k] for c, k in keys.items()}}  # noqa: E731
        plan.checks.append(CheckPlan(check, finish, tuple(check.columns)))
        return
    if t == "unique":
        (col,) = check.columns
        nonnull = plan.need(("nonnull", col), lambda: sa.func.count(sql_column(tbl, col)))
        distinct = plan.need(("distinct", col), lambda: sa.func.count(sql_column(tbl, col).distinct()))
        plan.checks.append(CheckPlan(check, lambda m: {"duplicates": m[nonnull] - m[distinct]}, (col,)))
        return
    if t in {"accepted_values", "range", "pattern"}:
        key = plan.need(("invalid", len(plan.checks)), lambda: _count_where(invalid_condition(check, tbl)))
        plan.checks.append(CheckPlan(check, lambda m: {"invalid": m[key]}, (check.column,)))
        return
    if t == "freshness":
        col = freshness_column(check, timestamp_column)
        key = plan.need(("max", col), lambda: sa.func.max(sql_column(tbl, col)))
        plan.checks.append(CheckPlan(check, lambda m: {"newest": m[key]}, (col,)))
        return
    raise ValueError(f"check type {t!r} is not an aggregate check")


def build_scan(table: str, where: str | None, checks: Sequence[BaseCheck], *, timestamp_column: str | None) -> ScanPlan:
    plan = ScanPlan(sql_table(table), where)
    for check in checks:
        add_check(plan, check, timestamp_column=timestamp_column)
    return plan


def sample_statement(table: str, where: str | None, check: BaseCheck, limit: int) -> sa.Select | None:
    """Up to ``limit`` rows that make ``check`` fail, or None when rows cannot be pointed at."""
    tbl = sql_table(table)
    if check.type == "unique":
        cols = [sql_column(tbl, c) for c in check.columns]
        inner_tbl = sql_table(table, check.columns).alias("dups")
        inner_cols = [inner_tbl.c[c] for c in check.columns]
        dup_keys = sa.select(*inner_cols).group_by(*inner_cols).having(sa.func.count() > 1)
        clause = where_clause(where)
        if clause is not None:
            dup_keys = dup_keys.where(clause)
        condition = sa.tuple_(*cols).in_(dup_keys) if len(cols) > 1 else cols[0].in_(dup_keys)
    else:
        condition = invalid_condition(check, tbl)
        if condition is None:
            return None
    stmt = sa.select(sa.literal_column("*")).select_from(tbl).where(condition)
    clause = where_clause(where)
    if clause is not None:
        stmt = stmt.where(clause)
    return stmt.limit(limit)
