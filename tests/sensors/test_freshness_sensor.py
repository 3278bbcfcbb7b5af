"""FreshnessSensor in its three ways of waiting (deferred, poke, reschedule), run with dag.test()
against a real SQLite source table; results land in the real (embedded) results store.

dag.test() runs a deferred task's trigger inline (``InProcessTestSupervisor.run_trigger_in_process``:
``asyncio.run`` of the trigger's first event) and then resumes the task with that event."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

UTC = dt.timezone.utc

DAG_TEMPLATE = """
import datetime as dt
from airflow.sdk import DAG, task
from airflow_dataops.sensors.freshness import FreshnessSensor

with DAG({dag_id!r}, schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False):
    sensor = FreshnessSensor(
        task_id="wait_for_events",
        conn_id={conn_id!r},
        table="events",
        timestamp_column="updated_at",
        {kwargs}
    )

    @task
    def after():
        return "ran"

    sensor >> after()
"""


def sensor_dag(load_dag, dag_id, src, **kwargs):
    args = "\n        ".join(f"{k}={v},"for k, v in kwargs.items())
    return load_dag(dag_id, DAG_TEMPLATE.format(dag_id=dag_id, conn_id=src.conn_id, kwargs=args))


def states(dr):
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def insert_once_started(src, marker, delay, age_s=1.0):
    """Insert a fresh row ``delay`` seconds after the sensor first executes (it touches ``marker``).

    A fixed timer would race dag.test()'s set-up (bundle sync, serialisation), which varies."""

    def run():
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        src.insert_age(age_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def touch(marker):
    return f"lambda context: open({str(marker)!r}, 'a').close()"


def xcom(dr, task_id="wait_for_events"):
    ti = next(t for t in dr.get_task_instances() if t.task_id == task_id)
    return ti.xcom_pull(task_ids=task_id)


def test_deferred_sensor_waits_in_the_trigger_then_succeeds(tmp_path, load_dag, sqlite_src, dag_id, freshness_rows):
    sqlite_src.insert_age(7200)
    marker = tmp_path / "started"
    dag = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 minute'", poke_interval=0.3, timeout=30,
                     on_execute_callback=touch(marker))
    inserter = insert_once_started(sqlite_src, marker, 1.5)
    dr = dag.test()
    inserter.join()
    assert states(dr) == {"wait_for_events": "success", "after": "success"}
    result = xcom(dr)
    assert result["fresh"] is True and result["polls"] >= 2, result  # polled by the trigger, not once
    [row] = freshness_rows(dag_id)
    assert row["source"] == "sensor" and row["fresh"] is True and row["table_name"] == "events"


def test_already_fresh_data_succeeds_without_deferring(load_dag, sqlite_src, dag_id):
    sqlite_src.insert_age(5)
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="dt.timedelta(minutes=1)", timeout=30).test()
    assert states(dr)["wait_for_events"] == "success"
    assert "polls" not in xcom(dr)  # no trigger ran


def test_deferred_timeout_fails_with_the_newest_timestamp_and_how_late(load_dag, sqlite_src, dag_id, freshness_rows, capfd):
    stale = sqlite_src.insert_age(3 * 3600 + 30)
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'2 hours'", poke_interval=0.3, timeout=1.5).test()
    assert states(dr) == {"wait_for_events": "failed", "after": "upstream_failed"}
    out = capfd.readouterr()
    text = out.out + out.err
    assert "AirflowSensorTimeout" in text
    assert f"newest timestamp {stale.isoformat()[:19]}" in text, text[-4000:]
    assert "is 3h 0m 3" in text and ", 1h 0m 3" in text and "late (allowed age 2 hours" in text
    [row] = freshness_rows(dag_id)
    assert row["fresh"] is False and row["lag_seconds"] > 3 * 3600


def test_on_timeout_skip_skips_the_sensor_and_downstream(load_dag, sqlite_src, dag_id, capfd):
    sqlite_src.insert_age(7200)
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", poke_interval=0.3, timeout=1, on_timeout="'skip'").test()
    assert states(dr) == {"wait_for_events": "skipped", "after": "skipped"}
    text = capfd.readouterr().out
    assert "is stale after waiting 1s" in text
    assert "Skipping due to soft_fail" not in text  # the skip reason is ours, not the generic one


