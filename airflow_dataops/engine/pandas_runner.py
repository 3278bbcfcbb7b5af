"""The same checks on a pandas DataFrame (a ``source_task``'s return value), same verdicts.

Measures are computed with pandas and judged by the shared functions in ``evaluate``, so a check
gives the same result here as on a table. ``referential`` and ``sql`` need a database and give an
error result; ``where`` filters are SQL and cannot apply to a frame (error result: filter the frame
in the source task instead). No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_dataops.config.checks import BaseCheck, SchemaCheck
from airflow_dataops.engine.evaluate import EVALUATORS, EvalContext, Verdict, evaluate
from airflow_dataops.engine.freshness import as_aware_datetime
from airflow_dataops.engine.outcome import CONFIG_ERROR, error_result, from_verdict
from airflow_dataops.engine.result import CheckResult
from airflow_dataops.engine.sql_aggregates import bound_instant
from airflow_dataops.engine.sql_separate import normalize_type

if TYPE_CHECKING:
    import pandas as pd

ENGINE = "pandas"


class _Unsupported(ValueError):
    pass


def instants(series: pd.Series, tz: str | None) -> pd.Series:
    """A column of timestamps (datetimes, dates, ISO strings with or without offsets, epochs) as
    aware UTC instants; naive values are wall times in ``tz`` (default UTC), as in the SQL engine."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        if series.dt.tz is not None:
            return series.dt.tz_convert("UTC")
        if tz in (None, "UTC"):
            return series.dt.tz_localize("UTC")

    def one(value: Any) -> Any:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return pd.NaT
        return pd.Timestamp(as_aware_datetime(value, tz)).tz_convert("UTC")

    return pd.to_datetime(series.map(one), utc=True)


def _utc_bound(value: Any, tz: str | None) -> Any:
    import pandas as pd

    moment = bound_instant(value, tz)
    return value if moment is None else pd.Timestamp(moment).tz_convert("UTC")


def _invalid(df: pd.DataFrame, check: BaseCheck, tz: str | None = None) -> pd.Series:
    """Boolean mask of rows whose non-null value breaks a value check."""
    col = df[check.column]
    present = col.notna()
    if check.type == "accepted_values":
        return present & ~col.isin(list(check.values))
    if check.type == "range":
        values = col[present]
        if isinstance(check.min, dt.date) or isinstance(check.max, dt.date):
            values = instants(values, tz)
        bad = values.map(lambda _: False).astype(bool)
        if check.min is not None:
            bad |= values < _utc_bound(check.min, tz)
        if check.max is not None:
            bad |= values > _utc_bound(check.max, tz)
        return bad.reindex(df.index, fill_value=False)
    if check.type == "pattern":
        regex = re.compile(check.regex)
        return present & col.map(lambda v: v is not None and v == v and regex.search(str(v)) is None).astype(bool)
    raise _Unsupported(check.type)


def measure(df: pd.DataFrame, check: BaseCheck, timestamp_column: str | None,
            tz: str | None = None) -> tuple[dict, tuple[str, ...], Any]:
    """(measures for ``evaluate``, columns, mask of failing rows or None)."""
    t, rows = check.type, len(df)
    for column in check.column_list():
        if column not in df.columns:
            raise KeyError(column)
    if t in {"row_count", "volume_anomaly"}:
        return {"rows": rows}, (), None
    if t in {"null_check", "completeness"}:
        cols = tuple(check.columns)
        nonnull = {c: int(df[c].notna().sum()) for c in cols}
        mask = df[list(cols)].isna().any(axis=1)
        if t == "null_check":
            return {"rows": rows, "nulls": {c: rows - n for c, n in nonnull.items()}}, cols, mask
        return {"rows": rows, "non_null": nonnull}, cols, mask
    if t == "unique":
        cols = list(check.columns)
        subset = df[cols].dropna()
        dups = int(subset.duplicated(keep="first").sum())
        mask = df[cols].notna().all(axis=1) & df.duplicated(subset=cols, keep=False)
        return {"duplicates": dups}, tuple(cols), mask
    if t in {"accepted_values", "range", "pattern"}:
        mask = _invalid(df, check, tz)
        return {"invalid": int(mask.sum())}, (check.column,), mask
    if t == "freshness":
        column = check.column or timestamp_column
        if not column:
            raise _Unsupported("freshness check names no `column` and the dataset has no `timestamp_column`: set one of them")
        if column not in df.columns:
            raise KeyError(column)
        series = df[column].dropna()
        newest = None if series.empty else instants(series, tz).max()
        return {"newest": newest}, (column,), None
    raise _Unsupported(t)


