"""Claims across processes (several schedulers / triggerers / workers): exactly one winner."""

from __future__ import annotations

import multiprocessing

import pytest

ALERT = {"pipeline": "orders", "dag_id": "orders", "run_id": "run_1", "environment": "production",
         "event": "sla_miss", "subject": "sla", "tier": 0, "severity": "error", "title": "SLA missed"}


def _claim(url: str, barrier, results) -> None:
    from sqlalchemy import create_engine

    from airflow_dataops.store import alerts as store_alerts
    from airflow_dataops.store.base import sqlite_engine

    engine = sqlite_engine(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else create_engine(url)
    barrier.wait()
    results.put(store_alerts.claim(engine, ALERT, "slack:#data-alerts", "SLA missed"))
    engine.dispose()


def _race(url: str, processes: int = 6) -> list:
    from sqlalchemy import create_engine

    from airflow_dataops.store.base import ensure_schema, sqlite_engine

    engine = sqlite_engine(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else create_engine(url)
    ensure_schema(engine)
    engine.dispose()
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_claim, args=(url, barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    return [results.get(timeout=5) for _ in workers]


def test_sqlite_processes_claim_once(tmp_path):
    outcomes = _race(f"sqlite:///{tmp_path / 'results.db'}")
    assert sum(o is not None for o in outcomes) == 1


@pytest.mark.integration
def test_postgresql_processes_claim_once(pg_url):
    outcomes = _race(pg_url)
    assert sum(o is not None for o in outcomes) == 1
