"""When a templated ``where`` (or a ``sql`` check) cannot apply: it refers to a run value this run
does not have, such as the data interval on manual and asset-triggered runs (or a zero-width
interval: Airflow 3's default cron timetable), the logical date, or the previous successful run's
interval on a first run. The check operator and the freshness sensor then drop the filter and say
so, rather than comparing with ``'None'`` (an error on PostgreSQL) or selecting nothing.

Two ways to find out: ``filter_cannot_apply`` reads the unrendered text (names inside ``{{ }}`` or
``{% %}``), and ``guarded_context`` gives Jinja a context in which each missing run value is a
``MissingRunValue``: rendering it raises ``MissingRunValueError``, while ``{% if data_interval_start %}``
is simply false (so a guarded template still renders). No Airflow imports here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

INTERVAL_KEYS = ("data_interval_start", "data_interval_end")
LOGICAL_KEYS = ("logical_date", "ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz")
PREVIOUS_KEYS = ("prev_data_interval_start_success", "prev_data_interval_end_success",
                 "prev_start_date_success", "prev_end_date_success")
RUN_TIME_KEYS = INTERVAL_KEYS + LOGICAL_KEYS + PREVIOUS_KEYS

_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_NAME = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(RUN_TIME_KEYS) + r")(?![A-Za-z0-9_])")


def _absent(value: Any) -> bool:
    # Airflow hands some values over as lazy proxies: a proxy of None is not `None`, but equals it.
    return value is None or value == None  # noqa: E711


def missing_run_values(context: Mapping[str, Any]) -> dict[str, str]:
    """Run values this run does not have -> why (``"has no data interval"``)."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    missing: dict[str, str] = {}
    if _absent(start) or _absent(end) or start == end:
        missing.update(dict.fromkeys(INTERVAL_KEYS, "has no data interval"))
    for key in LOGICAL_KEYS:
        if _absent(context.get(key)):
            missing[key] = "has no logical date"
    for key in PREVIOUS_KEYS:
        if _absent(context.get(key)):
            missing[key] = f"has no {key} (no earlier successful run)"
    return missing


def referenced_run_values(raw: str | None) -> list[str]:
    """The run-time names used inside the Jinja blocks of ``raw``."""
    if not raw:
        return []
    return list(dict.fromkeys(m.group(1) for block in _BLOCK.findall(raw) for m in _NAME.finditer(block)))


def filter_cannot_apply(raw_where: str | None, context: Mapping[str, Any]) -> str | None:
    """Why the (unrendered) ``raw_where`` cannot apply to this run, or None when it can."""
    missing = missing_run_values(context)
    for name in referenced_run_values(raw_where):
        if name in missing:
            return missing[name]
    return None


_DAG_RUN_NAME = re.compile(r"(?<![A-Za-z0-9_])dag_run\s*\.\s*(data_interval_start|data_interval_end|logical_date)(?![A-Za-z0-9_])")


def dag_run_value_missing(raw: str | None, context: Mapping[str, Any]) -> str | None:
    """Like ``filter_cannot_apply`` for values read through ``dag_run`` (which no context guard replaces)."""
    missing = missing_run_values(context)
    for block in _BLOCK.findall(raw or ""):
        for m in _DAG_RUN_NAME.finditer(block):
            if m.group(1) in missing:
                return missing[m.group(1)]
    return None


class MissingRunValueError(Exception):
    """A template used a run value this run does not have."""

    def __init__(self, name: str, why: str):
        super().__init__(f"{name}: this run {why}")
        self.name, self.why = name, why


class MissingRunValue:
    """Stands for a run value the run does not have: false in ``{% if %}``, an error anywhere else."""

    def __init__(self, name: str, why: str):
        self._name, self._why = name, why

    def _fail(self, *args: Any, **kwargs: Any):
        raise MissingRunValueError(self._name, self._why)

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<missing {self._name}>"

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise MissingRunValueError(self._name, self._why)

    __str__ = __format__ = __iter__ = __len__ = __getitem__ = __call__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __lt__ = __le__ = __gt__ = __ge__ = _fail

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, MissingRunValue)

    def __hash__(self) -> int:
        return hash(self._name)


def guarded_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` with every missing run value replaced by a ``MissingRunValue``."""
    guarded = dict(context)
    for name, why in missing_run_values(context).items():
        guarded[name] = MissingRunValue(name, why)
    return guarded