def _schema_verdict(df: pd.DataFrame, check: SchemaCheck) -> Verdict:
    import pandas as pd

    def family(dtype: Any) -> set[str]:
        if pd.api.types.is_bool_dtype(dtype):
            return {"boolean"}
        if pd.api.types.is_integer_dtype(dtype):
            return {"integer", "bigint", "smallint", "numeric"}
        if pd.api.types.is_float_dtype(dtype):
            return {"float", "numeric"}
        if isinstance(dtype, pd.DatetimeTZDtype):
            return {"timestamptz"}
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return {"timestamp", "date"}
        return {"text", "json"}  # object/string columns: types are loose on frames

    missing = [c.name for c in check.columns if c.name not in df.columns]
    mismatched = {
        c.name: str(df[c.name].dtype) for c in check.columns
        if c.type and c.name in df.columns and normalize_type(c.type) not in family(df[c.name].dtype)
    }
    names = {c.name for c in check.columns}
    unexpected = sorted(str(c) for c in df.columns if c not in names) if check.strict else []
    problems = [p for p in (missing and f"missing columns {missing}", mismatched and f"types differ: {mismatched}",
                            unexpected and f"unexpected columns {unexpected} (strict)") if p]
    return Verdict(not problems, {"missing": missing, "type_mismatch": mismatched, "unexpected": unexpected},
                   {"columns": {c.name: c.type for c in check.columns}, "strict": check.strict},
                   "; ".join(problems) or f"all {len(check.columns)} columns present with the expected types")


def run_checks_on_frame(
    df: pd.DataFrame,
    checks: Sequence[BaseCheck],
    *,
    now: dt.datetime,
    timestamp_column: str | None,
    timezone: str | None = None,
    failing_rows_sample: int = 0,
    history: Callable[[str, int], list[float]] | None = None,
    source: str = "DataFrame",
) -> list[CheckResult]:
    """Run ``checks`` on ``df``; one result per check, in order, with ``engine="pandas"``.

    ``source`` names the frame in messages (e.g. ``"XCom of task extract"``). Checks with
    ``engine: great_expectations`` or of type ``expectation`` run through GX on the frame.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (take it once with datetime.now(timezone.utc))")
    ctx = EvalContext(now=now, timezone=timezone, history=history)
    out: dict[int, CheckResult] = {}
    via_gx = []
    for i, check in enumerate(checks):
        if check.effective_engine == "great_expectations":
            via_gx.append((i, check))
            continue
        started = time.perf_counter()
        try:
            if check.where is not None:
                raise _Unsupported("`where` is a SQL filter and cannot apply to a DataFrame: filter the frame in its source task")
            if isinstance(check, SchemaCheck):
                verdict, cols, mask = _schema_verdict(df, check), check.column_list(), None
            elif check.type in EVALUATORS:
                measures, cols, mask = measure(df, check, timestamp_column, timezone)
                verdict = evaluate(check, measures, ctx)
            else:
                raise _Unsupported(f"a {check.type} check needs a database and cannot run on a DataFrame: run it on the table (no source_task)")
        except _Unsupported as exc:
            out[i] = error_result(check, CONFIG_ERROR + str(exc), table=source, engine=ENGINE, now=now)
            continue
        except KeyError as exc:
            out[i] = error_result(check, f"column {exc.args[0]} not found in {source} (columns: {', '.join(map(str, df.columns))})",
                                  table=source, engine=ENGINE, now=now)
            continue
        except (ValueError, TypeError) as exc:
            out[i] = error_result(check, f"{type(exc).__name__}: {exc}", table=source, engine=ENGINE, now=now)
            continue
        rows: tuple[dict[str, Any], ...] = ()
        if not verdict.passed and failing_rows_sample > 0 and mask is not None:
            sample = df[mask].head(failing_rows_sample)
            rows = tuple(sample.astype(object).where(sample.notna(), None).to_dict(orient="records"))
        out[i] = from_verdict(check, verdict, table=source, engine=ENGINE, now=now, columns=cols,
                              duration_ms=(time.perf_counter() - started) * 1000, failing_rows=rows)
    if via_gx:
        from airflow_dataops.engine.gx_runner import run_gx_on_frame

        for (i, _), result in zip(via_gx, run_gx_on_frame(df, [c for _, c in via_gx], now=now, timestamp_column=timestamp_column,
                                                           timezone=timezone, history=history, source=source), strict=True):
            out[i] = result
    return [out[i] for i in range(len(checks))]
