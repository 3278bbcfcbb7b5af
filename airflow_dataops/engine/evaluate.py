"""Verdicts from measurements: one function per check type, shared by every engine.

An engine (SQL, pandas, Great Expectations) only measures (row counts, null counts, invalid
values, the newest timestamp); the functions here turn the measures into passed/observed/expected
and a message, so the same check gives the same verdict whichever engine measured it.

Freshness follows dbt: past ``error_after`` the outcome has the check's ``action`` (a failure by
default); past ``warn_after`` only, it is a warning even when ``action`` is ``fail``. With
``max_age`` the outcome has the check's ``action``. An ``action: warn`` check never fails.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_dataops.config.checks import (
    AcceptedValuesCheck,
    BaseCheck,
    CompletenessCheck,
    FreshnessCheck,
    NullCheck,
    PatternCheck,
    RangeCheck,
    RowCountCheck,
    UniqueCheck,
    VolumeAnomalyCheck,
)
from airflow_dataops.config.types import format_duration
from airflow_dataops.engine.freshness import freshness_lag

MIN_HISTORY = 3


@dataclass(frozen=True)
class Verdict:
    passed: bool
    observed: Any
    expected: Any
    message: str
    action: str | None = None  # overrides the check's action (freshness warn_after)
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class EvalContext:
    now: dt.datetime
    timezone: str | None = None
    history: Callable[[str, int], list[float]] | None = None


def _pct(part: float, whole: float) -> float:
    return 0.0 if not whole else round(100.0 * part / whole, 6)


def row_count(check: RowCountCheck, m: dict, ctx: EvalContext) -> Verdict:
    rows = int(m["rows"])
    low, high = check.min_rows, check.max
    ok = (low is None or rows >= low) and (high is None or rows <= high)
    expected = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
    bounds = " and ".join(f"{'>=' if k == 'min' else '<='} {v}" for k, v in expected.items())
    return Verdict(ok, rows, expected, f"{rows} rows (expected {bounds})")


def null_check(check: NullCheck, m: dict, ctx: EvalContext) -> Verdict:
    rows, nulls = int(m["rows"]), {c: int(n) for c, n in m["nulls"].items()}
    if check.max_null_pct is not None:
        bad = {c: n for c, n in nulls.items() if _pct(n, rows) > check.max_null_pct}
        expected: dict[str, Any] = {"max_null_pct": check.max_null_pct}
        limit = f"max {check.max_null_pct:g}%"
    else:
        allowed = check.max_nulls or 0
        bad = {c: n for c, n in nulls.items() if n > allowed}
        expected = {"max_nulls": allowed}
        limit = f"max {allowed}"
    detail = ", ".join(f"{c}: {n} nulls ({_pct(n, rows):g}%)" for c, n in nulls.items())
    return Verdict(not bad, nulls, expected, f"{detail} of {rows} rows ({limit})")


def completeness(check: CompletenessCheck, m: dict, ctx: EvalContext) -> Verdict:
    rows = int(m["rows"])
    pct = {c: (100.0 if not rows else _pct(int(n), rows)) for c, n in m["non_null"].items()}
    bad = {c: p for c, p in pct.items() if p < check.min_pct}
    detail = ", ".join(f"{c}: {p:g}% non-null" for c, p in pct.items())
    note = " (no rows: complete by definition)" if not rows else ""
    return Verdict(not bad, pct, {"min_pct": check.min_pct}, f"{detail} (min {check.min_pct:g}%){note}")


def unique(check: UniqueCheck, m: dict, ctx: EvalContext) -> Verdict:
    dups = int(m["duplicates"])
    what = "value" if len(check.columns) == 1 else "combination"
    return Verdict(dups == 0, dups, 0, f"{dups} duplicate rows: repeated {what}s of {', '.join(check.columns)} (nulls ignored)")


def accepted_values(check: AcceptedValuesCheck, m: dict, ctx: EvalContext) -> Verdict:
    bad = int(m["invalid"])
    return Verdict(bad == 0, bad, {"invalid_rows": 0, "values": list(check.values)},
                   f"{bad} non-null values of {check.column} outside the accepted set")


def range_(check: RangeCheck, m: dict, ctx: EvalContext) -> Verdict:
    bad = int(m["invalid"])
    expected = {k: v for k, v in (("min", check.min), ("max", check.max)) if v is not None}
    return Verdict(bad == 0, bad, {"invalid_rows": 0, **expected},
                   f"{bad} non-null values of {check.column} outside {expected}")


def pattern(check: PatternCheck, m: dict, ctx: EvalContext) -> Verdict:
    bad = int(m["invalid"])
    return Verdict(bad == 0, bad, {"invalid_rows": 0, "regex": check.regex},
                   f"{bad} non-null values of {check.column} do not match {check.regex!r}")


def freshness(check: FreshnessCheck, m: dict, ctx: EvalContext) -> Verdict:
    newest = m["newest"]
    lag = freshness_lag(newest, ctx.now, ctx.timezone)
    expected: dict[str, Any] = {
        k: v.total_seconds() for k, v in (("max_age_s", check.max_age), ("warn_after_s", check.warn_after),
                                          ("error_after_s", check.error_after)) if v is not None
    }
    if lag is None:
        return Verdict(False, None, expected, "no rows with a timestamp: the table counts as stale")
    age = lag.total_seconds()
    shown = format_duration(dt.timedelta(seconds=max(0, int(age))))
    limit = check.max_age or check.error_after
    if limit is not None and lag > limit:
        return Verdict(False, age, expected, f"newest row is {shown} old (max {format_duration(limit)})")
    if check.warn_after is not None and lag > check.warn_after:
        return Verdict(False, age, expected, f"newest row is {shown} old (warn after {format_duration(check.warn_after)})",
                       action="warn")
    return Verdict(True, age, expected, f"newest row is {shown} old")


def volume_anomaly(check: VolumeAnomalyCheck, m: dict, ctx: EvalContext) -> Verdict:
    rows = int(m["rows"])
    past = [float(v) for v in (ctx.history(check.check_name, check.lookback) if ctx.history else [])]
    expected: dict[str, Any] = (
        {"max_change_pct": check.max_change_pct} if check.max_change_pct is not None else {"max_stddev": check.max_stddev}
    )
    # Which rows were counted: history compares filtered counts with filtered counts only.
    expected["where_applied"] = check.where is not None
    if len(past) < MIN_HISTORY:
        return Verdict(True, rows, expected, f"{rows} rows; only {len(past)} earlier runs recorded, "
                       f"{MIN_HISTORY} needed before anomalies are judged (passes until then)")
    mean = statistics.fmean(past)
    expected["mean"] = round(mean, 3)
    if check.max_change_pct is not None:
        change = 0.0 if mean == rows else (float("inf") if mean == 0 else 100.0 * abs(rows - mean) / mean)
        ok = change <= check.max_change_pct
        return Verdict(ok, rows, expected, f"{rows} rows, {change:.1f}% from the mean {mean:.1f} of {len(past)} runs "
                       f"(max {check.max_change_pct:g}%)")
    std = statistics.pstdev(past)
    z = 0.0 if rows == mean else (float("inf") if std == 0 else abs(rows - mean) / std)
    expected["stddev"] = round(std, 3)
    return Verdict(z <= check.max_stddev, rows, expected, f"{rows} rows, {z:.2f} standard deviations from the mean "
                   f"{mean:.1f} of {len(past)} runs (max {check.max_stddev:g})")


EVALUATORS: dict[str, Callable[[Any, dict, EvalContext], Verdict]] = {
    "row_count": row_count,
    "null_check": null_check,
    "completeness": completeness,
    "unique": unique,
    "accepted_values": accepted_values,
    "range": range_,
    "pattern": pattern,
    "freshness": freshness,
    "volume_anomaly": volume_anomaly,
}


def evaluate(check: BaseCheck, measures: dict, ctx: EvalContext) -> Verdict:
    return EVALUATORS[check.type](check, measures, ctx)