def test_where_is_templated_and_limits_the_rows(load_dag, sqlite_src, dag_id):
    sqlite_src.insert_age(5, region="us")
    sqlite_src.insert_age(7200, region="eu")
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", timeout=0.5, poke_interval=0.2,
                    where="\"region = '{{ params.region }}'\"", params="{'region': 'eu'}").test()
    assert states(dr)["wait_for_events"] == "failed"  # the eu rows are two hours old


def test_a_data_interval_filter_is_dropped_on_a_run_without_an_interval(load_dag, sqlite_src, dag_id, capfd):
    """dag.test() makes a manual run with a zero-width interval: the filter would select nothing
    (or compare with 'None'), so the sensor drops it and says so, as the check operator does."""
    sqlite_src.insert_age(5)
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", timeout=5, poke_interval=0.2,
                    where="\"updated_at >= '{{ data_interval_start }}'\"").test()
    assert states(dr)["wait_for_events"] == "success"
    assert "`where` dropped: this run has no data interval" in capfd.readouterr().out


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_a_dag_run_interval_filter_is_dropped_on_a_manual_run_the_same_way(load_dag, sqlite_src, dag_id, capfd, mode):
    """`{{ dag_run.data_interval_start }}` follows the rule `{{ data_interval_start }}` does (the check
    operator's): dag.test()'s manual run has a zero-width interval, so the filter, which would
    select nothing, is dropped; the log and the sensor's result say so."""
    sqlite_src.insert_age(5)
    how = {"deferrable": {}, "poke": {"mode": "'poke'"}}[mode]
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", timeout=3, poke_interval=0.2,
                    where="\"updated_at >= '{{ dag_run.data_interval_start }}'\"", **how).test()
    assert states(dr)["wait_for_events"] == "success"
    note = xcom(dr)["note"]
    assert note.startswith("`where` dropped: this run has no data interval (the template uses dag_run.data_interval_start)"), note
    assert note in capfd.readouterr().out


def test_a_guarded_filter_renders_and_is_applied(load_dag, sqlite_src, dag_id, capfd):
    """`{% if dag_run.data_interval_start %}` is false on a run without an interval: the template
    renders its other branch, which applies (other `dag_run` values render as usual). Applied, it
    keeps only the stale `us` rows: the sensor times out saying which filter it used."""
    sqlite_src.insert_age(5, region="eu")
    sqlite_src.insert_age(7200, region="us")
    where = ("\"{% if dag_run.data_interval_start %}updated_at >= '{{ dag_run.data_interval_start }}'"
             "{% else %}region = 'us' AND '{{ dag_run.run_id }}' LIKE 'manual%'{% endif %}\"")
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", timeout=1, poke_interval=0.2, where=where).test()
    assert states(dr)["wait_for_events"] == "failed"
    text = capfd.readouterr().out
    assert "where (region = 'us' AND 'manual__" in text and "is stale after waiting 1s" in text
    assert "`where` dropped" not in text


def test_the_default_failure_alert_records_the_active_environment(load_dag, sqlite_src, dag_id, monkeypatch):
    """A sensor given `alerts` (no environment) gets a TaskFailureNotifier; its task_failed alert
    carries `[dataops] environment`, as the sensor's own records do, never "unknown"."""
    import sqlalchemy as sa

    from airflow_dataops.store.results import ResultsStore
    from airflow_dataops.store.schema import alerts as alerts_table

    monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", "staging")
    alerts = {"channels": [{"slack": {"channel": "#data-late", "conn_id": None}}], "on": None, "escalation": None, "repeat": None}
    dag = load_dag(dag_id, DAG_TEMPLATE.format(dag_id=dag_id, conn_id=sqlite_src.conn_id,
                                               kwargs=f"max_age='1 hour', timeout=60, alerts={alerts!r}, notifications=False,")
                   .replace('table="events"', 'table="no_such_table"'))
    dr = dag.test()
    assert states(dr)["wait_for_events"] == "failed"
    with ResultsStore.default().engine.connect() as conn:
        rows = conn.execute(sa.select(alerts_table.c.event, alerts_table.c.environment, alerts_table.c.status, alerts_table.c.message)
                            .where(alerts_table.c.dag_id == dag_id)).all()
    assert [(r.event, r.environment, r.status) for r in rows] == [("task_failed", "staging", "suppressed")], rows
    assert "unknown" not in (rows[0].message or "")


