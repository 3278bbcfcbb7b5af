"""The alert watch task and the task-failure callback in real DAG runs (dag.test())."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

from airflow_dataops.alerting.dispatch import dispatch_event
from airflow_dataops.store import alerts as store_alerts
from tests.alerting.conftest import alerts_section


DAG_SOURCE = """
import datetime as dt
import json

from airflow.sdk import DAG, task, get_current_context
from airflow_dataops.compat import AirflowFailException

from airflow_dataops.alerting.dispatch import dispatch_event
from airflow_dataops.alerting.wiring import dag_alerting_kwargs, escalation_task

CTX = json.loads(%(ctx)r)
ALERTS = json.loads(%(alerts)r)
FAIL = %(fail)r
SKIP = %(skip)r
NOTIFY = CTX.get("notifications", True)

extra = dag_alerting_kwargs(CTX, None, ALERTS)
with DAG(CTX["dag_id"], schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
         default_args=extra.get("default_args", {})) as dag:

    @task
    def check_orders():
        c = get_current_context()
        if SKIP:  # what a source with on_timeout: skip does to everything downstream
            from airflow_dataops.compat import AirflowSkipException

            raise AirflowSkipException("orders were not fresh in time")
        run = {"pipeline": CTX["pipeline"], "dag_id": CTX["dag_id"], "run_id": c["run_id"],
               "task_id": "check_orders", "environment": "production"}
        if FAIL is True:
            dispatch_event(CTX, run, "check_failed", "orders_row_count", "too few rows",
                           {"observed": 3, "expected": ">= 10"}, ALERTS, NOTIFY)
            raise AirflowFailException("orders_row_count failed")
        if FAIL:  # that many failing checks, alerted the way the check operator does
            from airflow_dataops.alerting.dispatch import dispatch_check_results

            results = [{"name": f"orders_check_{i}", "type": "row_count", "status": "failed", "observed": i,
                        "expected": {"min": 10}, "table": "orders"} for i in range(FAIL)]
            dispatch_check_results(CTX, run, results, ALERTS, NOTIFY)
            raise AirflowFailException(f"{FAIL} checks failed")

    @task
    def load():
        return 1

    check_orders() >> load()
    watch = escalation_task(CTX, ALERTS)
    [t for t in dag.tasks if t is not watch] >> watch
"""


@pytest.fixture()
def watched_dag(load_dag):
    def make(ctx, alerts, *, fail: bool, skip: bool = False):
        source = DAG_SOURCE % {"ctx": json.dumps(ctx), "alerts": json.dumps(alerts), "fail": fail, "skip": skip}
        return load_dag(ctx["dag_id"], source)

    return make


def _states(dagrun) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dagrun.get_task_instances()}


def test_unacknowledged_failed_check_escalates_and_the_run_stays_failed(watched_dag, connections, slack, ctx, default_store):
    alerts = alerts_section({"slack": "#data-alerts"}, escalation={"after": 2, "to": "oncall_webhook"})
    dagrun = watched_dag(ctx, alerts, fail=True).test()

    assert str(dagrun.state) == "failed"
    assert _states(dagrun)["dataops_alert_watch"] == "failed"
    messages = slack.wait_for(2)
    assert [m["kind"] for m in messages] == ["api", "webhook"]
    assert "Check failed: orders_row_count" in messages[1]["text"] and "ESCALATION" in messages[1]["text"]
    assert "too few rows" in messages[1]["text"]  # the original alert's words reach on-call
    # the check's own failure was alerted by its check alert: no separate task_failed alert
    assert {r["event"] for r in store_alerts.alert_rows(default_store, ctx["dag_id"])} == {"check_failed"}


def test_acknowledged_failed_check_is_not_escalated(watched_dag, connections, slack, ctx, default_store):
    alerts = alerts_section({"slack": "#data-alerts"}, escalation={"after": 3, "to": "oncall_webhook"})
    acked: list[int] = []

    def ack_when_alerted():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not acked:
            if store_alerts.open_alerts(default_store, ctx["dag_id"]):
                acked.append(store_alerts.acknowledge(default_store, ctx["dag_id"], None, by="carol"))
            time.sleep(0.2)

    helper = threading.Thread(target=ack_when_alerted)
    helper.start()
    dagrun = watched_dag(ctx, alerts, fail=True).test()
    helper.join()

    assert acked == [1] and str(dagrun.state) == "failed"
    assert [m["kind"] for m in slack.wait_for(2, timeout=2)] == ["api"]


def test_a_successful_run_resolves_open_alerts_and_says_recovered(watched_dag, connections, slack, ctx, default_store):
    alerts = alerts_section({"slack": "#data-alerts"}, escalation={"after": 600, "to": "oncall_webhook"})
    earlier = {"pipeline": ctx["pipeline"], "dag_id": ctx["dag_id"], "run_id": "earlier_run"}
    dispatch_event(ctx, earlier, "sla_miss", "sla", "late", {}, alerts, True)

    dagrun = watched_dag(ctx, alerts, fail=False).test()

    assert str(dagrun.state) == "success"
    assert store_alerts.open_alerts(default_store, ctx["dag_id"]) == []
    texts = [m["text"] for m in slack.wait_for(2)]
    assert texts[1].startswith("[INFO] Recovered: sla miss") and "earlier_run" in texts[1]
    [row] = [r for r in store_alerts.alert_rows(default_store, ctx["dag_id"]) if r["event"] == "sla_miss"]
    assert row["resolution"] == "later_run_succeeded"


def test_an_ordinary_skip_does_not_stop_resolution(watched_dag, connections, slack, ctx, default_store):
    """A branch or any other ordinary skip: the run still succeeded, so it resolves and says so."""
    alerts = alerts_section({"slack": "#data-alerts"}, escalation={"after": 600, "to": "oncall_webhook"})
    earlier = {"pipeline": ctx["pipeline"], "dag_id": ctx["dag_id"], "run_id": "earlier_run"}
    dispatch_event(ctx, earlier, "sla_miss", "sla", "late", {}, alerts, True)

    dagrun = watched_dag(ctx, alerts, fail=False, skip=True).test()

    assert _states(dagrun)["check_orders"] == "skipped" and str(dagrun.state) == "success"
    assert store_alerts.open_alerts(default_store, ctx["dag_id"]) == []
    texts = [m["text"] for m in slack.wait_for(2)]
    assert texts[1].startswith("[INFO] Recovered: sla miss") and "earlier_run" in texts[1]


LATE_SOURCE = """
import datetime as dt
import json

