"""Test-side counterparts of ``airflow_dataops.compat``: Airflow internals the tests drive directly
(3.3 first, then where Airflow 3.1 keeps them), so ``make test-floor`` runs the same tests."""

from __future__ import annotations

from airflow_dataops.compat import dagbag_class

DagBag = dagbag_class()

try:
    from airflow.dag_processing.dagbag import sync_bag_to_db
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import sync_bag_to_db  # noqa: F401

try:
    from airflow.sdk._shared.module_loading import import_string
except ImportError:  # Airflow 3.1
    from airflow.sdk.module_loading import import_string  # noqa: F401


def deadline_callback_trigger(callback_path: str, callback_kwargs: dict):
    """The trigger the triggerer runs a Deadline Alert's AsyncCallback in."""
    try:
        from airflow.triggers.callback import CallbackTrigger
    except ImportError:  # Airflow 3.1
        from airflow.triggers.deadline import DeadlineCallbackTrigger as CallbackTrigger
    return CallbackTrigger(callback_path=callback_path, callback_kwargs=callback_kwargs)
