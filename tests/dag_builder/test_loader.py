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


def test_an_integer_too_long_for_python_is_a_stand_in_not_a_crash(dags_folder):
    write_pipeline(dags_folder, "orders.yaml", "orders")
    write_pipeline(dags_folder, "big.yaml", "big", extra="  - type: row_count\n    threshold: " + "9" * 5000 + "\n")
    bag = dagbag(dags_folder)
    assert bag.import_errors == {}
    standin = invalid_dag_id("big.yaml")
    assert set(bag.dag_ids) == {"orders", standin}
    doc = bag.dags[standin].doc_md
    assert "big.yaml:13:16: quality_checks[1].threshold: integer too long (5,000 digits)" in doc
    assert "unexpectedly" not in doc and "needs `threshold`" not in doc  # the one error, said once


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


def test_no_file_takes_the_loader_down_whatever_is_wrong_with_it(dags_folder, monkeypatch):
    write_pipeline(dags_folder, "orders.yaml", "orders")
    (dags_folder / "latin1.yaml").write_bytes(b"pipeline:\n  name: caf\xe9\n")
    (dags_folder / "deep.yaml").write_text("pipeline:\n  name: deep\n  tags: " + "[" * 5000 + "]" * 5000 + "\n")
    (dags_folder / "huge.yaml").write_text("pipeline:\n  name: huge\n  description: " + "x" * (1024 * 1024) + "\n")
    (dags_folder / "huge_data.yaml").write_text("rows:\n" + "  - 1\n" * 300_000)  # not a pipeline file
    write_pipeline(dags_folder, "bug.yaml", "bug")

    from airflow_dataops.config import resolve as resolve_module

    real = resolve_module.resolve

    def buggy(text, file, *args, **kwargs):  # stands in for a bug of ours hit by one file only
        if file == "bug.yaml":
            raise RuntimeError("something nobody expected")
        return real(text, file, *args, **kwargs)

    monkeypatch.setattr(resolve_module, "resolve", buggy)
    bag = dagbag(dags_folder)
    assert bag.import_errors == {}
    standins = {name: invalid_dag_id(f"{name}.yaml") for name in ("latin1", "deep", "huge", "bug")}
    assert set(bag.dag_ids) == {"orders", *standins.values()}
    docs = {name: bag.dags[dag_id].doc_md for name, dag_id in standins.items()}
    assert "latin1.yaml:2:12: (top level): the file is not UTF-8 text (byte 0xe9 here): save it as UTF-8" in docs["latin1"]
    assert "deep.yaml:3:58: pipeline.tags: the file is nested deeper than 50 levels" in docs["deep"]
    assert "huge.yaml:1:1: (top level): file is 1,048," in docs["huge"] and "over the 1,048,576-byte limit" in docs["huge"]
    assert "bug.yaml:1:1: (top level): validating this file failed unexpectedly (RuntimeError: something nobody " \
           "expected)" in docs["bug"]


def test_a_dag_airflow_refuses_is_a_stand_in_and_the_last_valid_version_stays(dags_folder):
    path = write_pipeline(dags_folder, "orders.yaml", "orders")
    assert set(dagbag(dags_folder).dag_ids) == {"orders"}
    # Valid for us, refused by the postgres provider's asset URI rules when the DAG is built.
    path.write_text(path.read_text().replace('schedule: "0 5 * * *"', 'schedule: ["postgres://db-host/warehouse"]'))
    bag = dagbag(dags_folder)
    standin = invalid_dag_id("orders.yaml")
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"orders", standin}
    assert type(bag.dags["orders"].timetable).__name__ == "CronTriggerTimetable"  # the last valid version
    doc = bag.dags[standin].doc_md
    assert "orders.yaml:2:1: (top level): building DAG 'orders' failed: ValueError: URI format postgres://" in doc
    assert "last valid version of pipeline `orders`" in doc