from airflow.sdk import DAG, task

from airflow_dataops.alerting.wiring import dag_alerting_kwargs, escalation_task
from airflow_dataops.sensors.freshness import FreshnessSensor

CTX = json.loads(%(ctx)r)
ALERTS = json.loads(%(alerts)r)
extra = dag_alerting_kwargs(CTX, None, ALERTS)
with DAG(CTX["dag_id"], schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
         default_args=extra.get("default_args", {})) as dag:
    wait = FreshnessSensor(task_id="wait_for_orders", conn_id=%(conn_id)r, table="raw_orders",
                           timestamp_column="loaded_at", max_age="1 hour", timeout=1, poke_interval=0.3,
                           on_timeout="skip", alerts=ALERTS, pipeline=CTX["pipeline"], source_name="raw_orders")

    @task
    def load():
        return 1

    wait >> load()
    watch = escalation_task(CTX, ALERTS)
    [t for t in dag.tasks if t is not watch] >> watch
"""


def test_a_source_skipped_on_its_timeout_resolves_nothing(load_dag, connections, slack, ctx, default_store,
                                                          tmp_path, monkeypatch):
    """The run skipped its work because its data was late (on_timeout: skip): it proves nothing."""
    import sqlalchemy as sa

    path = tmp_path / "raw.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE raw_orders (id INTEGER PRIMARY KEY, loaded_at TIMESTAMP)")
        conn.exec_driver_sql("INSERT INTO raw_orders (loaded_at) VALUES (datetime('now', '-3 hours'))")
    engine.dispose()
    conn_id = f"raw_{ctx['dag_id']}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", f"sqlite:///{path}")
    alerts = alerts_section({"slack": "#data-alerts"}, escalation={"after": 600, "to": "oncall_webhook"})
    earlier = {"pipeline": ctx["pipeline"], "dag_id": ctx["dag_id"], "run_id": "earlier_run"}
    dispatch_event(ctx, earlier, "sla_miss", "sla", "late", {}, alerts, True)

    dag = load_dag(ctx["dag_id"], LATE_SOURCE % {"ctx": json.dumps(ctx), "alerts": json.dumps(alerts), "conn_id": conn_id})
    dagrun = dag.test()

    assert _states(dagrun)["wait_for_orders"] == "skipped" and _states(dagrun)["load"] == "skipped"
    assert {a["run_id"] for a in store_alerts.open_alerts(default_store, ctx["dag_id"])} == {"earlier_run", dagrun.run_id}
    texts = [m["text"] for m in slack.wait_for(3, timeout=3)]
    assert len(texts) == 2 and "SLA missed" in texts[0] and "Data not fresh: raw_orders" in texts[1]


def test_several_failed_checks_alert_once_and_escalate_once(watched_dag, connections, slack, ctx, default_store):
    """Three failing checks in one run: one check_failed message listing them, one escalation
    listing them; the store keeps a row per check (first tier and escalation)."""
    alerts = alerts_section({"slack": "#data-alerts"}, escalation={"after": 2, "to": "oncall_webhook"})
    dagrun = watched_dag(ctx, alerts, fail=3).test()

    assert str(dagrun.state) == "failed"
    messages = slack.wait_for(3, timeout=5)
    assert [m["kind"] for m in messages] == ["api", "webhook"]
    first, escalated = messages
    assert "3 checks failed: orders_check_0, orders_check_1, orders_check_2" in first["text"]
    assert "observed 2, expected {'min': 10}" in first["text"]
    assert "ESCALATION" in escalated["text"] and "3 checks failed" in escalated["text"]
    assert "Nobody acknowledged or resolved them" in escalated["text"]
    rows = store_alerts.alert_rows(default_store, ctx["dag_id"])
    assert sorted((r["tier"], r["subject"], r["status"]) for r in rows) == [
        (tier, f"orders_check_{i}", "sent") for tier in (0, 1) for i in range(3)]


def test_notifications_off_failed_check_escalation_is_recorded_as_suppressed(watched_dag, connections, slack, ctx,
                                                                             default_store):
    """Nothing would be sent after the wait, so a development run is not held open for `after`:
    the escalation is recorded as suppressed at once."""
    quiet = {**ctx, "notifications": False}
    alerts = alerts_section({"slack": "#data-alerts"}, escalation={"after": 600, "to": "oncall_webhook"})
    started = time.monotonic()
    dagrun = watched_dag(quiet, alerts, fail=True).test()

    assert time.monotonic() - started < 120, "the watch waited for `after` although nothing would be sent"
    assert str(dagrun.state) == "failed" and slack.requests == []
    rows = {(r["event"], r["tier"], r["channel"]): r["status"] for r in store_alerts.alert_rows(default_store, ctx["dag_id"])}
    assert rows == {("check_failed", 0, "slack:#data-alerts"): "suppressed",
                    ("check_failed", 1, "connection:oncall_webhook"): "suppressed"}
    audit = store_alerts.audit_rows(default_store, ctx["dag_id"])
    assert [(a["kind"], a["channel"]) for a in audit] == [
        ("suppressed", "slack:#data-alerts"), ("suppressed", "connection:oncall_webhook")]


FAILING_SOURCE = """
import datetime as dt
import json

