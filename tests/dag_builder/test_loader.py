"""The YAML factory as Airflow sees it: real DagBag parses of real dags folders."""

from __future__ import annotations

import os
import subprocess
import sys

from airflow_dataops.dag_builder.loader import invalid_dag_id

from tests.dag_builder.conftest import REPO, dagbag, write_pipeline


def test_repo_dags_folder_parses_without_errors_or_stand_ins(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR", str(tmp_path / "cache"))
    for environment in ("development", "staging", "production"):
        monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", environment)
        bag = dagbag(REPO / "dags")
        assert bag.import_errors == {}, bag.import_errors
        assert "orders_daily" in bag.dag_ids
        assert not [d for d in bag.dag_ids if d.startswith("dataops_invalid__")], bag.dag_ids
        for dag in bag.dags.values():
            assert dag.owner, dag.dag_id


def test_pipeline_files_anywhere_below_become_dags_and_other_yaml_is_left_alone(dags_folder):
    write_pipeline(dags_folder, "orders.yaml", "orders")
    write_pipeline(dags_folder, "team/deep/customers.yml", "customers")
    (dags_folder / "not_a_pipeline.yaml").write_text("some: config\nused: elsewhere\n")
    (dags_folder / "team" / "dbt_project.yml").write_text("name: x\nversion: 2\n")
    bag = dagbag(dags_folder)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"orders", "customers"}
    dag = bag.dags["orders"]
    assert dag.owner == "data-team"
    assert [t.task_id for t in dag.tasks] == ["quality_checks"]
    outlets = dag.get_task("quality_checks").outlets
    assert [a.uri for a in outlets] == ["dataops://warehouse/analytics.orders"]
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"


def test_every_file_gets_a_stand_in_id_of_its_own_and_airflow_accepts_it():
    from airflow.sdk.definitions._internal.node import validate_key

    paths = ["orders.yaml", "a-b.yaml", "a_b.yaml", "team/orders.yaml", "team.orders.yaml", "team orders.yaml",
             "x" * 300 + "/a.yaml", "x" * 300 + "/b.yaml"]
    ids = [invalid_dag_id(p) for p in paths]
    assert len(set(ids)) == len(paths), ids
    assert ids[0] == "dataops_invalid__orders.yaml"  # readable as it is when nothing had to change
    for dag_id in ids:
        validate_key(dag_id, max_length=250)


def test_airflowignore_is_honoured(dags_folder):
    write_pipeline(dags_folder, "orders.yaml", "orders")
    write_pipeline(dags_folder, "archive/old.yaml", "old_orders")
    (dags_folder / ".airflowignore").write_text("archive/\n")
    assert set(dagbag(dags_folder).dag_ids) == {"orders"}


def test_a_broken_file_becomes_a_visible_stand_in_and_hides_nothing(dags_folder):
    write_pipeline(dags_folder, "orders.yaml", "orders")
    write_pipeline(dags_folder, "sub/customers.yaml", "customers", extra="  - type: nul_check\n    columns: [id]\n")
    bag = dagbag(dags_folder)
    assert bag.import_errors == {}
    standin = invalid_dag_id("sub/customers.yaml")
    assert standin.startswith("dataops_invalid__sub.customers.yaml-")
    assert set(bag.dag_ids) == {"orders", standin}
    doc = bag.dags[standin].doc_md
    assert "sub/customers.yaml:12:5: quality_checks[1]: unknown check type 'nul_check'" in doc
    assert "dataops-invalid" in bag.dags[standin].tags


def test_the_last_valid_version_stays_scheduled_while_the_file_is_broken(dags_folder):
    path = write_pipeline(dags_folder, "orders.yaml", "orders")
    assert set(dagbag(dags_folder).dag_ids) == {"orders"}
    path.write_text(path.read_text().replace("threshold: 1", "threshold: lots"))
    bag = dagbag(dags_folder)
    standin = invalid_dag_id("orders.yaml")
    assert set(bag.dag_ids) == {"orders", standin}
    assert "last valid version of pipeline `orders`" in bag.dags[standin].doc_md
    assert "threshold: expected a whole number, got 'lots'" in bag.dags[standin].doc_md


