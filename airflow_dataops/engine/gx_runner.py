"""Great Expectations 1.x as an engine: ``expectation`` checks, and standard checks with
``engine: great_expectations``, on a SQL table or on a DataFrame. Same result shape.

Standard checks map to GX expectations that MEASURE (row count, null counts, unexpected counts,
column max); the verdict then comes from the shared functions in ``evaluate``, so thresholds mean
the same as with the SQL engine. One difference: for ``unique``, GX counts every row of a repeated
value (the SQL and pandas engines count the rows beyond the first), so the observed number is
larger while the verdict is the same. Great Expectations is imported lazily (slow import), and its
analytics and progress bars are turned off. No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_dataops.config.checks import BaseCheck, ExpectationCheck
from airflow_dataops.engine.evaluate import EvalContext, Verdict, evaluate
from airflow_dataops.engine.outcome import CONFIG_ERROR, error_result, from_verdict
from airflow_dataops.engine.result import CheckResult

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

ENGINE = "great_expectations"
_UNSUPPORTED = {"schema", "referential", "sql"}


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


def _instant(value: Any) -> Any:
    """Date bounds mean their midnight, as with the SQL engine."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


def _build(check: BaseCheck, timestamp_column: str | None) -> list[tuple[str, Any]]:
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
        bounds = {k: _instant(v) for k, v in (("min_value", check.min), ("max_value", check.max)) if v is not None}
        return [("invalid", gxe.ExpectColumnValuesToBeBetween(column=check.column, **bounds))]
    if t == "pattern":
        return [("invalid", gxe.ExpectColumnValuesToMatchRegex(column=check.column, regex=check.regex))]
    if t == "freshness":
        column = check.column or timestamp_column
        if not column:
            raise ValueError("freshness check names no `column` and the dataset has no `timestamp_column`: set one of them")
        return [(column, gxe.ExpectColumnMaxToBeBetween(column=column))]
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


def _measures(check: BaseCheck, parts: dict[str, dict]) -> dict:
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
        return {"invalid": parts["invalid"].get("unexpected_count", 0)}
    if t == "freshness":
        return {"newest": next(iter(parts.values())).get("observed_value")}
    raise ValueError(t)


def _validate(batch_factory: Callable[[], Any], checks: Sequence[BaseCheck], *, label: str, now: dt.datetime,
              timestamp_column: str | None, ctx: EvalContext) -> list[CheckResult]:
    import great_expectations as gx

    out: dict[int, CheckResult] = {}
    context = _context()
    wanted: dict[str, list[tuple[int, str]]] = {}
    suite = gx.ExpectationSuite(name=f"dataops_{uuid.uuid4().hex[:8]}")
    for i, check in enumerate(checks):
        try:
            if check.type in _UNSUPPORTED:
                raise ValueError(f"a {check.type} check cannot run through Great Expectations: use the SQL engine (remove `engine`)")
            if check.where is not None:
                raise ValueError("`where` is not supported with engine great_expectations: use the SQL engine")
            for part, expectation in _build(check, timestamp_column):
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
            if isinstance(check, ExpectationCheck):
                res = parts[""]
                observed = res.result.get("observed_value", res.result.get("unexpected_count"))
                verdict = Verdict(bool(res.success), observed, check.kwargs,
                                  f"{check.expectation} {'passed' if res.success else 'failed'} (observed {observed!r})")
            else:
                verdict = evaluate(check, _measures(check, {k: dict(r.result) for k, r in parts.items()}), ctx)
        except (ValueError, KeyError, TypeError) as exc:
            out[i] = error_result(check, f"unreadable Great Expectations result: {exc}", table=label, engine=ENGINE, now=now)
            continue
        note = "Great Expectations counts every row of a repeated value" if check.type == "unique" else ""
        out[i] = from_verdict(check, verdict, table=label, engine=ENGINE, now=now, duration_ms=elapsed, note=note)
    return [out[i] for i in range(len(checks))]


def run_gx_on_table(engine: sa.Engine, table: str, checks: Sequence[BaseCheck], *, now: dt.datetime,
                    timestamp_column: str | None, timezone: str | None = None,
                    history: Callable[[str, int], list[float]] | None = None) -> list[CheckResult]:
    """Run ``checks`` through GX against ``table`` (an ephemeral context with a SQL data source)."""
    from airflow_dataops.engine.sql_objects import split_table

    ctx = EvalContext(now=now, timezone=timezone, history=history)

    def batch(context):
        # GX opens its own engine: it needs the full URL (password included); never logged.
        add = {"postgresql": "add_postgres", "sqlite": "add_sqlite"}.get(engine.dialect.name, "add_sql")
        source = getattr(context.data_sources, add)(name="dataops", connection_string=engine.url.render_as_string(hide_password=False))
        schema, name = split_table(table)
        asset = source.add_table_asset(name="table", table_name=name, schema_name=schema)
        return asset.add_batch_definition_whole_table("whole").get_batch()

    results = _validate(batch, checks, label=table, now=now, timestamp_column=timestamp_column, ctx=ctx)
    password = engine.url.password
    if not password:
        return results
    import dataclasses

    def scrub(text: str | None) -> str | None:
        return text.replace(str(password), "***") if text else text

    return [dataclasses.replace(r, message=scrub(r.message), error=scrub(r.error)) for r in results]


def run_gx_on_frame(df: pd.DataFrame, checks: Sequence[BaseCheck], *, now: dt.datetime, timestamp_column: str | None,
                    timezone: str | None = None, history: Callable[[str, int], list[float]] | None = None,
                    source: str = "DataFrame") -> list[CheckResult]:
    """Run ``checks`` through GX against a DataFrame."""
    ctx = EvalContext(now=now, timezone=timezone, history=history)

    def batch(context):
        asset = context.data_sources.add_pandas(name="dataops").add_dataframe_asset(name="frame")
        return asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": df})

    return _validate(batch, checks, label=source, now=now, timestamp_column=timestamp_column, ctx=ctx)
