"""Freshness arithmetic shared by the ``freshness`` check and the freshness sensor/trigger.

``newest_timestamp_stmt`` builds ``SELECT max(column) FROM table [WHERE filter]``;
``freshness_lag`` turns what the database returned into how old the newest row is. Naive
timestamps are read as UTC unless a ``timezone`` is given (the dataset's ``timezone``). No Airflow
imports here.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from airflow_dataops.engine.sql_objects import sql_column, sql_table, where_clause


def newest_timestamp_stmt(table: str, column: str, where: str | None = None) -> sa.Select:
    """``SELECT max(<column>) AS newest FROM <table> [WHERE (<where>)]`` with dialect quoting."""
    tbl = sql_table(table, [column])
    stmt = sa.select(sa.func.max(sql_column(tbl, column)).label("newest")).select_from(tbl)
    clause = where_clause(where)
    return stmt.where(clause) if clause is not None else stmt


def resolve_timezone(tz: str | dt.tzinfo | None) -> dt.tzinfo:
    if tz is None:
        return dt.timezone.utc
    if isinstance(tz, dt.tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {tz!r}: use an IANA name like 'UTC' or 'Europe/Berlin'") from None


def as_aware_datetime(value: object, tz: str | dt.tzinfo | None = None) -> dt.datetime | None:
    """A database timestamp (datetime, date, ISO string, epoch number) as an aware datetime.

    Naive values are in ``tz`` (default UTC). A ``date`` means its midnight. ``None`` stays None.
    """
    if value is None:
        return None
    zone = resolve_timezone(tz)
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(f"cannot read {value!r} as a timestamp: store ISO timestamps (2024-01-31 12:00:00)") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    else:
        to_py = getattr(value, "to_pydatetime", None)  # pandas.Timestamp
        if to_py is None:
            raise ValueError(f"cannot read {value!r} ({type(value).__name__}) as a timestamp")
        moment = to_py()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def freshness_lag(newest: object, now: dt.datetime, tz: str | dt.tzinfo | None = None) -> dt.timedelta | None:
    """How old the newest row is at ``now`` (UTC-aware); None when the table has no timestamp.

    A newest timestamp in the future gives a negative lag (clock skew), which counts as fresh.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (take it once with datetime.now(timezone.utc))")
    moment = as_aware_datetime(newest, tz)
    if moment is None:
        return None
    return now - moment
