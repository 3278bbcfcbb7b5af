from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import pytest


def _load_freshness_db():
    """tests/ is not a package: load the shared source helper by path (shared with tests/triggers)."""
    if "freshness_db" not in sys.modules:
        path = Path(__file__).parents[1] / "triggers" / "freshness_db.py"
        spec = importlib.util.spec_from_file_location("freshness_db", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["freshness_db"] = module
        spec.loader.exec_module(module)
    return sys.modules["freshness_db"]


freshness_db = _load_freshness_db()


@pytest.fixture()
def sqlite_src(tmp_path):
    src = freshness_db.sqlite_source(tmp_path)
    yield src
    src.close()


@pytest.fixture()
def dag_id(request):
    return f"{request.node.name[:40].replace('[', '_').replace(']', '')}_{uuid.uuid4().hex[:6]}"


@pytest.fixture()
def freshness_rows():
    """Rows of the results store's dataops_freshness table for one DAG."""
    import sqlalchemy as sa

    from airflow_dataops.store.results import ResultsStore
    from airflow_dataops.store.schema import freshness

    def rows(dag_id: str) -> list[dict]:
        store = ResultsStore.default()
        with store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(freshness).where(freshness.c.dag_id == dag_id))]

    return rows
