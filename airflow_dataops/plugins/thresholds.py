"""What the "observed value" chart plots for each check type, and its limit lines.

One entry per check type, read off the observed/expected shapes that ``engine/evaluate.py`` (and
``engine/sql_separate.py`` for ``schema``, ``referential`` and ``sql``) store:

| type | observed (stored) | plotted | limit lines |
|---|---|---|---|
| ``row_count`` | rows | rows | ``min``, ``max`` |
| ``null_check`` | ``{column: nulls}`` | worst column's nulls; with ``max_null_pct`` its null % (rows from the message) | ``max_nulls`` or ``max_null_pct`` |
| ``completeness`` | ``{column: % non-null}`` | worst (lowest) column | ``min_pct`` |
| ``unique`` | duplicate rows | that | 0 |
| ``accepted_values``, ``range``, ``pattern`` | invalid rows | that | ``invalid_rows`` (0); not the value range |
| ``referential`` | orphan rows | that | 0 |
| ``sql`` | rows (``no_rows``) or the first value (``truthy``) | that, if a number | 0 for ``no_rows`` |
| ``freshness`` | age in seconds | age in hours | ``max_age``, ``warn_after``, ``error_after`` |
| ``volume_anomaly`` | rows | rows | the band around that run's mean: ``mean +/- max_change_pct`` or ``mean +/- max_stddev`` standard deviations (none until there is history) |
| ``schema`` | ``{missing, type_mismatch, unexpected}`` | number of problems | 0 |
| ``expectation`` | GX's observed value or unexpected count | that, if a number | none: which of the two GX reported is not stored |

Any other type plots its observed value when it is a number, with no line. Limits are per run (a
volume band moves with the mean), so the chart draws them as steps. Non-finite numbers (NaN, inf:
``Decimal('NaN')`` from PostgreSQL, a custom SQL value) are never plotted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def number(value: Any) -> float | None:
    """A finite number from a stored scalar (``97.5``, ``"97.5%"``, ``True``), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        found = float(value)
    elif isinstance(value, str):
        try:
            found = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    else:
        return None
    return found if math.isfinite(found) else None


def _column_values(observed: Any) -> list[float]:
    if isinstance(observed, dict):
        return [n for n in (number(v) for v in observed.values()) if n is not None]
    single = number(observed)
    return [] if single is None else [single]


def _worst_high(observed: Any, expected: Any, message: str | None) -> float | None:
    values = _column_values(observed)
    return max(values) if values else None


def _worst_low(observed: Any, expected: Any, message: str | None) -> float | None:
    values = _column_values(observed)
    return min(values) if values else None


def _scalar(observed: Any, expected: Any, message: str | None) -> float | None:
    return None if isinstance(observed, dict | list) else number(observed)


def _limits_from(*keys: tuple[str, str], scale: float = 1.0):
    """Limit lines named ``label`` from ``expected[key]`` (a dict), divided by ``scale``."""

    def limits(observed: Any, expected: Any, message: str | None) -> dict[str, float]:
        if not isinstance(expected, dict):
            return {}
        found = {}
        for key, label in keys:
            value = number(expected.get(key)) if not isinstance(expected.get(key), bool) else None
            if value is not None:
                found[label] = value / scale
        return found

    return limits


def _zero_if_expected_zero(observed: Any, expected: Any, message: str | None) -> dict[str, float]:
    return {"max": 0.0} if number(expected) == 0 and not isinstance(expected, bool) else {}


def _none(observed: Any, expected: Any, message: str | None) -> dict[str, float]:
    return {}


_ROWS_IN_MESSAGE = re.compile(r" of (\d+) rows \(")