def test_poke_mode_waits_in_the_worker_then_succeeds(tmp_path, load_dag, sqlite_src, dag_id, freshness_rows):
    sqlite_src.insert_age(7200)
    marker = tmp_path / "started"
    dag = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 minute'", deferrable=False, mode="'poke'",
                     poke_interval=0.3, timeout=30, on_execute_callback=touch(marker))
    inserter = insert_once_started(sqlite_src, marker, 1.0)
    dr = dag.test()
    inserter.join()
    assert states(dr) == {"wait_for_events": "success", "after": "success"}
    assert xcom(dr)["fresh"] is True and "polls" not in xcom(dr)
    [row] = freshness_rows(dag_id)
    assert row["fresh"] is True


def test_poke_mode_timeout_fails_with_the_same_message(load_dag, sqlite_src, dag_id, capfd):
    stale = sqlite_src.insert_age(7200)
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", deferrable=False, poke_interval=0.2, timeout=0.7).test()
    assert states(dr)["wait_for_events"] == "failed"
    text = capfd.readouterr().out
    assert f"newest timestamp {stale.isoformat()[:19]}" in text and "AirflowSensorTimeout" in text


def test_reschedule_mode_frees_the_worker_between_pokes_then_succeeds(tmp_path, load_dag, sqlite_src, dag_id):
    sqlite_src.insert_age(7200)
    marker = tmp_path / "started"
    dag = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 minute'", deferrable=False, mode="'reschedule'",
                     poke_interval=1, timeout=60, on_execute_callback=touch(marker))
    inserter = insert_once_started(sqlite_src, marker, 1.5)
    dr = dag.test()
    inserter.join()
    assert states(dr) == {"wait_for_events": "success", "after": "success"}
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    ti = next(t for t in dr.get_task_instances() if t.task_id == "wait_for_events")
    assert ti.try_number == 1  # rescheduled, not retried
    with create_session() as session:
        reschedules = session.query(TaskReschedule).filter(TaskReschedule.ti_id == ti.id).count()
    assert reschedules >= 1, "the sensor never gave its worker slot back"


def test_reschedule_mode_timeout_skips_with_soft_fail(load_dag, sqlite_src, dag_id):
    sqlite_src.insert_age(7200)
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", deferrable=False, mode="'reschedule'",
                    poke_interval=1, timeout=1.5, soft_fail=True).test()
    assert states(dr) == {"wait_for_events": "skipped", "after": "skipped"}


def test_missing_table_fails_at_once_with_its_name(load_dag, sqlite_src, dag_id, capfd):
    dag = load_dag(dag_id, DAG_TEMPLATE.format(dag_id=dag_id, conn_id=sqlite_src.conn_id, kwargs="max_age='1 hour', timeout=60,")
                   .replace('table="events"', 'table="no_such_table"'))
    started = time.monotonic()
    dr = dag.test()
    assert states(dr)["wait_for_events"] == "failed"
    assert time.monotonic() - started < 30
    assert "no_such_table" in capfd.readouterr().out


def test_bad_arguments_are_refused_when_the_dag_is_parsed():
    from airflow_dataops.sensors.freshness import FreshnessSensor

    base = dict(task_id="t", conn_id="c", table="events", timestamp_column="updated_at")
    with pytest.raises(ValueError, match="duration"):
        FreshnessSensor(max_age="soon", **base)
    with pytest.raises(ValueError, match="on_timeout"):
        FreshnessSensor(max_age="1 hour", on_timeout="explode", **base)
    with pytest.raises(ValueError, match="not a valid table name"):
        FreshnessSensor(**{**base, "table": "events; drop table x"}, max_age="1 hour")
    sensor = FreshnessSensor(max_age="2 hours", timeout="30 minutes", **base)
    assert (sensor.max_age_s, sensor.timeout, sensor.deferrable) == (7200, 1800, True)


