"""Test-side counterparts of ``airflow_dataops.compat``: Airflow internals the tests drive directly
(3.3 first, then where Airflow 3.1 keeps them), so ``make test-floor`` runs the same tests."""

from __future__ import annotations

import inspect

from airflow_dataops.compat import dagbag_class


def _dag_test_passes_exception() -> bool:
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    return 'context["exception"]' in inspect.getsource(InProcessTestSupervisor.start)


#: Airflow 3.1's in-process ``dag.test()`` (InProcessTestSupervisor.start) runs the failure callbacks
#: without ``context["exception"]``; a real worker's task runner does set it, and apache/airflow#64568
#: made dag.test() set it too (3.3 has it). Our TaskFailureNotifier then reads the failure as one the
#: scheduler inflicted: that is the test harness, not what users on 3.1 see. Read from Airflow's own
#: source rather than a version number: which 3.2.x took the fix is not something we test.
DAG_TEST_PASSES_EXCEPTION = _dag_test_passes_exception()

DagBag = dagbag_class()

try:
    from airflow.dag_processing.dagbag import sync_bag_to_db
except ImportError:  # Airflow 3.1
    from airflow.models.dagbag import sync_bag_to_db  # noqa: F401

try:
    from airflow.sdk._shared.module_loading import import_string
except ImportError:  # Airflow 3.1
    from airflow.sdk.module_loading import import_string  # noqa: F401


def dagbag(dag_folder: str, bundle_name: str | None = None, **kwargs):
    """A DagBag; ``bundle_name`` only where DagBag takes it (Airflow 3.2+; 3.1's names the bundle
    only when the bag is synced: ``sync_bag_to_db(bag, bundle_name, ...)``)."""
    if bundle_name is not None and "bundle_name" in inspect.signature(DagBag.__init__).parameters:
        kwargs["bundle_name"] = bundle_name
    return DagBag(dag_folder=dag_folder, **kwargs)


def deadline_alerts_have_names() -> bool:
    """Airflow 3.2+ names a DeadlineAlert; 3.1's takes no name (compat.deadline_alert drops it)."""
    try:
        from airflow.sdk import DeadlineAlert
    except ImportError:  # Airflow 3.1
        from airflow.sdk.definitions.deadline import DeadlineAlert
    return "name" in inspect.signature(DeadlineAlert).parameters


def deadline_callback_trigger(callback_path: str, callback_kwargs: dict):
    """The trigger the triggerer runs a Deadline Alert's AsyncCallback in."""
    try:
        from airflow.triggers.callback import CallbackTrigger
    except ImportError:  # Airflow 3.1
        from airflow.triggers.deadline import DeadlineCallbackTrigger as CallbackTrigger
    return CallbackTrigger(callback_path=callback_path, callback_kwargs=callback_kwargs)
