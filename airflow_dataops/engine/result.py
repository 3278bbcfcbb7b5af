"""The one record every check produces, whichever engine ran it (SQL, pandas, Great Expectations).

Written to the results store before any exception is raised; its ``to_xcom()`` form is what the
operator returns (never row samples, never secrets).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["passed", "warned", "failed", "error"]


def _jsonable(value: Any) -> Any:
    """Observed/expected values as JSON: dates become ISO strings, decimals floats."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    try:
        return float(value)  # Decimal, numpy scalars
    except (TypeError, ValueError):
        return str(value)


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check on one table.

    ``status`` is derived from ``passed`` and the check's ``action``: a failing ``warn`` check is
    ``warned``, a failing ``fail`` check is ``failed``; ``error`` means the check could not run
    (missing table, query error, timeout) and is distinct from a data failure.
    """

    name: str
    check_type: str
    action: Literal["fail", "warn"]
    passed: bool | None
    observed: Any
    expected: Any
    table: str | None = None
    columns: tuple[str, ...] = ()
    message: str = ""
    sql: str | None = None
    engine: str = "sql"
    duration_ms: float = 0.0
    checked_at: dt.datetime | None = None
    error: str | None = None
    failing_rows: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def status(self) -> Status:
        if self.error is not None or self.passed is None:
            return "error"
        if self.passed:
            return "passed"
        return "warned" if self.action == "warn" else "failed"

    def to_xcom(self) -> dict[str, Any]:
        """JSON-safe summary: names, observed and expected values. No row samples, no SQL."""
        return {
            "name": self.name,
            "type": self.check_type,
            "action": self.action,
            "status": self.status,
            "passed": self.passed,
            "table": self.table,
            "columns": list(self.columns),
            "observed": _jsonable(self.observed),
            "expected": _jsonable(self.expected),
            "message": self.message,
            "engine": self.engine,
            "duration_ms": round(self.duration_ms, 3),
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "error": self.error,
        }

    def to_record(self) -> dict[str, Any]:
        """Everything, for the results store (row samples included)."""
        record = asdict(self)
        record["status"] = self.status
        record["observed"] = json.dumps(_jsonable(self.observed))
        record["expected"] = json.dumps(_jsonable(self.expected))
        record["failing_rows"] = json.dumps(_jsonable(list(self.failing_rows))) if self.failing_rows else None
        record["columns"] = list(self.columns)
        return record