def test_two_trigger_copies_resuming_the_sensor_give_one_outcome_and_one_record(sqlite_src, freshness_rows):
    """Airflow may run a trigger twice at once; whichever event resumes the task (even both),
    the result and the results-store row are the same."""
    import asyncio
    import types
    import uuid

    from airflow_dataops.sensors.freshness import FreshnessSensor
    from airflow_dataops.triggers.freshness import FreshnessTrigger

    sqlite_src.insert_age(3600)
    sensor = FreshnessSensor(task_id="wait_for_events", conn_id=sqlite_src.conn_id, table="events",
                             timestamp_column="updated_at", max_age="1 minute", poke_interval=0.2, timeout=10)
    deadline = (dt.datetime.now(UTC) + dt.timedelta(seconds=10)).isoformat()
    kwargs = dict(conn_id=sqlite_src.conn_id, table="events", timestamp_column="updated_at", max_age_s=60,
                  poke_interval=0.2, deadline=deadline)

    async def both():
        copies = [asyncio.create_task(anext(FreshnessTrigger(**kwargs).run())) for _ in range(2)]
        await asyncio.sleep(0.5)
        await asyncio.to_thread(sqlite_src.insert_age, 1)
        return [event.payload for event in await asyncio.gather(*copies)]

    events = asyncio.run(both())
    dag_id = f"dup_{uuid.uuid4().hex[:8]}"
    ti = types.SimpleNamespace(dag_id=dag_id, run_id="manual__1", task_id="wait_for_events", map_index=-1, try_number=1)
    outcomes = [sensor.execute_complete({"ti": ti}, event) for event in events + events[:1]]
    assert all(o["fresh"] for o in outcomes)
    assert outcomes[0]["newest"] == outcomes[1]["newest"] == outcomes[2]["newest"]
    [row] = freshness_rows(dag_id)
    assert row["fresh"] is True


def test_a_timeout_event_fails_the_same_way_each_time_it_is_delivered(sqlite_src):
    from airflow_dataops.compat import AirflowSensorTimeout
    import types

    from airflow_dataops.sensors.freshness import FreshnessSensor

    sensor = FreshnessSensor(task_id="t", conn_id=sqlite_src.conn_id, table="events", timestamp_column="updated_at",
                             max_age="1 hour", timeout=60)
    event = {"status": "timeout", "newest": "2026-01-01T00:00:00+00:00", "lag_s": 7200.0, "max_age_s": 3600.0,
             "observed_at": "2026-01-01T02:00:00+00:00", "deadline": "2026-01-01T02:00:00+00:00", "polls": 3}
    ti = types.SimpleNamespace(dag_id="dup_timeout", run_id="r", task_id="t", map_index=-1, try_number=1)
    messages = []
    for _ in range(2):
        with pytest.raises(AirflowSensorTimeout) as info:
            sensor.execute_complete({"ti": ti}, event)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "newest timestamp 2026-01-01T00:00:00+00:00 is 2h 0m 0s old, 1h 0m 0s late" in messages[0]


def test_timeout_with_alerts_sends_one_freshness_timeout_to_slack(load_dag, sqlite_src, dag_id, monkeypatch):
    """The alert goes out from the worker (execute_complete) through the real alerting code to a
    Slack stand-in on 127.0.0.1; the task outcome stays the timeout."""
    import json

    from tests.support.fake_slack import FakeSlack

    stale = sqlite_src.insert_age(7200)
    with FakeSlack() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_FRESHNESS_SLACK", json.dumps(
            {"conn_type": "slack", "password": slack.token, "extra": {"base_url": slack.api_url, "timeout": 2}}))
        alerts = {"channels": [{"slack": {"channel": "#data-late", "conn_id": "freshness_slack"}}],
                  "on": None, "escalation": None, "repeat": None}
        dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", poke_interval=0.3, timeout=1,
                        alerts=repr(alerts), source_name="'orders_raw'").test()
        messages = slack.wait_for(1, timeout=10)
    assert states(dr)["wait_for_events"] == "failed"
    assert len(messages) == 1 and messages[0]["channel"] == "#data-late"
    text = json.dumps(messages[0]["body"])
    assert "orders_raw" in text and stale.isoformat()[:19] in text, text[:2000]


