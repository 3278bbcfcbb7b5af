"""Freshness sensors on a real Airflow deployment (api-server, scheduler, dag-processor, triggerer
as separate processes) with a PostgreSQL metadata database, the source table in PostgreSQL too.

1. The sensor defers, the test inserts a fresh row, the triggerer sees it, the run succeeds.
2. The triggerer is SIGKILLed mid-wait and restarted: the trigger's absolute deadline still
   fires on time (lateness measured from the trigger's own event and from the run's end).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

UTC = dt.timezone.utc
DEADLINE_TIMEOUT_S = 40
TRIGGER_STARTED = ") starting"  # triggerer log: "trigger <dag>/<run>/<task>/-1/1 (ID 1) starting"

DAGS = textwrap.dedent(
    f"""
    import datetime as dt
    from airflow.sdk import DAG, task
    from airflow_dataops.sensors.freshness import FreshnessSensor

    for dag_id, kwargs in {{
        "freshness_e2e_fresh": dict(table="e2e_orders", timeout=180, poke_interval=2),
        "freshness_e2e_deadline": dict(table="e2e_late_orders", timeout={DEADLINE_TIMEOUT_S}, poke_interval=5,
                                       on_timeout="skip"),
    }}.items():
        with DAG(dag_id, schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False):
            sensor = FreshnessSensor(
                task_id="wait_for_orders",
                conn_id="e2e_source",
                timestamp_column="loaded_at",
                max_age="10 minutes",
                **kwargs,
            )

            @task
            def load():
                print("loading fresh orders")

            sensor >> load()
    """
)


def _load_harness():
    path = Path(__file__).parents[1] / "support" / "airflow_processes.py"
    if "dataops_airflow_processes" not in sys.modules:
        spec = importlib.util.spec_from_file_location("dataops_airflow_processes", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["dataops_airflow_processes"] = module
        spec.loader.exec_module(module)
    return sys.modules["dataops_airflow_processes"]


@pytest.fixture(scope="module")
def pg_database():
    """One PostgreSQL database for the module's cluster (metadata) and source table.

    Module-scoped (the function-scoped ``pg_url`` would cost a cluster start per test)."""
    from tests.conftest import postgres_available

    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"dataops_e2e_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture(scope="module")
def source(pg_database):
    engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{pg_database}")
    with engine.begin() as conn:
        for table in ("e2e_orders", "e2e_late_orders"):  # one per DAG: the first test freshens its own
            conn.exec_driver_sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, loaded_at timestamptz NOT NULL)")
            conn.exec_driver_sql(f"INSERT INTO {table} (loaded_at) VALUES (now() - interval '3 hours')")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_database, source):
    harness = _load_harness()
    tmp = tmp_path_factory.mktemp("freshness-e2e")
    dags = tmp / "dags"
    dags.mkdir()
    (dags / "freshness_e2e.py").write_text(DAGS)
    env = {
        "AIRFLOW_CONN_E2E_SOURCE": f"postgres://postgres@127.0.0.1:5432/{pg_database}",
        # the restarted triggerer adopts the dead one's triggers after 5 s instead of 30 s
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
    }
    metadata = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{pg_database}"
    with harness.AirflowCluster(tmp, dags, extra_env=env, metadata_db_url=metadata) as af:
        print(f"cluster healthy after {af.startup_seconds:.1f}s")
        yield af


def _freshness_rows(cluster, dag_id: str, run_id: str) -> list[dict]:
    """The results store's freshness rows (no results connection: the SQLite file in the home)."""
    engine = sa.create_engine(f"sqlite:///{cluster.home / 'dataops_results.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM dataops_freshness WHERE dag_id = :d AND run_id = :r"),
                                {"d": dag_id, "r": run_id})
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()


