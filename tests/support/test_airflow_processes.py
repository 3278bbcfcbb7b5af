"""Smoke test of the real-process harness: a tiny DAG with a deferrable sensor runs to success."""

from __future__ import annotations

import textwrap
import time

import pytest

from tests.support.airflow_processes import AirflowCluster

DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime, timedelta

    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
    from airflow.sdk import DAG, task

    with DAG("harness_smoke", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):

        @task
        def say_hello():
            print("hello from the harness smoke DAG")

        wait = TimeDeltaSensor(task_id="wait_deferred", delta=timedelta(seconds=15), deferrable=True)
        say_hello() >> wait
    """
)


@pytest.mark.integration
@pytest.mark.e2e
def test_cluster_runs_a_dag_with_a_deferrable_task(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "harness_smoke.py").write_text(DAG_FILE)

    with AirflowCluster(tmp_path, dags) as af:
        print(f"cluster healthy after {af.startup_seconds:.1f}s")
        af.unpause("harness_smoke")
        started = time.monotonic()
        run_id = af.trigger("harness_smoke")

        assert af.wait_run("harness_smoke", run_id, timeout=180) == "success", af.describe_run("harness_smoke", run_id)
        assert time.monotonic() - started >= 15, "the sensor finished before its delta: it never deferred"
        assert "hello from the harness smoke DAG" in af.task_log("harness_smoke", run_id, "say_hello")
        sensor_log = af.task_log("harness_smoke", run_id, "wait_deferred")
        assert "Pausing task as DEFERRED" in sensor_log
        assert "Trigger fired event" in sensor_log  # the triggerer ran it
        # The viewer can read but not trigger.
        assert af.api("GET", "/api/v2/dags/harness_smoke", user="viewer").status_code == 200
        assert af.api("POST", "/api/v2/dags/harness_smoke/dagRuns", {"logical_date": None}, user="viewer").status_code == 403
        assert af.api("GET", "/api/v2/dags", user=None).status_code == 401


# The wait starts when the task runs (not when the run was created), so a slow machine cannot let
# the moment pass before the triggerer is killed.
RESTART_DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime

    from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
    from airflow.sdk import DAG

    with DAG("harness_restart", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
        DateTimeSensorAsync(
            task_id="wait_deferred",
            target_time="{{ (macros.datetime.utcnow() + macros.timedelta(seconds=45)).isoformat() }}",
        )
    """
)


@pytest.mark.integration
@pytest.mark.e2e
def test_a_deferred_task_survives_a_killed_and_restarted_triggerer(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "harness_restart.py").write_text(RESTART_DAG_FILE)
    # A short heartbeat threshold so the restarted triggerer adopts the orphaned trigger quickly.
    fast_adoption = {
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
    }
    with AirflowCluster(tmp_path, dags, extra_env=fast_adoption) as af:
        print(f"cluster healthy after {af.startup_seconds:.1f}s")
        af.unpause("harness_restart")
        run_id = af.trigger("harness_restart")
        af.wait_task_state("harness_restart", run_id, "wait_deferred", {"deferred"}, timeout=120)
        before = af.wait_task_log("harness_restart", run_id, "wait_deferred", "trigger starting", timeout=60)
        assert "Trigger fired event" not in before
        first_pid = af.pid("triggerer")

        af.kill("triggerer")
        assert not af.is_running("triggerer")
        assert af.task_states("harness_restart", run_id)["wait_deferred"] == "deferred"
        af.restart("triggerer")
        assert af.pid("triggerer") != first_pid

        assert af.wait_run("harness_restart", run_id, timeout=180) == "success", af.describe_run("harness_restart", run_id)
        log = af.task_log("harness_restart", run_id, "wait_deferred")
        assert log.count("trigger starting") == 2, f"the restarted triggerer did not run the trigger again:\n{log[-3000:]}"


@pytest.mark.integration
@pytest.mark.e2e
def test_cluster_on_a_postgresql_metadata_database(tmp_path, pg_url):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "harness_smoke.py").write_text(DAG_FILE.replace("seconds=15", "seconds=0"))
    with AirflowCluster(tmp_path, dags, metadata_db_url=pg_url, components=("api-server", "scheduler", "dag-processor")) as af:
        print(f"cluster on PostgreSQL healthy after {af.startup_seconds:.1f}s")
        assert "postgresql" in af.cli("config", "get-value", "database", "sql_alchemy_conn").stdout
        af.unpause("harness_smoke")
        run_id = af.trigger("harness_smoke", conf={"note": "pg"})
        assert af.wait_run("harness_smoke", run_id, timeout=180) == "success", af.describe_run("harness_smoke", run_id)
        assert af.api("GET", f"/api/v2/dags/harness_smoke/dagRuns/{run_id}").json()["conf"] == {"note": "pg"}