def test_alerting_trouble_never_changes_the_outcome(load_dag, sqlite_src, dag_id):
    """A channel whose connection does not exist: the sensor still fails with its timeout, once."""
    sqlite_src.insert_age(7200)
    alerts = {"channels": [{"connection": "no_such_alert_conn"}], "on": None, "escalation": None, "repeat": None}
    dr = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 hour'", poke_interval=0.3, timeout=0.5,
                    alerts=repr(alerts), on_timeout="'skip'").test()
    assert states(dr) == {"wait_for_events": "skipped", "after": "skipped"}


def test_importing_the_sensor_module_stays_cheap_for_dag_parsing():
    """DAG files import this module on every parse: no trigger, engine, store or pandas yet."""
    import subprocess
    import sys

    code = (
        "import sys, airflow.sdk; before = set(sys.modules); import airflow_dataops.sensors.freshness; "
        "print(sorted(m for m in set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(
        __import__("pathlib").Path(__file__).parents[2])).stdout
    for heavy in ("airflow.triggers.base", "airflow_dataops.triggers", "airflow_dataops.engine",
                  "airflow_dataops.store", "pandas", "great_expectations"):
        assert f"'{heavy}" not in out, out


@pytest.mark.parametrize(("setting", "held"), [("10", 10.0), ("0", None)])
def test_the_deferral_tells_the_trigger_when_the_task_may_resume(sqlite_src, monkeypatch, setting, held):
    """[dataops] resume_settle_seconds: Airflow 3.3 fails a task resumed while the report of its
    deferral is in flight (apache/airflow#72716), so the trigger holds an early event that long."""
    from airflow_dataops.compat import TaskDeferred

    from airflow_dataops.sensors.freshness import FreshnessSensor

    monkeypatch.setenv("AIRFLOW__DATAOPS__RESUME_SETTLE_SECONDS", setting)
    sqlite_src.insert_age(3600)
    sensor = FreshnessSensor(task_id="wait_for_events", conn_id=sqlite_src.conn_id, table="events",
                             timestamp_column="updated_at", max_age="1 minute", timeout=60)
    before = dt.datetime.now(UTC)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    not_before = deferred.value.trigger.serialize()[1]["not_before"]
    if held is None:
        assert not_before is None
    else:
        ahead = (dt.datetime.fromisoformat(not_before) - before).total_seconds()
        assert held <= ahead < held + 5, ahead


# ------------------------------------------------------------------ on_timeout: skip skips timeouts only


def drop_once_started(src, marker, delay):
    """Drop the source table ``delay`` seconds after the sensor first executes: the sensor has seen
    the table (stale) and is waiting, then every later look fails with "no such table"."""

    def run():
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        with src.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE {src.table}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("mode", ["deferrable", "poke", "reschedule"])
def test_on_timeout_skip_still_fails_and_alerts_on_a_real_error(tmp_path, load_dag, sqlite_src, dag_id, monkeypatch, mode,
                                                                 capfd):
    """A table dropped while the sensor waits is an error, not a timeout: the task fails (downstream
    upstream_failed), whatever the mode, and the channel hears a task_failed naming the table."""
    import json

    from tests.support.compat import DAG_TEST_PASSES_EXCEPTION
    from tests.support.fake_slack import FakeSlack

    sqlite_src.insert_age(7200)
    marker = tmp_path / "started"
    how = {"deferrable": {}, "poke": {"mode": "'poke'"}, "reschedule": {"mode": "'reschedule'"}}[mode]
    with FakeSlack() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_FRESHNESS_SLACK", json.dumps(
            {"conn_type": "slack", "password": slack.token, "extra": {"base_url": slack.api_url, "timeout": 2}}))
        alerts = {"channels": [{"slack": {"channel": "#data-late", "conn_id": "freshness_slack"}}],
                  "on": None, "escalation": None, "repeat": None}
        dag = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 minute'", poke_interval=0.5, timeout=60,
                         on_timeout="'skip'", alerts=repr(alerts), on_execute_callback=touch(marker), **how)
        dropper = drop_once_started(sqlite_src, marker, 1.0)
        started = time.monotonic()
        dr = dag.test()
        dropper.join()
        messages = slack.wait_for(1, timeout=10)
        assert len(slack.wait_for(2, timeout=1)) == 1
    assert states(dr) == {"wait_for_events": "failed", "after": "upstream_failed"}
    assert time.monotonic() - started < 45, "an error must not wait for the timeout"
    text = messages[0]["text"]
    assert "Task failed: wait_for_events" in text, text
    if DAG_TEST_PASSES_EXCEPTION:
        assert "no such table" in text, text
    else:  # Airflow 3.1's dag.test() gives the callback no exception (tests.support.compat)
        assert "scheduler marked it failed" in text, text
    logs = capfd.readouterr()
    assert "no such table" in logs.out + logs.err  # the task's real log...
    assert slack.token not in logs.out + logs.err  # ...never shows the Slack token


