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
from airflow.sdk.exceptions import AirflowFailException

from airflow_dataops.alerting.dispatch import dispatch_event
from airflow_dataops.alerting.wiring import dag_alerting_kwargs, escalation_task

CTX = json.loads(%(ctx)r)
ALERTS = json.loads(%(alerts)r)
FAIL = %(fail)r
SKIP = %(skip)r

extra = dag_alerting_kwargs(CTX, None, ALERTS)
with DAG(CTX["dag_id"], schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
         default_args=extra.get("default_args", {})) as dag:

    @task
    def check_orders():
        c = get_current_context()
        if SKIP:  # what a source with on_timeout: skip does to everything downstream
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("orders were not fresh in time")
        if FAIL:
            run = {"pipeline": CTX["pipeline"], "dag_id": CTX["dag_id"], "run_id": c["run_id"],
                   "task_id": "check_orders", "environment": "production"}
            dispatch_event(CTX, run, "check_failed", "orders_row_count", "too few rows",
                           {"observed": 3, "expected": ">= 10"}, ALERTS, True)
            raise AirflowFailException("orders_row_count failed")

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


def test_a_skipped_run_resolves_nothing(watched_dag, connections, slack, ctx, default_store):
    """A run that skipped its work (a source timed out with on_timeout: skip) proves nothing."""
    alerts = alerts_section({"slack": "#data-alerts"}, escalation={"after": 600, "to": "oncall_webhook"})
    earlier = {"pipeline": ctx["pipeline"], "dag_id": ctx["dag_id"], "run_id": "earlier_run"}
    dispatch_event(ctx, earlier, "sla_miss", "sla", "late", {}, alerts, True)

    dagrun = watched_dag(ctx, alerts, fail=False, skip=True).test()

    assert _states(dagrun)["check_orders"] == "skipped"
    [still_open] = store_alerts.open_alerts(default_store, ctx["dag_id"])
    assert still_open["run_id"] == "earlier_run"
    assert [m["kind"] for m in slack.wait_for(2, timeout=2)] == ["api"]  # the SLA miss; no "recovered"


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
    alerts = alerts_section({"slack": "#data-alerts"})
    dag = load_dag(ctx["dag_id"], FAILING_SOURCE % {"ctx": json.dumps(ctx), "alerts": json.dumps(alerts)})
    dagrun = dag.test()

    assert str(dagrun.state) == "failed"
    [message] = slack.wait_for(1)
    assert "Task failed: load" in message["text"] and "RuntimeError" in message["text"]
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
