"""The seed example pipeline, run for real with dag.test() on the embedded default (SQLite)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.dag_builder.conftest import REPO, dagbag


@pytest.fixture()
def warehouse(tmp_path, monkeypatch, airflow_db):
    from airflow_dataops.demo.seed import seed
    from airflow_dataops.store.results import ResultsStore

    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_DATAOPS_DEFAULT", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", "development")
    # Airflow 3.3.2's dag.test() crashes on successful runs of DAGs with Deadline Alerts; the SLA
    # deadlines are proven with real Airflow processes in tests/integration/test_alerting_e2e.py.
    monkeypatch.setenv("AIRFLOW__DATAOPS__DEADLINE_ALERTS", "False")
    monkeypatch.setenv("AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))  # the embedded results store goes here
    (tmp_path / "home").mkdir()
    ResultsStore.reset_default()
    yield path, seed
    ResultsStore.reset_default()


def _results(tmp_path, run_id):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'dataops_results.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT check_name, status, observed, expected, environment FROM dataops_check_results "
            "WHERE dag_id = 'orders_daily' AND run_id = :run"), {"run": run_id}).mappings().all()
    engine.dispose()
    return {row["check_name"]: dict(row) for row in rows}


def test_seed_example_runs_green_on_fresh_data_and_records_every_check(warehouse, tmp_path):
    path, seed = warehouse
    seed(path, orders=2000)
    dag = dagbag(REPO / "dags").dags["orders_daily"]
    run = dag.test()
    assert run.state == "success"
    results = _results(tmp_path, run.run_id)
    assert set(results) == {"row_count", "null_check_order_id_customer_id", "freshness", "sla_completeness"}
    assert results["row_count"]["status"] == "passed"
    assert json.loads(results["row_count"]["observed"]) == 2000
    assert results["freshness"]["status"] == "passed"
    # guest checkouts have no customer: the warn-level null check warns, the run still succeeds
    assert results["null_check_order_id_customer_id"]["status"] == "warned"
    assert {r["environment"] for r in results.values()} == {"development"}


def test_seed_example_fails_on_stale_data_and_keeps_the_results(warehouse, tmp_path):
    path, seed = warehouse
    seed(path, orders=2000, stale=True)
    dag = dagbag(REPO / "dags").dags["orders_daily"]
    run = dag.test()
    assert run.state == "failed"
    results = _results(tmp_path, run.run_id)
    assert results["freshness"]["status"] == "failed"
    assert results["row_count"]["status"] == "passed"


def test_payments_example_runs_its_sql_task_sensor_and_checks(warehouse, tmp_path):
    """The second example: a freshness sensor, a .sql task, a bash task, eight check types."""
    path, seed = warehouse
    seed(path, orders=500)
    dag = dagbag(REPO / "dags").dags["payments_daily"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "wait_for_orders", "build_payments_enriched", "announce", "quality_checks", "dataops_alert_watch"]
    run = dag.test()
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'dataops_results.db'}")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text(
            "SELECT check_name, status FROM dataops_check_results WHERE dag_id = 'payments_daily' AND run_id = :r"),
            {"r": run.run_id}).all())
        fresh = conn.execute(sa.text(
            "SELECT fresh FROM dataops_freshness WHERE dag_id = 'payments_daily' AND source = 'sensor'")).scalar()
    engine.dispose()
    assert rows == {
        "row_count": "passed", "unique_payment_id": "passed", "accepted_values_method": "passed",
        "range_amount": "passed", "referential_order_id": "passed",
        "schema_payment_id_amount_paid_at": "passed", "volume_anomaly": "passed",
        "no_payment_before_order": "passed",
    }
    assert fresh in (1, True)


def test_python_and_bash_tasks_run_in_order_and_the_leaf_publishes_the_asset(tmp_path, monkeypatch, airflow_db):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "dataops_pipelines.py").write_text((REPO / "dags" / "dataops_pipelines.py").read_text())
    (folder / "steps.yaml").write_text(
        "pipeline:\n  name: steps\n  schedule: manual\n"
        "dataset:\n  conn_id: warehouse\n  table: analytics.steps\n"
        "tasks:\n"
        "  - id: extract\n    python: tests.dag_builder.callables:count_rows\n"
        "  - id: report\n    bash: 'echo extracted {{ ti.xcom_pull(task_ids=\"extract\")[\"task\"] }}'\n"
    )
    monkeypatch.setenv("AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([{  # dag.test() syncs this bundle
        "name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder)}}]))
    dag = dagbag(folder).dags["steps"]
    assert [t.task_id for t in dag.topological_sort()] == ["extract", "report"]
    assert [a.uri for a in dag.get_task("report").outlets] == ["dataops://warehouse/analytics.steps"]
    run = dag.test()
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"extract": "success", "report": "success"}
    xcom = run.get_task_instance("extract").xcom_pull(task_ids="extract")
    assert xcom == {"task": "extract", "params": {}}