def test_files_next_to_the_yaml_are_the_ones_that_run_not_same_named_files_near_the_loader(dags_folder):
    (dags_folder / "sql").mkdir()
    (dags_folder / "sql" / "load.sql").write_text("select 'ROOT'")
    team = dags_folder / "team"
    (team / "sql").mkdir(parents=True)
    (team / "sql" / "load.sql").write_text("select 'TEAM {{ params.region }}'")
    (team / "sql" / "LOUD.SQL").write_text("select 'LOUD'")
    (team / "scripts").mkdir()
    (team / "scripts" / "hello.sh").write_text("echo hello from {{ dag.dag_id }}")
    write_pipeline(dags_folder, "team/orders.yaml", "orders", extra=(
        "tasks:\n"
        "  - id: load\n    sql: sql/load.sql\n"
        "  - id: loud\n    sql: sql/LOUD.SQL\n"
        "  - id: hello\n    bash: scripts/hello.sh\n"
        "  - id: deploy\n    bash: bash /opt/scripts/deploy.sh\n"
        "  - id: inline\n    sql: select 1 from t where f = 'x.json'\n"
    ))
    bag = dagbag(dags_folder)
    assert bag.import_errors == {} and set(bag.dag_ids) == {"orders"}
    dag = bag.dags["orders"]
    rendered = {}
    for task_id, field in (("load", "sql"), ("loud", "sql"), ("hello", "bash_command"), ("deploy", "bash_command"),
                           ("inline", "sql")):
        task = dag.get_task(task_id)
        task.render_template_fields({"dag": dag, "params": {"region": "eu"}})
        rendered[task_id] = getattr(task, field)
    assert rendered == {
        "load": "select 'TEAM eu'",
        "loud": "select 'LOUD'",
        "hello": "echo hello from orders",
        "deploy": "bash /opt/scripts/deploy.sh ",  # a command, not a template file name
        "inline": "select 1 from t where f = 'x.json'",
    }


def test_pipeline_files_are_found_in_every_yaml_spelling_and_other_yaml_is_left_alone(dags_folder):
    (dags_folder / "bom.yaml").write_bytes("\ufeffpipeline:\n  name: bom\n".encode())
    (dags_folder / "quoted.yaml").write_text('"pipeline":\n  name: quoted\n')
    (dags_folder / "flow.yml").write_text("{version: 1, pipeline: {name: flow}}\n")
    (dags_folder / "nested.yaml").write_text("config:\n  pipeline: not-a-pipeline-file\n")
    (dags_folder / "broken_other.yaml").write_text("config:\n  pipeline: [unclosed\n")
    for attempt in ("cold", "warm"):
        bag = dagbag(dags_folder)
        assert bag.import_errors == {}
        assert set(bag.dag_ids) == {"bom", "quoted", "flow"}, attempt


def test_a_symlinked_loader_scans_the_folder_it_is_linked_into(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "dataops_pipelines.py").write_text((REPO / "dags" / "dataops_pipelines.py").read_text())
    write_pipeline(shared, "not_here.yaml", "not_here")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "dataops_pipelines.py").symlink_to(shared / "dataops_pipelines.py")
    write_pipeline(dags, "orders.yaml", "orders")
    assert set(dagbag(dags).dag_ids) == {"orders"}


def test_specs_cached_by_other_code_are_not_reused(dags_folder, tmp_path, monkeypatch):
    import json

    from airflow_dataops.dag_builder import cache as cache_module
    from airflow_dataops.dag_builder.loader import load_pipelines

    write_pipeline(dags_folder, "orders.yaml", "orders")
    cache_dir = tmp_path / "cache"
    loader = str(dags_folder / "dataops_pipelines.py")
    assert load_pipelines({}, loader, cache_dir=cache_dir)["orders"].owner == "data-team"
    # Tamper with the cached spec: the same code reuses it as it is...
    for entry in cache_dir.glob("[0-9a-f]*.json"):
        spec = json.loads(entry.read_text())
        spec["spec"]["default_args"]["owner"] = "from-the-cache"
        entry.write_text(json.dumps(spec))
    assert load_pipelines({}, loader, cache_dir=cache_dir)["orders"].owner == "from-the-cache"
    # ...other code (an upgrade, an edited editable install) validates the file again.
    monkeypatch.setattr(cache_module, "_CODE_FINGERPRINT", "other-code")
    assert load_pipelines({}, loader, cache_dir=cache_dir)["orders"].owner == "data-team"