from airflow.sdk import DAG, task

from airflow_dataops.alerting.wiring import dag_alerting_kwargs

CTX = json.loads(%(ctx)r)
extra = dag_alerting_kwargs(CTX, None, json.loads(%(alerts)r))
with DAG(CTX["dag_id"], schedule=None, start_date=dt.datetime(2026, 1, 1),
         default_args={**extra["default_args"], "retries": 1, "retry_delay": dt.timedelta(seconds=0)}) as dag:

    @task
    def load():
        raise RuntimeError("connection refused by warehouse")

    load()
"""


def test_task_failure_after_last_retry_alerts_once(load_dag, connections, slack, ctx, default_store):
    from tests.support.compat import DAG_TEST_PASSES_EXCEPTION

    alerts = alerts_section({"slack": "#data-alerts"})
    dag = load_dag(ctx["dag_id"], FAILING_SOURCE % {"ctx": json.dumps(ctx), "alerts": json.dumps(alerts)})
    dagrun = dag.test()

    assert str(dagrun.state) == "failed"
    [message] = slack.wait_for(1)
    assert "Task failed: load" in message["text"]
    if DAG_TEST_PASSES_EXCEPTION:
        assert "RuntimeError" in message["text"]
    else:  # Airflow 3.1's dag.test() gives the callback no exception (tests.support.compat)
        assert "scheduler marked it failed" in message["text"]
    assert len(slack.wait_for(2, timeout=1)) == 1


def test_the_watch_trigger_resumes_the_task_no_sooner_than_not_before(ctx, default_store):
    """The alert watch defers like the freshness sensor, so its event is held the same way
    (triggers.settle); the moment survives the trigger's serialisation."""
    import asyncio

    from airflow_dataops.alerting.escalation import EscalationTrigger

    now = dt.datetime.now(dt.timezone.utc)
    trigger = EscalationTrigger(ctx=ctx, alerts={}, notifications=True, dag_id=ctx["dag_id"], run_id="r1",
                                moment=(now - dt.timedelta(seconds=5)).isoformat(), incidents=[],
                                not_before=(now + dt.timedelta(seconds=1.5)).isoformat())
    rebuilt = EscalationTrigger(**trigger.serialize()[1])
    assert rebuilt.not_before == trigger.not_before

    started = time.monotonic()
    event = asyncio.run(anext(rebuilt.run()))
    assert event.payload == {"escalated": {}}
    assert 1.3 <= time.monotonic() - started < 4


