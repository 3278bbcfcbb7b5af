"""When a templated ``where`` (or a ``sql`` check) cannot apply: it refers to a run value this run
does not have, such as the data interval on manual and asset-triggered runs (or a zero-width
interval: Airflow 3's default cron timetable), the logical date, or the previous successful run's
interval on a first run. The check operator and the freshness sensor then drop the filter and say
so, rather than comparing with ``'None'`` (an error on PostgreSQL) or selecting nothing.

One rule, one way to apply it: ``render_guarded`` renders the text with ``guarded_context``, in
which each missing run value is a ``MissingRunValue``, read directly (``{{ data_interval_start }}``)
or through ``dag_run`` (``{{ dag_run.data_interval_start }}``). Rendering one raises
``MissingRunValueError`` and the caller learns why; ``{% if data_interval_start %}`` is simply false,
so a guarded template still renders. No Airflow imports here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

INTERVAL_KEYS = ("data_interval_start", "data_interval_end")
LOGICAL_KEYS = ("logical_date", "ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz")
PREVIOUS_KEYS = ("prev_data_interval_start_success", "prev_data_interval_end_success",
                 "prev_start_date_success", "prev_end_date_success")

#: What a ``dag_run`` lends to templates that a run may lack (checked like the context's own names).
DAG_RUN_KEYS = ("data_interval_start", "data_interval_end", "logical_date")


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


class _GuardedDagRun:
    """The run's ``dag_run`` whose missing interval or logical date reads as a ``MissingRunValue``;
    everything else (``conf``, ``run_id``, ...) is the run's own."""

    def __init__(self, dag_run: Any, missing: dict[str, str]):
        self._dag_run, self._missing = dag_run, missing

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):  # never our own fields (copy, pickle); Jinja's sandbox refuses them anyway
            raise AttributeError(attr)
        if attr in self._missing:
            return MissingRunValue(f"dag_run.{attr}", self._missing[attr])
        return getattr(self._dag_run, attr)

    def __str__(self) -> str:
        return str(self._dag_run)

    def __repr__(self) -> str:
        return repr(self._dag_run)


def guarded_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` with every missing run value replaced by a ``MissingRunValue`` (also those read
    through ``dag_run``)."""
    missing = missing_run_values(context)
    guarded = dict(context)
    for name, why in missing.items():
        guarded[name] = MissingRunValue(name, why)
    through_dag_run = {key: missing[key] for key in DAG_RUN_KEYS if key in missing}
    if through_dag_run and context.get("dag_run") is not None:
        guarded["dag_run"] = _GuardedDagRun(context["dag_run"], through_dag_run)
    return guarded


def render_guarded(render: Callable[[str, Mapping[str, Any]], Any], text: str,
                   context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(rendered text, None)``, or ``(None, why)`` when the template uses a run value this run
    lacks. ``render(text, context)`` is the task's own Jinja rendering (``render_template``)."""
    try:
        rendered = render(text, guarded_context(context))
        return (rendered if isinstance(rendered, str) else str(rendered)), None  # str(): native rendering
    except MissingRunValueError as exc:
        return None, f"this run {exc.why} (the template uses {exc.name})"
