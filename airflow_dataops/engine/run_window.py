"""When a templated ``where`` cannot apply: it refers to the run's data interval (or logical date) and
the run has none, or a zero-width one (manual and asset-triggered runs; Airflow 3's default cron
timetable). The check operator and the freshness sensor then drop the filter and say so, rather than
comparing with ``'None'`` (an error on PostgreSQL) or selecting nothing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_INTERVAL_REF = re.compile(r"\{\{[^}]*\bdata_interval_(start|end)\b")
_LOGICAL_REF = re.compile(r"\{\{[^}]*\b(logical_date|ds|ds_nodash|ts|ts_nodash|ts_nodash_with_tz)\b")


def filter_cannot_apply(raw_where: str | None, context: Mapping[str, Any]) -> str | None:
    """Why the (unrendered) ``raw_where`` cannot apply to this run, or None when it can."""
    if not raw_where:
        return None
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if (start is None or end is None or start == end) and _INTERVAL_REF.search(raw_where):
        return "has no data interval"
    if context.get("logical_date") is None and _LOGICAL_REF.search(raw_where):
        return "has no logical date"
    return None
