"""Value types of the pipeline config: durations, percentages, SQL identifiers, Jinja guards.

Each parses the text users write (``2 hours``, ``99.5%``, ``analytics.orders``) and says how to fix
it when it cannot. No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*,?")
DURATION_HELP = 'write a duration like "90s", "30 minutes", "2 hours" or "1 day"'


def is_sql_file(text: str) -> bool:
    """Whether a `sql:` value names a file (``sql/load.sql``, any case of ``.sql``, no whitespace)
    rather than being the statement itself. The validator, the DAG builder and the check engine
    all decide with this one rule."""
    stripped = text.strip()
    return stripped.lower().endswith(".sql") and not any(ch.isspace() for ch in stripped)


def parse_duration(value: Any) -> dt.timedelta:
    """``"2 hours"``, ``"1h 30m"``, ``"90s"`` -> timedelta. Bare numbers are refused (which unit?)."""
    if isinstance(value, dt.timedelta):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a duration, got {value!r}: {DURATION_HELP}")
    text = value.strip()
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match or match.group(2).lower() not in _DURATION_UNITS:
            raise ValueError(f"{value!r} is not a duration: {DURATION_HELP}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        pos = match.end()
    if total <= 0:
        raise ValueError(f"{value!r} must be longer than zero: {DURATION_HELP}")
    return dt.timedelta(seconds=total)


def format_duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds}s"


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_percent(value: Any, *, cap: bool = True) -> float:
    """``"99.5%"`` -> 99.5 (percentage points). Plain numbers are refused: 0.995 or 99.5?"""
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match:
            pct = float(match.group(1))
            if pct <= 100 or not cap:
                return pct
            raise ValueError(f"{value!r} is over 100%")
    raise ValueError(f'expected a percentage like "99.5%", got {value!r}: quote it and add "%"')


IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")
IDENTIFIER_HELP = (
    "use a plain SQL identifier: letters, digits and underscores, not starting with a digit "
    "(optionally schema-qualified with dots, like analytics.orders)"
)


def check_identifier(value: Any, *, dotted: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a name, got {value!r}: {IDENTIFIER_HELP}")
    parts = value.split(".") if dotted else [value]
    if len(parts) > 3 or not all(IDENTIFIER_RE.match(part) for part in parts):
        raise ValueError(f"{value!r} is not a valid {'table' if dotted else 'column'} name: {IDENTIFIER_HELP}")
    return value


def _no_jinja(value: Any) -> Any:
    if isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value):
        raise ValueError(
            f"{value!r} contains Jinja, which is only allowed in templated fields "
            "(a check's `where`, `sql`, and task `sql`/`bash`)"
        )
    return value


Duration = Annotated[
    dt.timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*[a-zA-Z]+\s*,?\s*)+$",
                    "examples": ["90s", "30 minutes", "2 hours", "1 day"]}),
]
Percent = Annotated[
    float,
    BeforeValidator(parse_percent),
    PlainSerializer(lambda v: f"{v:g}%", return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$", "examples": ["99.5%"]}),
]
# A change, which may exceed 100% (a table that can more than double).
Change = Annotated[
    float,
    BeforeValidator(lambda v: parse_percent(v, cap=False)),
    PlainSerializer(lambda v: f"{v:g}%", return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$", "examples": ["50%", "150%"]}),
]
ColumnName = Annotated[str, AfterValidator(check_identifier)]
TableName = Annotated[str, AfterValidator(lambda v: check_identifier(v, dotted=True))]
PlainText = Annotated[str, AfterValidator(_no_jinja)]
