"""Value types of the pipeline config: durations, percentages, SQL identifiers, Jinja guards.

Each parses the text users write (``2 hours``, ``99.5%``, ``analytics.orders``) and says how to fix
it when it cannot. No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from airflow_dataops.config.errors import shown

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


def is_script_file(text: str) -> bool:
    """Whether a `bash:` value names a script file relative to the YAML (``scripts/deploy.sh``: one
    relative path ending in ``.sh`` or ``.bash``) rather than being a command
    (``bash /opt/deploy.sh --now``). A script file's text is the (templated) command, as in Airflow."""
    stripped = text.strip()
    return (stripped.lower().endswith((".sh", ".bash")) and not any(ch.isspace() for ch in stripped)
            and not stripped.startswith(("/", "~")))


def parse_duration(value: Any) -> dt.timedelta:
    """``"2 hours"``, ``"1h 30m"``, ``"90s"`` -> timedelta. Bare numbers are refused (which unit?)."""
    if isinstance(value, dt.timedelta):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a duration, got {shown(value)}: {DURATION_HELP}")
    text = value.strip()
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match or match.group(2).lower() not in _DURATION_UNITS:
            raise ValueError(f"{shown(value)} is not a duration: {DURATION_HELP}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        pos = match.end()
    if total <= 0:
        raise ValueError(f"{shown(value)} must be longer than zero: {DURATION_HELP}")
    try:
        return dt.timedelta(seconds=total)
    except OverflowError:  # more than timedelta holds (999,999,999 days), or a number too long for a float
        raise ValueError(f"{shown(value)} is longer than any duration can be: {DURATION_HELP}") from None


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
    raise ValueError(f'expected a percentage like "99.5%", got {shown(value)}: quote it and add "%"')


IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")
IDENTIFIER_HELP = (
    "use a plain SQL identifier: letters, digits and underscores, not starting with a digit "
    "(optionally schema-qualified with dots, like analytics.orders)"
)


def check_identifier(value: Any, *, dotted: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a name, got {shown(value)}: {IDENTIFIER_HELP}")
    parts = value.split(".") if dotted else [value]
    if len(parts) > 3 or not all(IDENTIFIER_RE.match(part) for part in parts):
        raise ValueError(f"{shown(value)} is not a valid {'table' if dotted else 'column'} name: {IDENTIFIER_HELP}")
    return value


JINJA_HELP = (
    "which is rendered only in a check's `where` and `sql`, a source's `where`, and a task's `sql` and "
    "`bash`: write the value itself here"
)


def has_jinja(value: str) -> bool:
    return "{{" in value or "{%" in value or "{#" in value


def _no_jinja(value: Any) -> Any:
    if isinstance(value, str) and has_jinja(value):
        raise ValueError(f"{shown(value)} contains Jinja, {JINJA_HELP}")
    return value


ASSET_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.+)$", re.S)
ASSET_URI_HELP = "write it like dataops://warehouse/orders or s3://bucket/key"
ASSET_URI_MAX = 1500  # Airflow's limit for an asset's name and URI


def check_asset_uri(value: Any) -> str:
    """What Airflow's ``Asset`` accepts, checked without Airflow: ``scheme://rest``, the scheme
    ``airflow`` reserved, at most 1,500 characters (provider-specific URI rules are checked when the
    DAG is built)."""
    if not isinstance(value, str):
        raise ValueError(f"expected an asset URI, got {shown(value)}: {ASSET_URI_HELP}")
    match = ASSET_URI_RE.match(value.strip())
    if not match or not match.group(2).strip("/ "):
        raise ValueError(f"asset {shown(value)} is not a URI: {ASSET_URI_HELP}")
    if match.group(1).lower() == "airflow":
        raise ValueError(f"asset {shown(value)}: the scheme `airflow` is reserved by Airflow: use another, like dataops://")
    if len(value) > ASSET_URI_MAX:
        raise ValueError(f"asset URI is {len(value):,} characters, over Airflow's limit of {ASSET_URI_MAX:,}: shorten it")
    if has_jinja(value):
        raise ValueError(f"asset {shown(value)} contains Jinja: an asset URI is fixed when the DAG is parsed")
    return value.strip()


TAG_MAX_LEN = 100  # Airflow's limit (airflow.sdk.definitions.dag.TAG_MAX_LEN)


def check_tag(value: str) -> str:
    if len(value) > TAG_MAX_LEN:
        raise ValueError(f"tag {shown(value, 40)} is {len(value)} characters, over Airflow's limit of {TAG_MAX_LEN}: shorten it")
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
AssetUri = Annotated[str, AfterValidator(check_asset_uri)]
ColumnName = Annotated[str, AfterValidator(check_identifier)]
TableName = Annotated[str, AfterValidator(lambda v: check_identifier(v, dotted=True))]
PlainText = Annotated[str, AfterValidator(_no_jinja)]
Tag = Annotated[str, AfterValidator(_no_jinja), AfterValidator(check_tag)]