RESUMED_SOURCE = """
import datetime as dt
import json

from airflow.sdk import DAG

from airflow_dataops.alerting.wiring import dag_alerting_kwargs
from airflow_dataops.sensors.freshness import FreshnessSensor

CTX = json.loads(%(ctx)r)
extra = dag_alerting_kwargs(CTX, None, json.loads(%(alerts)r))
with DAG(CTX["dag_id"], schedule=None, start_date=dt.datetime(2026, 1, 1), default_args=extra["default_args"]) as dag:
    FreshnessSensor(task_id="wait_for_orders", conn_id=%(conn_id)r, table="raw_orders", timestamp_column="loaded_at",
                    max_age="1 hour", timeout=30)
"""


def test_a_failure_the_scheduler_inflicts_says_so_in_the_alert(load_dag, connections, slack, ctx, default_store,
                                                              tmp_path, monkeypatch):
    """Airflow 3.3's resume race (apache/airflow#72716) fails a resumed deferrable task through the
    scheduler's "state mismatch" path, whose failure callback runs in the dag-processor with no
    exception in its context. Built here exactly as the scheduler builds it and run through the
    dag-processor's own callback code: the task_failed alert says the scheduler failed the task and
    names the resume race for a deferrable task, instead of posing as a data failure."""
    import sqlalchemy as sa
    import structlog
    from airflow.api_fastapi.execution_api.datamodels.taskinstance import DagRun as DRDataModel
    from airflow.api_fastapi.execution_api.datamodels.taskinstance import TIRunContext
    from airflow.callbacks.callback_requests import TaskCallbackRequest
    from tests.support.compat import DagBag
    from airflow.dag_processing.processor import _execute_task_callbacks
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    path = tmp_path / "raw.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE raw_orders (id INTEGER PRIMARY KEY, loaded_at TIMESTAMP)")
        conn.exec_driver_sql("INSERT INTO raw_orders (loaded_at) VALUES (datetime('now'))")
    engine.dispose()
    conn_id = f"raw_{ctx['dag_id']}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", f"sqlite:///{path}")
    alerts = alerts_section({"slack": "#data-alerts"})
    dag = load_dag(ctx["dag_id"], RESUMED_SOURCE % {"ctx": json.dumps(ctx), "alerts": json.dumps(alerts), "conn_id": conn_id})
    dagrun = dag.test()
    from airflow.models.taskinstance import TaskInstance

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dagrun.dag_id, run_id=dagrun.run_id).one()
        request = TaskCallbackRequest(  # as scheduler_job_runner.process_executor_events builds it
            filepath=ti.dag_model.relative_fileloc or "", bundle_name="dags-folder", bundle_version=None, ti=ti,
            msg="Executor LocalExecutor(parallelism=32) reported that the task instance ... finished with state "
                "success, but the task instance's state attribute is running.",
            task_callback_type=TaskInstanceState.FAILED,
            context_from_server=TIRunContext(dag_run=DRDataModel.model_validate(ti.dag_run, from_attributes=True),
                                             max_tries=ti.max_tries, variables=[], connections=[], xcom_keys_to_clear=[]),
        )
    bag = DagBag(dag_folder=str(tmp_path / "dags" / f"{ctx['dag_id']}.py"))
    _execute_task_callbacks(bag, request, structlog.get_logger())

    [message] = slack.wait_for(1)
    text = message["text"]
    assert "Task failed: wait_for_orders" in text
    assert "Airflow's scheduler marked it failed: the task itself raised no error" in text
    assert "apache/airflow#72716" in text
    [row] = store_alerts.alert_rows(default_store, ctx["dag_id"])
    assert row["event"] == "task_failed"