def test_two_files_with_one_name_are_reported_on_both(dags_folder):
    write_pipeline(dags_folder, "a.yaml", "orders")
    write_pipeline(dags_folder, "b.yaml", "orders")
    bag = dagbag(dags_folder)
    assert set(bag.dag_ids) == {invalid_dag_id("a.yaml"), invalid_dag_id("b.yaml")}
    assert "also the name of b.yaml:2" in bag.dags[invalid_dag_id("a.yaml")].doc_md
    assert "also the name of a.yaml:2" in bag.dags[invalid_dag_id("b.yaml")].doc_md


def test_a_task_parse_builds_only_its_dag_without_reading_the_others(dags_folder, monkeypatch):
    for index in range(5):
        write_pipeline(dags_folder, f"p{index}.yaml", f"pipeline_{index}")
    assert len(dagbag(dags_folder).dag_ids) == 5  # a full parse writes the dag_id index
    # Break every other file: a worker starting pipeline_3 must not even read them.
    for index in (0, 1, 2, 4):
        (dags_folder / f"p{index}.yaml").write_text("pipeline: [broken\n")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "pipeline_3")
    bag = dagbag(dags_folder)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"pipeline_3"}


def test_the_loader_scans_relative_to_its_own_location(tmp_path):
    """Airflow 3 DAG bundles check out the dags folder anywhere: no fixed path may be assumed."""
    bundle = tmp_path / "bundle-checkout" / "versions" / "abc123"
    bundle.mkdir(parents=True)
    (bundle / "loader.py").write_text((REPO / "dags" / "dataops_pipelines.py").read_text())
    write_pipeline(bundle, "orders.yaml", "bundle_orders")
    script = (
        "import runpy, sys; ns = runpy.run_path(sys.argv[1]);"
        "print(sorted(k for k, v in ns.items() if type(v).__name__ == 'DAG'))"
    )
    env = {**os.environ, "AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", script, str(bundle / "loader.py")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "['bundle_orders']"


def test_the_environment_decides_schedule_and_a_missing_environment_is_a_stand_in(dags_folder, monkeypatch):
    write_pipeline(dags_folder, "orders.yaml", "orders",
                   extra="environments:\n  - name: development\n    schedule: manual\n  - name: production\n")
    monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", "development")
    assert type(dagbag(dags_folder).dags["orders"].timetable).__name__ == "NullTimetable"
    monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", "production")
    assert type(dagbag(dags_folder).dags["orders"].timetable).__name__ == "CronTriggerTimetable"
    monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", "staging")
    bag = dagbag(dags_folder)
    standin = invalid_dag_id("orders.yaml")
    assert set(bag.dag_ids) == {standin}
    assert "has no environment 'staging'" in bag.dags[standin].doc_md


def test_a_missing_sql_file_stops_being_an_error_once_it_arrives(dags_folder):
    """git-sync may deliver the YAML before its .sql file: the error must not stick in the cache."""
    write_pipeline(dags_folder, "orders.yaml", "orders",
                   extra="tasks:\n  - id: load\n    sql: sql/load.sql\n    conn_id: warehouse\n")
    bag = dagbag(dags_folder)
    assert set(bag.dag_ids) == {invalid_dag_id("orders.yaml")}
    assert "SQL file 'sql/load.sql' does not exist" in bag.dags[invalid_dag_id("orders.yaml")].doc_md
    (dags_folder / "sql").mkdir()
    (dags_folder / "sql" / "load.sql").write_text("INSERT INTO analytics.orders SELECT * FROM raw.orders")
    bag = dagbag(dags_folder)
    assert set(bag.dag_ids) == {"orders"}
    assert [t.task_id for t in bag.dags["orders"].topological_sort()] == ["load", "quality_checks"]
