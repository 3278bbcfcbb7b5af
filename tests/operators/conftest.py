"""dag.test() fixtures for the data-quality operator: DAG files in their own bundle, a SQLite
warehouse reachable as an Airflow connection (AIRFLOW_CONN_<ID>), and the results store rows."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa


@pytest.fixture()
def dag_id(request):
    return f"{request.node.name[:40].replace('[', '_').replace(']', '')}_{uuid.uuid4().hex[:6]}"


@pytest.fixture()
def warehouse(tmp_path):
    """A SQLite file with the orders table (recent timestamps), as connection ``<conn_id>``."""
    from airflow_dataops.hooks.sql import forget_engine
    from tests.engine.conftest import fill

    path = tmp_path / "warehouse.db"
    engine = fill(sa.create_engine(f"sqlite:///{path}"))
    with engine.begin() as conn:  # make the rows recent: the operator's "now" is the real clock
        conn.exec_driver_sql("UPDATE orders SET updated_at = datetime('now', '-' || id || ' minutes')")
    conn_id = f"wh_{uuid.uuid4().hex[:10]}"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = f"sqlite:///{path}"
    yield conn_id
    forget_engine(conn_id)
    engine.dispose()
    os.environ.pop(f"AIRFLOW_CONN_{conn_id.upper()}", None)


@pytest.fixture()
def stored():
    """Results-store rows of one DAG run."""
    from airflow_dataops.store.results import ResultsStore

    def rows(dag_id: str, run_id: str) -> dict[str, dict]:
        return {r["check_name"]: r for r in ResultsStore.default().results_for_run(dag_id, run_id)}

    return rows