def test_the_last_valid_version_survives_an_upgrade_and_is_rebuilt_by_the_new_code(dags_folder, tmp_path, monkeypatch):
    import json

    from airflow_dataops.dag_builder import cache as cache_module
    from airflow_dataops.dag_builder.loader import load_pipelines

    path = write_pipeline(dags_folder, "orders.yaml", "orders")
    cache_dir = tmp_path / "cache"
    loader = str(dags_folder / "dataops_pipelines.py")
    monkeypatch.setattr(cache_module, "_CODE_FINGERPRINT", "old-code")
    assert load_pipelines({}, loader, cache_dir=cache_dir)["orders"].owner == "data-team"
    for entry in cache_dir.glob("[0-9a-f]*.json"):  # marks what the old code built
        spec = json.loads(entry.read_text())
        spec["spec"]["default_args"]["owner"] = "built-by-the-old-code"
        entry.write_text(json.dumps(spec))
    path.write_text(path.read_text().replace("threshold: 1", "threshold: lots"))
    monkeypatch.setattr(cache_module, "_CODE_FINGERPRINT", "new-code")  # the upgrade
    standin = invalid_dag_id("orders.yaml")
    for attempt in ("first parse after the upgrade", "the next one"):
        dags = load_pipelines({}, loader, cache_dir=cache_dir)
        assert set(dags) == {"orders", standin}, attempt
        # the last valid version, validated and built again by the new code, not the old code's spec
        assert dags["orders"].owner == "data-team", attempt
        assert "last valid version of pipeline `orders`" in dags[standin].doc_md
    # Fixed, broken again, another upgrade: the last valid version is the latest one that validated.
    path.write_text(path.read_text().replace("threshold: lots", "threshold: 1").replace("data-team", "team-b"))
    assert load_pipelines({}, loader, cache_dir=cache_dir)["orders"].owner == "team-b"
    path.write_text(path.read_text().replace("threshold: 1", "threshold: lots"))
    monkeypatch.setattr(cache_module, "_CODE_FINGERPRINT", "newer-code")
    assert load_pipelines({}, loader, cache_dir=cache_dir)["orders"].owner == "team-b"


def test_a_last_valid_version_the_new_code_refuses_is_dropped(dags_folder, tmp_path, monkeypatch):
    from airflow_dataops.config import resolve as resolve_module
    from airflow_dataops.config.errors import ConfigError, ConfigIssue
    from airflow_dataops.dag_builder import cache as cache_module
    from airflow_dataops.dag_builder.loader import load_pipelines

    path = write_pipeline(dags_folder, "orders.yaml", "orders")
    cache_dir = tmp_path / "cache"
    loader = str(dags_folder / "dataops_pipelines.py")
    assert set(load_pipelines({}, loader, cache_dir=cache_dir)) == {"orders"}
    path.write_text(path.read_text().replace("threshold: 1", "threshold: lots"))

    def stricter(text, file, *args, **kwargs):  # the new code refuses what the old one accepted
        raise ConfigError([ConfigIssue(file, 1, 1, (), "refused by the new rules")])

    monkeypatch.setattr(resolve_module, "resolve", stricter)
    monkeypatch.setattr(cache_module, "_CODE_FINGERPRINT", "new-code")
    assert set(load_pipelines({}, loader, cache_dir=cache_dir)) == {invalid_dag_id("orders.yaml")}
