"""Aggregate checks as labelled expressions of ONE ``SELECT ... FROM table [WHERE filter]``.

Each check asks for measures (row count, non-null count per column, distinct count, invalid-value
counts, max timestamp); identical measures are shared (one ``count(*)`` for every check), so eight
checks on a table cost one scan. ``unique`` over a combination of columns is folded in on
PostgreSQL (``count(DISTINCT (a, b))``); elsewhere it needs a GROUP BY and is measured by its own
statement (see ``sql_separate``).

Timestamps follow the dataset's ``timezone``: naive values are wall times there; PostgreSQL
``timestamptz`` columns are compared as instants whatever the session TimeZone; SQLite text with an
offset is an instant (see ``_compare`` and ``freshness`` below).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from airflow_dataops.config.checks import BaseCheck, UniqueCheck
from airflow_dataops.engine.freshness import as_aware_datetime, resolve_timezone
from airflow_dataops.engine.sql_objects import sql_column, sql_table, where_clause

Key = tuple
_ONE = sa.literal_column("1")


class as_time(FunctionElement):  # noqa: N801 - reads like the SQL function it stands for
    """A timestamp comparable across dialects: SQLite stores text, so it is normalised with
    ``strftime`` there (a date, a timestamp and an ISO string with an offset then compare as
    instants: SQLite converts offsets to UTC)."""

    inherit_cache = True
    name = "as_time"


@compiles(as_time)
def _as_time_default(element, compiler, **kw):
    return compiler.process(element.clauses.clauses[0], **kw)


@compiles(as_time, "sqlite")
def _as_time_sqlite(element, compiler, **kw):
    return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s)" % compiler.process(element.clauses.clauses[0], **kw)


def sqlite_has_offset(col: sa.ColumnElement) -> sa.ColumnElement:
    """SQLite text ending in ``+HH:MM``, ``-HH:MM`` or ``Z``: an instant (strftime makes it UTC);
    other values are wall times in the dataset's zone."""
    def char(position: int) -> sa.ColumnElement:
        return sa.func.substr(col, sa.literal_column(str(position)), _ONE)

    return sa.or_(
        sa.and_(char(-6).in_([sa.literal_column("'+'"), sa.literal_column("'-'")]), char(-3) == sa.literal_column("':'")),
        sa.func.upper(char(-1)) == sa.literal_column("'Z'"),
    )


