"""Shared test set-up.

Airflow reads its environment at import time, so AIRFLOW_HOME and friends are set here, before
any test module imports Airflow. Each pytest session gets a fresh AIRFLOW_HOME.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="dataops-test-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR", str(_HOME / "dataops_cache"))
# dag.test() runs a trigger inline, with no executor whose late report could race the resume: no
# hold. Real-process clusters get no AIRFLOW* variable from here, so they keep the default (10 s).
os.environ.setdefault("AIRFLOW__DATAOPS__RESUME_SETTLE_SECONDS", "0")

PG_HOST, PG_PORT = "127.0.0.1", 5432


def postgres_available() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    """Unmarked tests under tests/integration are refused: mark them `integration` or move them."""
    for item in items:
        if "tests/integration" in str(item.fspath) and not item.get_closest_marker("integration"):
            raise pytest.UsageError(f"{item.nodeid}: tests under tests/integration must carry @pytest.mark.integration")


@pytest.fixture(autouse=True)
def _parsing_context_does_not_leak():
    """Airflow 3.1's dag.test() parses its bundle inside ``_airflow_parsing_context_manager``, which
    sets ``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` and, when it was unset before, never removes it: every
    later parse in this process would build only that DAG. A real dag-processor parses in a fresh
    process each time, so undo it after each test."""
    names = ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID")
    before = {name: os.environ.get(name) for name in names}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home):
    """A migrated Airflow metadata database (SQLite) for dag.test() and DagBag tests."""
    from airflow.utils import db

    db.initdb()
    return airflow_home


@pytest.fixture()
def pg_url():
    """A fresh, empty PostgreSQL database for one test; dropped afterwards.

    Skips with a printed reason where PostgreSQL is not running (CI always has it)."""
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432, and CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432: skipping the PostgreSQL test")
    import sqlalchemy as sa

    name = f"dataops_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture()
def load_dag(tmp_path, monkeypatch, airflow_db):
    """Write DAG source into its own dags-folder bundle and load it: Airflow 3.3's dag.test()
    serialises the DAG by parsing the bundle that owns it, so an inline DAG is refused."""
    from tests.support.compat import DagBag

    folder = tmp_path / "dags"
    folder.mkdir()
    bundle = [{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
               "kwargs": {"path": str(folder)}}]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundle))

    def load(dag_id: str, source: str):
        path = folder / f"{dag_id}.py"
        path.write_text(textwrap.dedent(source))
        bag = DagBag(dag_folder=str(path))
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(dag_id)

    return load


@pytest.fixture()
def yaml_parses(monkeypatch):
    """A list that gains an entry each time a pipeline file's YAML parser is made (one per parse)."""
    from airflow_dataops.config import yaml_loader

    made: list[int] = []

    class Counting(yaml_loader._Loader):
        def __init__(self, stream):
            made.append(1)
            super().__init__(stream)

    monkeypatch.setattr(yaml_loader, "_Loader", Counting)
    return made
