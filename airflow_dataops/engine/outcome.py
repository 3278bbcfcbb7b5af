"""CheckResult construction shared by the engines (same shape whichever engine ran)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_dataops.config.checks import BaseCheck
from airflow_dataops.engine.evaluate import Verdict
from airflow_dataops.engine.result import CheckResult

CONFIG_ERROR = "configuration: "  # prefix of errors a retry cannot fix (the operator fails without retry)


def from_verdict(check: BaseCheck, verdict: Verdict, *, table: str | None, engine: str, now: dt.datetime,
                 sql: str | None = None, duration_ms: float = 0.0, columns: tuple[str, ...] | None = None,
                 failing_rows: tuple[dict[str, Any], ...] = (), note: str = "") -> CheckResult:
    message = verdict.message + (f"; {note}" if note else "")
    return CheckResult(
        name=check.check_name, check_type=check.type,
        action=(verdict.action if verdict.action == "warn" else check.action),  # type: ignore[arg-type]
        passed=verdict.passed, observed=verdict.observed, expected=verdict.expected, table=table,
        columns=columns if columns is not None else check.column_list(), message=message, sql=sql,
        engine=engine, duration_ms=duration_ms, checked_at=now, failing_rows=failing_rows,
    )


def error_result(check: BaseCheck, error: str, *, table: str | None, engine: str, now: dt.datetime,
                 sql: str | None = None, duration_ms: float = 0.0, columns: tuple[str, ...] | None = None) -> CheckResult:
    """A check that could not run: names the check and the object in ``error`` and ``message``."""
    return CheckResult(
        name=check.check_name, check_type=check.type, action=check.action, passed=None, observed=None,
        expected=None, table=table, columns=columns if columns is not None else check.column_list(),
        message=f"check {check.check_name!r} on {table or 'the data'} could not run: {error}", sql=sql,
        engine=engine, duration_ms=duration_ms, checked_at=now, error=error,
    )