def bound_instant(value: Any, tz: str | None) -> dt.datetime | None:
    """A range bound as an aware instant, or None for a number. Naive bounds and dates (their
    midnight) are wall times in the dataset's zone, like naive column values."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=resolve_timezone(tz))
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=resolve_timezone(tz))
    return None


def _sqlite_text(moment: dt.datetime) -> sa.ColumnElement:
    # strftime('%Y-%m-%d %H:%M:%f') form; built from a datetime, so safe to inline (replayable SQL)
    return sa.literal_column("'" + moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}'")


def _compare(col: sa.ColumnElement, op: str, value: Any, *, dialect: str | None, tz: str | None) -> sa.ColumnElement:
    moment = bound_instant(value, tz)
    if moment is None:
        right: sa.ColumnElement = sa.literal(value)
        left = col
    elif dialect == "postgresql":
        # An untyped literal in the dataset's zone WITH its offset: read as `timestamptz` it is the
        # instant (whatever the session TimeZone), read as `timestamp` the offset is ignored and it
        # is the wall time in the dataset's zone, which is what a naive column holds.
        left, right = col, sa.literal_column("'" + moment.astimezone(resolve_timezone(tz)).isoformat(sep=" ") + "'")
    elif dialect == "sqlite":
        left = as_time(col)
        utc = _sqlite_text(moment.astimezone(dt.timezone.utc))
        wall = _sqlite_text(moment.astimezone(resolve_timezone(tz)))
        right = sa.case((sqlite_has_offset(col), utc), else_=wall)
    else:  # naive wall time in the dataset's zone (DATETIME columns)
        left, right = col, sa.literal(moment.astimezone(resolve_timezone(tz)).replace(tzinfo=None), sa.DateTime())
    return left < right if op == "<" else left > right


def folds_combination(dialect: str | None) -> bool:
    """Dialects where ``unique`` over several columns is measured inside the shared scan."""
    return dialect == "postgresql"


def foldable(check: BaseCheck, dialect: str | None = None) -> bool:
    """Checks measured inside the shared single-scan SELECT."""
    if not check.aggregate:
        return False
    return not (isinstance(check, UniqueCheck) and len(check.columns) > 1 and not folds_combination(dialect))


class MissingColumnName(ValueError):
    pass


@dataclass
class CheckPlan:
    check: BaseCheck
    finish: Callable[..., dict]  # (measures) -> check measures; with `refine`: (measures, refined row)
    columns: tuple[str, ...]
    # A follow-up statement when the scan's measure is not exact for this data, else None.
    refine: Callable[[dict[Key, Any]], sa.Select | None] | None = None


@dataclass
class ScanPlan:
    table: sa.TableClause
    where: str | None
    dialect: str | None = None
    timezone: str | None = None
    exprs: dict[Key, sa.ColumnElement] = field(default_factory=dict)
    checks: list[CheckPlan] = field(default_factory=list)

    def need(self, key: Key, build: Callable[[], sa.ColumnElement]) -> Key:
        if key not in self.exprs:
            self.exprs[key] = build()
        return key

    def statement(self) -> sa.Select:
        labelled = [expr.label(f"m{i}") for i, expr in enumerate(self.exprs.values())]
        stmt = sa.select(*labelled).select_from(self.table)
        clause = where_clause(self.where, self.dialect)
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


# ------------------------------------------------------------------ accepted values and types
def coerce_values(values: Sequence[Any], python_type: type | None) -> list[Any] | None:
    """The accepted values as the column's Python type; values that cannot be of that type can
    never match and are left out. None when the type is unknown (compare as text instead)."""
    out: list[Any] = []
    for v in values:
        try:
            if python_type is bool:
                if isinstance(v, bool):
                    out.append(v)
                elif isinstance(v, int | str) and str(v).strip().lower() in {"1", "0", "true", "false", "t", "f"}:
                    out.append(str(v).strip().lower() in {"1", "true", "t"})
            elif python_type is int:
                if isinstance(v, bool):
                    continue
                if isinstance(v, float) and not v.is_integer():
                    continue
                out.append(int(v) if not isinstance(v, str) else int(v.strip()))
            elif python_type in (float, decimal.Decimal):
                if not isinstance(v, bool):
                    out.append(python_type(v.strip() if isinstance(v, str) else v))
            elif python_type is str:
                out.append(str(v).lower() if isinstance(v, bool) else str(v))
            elif python_type in (dt.date, dt.datetime):
                if isinstance(v, str):
                    out.append(python_type.fromisoformat(v.strip()))
            else:
                return None
        except (ValueError, TypeError, ArithmeticError):
            continue
    return list(dict.fromkeys(out))


def accepted_condition(col: sa.ColumnElement, values: Sequence[Any], column_type: Any = None) -> sa.ColumnElement:
    """Non-null values outside ``values``. With the column's reflected type, the values are bound
    as that type (values that cannot be of it never match); otherwise each as its own type."""
    if column_type is None:
        return col.not_in([sa.literal(v) for v in values])
    try:
        python_type = column_type.python_type
    except (NotImplementedError, AttributeError):
        python_type = None
    coerced = coerce_values(values, python_type)
    if coerced is None:  # a type SQLAlchemy cannot map: compare the text forms
        return sa.cast(col, sa.String).not_in([sa.literal(str(v), sa.String()) for v in values])
    if not coerced:
        return col.is_not(None)
    return col.not_in([sa.literal(v, column_type) for v in coerced])


def invalid_condition(check: BaseCheck, tbl: sa.TableClause, *, dialect: str | None = None, timezone: str | None = None,
                      column_type: Any = None) -> sa.ColumnElement | None:
    """Rows that make a value check fail (NULLs never match: SQL three-valued logic)."""
    t = check.type
    if t == "accepted_values":
        return accepted_condition(sql_column(tbl, check.column), check.values, column_type)
    if t == "range":
        col = sql_column(tbl, check.column)
        parts = []
        if check.min is not None:
            parts.append(_compare(col, "<", check.min, dialect=dialect, tz=timezone))
        if check.max is not None:
            parts.append(_compare(col, ">", check.max, dialect=dialect, tz=timezone))
        return sa.or_(*parts)
    if t == "pattern":
        return sa.not_(sa.cast(sql_column(tbl, check.column), sa.String).regexp_match(check.regex))
    if t in {"null_check", "completeness"}:
        return sa.or_(*(sql_column(tbl, c).is_(None) for c in check.columns))
    return None


def looks_like_instant(value: Any) -> bool:
    """SQLite text ending in an offset or Z: its text maximum need not be the newest instant."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text[-1:] in ("Z", "z") or (len(text) >= 6 and text[-6] in "+-" and text[-3] == ":")