def _ti(dag_id="skip_policy"):
    import types

    pushed = {}
    ti = types.SimpleNamespace(dag_id=dag_id, run_id="r", task_id="t", map_index=-1, try_number=1,
                               xcom_push=lambda key, value: pushed.__setitem__(key, value))
    return ti, pushed


def test_an_error_event_fails_even_with_on_timeout_skip(sqlite_src):
    """What the review found: BaseSensorOperator.resume_execution turned a permanent error event
    into "Skipping due to soft_fail". The resumed sensor must fail instead."""
    from airflow_dataops.compat import AirflowException, AirflowSkipException

    from airflow_dataops.sensors.freshness import FreshnessSensor

    sensor = FreshnessSensor(task_id="t", conn_id=sqlite_src.conn_id, table="events", timestamp_column="updated_at",
                             max_age="1 hour", timeout=60, on_timeout="skip")
    event = {"status": "error", "error": "OperationalError: no such table: events", "error_kind": "permanent",
             "observed": False, "observed_at": None, "polls": 2}
    ti, pushed = _ti()
    with pytest.raises(AirflowException) as info:
        sensor.resume_execution("execute_complete", {"event": event}, {"ti": ti})
    assert not isinstance(info.value, AirflowSkipException)
    assert "no such table: events" in str(info.value) and pushed == {}
    # the scheduler's deferral timeout (no triggerer answered) is a timeout: it skips, with a reason
    with pytest.raises(AirflowSkipException, match="triggerer did not report"):
        sensor.resume_execution("__fail__", {"error": "Trigger timeout"}, {"ti": ti})
    assert "triggerer did not report" in pushed["dataops_timed_out"]
    # a crashed trigger is not a timeout: it fails
    with pytest.raises(AirflowException) as info:
        sensor.resume_execution("__fail__", {"error": "Trigger failure"}, {"ti": ti})
    assert not isinstance(info.value, AirflowSkipException)


def test_a_timeout_where_nothing_could_be_observed_says_why_and_records_nothing(sqlite_src, freshness_rows):
    """Every poll hit its statement timeout: not "max is NULL", and no made-up NULL observation."""
    from airflow_dataops.compat import AirflowSensorTimeout

    from airflow_dataops.sensors.freshness import FreshnessSensor

    sensor = FreshnessSensor(task_id="t", conn_id=sqlite_src.conn_id, table="events", timestamp_column="updated_at",
                             max_age="1 hour", timeout=60)
    event = {"status": "timeout", "observed": False, "newest": None, "lag_s": None, "max_age_s": 3600.0,
             "observed_at": None, "deadline": "2026-01-01T02:00:00+00:00", "polls": 12,
             "error": "the poll was cancelled by its statement timeout (QueryCanceled: canceling statement due to "
                      "statement timeout)"}
    ti, _ = _ti("unobserved_timeout")
    with pytest.raises(AirflowSensorTimeout) as info:
        sensor.execute_complete({"ti": ti}, event)
    message = str(info.value)
    assert "could not be checked before the timeout after waiting 1m 0s: the poll was cancelled by its statement timeout" in message
    assert "max is NULL" not in message and "stale" not in message
    assert freshness_rows("unobserved_timeout") == []


