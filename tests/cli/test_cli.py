"""`airflow-dataops` as CI and people use it: real subprocesses, real files, the real store."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import sqlalchemy as sa

from airflow_dataops.config.yaml_loader import load_yaml

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "config" / "bad"


def cli(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(AIRFLOW_HOME=str(home))
    env.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
    return subprocess.run([sys.executable, "-m", "airflow_dataops.cli.main", *args], env=env, cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=120)


def test_validate_passes_the_examples_and_needs_no_airflow_database(tmp_path):
    out = cli("validate", str(REPO / "dags"), home=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 pipeline file(s), ok" in out.stderr
    assert not (tmp_path / "airflow.db").exists()  # no metadata database was created or needed


def test_validate_prints_every_error_as_file_line_col_and_fails(tmp_path):
    folder = tmp_path / "dags"
    shutil.copytree(BAD, folder)
    out = cli("validate", "dags", home=tmp_path, cwd=tmp_path)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert "dags/unknown_key.yaml:7:5: quality_checks[0].treshold: unknown key `treshold`: did you mean `threshold`?" in lines
    assert any(line.startswith("dags/bad_override.yaml:11:9: environments[1].quality_checks[0].min:") for line in lines)
    for line in lines:
        file, line_no, col, rest = line.split(":", 3)
        assert file.startswith("dags/") and int(line_no) > 0 and int(col) > 0 and rest.startswith(" ")


def test_validate_env_requires_the_environment_ci_deploys_to(tmp_path):
    ok = cli("validate", str(REPO / "dags"), "--env", "production", home=tmp_path)
    assert ok.returncode == 0, ok.stdout
    missing = cli("validate", str(BAD / "missing_environment.yaml"), "--env", "production", home=tmp_path)
    assert missing.returncode == 1
    assert "no environment 'production' (defines: staging)" in missing.stdout


def test_validate_uses_the_airflow_dags_folder_by_default(tmp_path):
    (tmp_path / "dags").mkdir()
    shutil.copy(BAD / "duplicate_key.yaml", tmp_path / "dags" / "p.yaml")
    (tmp_path / "airflow.cfg").write_text(f"[core]\ndags_folder = {tmp_path / 'dags'}\n")
    out = cli("validate", home=tmp_path)
    assert out.returncode == 1 and "duplicate key 'owner'" in out.stdout


def test_render_shows_schedule_tasks_checks_and_alerts_per_environment(tmp_path):
    prod = cli("render", "orders_daily", "--env", "production", "--path", str(REPO / "dags"), home=tmp_path)
    assert prod.returncode == 0, prod.stderr
    assert "schedule:  0 5 * * * (UTC, CronTriggerTimetable)" in prod.stdout
    assert "- sla_completeness [completeness, fail]" in prod.stdout
    assert "escalation: after 900s to connection analytics-oncall" in prod.stdout
    dev = cli("render", "orders_daily", "--env", "development", "--path", str(REPO / "dags"), home=tmp_path)
    assert "schedule:  manual (no schedule)" in dev.stdout and "notifications off" in dev.stdout
    spec = json.loads(cli("render", "payments_daily", "--json", "--path", str(REPO / "dags"), home=tmp_path).stdout)
    assert [t["id"] for t in spec["tasks"]] == ["build_payments_enriched", "announce"]
    unknown = cli("render", "nope", "--path", str(REPO / "dags"), home=tmp_path)
    assert unknown.returncode == 2 and "no pipeline named 'nope'" in unknown.stderr


def test_validate_and_render_report_hostile_files_as_one_line_each_never_a_traceback(tmp_path):
    folder = tmp_path / "dags"
    (folder / "team").mkdir(parents=True)
    (folder / "latin1.yaml").write_bytes(b"pipeline:\n  name: caf\xe9\n")
    (folder / "deep.yaml").write_text("pipeline:\n  name: deep\n  tags: " + "[" * 5000 + "]" * 5000 + "\n")
    (folder / "a.yaml").write_text("version: 1\npipeline:\n  name: orders\n")
    (folder / "team" / "b.yaml").write_text("pipeline:\n  owner: me\n  name: orders\n")
    out = cli("validate", "dags", home=tmp_path, cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr, out.stderr
    assert sorted(out.stdout.splitlines()) == [
        "dags/a.yaml:3:3: pipeline.name: 'orders' is also the name of dags/team/b.yaml:3: pipeline names must be "
        "unique (the DAG id): rename one",
        "dags/deep.yaml:3:58: pipeline.tags: the file is nested deeper than 50 levels: a pipeline file needs only a "
        "few, flatten it",
        "dags/latin1.yaml:2:12: (top level): the file is not UTF-8 text (byte 0xe9 here): save it as UTF-8",
        "dags/team/b.yaml:3:3: pipeline.name: 'orders' is also the name of dags/a.yaml:3: pipeline names must be "
        "unique (the DAG id): rename one",
    ]
    # render passes over the files it cannot parse, and says they exist
    good = cli("render", "orders", "--path", "dags", home=tmp_path, cwd=tmp_path)
    assert good.returncode == 0 and "DAG orders" in good.stdout, good.stderr
    missing = cli("render", "deep", "--path", "dags", home=tmp_path, cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "2 file(s) there do not parse (dags/deep.yaml, dags/latin1.yaml): `airflow-dataops validate` shows why" in missing.stderr
    (folder / "a.yaml").write_text("pipeline:\n  name: orders\n  retries: lots\n")
    broken = cli("render", "orders", "--path", "dags", home=tmp_path, cwd=tmp_path)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "dags/a.yaml:3:3: pipeline.retries: expected a whole number, got 'lots'" in broken.stderr


def test_oversized_files_are_refused_when_they_are_pipeline_files_and_skipped_when_not(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "huge.yaml").write_text("pipeline:\n  name: huge\n  description: " + "x" * (1024 * 1024) + "\n")
    (folder / "huge_data.yaml").write_text("rows:\n" + "  - 1\n" * 200_000)  # not a pipeline file
    out = cli("validate", "dags", home=tmp_path, cwd=tmp_path)
    assert out.returncode == 1 and "1 pipeline file(s), 1 error(s)" in out.stderr
    assert out.stdout.splitlines() == ["dags/huge.yaml:1:1: (top level): file is 1,048,615 bytes, over the "
                                       "1,048,576-byte limit for a pipeline file: split it"]
    named = cli("validate", "dags/huge_data.yaml", home=tmp_path, cwd=tmp_path)  # named: it is meant as one
    assert named.returncode == 1 and "dags/huge_data.yaml:1:1: (top level): file is 1,200,006 bytes" in named.stdout


def test_an_integer_too_long_for_python_is_an_error_in_validate_and_render_never_a_traceback(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "big.yaml").write_text("pipeline:\n  name: big\n  retries: " + "9" * 5000 + "\n")
    out = cli("validate", "dags", home=tmp_path, cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "unexpectedly" not in out.stdout
    assert out.stdout.splitlines() == ["dags/big.yaml:3:12: pipeline.retries: integer too long (5,000 digits): no "
                                       "setting takes a number this big: shorten it, or quote it if it is meant as text"]
    render = cli("render", "big", "--path", "dags", home=tmp_path, cwd=tmp_path)
    assert render.returncode == 1 and "Traceback" not in render.stderr
    assert "dags/big.yaml:3:12: pipeline.retries: integer too long" in render.stderr


def test_validate_checks_file_paths_against_the_dags_folder_and_render_names_them(tmp_path):
    folder = tmp_path / "dags"
    (folder / "team" / "sql").mkdir(parents=True)
    (folder / "shared").mkdir()
    (folder / "shared" / "load.sql").write_text("select 1")
    (folder / "team" / "sql" / "check.sql").write_text("select 1 where false")
    (folder / "team" / "p.yaml").write_text(
        "pipeline:\n  name: p\ntasks:\n  - id: load\n    sql: ../shared/load.sql\n"
        "quality_checks:\n  - type: sql\n    sql: sql/check.sql\n"
    )
    (tmp_path / "airflow.cfg").write_text(f"[core]\ndags_folder = {folder}\n")
    # Inside the dags folder, `../shared` is fine, whether CI validates the folder or the one file...
    assert cli("validate", "dags", home=tmp_path, cwd=tmp_path).returncode == 0
    assert cli("validate", "dags/team/p.yaml", home=tmp_path, cwd=tmp_path).returncode == 0
    spec = json.loads(cli("render", "p", "--json", "--path", "dags", home=tmp_path, cwd=tmp_path).stdout)
    assert spec["tasks"][0]["sql_file"] == "shared/load.sql"  # relative to the dags folder: one meaning only
    # ...leaving it is an error.
    (folder / "team" / "p.yaml").write_text((folder / "team" / "p.yaml").read_text().replace("../shared", "../../x"))
    out = cli("validate", "dags", home=tmp_path, cwd=tmp_path)
    assert out.returncode == 1
    assert "dags/team/p.yaml:5:5: tasks[0].sql: SQL file '../../x/load.sql' is outside the dags folder" in out.stdout


def test_schema_is_a_json_schema_the_examples_satisfy_and_bad_files_violate(tmp_path):
    out = cli("schema", home=tmp_path)
    schema = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for example in (REPO / "dags").rglob("*.yaml"):
        data = load_yaml(example.read_text()).data
        assert not list(validator.iter_errors(data)), example
    unknown = load_yaml((BAD / "unknown_key.yaml").read_text()).data
    assert list(validator.iter_errors(unknown))


def test_ack_acknowledges_open_alerts_and_records_who(tmp_path):
    from airflow_dataops.store.base import ensure_schema, sqlite_engine
    from airflow_dataops.store.schema import alerts, audit

    engine = sqlite_engine(tmp_path / "dataops_results.db")
    ensure_schema(engine)
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        for run_id in ("run_1", "run_2"):
            conn.execute(sa.insert(alerts).values(
                pipeline="orders_daily", dag_id="orders_daily", run_id=run_id, environment="production",
                event="check_failed", subject="row_count", tier=0, channel="slack:#orders-alerts",
                severity="error", status="sent", created_at=now))
    # This machine's [dataops] environment is development: production's alerts are not its to ack,
    # and it says where the matching ones are.
    out = cli("ack", "orders_daily", "--run", "run_1", "--by", "mallory", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "acknowledged 0 open alert(s) of orders_daily (run run_1) in development as mallory" in out.stdout
    assert "open alerts matching that are in environment(s) production: pass --env" in out.stderr
    out = cli("ack", "orders_daily", "--run", "run_1", "--env", "production", "--by", "alice", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "acknowledged 1 open alert(s) of orders_daily (run run_1) in production as alice" in out.stdout
    assert f"results store: embedded SQLite file {tmp_path / 'dataops_results.db'}" in out.stderr
    out = cli("ack", "orders_daily", "--env", "production", "--by", "bob", home=tmp_path)
    assert "acknowledged 1 open alert(s) of orders_daily (all runs) in production as bob" in out.stdout
    with engine.connect() as conn:
        acked = dict(conn.execute(sa.select(alerts.c.run_id, alerts.c.acknowledged_by)).all())
        actors = sorted(conn.execute(sa.select(audit.c.actor).where(audit.c.kind == "ack")).scalars())
    engine.dispose()
    assert acked == {"run_1": "alice", "run_2": "bob"}
    assert actors == ["alice", "bob"]


def _open_alert(engine, dag_id: str, run_id: str) -> None:
    from airflow_dataops.store.base import ensure_schema
    from airflow_dataops.store.schema import alerts

    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(alerts).values(
            pipeline=dag_id, dag_id=dag_id, run_id=run_id, environment="production", event="sla_miss",
            subject="sla", tier=0, channel="slack:#orders-alerts", severity="error", status="sent",
            created_at=dt.datetime.now(dt.timezone.utc)))


def test_ack_without_any_results_store_says_so_and_creates_nothing(tmp_path):
    """No results connection anywhere and no embedded file on this machine: "acknowledged 0" would
    hide that on-call is still paged from another store. It stops with the places it looked."""
    for command in (["ack", "orders_daily", "--by", "carol"], ["purge"]):
        out = cli(*command, home=tmp_path)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "no results store found: the connection 'dataops_results'" in out.stderr
        assert "Airflow's metadata database" in out.stderr and "acknowledged" not in out.stdout
    assert not (tmp_path / "dataops_results.db").exists()


def test_ack_and_purge_find_a_results_connection_stored_in_airflows_metadata_database(tmp_path, airflow_db):
    """The connection was created in the UI (Admin > Connections): it lives only in the metadata
    database, which a plain process does not read; the CLI looks it up as Airflow's own CLI does."""
    import uuid

    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_dataops.store.base import sqlite_engine

    conn_id = f"results_{uuid.uuid4().hex[:8]}"
    results = tmp_path / "team-results.db"
    with create_session() as session:
        session.add(Connection(conn_id=conn_id, conn_type="sqlite", host=str(results)))
    engine = sqlite_engine(results)
    _open_alert(engine, "orders_daily", "run_9")
    home = tmp_path / "cli-home"
    home.mkdir()
    env_home = {"AIRFLOW__DATAOPS__RESULTS_CONN_ID": conn_id, "AIRFLOW__DATAOPS__ENVIRONMENT": "production"}
    try:
        os.environ.update(env_home)
        out = cli("ack", "orders_daily", "--by", "erin", home=home)
        purge = cli("purge", home=home)
    finally:
        for key in env_home:
            os.environ.pop(key)
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"results store: connection '{conn_id}' (sqlite)" in out.stderr
    assert "acknowledged 1 open alert(s) of orders_daily (all runs) in production as erin" in out.stdout
    assert purge.returncode == 0 and f"results store: connection '{conn_id}' (sqlite)" in purge.stderr
    assert not (home / "dataops_results.db").exists()  # the embedded store was never opened
    with engine.connect() as conn:
        from airflow_dataops.store.schema import alerts

        assert conn.execute(sa.select(alerts.c.acknowledged_by)).scalar() == "erin"
    engine.dispose()


def test_validate_parses_each_file_once(tmp_path, monkeypatch, capsys, yaml_parses):
    from airflow_dataops.cli.main import main

    made = yaml_parses
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    shutil.copy(REPO / "dags" / "orders_daily.yaml", tmp_path / "orders_daily.yaml")
    assert main(["validate", str(tmp_path / "orders_daily.yaml")]) == 0, capsys.readouterr()
    assert len(made) == 1
