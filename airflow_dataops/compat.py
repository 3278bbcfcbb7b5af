"""The Airflow APIs that moved between the floor we support (3.1) and the newest we test (3.3).

Every "it lives elsewhere in 3.1" import is here, so the rest of the package reads like Airflow 3.3
code and CI can run the same tests on both (``make test-floor``). Nothing here imports more of
Airflow than the name asked for, and importing it imports no Airflow at all: DAG parsing and the
CLI stay cheap.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

_EXCEPTIONS = frozenset({
    "AirflowException", "AirflowFailException", "AirflowSensorTimeout", "AirflowSkipException",
    "TaskDeferralTimeout", "TaskDeferred",
})


def __getattr__(name: str) -> Any:
    """The task-facing exceptions, imported on first use (importing this module imports no Airflow:
    the CLI and the discovery of pipeline files use it too)."""
    if name not in _EXCEPTIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:  # Airflow 3.2+: the Task SDK owns them
        module = importlib.import_module("airflow.sdk.exceptions")
        value = getattr(module, name)
    except (ImportError, AttributeError):  # Airflow 3.1
        value = getattr(importlib.import_module("airflow.exceptions"), name)
    globals()[name] = value
    return value


__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "TaskDeferralTimeout",
    "TaskDeferred",
    "cron_timetables",
    "dagbag_class",
    "deadline_alert",
    "file_discovery",
    "newest_asset_event_timestamp",
]


def cron_timetables() -> tuple[type, type]:
    """``(CronDataIntervalTimetable, CronTriggerTimetable)``."""
    try:
        from airflow.sdk import CronDataIntervalTimetable, CronTriggerTimetable
    except ImportError:  # Airflow 3.1
        from airflow.timetables.interval import CronDataIntervalTimetable
        from airflow.timetables.trigger import CronTriggerTimetable
    return CronDataIntervalTimetable, CronTriggerTimetable


def dagbag_class() -> type:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


def deadline_alert(*, interval: dt.timedelta, callback: Any, kwargs: dict[str, Any], name: str) -> Any:
    """A Deadline Alert on the run's queued time whose ``AsyncCallback`` (run in the triggerer) is
    ``callback`` (a notifier class) with ``kwargs``. ``name`` is kept where Airflow has it (3.2+)."""
    try:
        from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
    except ImportError:  # Airflow 3.1
        from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference
    extra = {"name": name} if "name" in inspect.signature(DeadlineAlert).parameters else {}
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=AsyncCallback(callback, kwargs=kwargs),
        **extra,
    )


@functools.cache
def file_discovery():
    """Airflow's own ``.airflowignore`` walker module (``find_path_from_directory``), the one the
    dag-processor uses. When Airflow is not imported yet (the CLI) the 3.2+ module is loaded by path:
    importing Airflow costs seconds. Airflow 3.1 keeps it in ``airflow.utils.file``."""
    name = "airflow._shared.module_loading.file_discovery"
    if "airflow" not in sys.modules:
        spec = importlib.util.find_spec("airflow")
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / "_shared" / "module_loading" / "file_discovery.py"
            if candidate.is_file():
                module_spec = importlib.util.spec_from_file_location("_dataops_airflow_file_discovery", candidate)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[module_spec.name] = module
                module_spec.loader.exec_module(module)
                return module
    try:
        return importlib.import_module(name)
    except ImportError:  # Airflow 3.1
        return importlib.import_module("airflow.utils.file")


def newest_asset_event_timestamp(asset_name: str | None, asset_uri: str | None) -> Any:
    """The timestamp of the newest event of an Asset, read by a running task through the Task SDK
    (None when there is none)."""
    try:
        from airflow.sdk.execution_time.context import InletEventsAccessor
    except ImportError:  # Airflow 3.1: only the per-inlet accessor, which returns every event
        from airflow.sdk import Asset
        from airflow.sdk.execution_time.context import InletEventsAccessors

        asset = Asset(name=asset_name, uri=asset_uri) if asset_name else Asset(asset_uri)
        events = InletEventsAccessors([asset])[asset]
        return max((event.timestamp for event in events), default=None)
    events = InletEventsAccessor(asset_name=asset_name, asset_uri=asset_uri).ascending(False).limit(1)
    return events[0].timestamp if len(events) else None
