"""How a Great Expectations batch is built so that it measures what the SQL engine measures.

- ``batch_query``: a ``where`` becomes ``SELECT * FROM table WHERE (filter)`` (the filter validated
  like the SQL engine's); on SQLite, timestamp columns get normalised instant columns next to them
  (``__dataops_utc_<c>`` for text with an offset, ``__dataops_wall_<c>`` for naive text), in the
  text form SQLAlchemy gives a bound datetime, so GX's comparisons are exact at the boundaries.
- ``times_for`` / ``Times``: how range bounds are given (PostgreSQL ``timestamptz``: instants;
  naive columns: wall times in the dataset's zone).
- ``frame_with_instants``: DataFrames get ``__dataops_utc_<c>`` aware UTC columns.
- ``sqlite_timeouts``: GX opens its own engine; SQLite statements get the progress-handler timeout.

No Airflow imports here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_dataops.config.checks import BaseCheck
from airflow_dataops.engine.freshness import resolve_timezone
from airflow_dataops.engine.sql_aggregates import bound_instant

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

UTC_PREFIX, WALL_PREFIX = "__dataops_utc_", "__dataops_wall_"


@dataclass(frozen=True)
class Times:
    """How timestamps are compared on one batch (see the module docstring)."""

    tz: str | None = None
    aware_columns: frozenset[str] = frozenset()  # PostgreSQL timestamptz: aware bounds
    split_columns: frozenset[str] = frozenset()  # SQLite: __dataops_utc_<c> / __dataops_wall_<c> text columns
    utc_columns: frozenset[str] = frozenset()  # DataFrames: __dataops_utc_<c> aware UTC column

    def native_bound(self, column: str, value: Any) -> Any:
        moment = bound_instant(value, self.tz)
        if moment is None:
            return value
        if column in self.aware_columns:
            return moment.astimezone(dt.timezone.utc)  # one form per instant: GX keeps one copy of equal expectations
        return moment.astimezone(resolve_timezone(self.tz)).replace(tzinfo=None)


def time_columns(checks: Sequence[BaseCheck], timestamp_column: str | None) -> list[str]:
    """Columns whose values are compared as instants: range with date bounds, freshness."""
    out: list[str] = []
    for check in checks:
        if check.type == "range" and (isinstance(check.min, dt.date) or isinstance(check.max, dt.date)):
            out.append(check.column)
        elif check.type == "freshness" and (check.column or timestamp_column):
            out.append(check.column or timestamp_column)
    return list(dict.fromkeys(out))


@contextlib.contextmanager
def sqlite_timeouts(timeout_s: int) -> Iterator[None]:
    """Interrupt every SQLite statement of this thread that runs longer than ``timeout_s`` while
    Great Expectations validates (it opens its own engine, so the progress handler is armed per
    statement through a class-level SQLAlchemy event, for this thread only)."""
    import sqlalchemy as sa

    if timeout_s <= 0:
        yield
        return
    thread = threading.get_ident()

    def arm(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() != thread or conn.dialect.name != "sqlite":
            return
        deadline = time.monotonic() + timeout_s
        conn.connection.dbapi_connection.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 20_000)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", arm)
    try:
        yield
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", arm)


def _sqlite_instant_text(col):
    """strftime text in SQLAlchemy's SQLite DateTime form (microseconds), which is what a bound
    datetime becomes: text comparisons are then exact at the boundaries."""
    import sqlalchemy as sa

    text = sa.String()
    seconds = sa.func.strftime("%Y-%m-%d %H:%M:%S", col, type_=text)
    millis = sa.func.substr(sa.func.strftime("%f", col, type_=text), 4, type_=text)
    return seconds + sa.literal_column("'.'", text) + millis + sa.literal_column("'000'", text)


def batch_query(engine: sa.Engine, table: str, where: str | None, split_columns: Sequence[str]) -> str | None:
    """``SELECT * [, normalised instant columns] FROM table [WHERE (filter)]``, or None when the
    table asset itself will do."""
    import sqlalchemy as sa

    from airflow_dataops.engine.sql_aggregates import sqlite_has_offset
    from airflow_dataops.engine.sql_objects import sql_column, sql_table, where_clause

    if where is None and not split_columns:
        return None
    tbl = sql_table(table)
    extra = []
    for name in split_columns:
        col = sql_column(tbl, name)
        offset = sqlite_has_offset(col)
        extra.append(sa.case((offset, _sqlite_instant_text(col))).label(UTC_PREFIX + name))
        extra.append(sa.case((offset, sa.null()), else_=_sqlite_instant_text(col)).label(WALL_PREFIX + name))
    stmt = sa.select(sa.literal_column("*"), *extra).select_from(tbl)
    clause = where_clause(where, engine.dialect.name)
    if clause is not None:
        stmt = stmt.where(clause)
    return str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


def times_for(engine: sa.Engine, table: str, columns: Sequence[str], tz: str | None) -> Times:
    """PostgreSQL: which of ``columns`` are ``timestamptz`` (their bounds must be instants);
    SQLite: which exist (they get normalised instant columns)."""
    import sqlalchemy as sa

    from airflow_dataops.engine.sql_objects import split_table

    if engine.dialect.name not in ("postgresql", "sqlite") or not columns:
        return Times(tz=tz)
    schema, name = split_table(table)
    try:
        reflected = sa.inspect(engine).get_columns(name, schema=schema)
    except sa.exc.SQLAlchemyError:
        return Times(tz=tz)  # GX reports the missing table itself
    if engine.dialect.name == "sqlite":
        return Times(tz=tz, split_columns=frozenset(c["name"] for c in reflected if c["name"] in columns))
    return Times(tz=tz, aware_columns=frozenset(c["name"] for c in reflected
                                                 if c["name"] in columns and getattr(c["type"], "timezone", False)))


def frame_with_instants(df: pd.DataFrame, columns: Sequence[str], tz: str | None) -> pd.DataFrame:
    from airflow_dataops.engine.pandas_runner import instants

    if not columns:
        return df
    frame = df.copy()
    for name in columns:
        frame[UTC_PREFIX + name] = instants(df[name], tz)
    return frame