def exact_newest_stmt(plan: ScanPlan, col: sa.ColumnElement) -> sa.Select:
    """SQLite: the newest value with an offset (normalised to UTC) and the newest without one
    (a wall time in the dataset's zone); the later of the two is the newest instant. Only run
    when the text maximum has an offset: naive text (the common case) costs no second scan."""
    offset = sqlite_has_offset(col)
    stmt = sa.select(sa.func.max(sa.case((offset, as_time(col)))), sa.func.max(sa.case((offset, sa.null()), else_=col)))
    stmt = stmt.select_from(plan.table)
    clause = where_clause(plan.where, plan.dialect)
    return stmt.where(clause) if clause is not None else stmt


def _newest(values: Sequence[Any], tz: str | None) -> dt.datetime | None:
    moments = [as_aware_datetime(v, tz) for v in values if v is not None]
    return max(moments) if moments else None


def add_check(plan: ScanPlan, check: BaseCheck, *, timestamp_column: str | None, column_type: Any = None) -> None:
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
    if t == "unique" and len(check.columns) > 1:  # PostgreSQL only (folds_combination)
        cols = [sql_column(tbl, c) for c in check.columns]
        complete = sa.and_(*(c.is_not(None) for c in cols))
        names = tuple(check.columns)
        combos = plan.need(("complete", names), lambda: sa.func.count().filter(complete))
        distinct = plan.need(("distinct", names), lambda: sa.func.count(sa.distinct(sa.tuple_(*cols))).filter(complete))
        plan.checks.append(CheckPlan(check, lambda m: {"duplicates": m[combos] - m[distinct]}, names))
        return
    if t == "unique":
        (col,) = check.columns
        nonnull = plan.need(("nonnull", col), lambda: sa.func.count(sql_column(tbl, col)))
        distinct = plan.need(("distinct", col), lambda: sa.func.count(sql_column(tbl, col).distinct()))
        plan.checks.append(CheckPlan(check, lambda m: {"duplicates": m[nonnull] - m[distinct]}, (col,)))
        return
    if t in {"accepted_values", "range", "pattern"}:
        condition = invalid_condition(check, tbl, dialect=plan.dialect, timezone=plan.timezone, column_type=column_type)
        key = plan.need(("invalid", len(plan.checks)), lambda: _count_where(condition))
        plan.checks.append(CheckPlan(check, lambda m: {"invalid": m[key]}, (check.column,)))
        return
    if t == "freshness":
        col_name = freshness_column(check, timestamp_column)
        col = sql_column(tbl, col_name)
        key = plan.need(("max", col_name), lambda: sa.func.max(col))
        refine = None
        if plan.dialect == "sqlite":
            refine = lambda m: exact_newest_stmt(plan, col) if looks_like_instant(m[key]) else None  # noqa: E731

        def finish(m, exact=None):
            if exact is None:
                return {"newest": m[key]}
            with_offset, plain = exact
            return {"newest": _newest([with_offset and with_offset + "+00:00", plain], plan.timezone)}

        plan.checks.append(CheckPlan(check, finish, (col_name,), refine))
        return
    raise ValueError(f"check type {t!r} is not an aggregate check")


def build_scan(table: str, where: str | None, checks: Sequence[BaseCheck], *, timestamp_column: str | None,
               dialect: str | None = None, timezone: str | None = None,
               column_types: dict[str, Any] | None = None) -> ScanPlan:
    """The one SELECT measuring ``checks``; ``column_types`` (reflected) bind accepted values as
    the column's type."""
    plan = ScanPlan(sql_table(table), where, dialect=dialect, timezone=timezone)
    for check in checks:
        column = getattr(check, "column", None)
        add_check(plan, check, timestamp_column=timestamp_column,
                  column_type=(column_types or {}).get(column) if check.type == "accepted_values" else None)
    return plan


def sample_statement(table: str, where: str | None, check: BaseCheck, limit: int, *, dialect: str | None = None,
                     timezone: str | None = None, column_type: Any = None) -> sa.Select | None:
    """Up to ``limit`` rows that make ``check`` fail, or None when rows cannot be pointed at."""
    tbl = sql_table(table)
    clause = where_clause(where, dialect)
    if check.type == "unique":
        cols = [sql_column(tbl, c) for c in check.columns]
        inner_tbl = sql_table(table, check.columns).alias("dups")
        inner_cols = [inner_tbl.c[c] for c in check.columns]
        dup_keys = sa.select(*inner_cols).group_by(*inner_cols).having(sa.func.count() > 1)
        if clause is not None:
            dup_keys = dup_keys.where(clause)
        condition = sa.tuple_(*cols).in_(dup_keys) if len(cols) > 1 else cols[0].in_(dup_keys)
    else:
        condition = invalid_condition(check, tbl, dialect=dialect, timezone=timezone, column_type=column_type)
        if condition is None:
            return None
    stmt = sa.select(sa.literal_column("*")).select_from(tbl).where(condition)
    if clause is not None:
        stmt = stmt.where(clause)
    return stmt.limit(limit)
