"""Great Expectations 1.x as an engine: ``expectation`` checks, and standard checks with
``engine: great_expectations``, on a SQL table or on a DataFrame. Same result shape.

Standard checks map to GX expectations that MEASURE (row count, null counts, unexpected counts,
column max); the verdict then comes from the shared functions in ``evaluate``, so thresholds mean
the same as with the SQL engine. One difference: for ``unique``, GX counts every row of a repeated
value (the SQL and pandas engines count the rows beyond the first), so the observed number is
larger while the verdict is the same.

Parity with the SQL engine: a ``where`` becomes a query asset (``SELECT * FROM table WHERE
(filter)``, the filter validated like the SQL engine's); queries carry the statement timeout
(PostgreSQL: the connection's ``statement_timeout``; SQLite: a progress handler); timestamps follow
the dataset's ``timezone`` (PostgreSQL ``timestamptz`` columns get aware bounds, naive ones wall
times; SQLite text and DataFrame columns are compared through normalised instant columns that
the query or frame adds). Great Expectations is imported lazily (slow import), and its analytics
and progress bars are turned off. No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_dataops.config.checks import BaseCheck, ExpectationCheck
from airflow_dataops.engine.evaluate import EvalContext, Verdict, evaluate
from airflow_dataops.engine.freshness import as_aware_datetime, resolve_timezone
from airflow_dataops.engine.gx_batches import (
    UTC_PREFIX,
    WALL_PREFIX,
    Times,
    batch_query,
    frame_with_instants,
    sqlite_timeouts,
    time_columns,
    times_for,
)
from airflow_dataops.engine.outcome import CONFIG_ERROR, error_result, from_verdict
from airflow_dataops.engine.result import CheckResult
from airflow_dataops.engine.sql_aggregates import bound_instant

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

ENGINE = "great_expectations"
_UNSUPPORTED = {"schema", "referential", "sql"}
# Expectation result keys that are measurements, never row samples (XCom must not carry rows).
_SUMMARY_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count", "missing_percent")

log = logging.getLogger(__name__)


def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def expectation_class(name: str):
    import great_expectations.expectations as gxe

    class_name = "".join(part.capitalize() for part in name.split("_"))
    cls = getattr(gxe, class_name, None)
    if cls is None:
        raise ValueError(f"Great Expectations has no expectation {name!r} ({class_name}): see https://greatexpectations.io/expectations/")
    return cls


def _build(check: BaseCheck, timestamp_column: str | None, times: Times = Times()) -> list[tuple[str, Any]]:
    """(part, expectation) pairs measuring one check."""
    import great_expectations.expectations as gxe

    t = check.type
    if isinstance(check, ExpectationCheck):
        try:
            return [("", expectation_class(check.expectation)(**check.kwargs))]
        except Exception as exc:  # pydantic validation of the kwargs
            raise ValueError(f"{check.expectation} with kwargs {check.kwargs}: {exc}".splitlines()[0]) from None
    if t in {"row_count", "volume_anomaly"}:
        return [("rows", gxe.ExpectTableRowCountToBeBetween(min_value=0))]
    if t in {"null_check", "completeness"}:
        return [(c, gxe.ExpectColumnValuesToNotBeNull(column=c)) for c in check.columns]
    if t == "unique":
        if len(check.columns) == 1:
            return [("dups", gxe.ExpectColumnValuesToBeUnique(column=check.columns[0]))]
        return [("dups", gxe.ExpectCompoundColumnsToBeUnique(column_list=list(check.columns), ignore_row_if="any_value_is_missing"))]
    if t == "accepted_values":
        return [("invalid", gxe.ExpectColumnValuesToBeInSet(column=check.column, value_set=list(check.values)))]
    if t == "range":
        raw = {k: v for k, v in (("min_value", check.min), ("max_value", check.max)) if v is not None}
        if not any(isinstance(v, dt.date) for v in raw.values()):
            return [("invalid", gxe.ExpectColumnValuesToBeBetween(column=check.column, **raw))]
        moments = {k: bound_instant(v, times.tz) for k, v in raw.items()}
        if check.column in times.split_columns:  # naive UTC against the UTC column, naive wall time against the wall column
            utc = {k: m.astimezone(dt.timezone.utc).replace(tzinfo=None) for k, m in moments.items()}
            wall = {k: m.astimezone(resolve_timezone(times.tz)).replace(tzinfo=None) for k, m in moments.items()}
            return [("invalid_utc", gxe.ExpectColumnValuesToBeBetween(column=UTC_PREFIX + check.column, **utc)),
                    ("invalid_wall", gxe.ExpectColumnValuesToBeBetween(column=WALL_PREFIX + check.column, **wall))]
        if check.column in times.utc_columns:
            utc = {k: m.astimezone(dt.timezone.utc) for k, m in moments.items()}
            return [("invalid", gxe.ExpectColumnValuesToBeBetween(column=UTC_PREFIX + check.column, **utc))]
        bounds = {k: times.native_bound(check.column, v) for k, v in raw.items()}
        return [("invalid", gxe.ExpectColumnValuesToBeBetween(column=check.column, **bounds))]
    if t == "pattern":
        return [("invalid", gxe.ExpectColumnValuesToMatchRegex(column=check.column, regex=check.regex))]
    if t == "freshness":
        column = check.column or timestamp_column
        if not column:
            raise ValueError("freshness check names no `column` and the dataset has no `timestamp_column`: set one of them")
        if column in times.split_columns:
            return [("newest_utc", gxe.ExpectColumnMaxToBeBetween(column=UTC_PREFIX + column)),
                    ("newest_wall", gxe.ExpectColumnMaxToBeBetween(column=WALL_PREFIX + column))]
        if column in times.utc_columns:
            return [("newest", gxe.ExpectColumnMaxToBeBetween(column=UTC_PREFIX + column))]
        return [("newest", gxe.ExpectColumnMaxToBeBetween(column=column))]
    raise ValueError(f"a {t} check cannot run through Great Expectations: use the SQL engine")


def _raised(res: Any) -> str | None:
    """The exception message of a result that raised (GX nests it per metric), else None."""
    info = res.exception_info or {}
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "an expectation raised")
    return None


def _key(config: Any) -> str:
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k not in {"result_format", "catch_exceptions", "batch_id"}}
    return json.dumps([config.type, kwargs], sort_keys=True, default=str)


def _measures(check: BaseCheck, parts: dict[str, dict], tz: str | None = None) -> dict:
    t = check.type
    if t in {"row_count", "volume_anomaly"}:
        return {"rows": parts["rows"]["observed_value"]}
    if t in {"null_check", "completeness"}:
        rows = next(iter(parts.values())).get("element_count", 0)
        nulls = {c: parts[c].get("unexpected_count", 0) for c in check.columns}
        if t == "null_check":
            return {"rows": rows, "nulls": nulls}
        return {"rows": rows, "non_null": {c: rows - n for c, n in nulls.items()}}
    if t == "unique":
        return {"duplicates": parts["dups"].get("unexpected_count", 0)}
    if t in {"accepted_values", "range", "pattern"}:
        return {"invalid": sum(p.get("unexpected_count", 0) or 0 for k, p in parts.items() if k.startswith("invalid"))}
    if t == "freshness":
        if "newest" in parts:
            return {"newest": parts["newest"].get("observed_value")}
        moments = [as_aware_datetime(parts["newest_utc"].get("observed_value"), dt.timezone.utc),
                   as_aware_datetime(parts["newest_wall"].get("observed_value"), tz)]
        return {"newest": max((m for m in moments if m is not None), default=None)}
    raise ValueError(t)


def _columns_of(check: ExpectationCheck) -> tuple[str, ...]:
    kwargs = check.kwargs
    names = [kwargs.get("column"), *(kwargs.get("column_list") or []), kwargs.get("column_A"), kwargs.get("column_B")]
    return tuple(dict.fromkeys(str(n) for n in names if n))


def _expectation_observed(result: dict[str, Any]) -> Any:
    """What an expectation measured: its observed value, else its unexpected rows (counted, like
    the SQL engine's value checks), else its counts; never row samples."""
    for key in ("observed_value", "unexpected_count"):
        if result.get(key) is not None:
            return result[key]
    summary = {k: result[k] for k in _SUMMARY_KEYS if result.get(k) is not None}
    return summary or None


def _validate(batch_factory: Callable[[], Any], checks: Sequence[BaseCheck], *, label: str, now: dt.datetime,
              timestamp_column: str | None, ctx: EvalContext, times: Times = Times(),
              allow_where: bool = False) -> list[CheckResult]:
    import great_expectations as gx

    out: dict[int, CheckResult] = {}
    context = _context()
    wanted: dict[str, list[tuple[int, str]]] = {}
    suite = gx.ExpectationSuite(name=f"dataops_{uuid.uuid4().hex[:8]}")
    for i, check in enumerate(checks):
        try:
            if check.type in _UNSUPPORTED:
                raise ValueError(f"a {check.type} check cannot run through Great Expectations: use the SQL engine (remove `engine`)")
            if check.where is not None and not allow_where:
                raise ValueError("`where` is a SQL filter and cannot apply to a DataFrame: filter the frame in its source task")
            for part, expectation in _build(check, timestamp_column, times):
                key = _key(expectation.configuration)
                wanted.setdefault(key, []).append((i, part))
                if len(wanted[key]) == 1:  # GX keeps one copy of identical expectations
                    suite.add_expectation(expectation)
        except ValueError as exc:
            out[i] = error_result(check, CONFIG_ERROR + str(exc), table=label, engine=ENGINE, now=now)
    if len(out) == len(checks):
        return [out[i] for i in range(len(checks))]
    started = time.perf_counter()
    try:
        validation = batch_factory(context).validate(suite, result_format="SUMMARY")
    except Exception as exc:  # a missing table, an unreachable database, ...
        text = f"Great Expectations could not read {label}: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
        return [out.get(i) or error_result(c, text, table=label, engine=ENGINE, now=now) for i, c in enumerate(checks)]
    elapsed = (time.perf_counter() - started) * 1000
    by_check: dict[int, dict[str, Any]] = {}
    for res in validation.results:
        for i, part in wanted.get(_key(res.expectation_config), []):
            by_check.setdefault(i, {})[part] = res
    for i, check in enumerate(checks):
        if i in out:
            continue
        parts = by_check.get(i, {})
        raised = next((m for m in map(_raised, parts.values()) if m), None)
        if raised or not parts:
            text = f"Great Expectations: {(raised or 'no result returned').splitlines()[0][:300]}"
            out[i] = error_result(check, text, table=label, engine=ENGINE, now=now)
            continue
        try:
            columns = None
            if isinstance(check, ExpectationCheck):
                res = parts[""]
                observed = _expectation_observed(dict(res.result))
                verdict = Verdict(bool(res.success), observed, check.kwargs,
                                  f"{check.expectation} {'passed' if res.success else 'failed'} (observed {observed!r})")
                columns = _columns_of(check)
            else:
                verdict = evaluate(check, _measures(check, {k: dict(r.result) for k, r in parts.items()}, ctx.timezone), ctx)
        except (ValueError, KeyError, TypeError) as exc:
            out[i] = error_result(check, f"unreadable Great Expectations result: {exc}", table=label, engine=ENGINE, now=now)
            continue
        note = "Great Expectations counts every row of a repeated value" if check.type == "unique" else ""
        out[i] = from_verdict(check, verdict, table=label, engine=ENGINE, now=now, duration_ms=elapsed, note=note,
                              columns=columns)
    return [out[i] for i in range(len(checks))]


_TIMEOUT_MARKERS = ("canceling statement due to statement timeout", "sqlite3.OperationalError) interrupted",
                    "maximum statement execution time exceeded")


def _named_timeout(result: CheckResult, timeout_s: int) -> CheckResult:
    """A GX error that is our statement timeout says so, like the SQL engine's (still retryable)."""
    import dataclasses

    if not result.error or not any(marker in result.error for marker in _TIMEOUT_MARKERS):
        return result
    error = (f"the Great Expectations query timed out after {timeout_s}s ([dataops] statement_timeout): "
             "add a `where` filter or raise the timeout")
    return dataclasses.replace(result, error=error, message=f"check {result.name!r} on {result.table} could not run: {error}")


def run_gx_on_table(engine: sa.Engine, table: str, checks: Sequence[BaseCheck], *, now: dt.datetime,
                    timestamp_column: str | None, timezone: str | None = None,
                    history: Callable[[str, int], list[float]] | None = None,
                    statement_timeout_s: int = 300) -> list[CheckResult]:
    """Run ``checks`` through GX against ``table`` (an ephemeral context with a SQL data source),
    one batch per distinct ``where`` (a query asset), under ``statement_timeout_s``."""
    import dataclasses

    from airflow_dataops.engine.sql_objects import UnsafeFilterError, split_table, validate_where

    ctx = EvalContext(now=now, timezone=timezone, history=history)
    dialect = engine.dialect.name
    groups: dict[str | None, list[int]] = {}
    out: dict[int, CheckResult] = {}
    for i, check in enumerate(checks):
        try:
            where = validate_where(check.where, dialect) if check.where is not None else None
        except UnsafeFilterError as exc:
            out[i] = error_result(check, CONFIG_ERROR + str(exc), table=table, engine=ENGINE, now=now)
            continue
        groups.setdefault(where, []).append(i)
    kwargs: dict[str, Any] = {}
    if dialect == "postgresql" and statement_timeout_s > 0:
        kwargs = {"connect_args": {"options": f"-c statement_timeout={int(statement_timeout_s) * 1000}"}}
    elif dialect != "sqlite" and statement_timeout_s > 0:
        log.info("no statement timeout applied to Great Expectations on %s: the database's own limits hold", dialect)
    for where, indexes in groups.items():
        group = [checks[i] for i in indexes]
        times = times_for(engine, table, time_columns(group, timestamp_column), timezone)
        query = batch_query(engine, table, where, sorted(times.split_columns))

        def batch(context, query=query):
            # GX opens its own engine: it needs the full URL (password included); never logged.
            add = {"postgresql": "add_postgres", "sqlite": "add_sqlite"}.get(dialect, "add_sql")
            options = {"kwargs": kwargs} if kwargs else {}
            source = getattr(context.data_sources, add)(name="dataops", connection_string=engine.url.render_as_string(hide_password=False),
                                                        **options)
            if query is not None:
                asset = source.add_query_asset(name="query", query=query)
            else:
                schema, name = split_table(table)
                asset = source.add_table_asset(name="table", table_name=name, schema_name=schema)
            return asset.add_batch_definition_whole_table("whole").get_batch()

        with sqlite_timeouts(statement_timeout_s if dialect == "sqlite" else 0):
            results = _validate(batch, group, label=table, now=now, timestamp_column=timestamp_column, ctx=ctx,
                                times=times, allow_where=True)
        out.update(zip(indexes, (_named_timeout(r, statement_timeout_s) for r in results), strict=True))
    ordered = [out[i] for i in range(len(checks))]
    password = engine.url.password
    if not password:
        return ordered

    def scrub(text: str | None) -> str | None:
        return text.replace(str(password), "***") if text else text

    return [dataclasses.replace(r, message=scrub(r.message), error=scrub(r.error)) for r in ordered]


def run_gx_on_frame(df: pd.DataFrame, checks: Sequence[BaseCheck], *, now: dt.datetime, timestamp_column: str | None,
                    timezone: str | None = None, history: Callable[[str, int], list[float]] | None = None,
                    source: str = "DataFrame") -> list[CheckResult]:
    """Run ``checks`` through GX against a DataFrame."""
    ctx = EvalContext(now=now, timezone=timezone, history=history)
    moments = [c for c in time_columns(checks, timestamp_column) if c in df.columns]
    frame = frame_with_instants(df, moments, timezone)

    def batch(context):
        asset = context.data_sources.add_pandas(name="dataops").add_dataframe_asset(name="frame")
        return asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})

    return _validate(batch, checks, label=source, now=now, timestamp_column=timestamp_column, ctx=ctx,
                     times=Times(tz=timezone, utc_columns=frozenset(moments)))