def _null_value(observed: Any, expected: Any, message: str | None) -> float | None:
    worst = _worst_high(observed, expected, message)
    if worst is None or not (isinstance(expected, dict) and "max_null_pct" in expected):
        return worst
    # Only counts are stored; null_check's message ("... of N rows (max P%)") carries the row count.
    found = _ROWS_IN_MESSAGE.search(message or "")
    if found is None:
        return None  # a count on a percentage axis would mislead: leave the point out
    rows = int(found.group(1))
    return 0.0 if rows == 0 else 100.0 * worst / rows


def _null_unit(expected: Any) -> str:
    return "%" if isinstance(expected, dict) and "max_null_pct" in expected else ""


def _age_hours(observed: Any, expected: Any, message: str | None) -> float | None:
    seconds = _scalar(observed, expected, message)
    return None if seconds is None else seconds / 3600


def _volume_band(observed: Any, expected: Any, message: str | None) -> dict[str, float]:
    if not isinstance(expected, dict):
        return {}
    mean = number(expected.get("mean"))
    if mean is None:
        return {}  # too little history: the check passes without judging
    pct, stddevs, std = number(expected.get("max_change_pct")), number(expected.get("max_stddev")), number(expected.get("stddev"))
    if pct is not None:
        spread = abs(mean) * pct / 100
    elif stddevs is not None and std is not None:
        spread = stddevs * std
    else:
        return {}
    return {"low": mean - spread, "high": mean + spread}


def _schema_problems(observed: Any, expected: Any, message: str | None) -> float | None:
    if not isinstance(observed, dict):
        return None
    return float(sum(len(observed.get(k) or ()) for k in ("missing", "type_mismatch", "unexpected")))


@dataclass(frozen=True)
class ChartSpec:
    """How one check type's results become a point and its limit lines."""

    plotted: str  # what the y axis shows, for the caption
    value: Callable[[Any, Any, str | None], float | None]
    limits: Callable[[Any, Any, str | None], dict[str, float]]
    unit: Callable[[Any], str] = lambda expected: ""


_INVALID = ChartSpec("invalid rows", _scalar, _limits_from(("invalid_rows", "max")))

SPECS: dict[str, ChartSpec] = {
    "row_count": ChartSpec("rows", _scalar, _limits_from(("min", "min"), ("max", "max"))),
    "null_check": ChartSpec(
        "nulls in the worst column", _null_value,
        _limits_from(("max_nulls", "max"), ("max_null_pct", "max")), _null_unit,
    ),
    "completeness": ChartSpec("% non-null in the worst column", _worst_low, _limits_from(("min_pct", "min")), lambda e: "%"),
    "unique": ChartSpec("duplicate rows", _scalar, _zero_if_expected_zero),
    "accepted_values": _INVALID,
    "range": _INVALID,
    "pattern": _INVALID,
    "referential": ChartSpec("orphan rows", _scalar, _zero_if_expected_zero),
    "sql": ChartSpec("the query's rows or first value", _scalar, _zero_if_expected_zero),
    "freshness": ChartSpec(
        "age of the newest row, hours", _age_hours,
        _limits_from(("max_age_s", "max age"), ("warn_after_s", "warn after"), ("error_after_s", "error after"), scale=3600),
        lambda e: "h",
    ),
    "volume_anomaly": ChartSpec("rows", _scalar, _volume_band),
    "schema": ChartSpec("schema problems", _schema_problems, lambda o, e, m: {"max": 0.0}),
    "expectation": ChartSpec("GX observed value", _scalar, _none),
}
_DEFAULT = ChartSpec("observed value", _scalar, _none)


def spec(check_type: str | None) -> ChartSpec:
    return SPECS.get(check_type or "", _DEFAULT)


def plot_point(result: dict[str, Any]) -> tuple[float | None, dict[str, float]]:
    """(plotted value, limit lines) of one stored result; only finite numbers."""
    chosen = spec(result.get("check_type"))
    observed, expected, message = result.get("observed"), result.get("expected"), result.get("message")
    limits = {k: v for k, v in chosen.limits(observed, expected, message).items() if math.isfinite(v)}
    return chosen.value(observed, expected, message), limits