def test_mode_passed_without_deferrable_is_honoured():
    from airflow_dataops.sensors.freshness import FreshnessSensor

    base = dict(task_id="t", conn_id="c", table="events", timestamp_column="updated_at", max_age="1 hour")
    assert (FreshnessSensor(**base).deferrable, FreshnessSensor(**base).mode) == (True, "poke")
    rescheduling = FreshnessSensor(mode="reschedule", **base)
    assert (rescheduling.deferrable, rescheduling.mode, rescheduling.reschedule) == (False, "reschedule", True)
    assert FreshnessSensor(mode="poke", **base).deferrable is False
    assert FreshnessSensor(deferrable=True, mode="poke", **base).deferrable is True  # what the factory passes
    with pytest.raises(ValueError, match="contradict"):
        FreshnessSensor(deferrable=True, mode="reschedule", **base)


def test_reschedule_mode_alone_reschedules_in_a_real_run(tmp_path, load_dag, sqlite_src, dag_id):
    """mode="reschedule" without deferrable: the worker slot is given back between pokes (a
    TaskReschedule row), the trigger never runs (no "polls" in the result)."""
    sqlite_src.insert_age(7200)
    marker = tmp_path / "started"
    dag = sensor_dag(load_dag, dag_id, sqlite_src, max_age="'1 minute'", mode="'reschedule'",
                     poke_interval=1, timeout=60, on_execute_callback=touch(marker))
    inserter = insert_once_started(sqlite_src, marker, 1.5)
    dr = dag.test()
    inserter.join()
    assert states(dr) == {"wait_for_events": "success", "after": "success"}
    assert "polls" not in xcom(dr)
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    ti = next(t for t in dr.get_task_instances() if t.task_id == "wait_for_events")
    with create_session() as session:
        assert session.query(TaskReschedule).filter(TaskReschedule.ti_id == ti.id).count() >= 1


@pytest.mark.integration
def test_a_locked_table_until_the_deadline_fails_as_unobserved_not_as_null(pg_url, freshness_rows, monkeypatch):
    """The real trigger against a PostgreSQL table locked for the whole wait (every poll cancelled
    by its statement timeout), its event handed to the sensor: the message says nothing could be
    observed and why; the store gets no observation."""
    import asyncio

    import sqlalchemy as sa
    from airflow_dataops.compat import AirflowSensorTimeout

    from airflow_dataops.sensors.freshness import FreshnessSensor
    from airflow_dataops.triggers.freshness import FreshnessTrigger

    import freshness_db  # loaded by conftest (tests/ is not a package)

    monkeypatch.setenv("AIRFLOW__DATAOPS__STATEMENT_TIMEOUT", "1")
    src = freshness_db.postgres_source(pg_url)
    try:
        src.insert_age(7200)
        locker = sa.create_engine(src.url).connect()
        locker.exec_driver_sql(f"LOCK TABLE {src.table} IN ACCESS EXCLUSIVE MODE")
        try:
            trigger = FreshnessTrigger(src.conn_id, src.table, src.column, 60, poke_interval=0.5,
                                       deadline=(dt.datetime.now(UTC) + dt.timedelta(seconds=3.5)).isoformat())
            event = asyncio.run(anext(trigger.run())).payload
        finally:
            locker.rollback()
            locker.close()
        assert event["status"] == "timeout" and event["observed"] is False and event["polls"] >= 2, event
        assert event["newest"] is None and event["observed_at"] is None
        assert "statement timeout" in event["error"]
        sensor = FreshnessSensor(task_id="t", conn_id=src.conn_id, table=src.table, timestamp_column=src.column,
                                 max_age="1 minute", timeout=3.5)
        ti, _ = _ti("locked_whole_wait")
        with pytest.raises(AirflowSensorTimeout) as info:
            sensor.execute_complete({"ti": ti}, event)
        assert "could not be checked before the timeout" in str(info.value) and "statement timeout" in str(info.value)
        assert "max is NULL" not in str(info.value)
        assert freshness_rows("locked_whole_wait") == []
    finally:
        src.close()