def _event_times(log: str) -> tuple[dt.datetime, dt.datetime]:
    match = re.search(r"status=timeout polls=\d+ observed_at=(\S+) deadline=(\S+)", log)
    assert match, log[-3000:]
    return dt.datetime.fromisoformat(match.group(1)), dt.datetime.fromisoformat(match.group(2))


def test_sensor_defers_then_succeeds_when_the_data_turns_fresh(cluster, source):
    dag_id = "freshness_e2e_fresh"
    cluster.unpause(dag_id)
    run_id = cluster.trigger(dag_id)
    cluster.wait_task_state(dag_id, run_id, "wait_for_orders", {"deferred"}, timeout=120)
    cluster.wait_task_log(dag_id, run_id, "wait_for_orders", TRIGGER_STARTED, timeout=60)
    # The deferring attempt's process has ended and the scheduler knows: the resume cannot race it
    # (apache/airflow#72716; in production [dataops] resume_settle_seconds covers that window).
    cluster.wait_executor_report(dag_id, run_id, "wait_for_orders")
    time.sleep(2)  # a poll or two of stale data
    assert cluster.task_states(dag_id, run_id)["wait_for_orders"] == "deferred"
    with source.begin() as conn:
        conn.execute(sa.text("INSERT INTO e2e_orders (loaded_at) VALUES (now())"))
    fresh_at = time.monotonic()

    assert cluster.wait_run(dag_id, run_id, timeout=120) == "success", cluster.describe_run(dag_id, run_id)
    print(f"run succeeded {time.monotonic() - fresh_at:.1f}s after the row was inserted")
    assert cluster.state_mismatches(dag_id, run_id) == []
    log = cluster.task_log(dag_id, run_id, "wait_for_orders")
    assert "Pausing task as DEFERRED" in log
    assert "status=fresh" in log and "is fresh after" in log
    assert cluster.task_states(dag_id, run_id)["load"] == "success"
    [row] = _freshness_rows(cluster, dag_id, run_id)  # written by the worker, into the embedded store
    assert row["source"] == "sensor" and row["fresh"] == 1 and row["table_name"] == "e2e_orders"


def test_triggerer_killed_mid_wait_still_fires_the_deadline_on_time(cluster):
    dag_id = "freshness_e2e_deadline"
    cluster.unpause(dag_id)
    run_id = cluster.trigger(dag_id)
    cluster.wait_task_state(dag_id, run_id, "wait_for_orders", {"deferred"}, timeout=120)
    cluster.wait_task_log(dag_id, run_id, "wait_for_orders", TRIGGER_STARTED, timeout=60)
    time.sleep(5)
    cluster.kill("triggerer")  # SIGKILL mid-wait
    time.sleep(2)
    cluster.restart("triggerer")

    assert cluster.wait_run(dag_id, run_id, timeout=180) == "success", cluster.describe_run(dag_id, run_id)
    run_end = dt.datetime.now(UTC)
    states = cluster.task_states(dag_id, run_id)
    assert states == {"wait_for_orders": "skipped", "load": "skipped"}, states

    log = cluster.task_log(dag_id, run_id, "wait_for_orders")
    starts = len(re.findall(r"trigger \S+ \(ID \d+\) starting", log))
    assert starts == 2, f"the trigger started {starts} times: the new triggerer did not restart it"
    assert f"is stale after waiting {DEADLINE_TIMEOUT_S}s" in log and "late (allowed age 10 minutes" in log
    observed_at, deadline = _event_times(log)
    event_lateness = (observed_at - deadline).total_seconds()
    run_lateness = (run_end - deadline).total_seconds()
    print(f"deadline event {event_lateness:.1f}s after the deadline; run finished {run_lateness:.1f}s after it")
    # A relative wait restarted by the new triggerer would end about 10 s (kill + adoption) late.
    assert 0 <= event_lateness < 3.0
    assert run_lateness < 30
    [row] = _freshness_rows(cluster, dag_id, run_id)
    assert row["fresh"] == 0 and row["lag_seconds"] > 3 * 3600
