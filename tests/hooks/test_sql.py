"""Connection -> engine: one per process and connection settings; a forked child never shares the
parent's pooled connections; a changed connection gets a new engine."""

from __future__ import annotations

import json
import multiprocessing as mp

import sqlalchemy as sa

from airflow_dataops.hooks.sql import forget_engine, get_engine


def _child(parent_engine_id: int, queue) -> None:
    engine = get_engine("hooks_test_db")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    queue.put(id(engine) != parent_engine_id)


def test_a_forked_process_builds_its_own_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HOOKS_TEST_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "a.db")}))
    parent = get_engine("hooks_test_db")
    assert get_engine("hooks_test_db") is parent
    queue = mp.get_context("fork").Queue()
    child = mp.get_context("fork").Process(target=_child, args=(id(parent), queue))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and queue.get(timeout=5) is True
    forget_engine("hooks_test_db")


def test_a_changed_connection_gets_a_new_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HOOKS_TEST_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "a.db")}))
    first = get_engine("hooks_test_db")
    monkeypatch.setenv("AIRFLOW_CONN_HOOKS_TEST_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "b.db")}))
    second = get_engine("hooks_test_db")
    assert second is not first and second.url.database.endswith("b.db")
    forget_engine("hooks_test_db")
