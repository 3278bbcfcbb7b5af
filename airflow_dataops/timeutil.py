"""Moments in UTC and durations for people: the one place every module gets them from.

Stdlib only, so the DAG loader, the CLI and the triggerer can all import it for free.
"""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Aware datetimes converted to UTC; naive ones taken as UTC (SQLite hands back naive values of
    what the results store wrote in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_utc(value: str | dt.datetime) -> dt.datetime:
    """An ISO string or datetime as an aware UTC datetime (naive means UTC)."""
    return as_utc(value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value))


def human_duration(seconds: float | None) -> str:
    """``10831`` -> ``"3h 0m 31s"``: every unit from the largest non-zero one down; None -> ``"?"``."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if parts or seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    parts.append(f"{seconds}s")
    return sign + " ".join(parts)
