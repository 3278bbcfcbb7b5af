"""Claims across processes (several schedulers / triggerers / workers): exactly one winner, for a
new alert and for one whose sender died holding the claim."""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest
import sqlalchemy as sa

ALERT = {"pipeline": "orders", "dag_id": "orders", "run_id": "run_1", "environment": "production",
         "event": "sla_miss", "subject": "sla", "tier": 0, "severity": "error", "title": "SLA missed"}


def _claim_one(store_alerts, engine) -> int | None:
    """The row id this claimer won, else None."""
    won = store_alerts.claim_many(engine, [{**ALERT, "summary": "SLA missed"}], "slack:#data-alerts")
    return won[0][1] if won else None


def _claim(url: str, barrier, results) -> None:
    from sqlalchemy import create_engine

    from airflow_dataops.store import alerts as store_alerts
    from airflow_dataops.store.base import sqlite_engine

    engine = sqlite_engine(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else create_engine(url)
    barrier.wait()
    results.put(_claim_one(store_alerts, engine))
    engine.dispose()


def _race(url: str, processes: int = 6, held_for: dt.timedelta | None = None) -> list:
    """``processes`` claimers at once; with ``held_for`` the alert is already claimed, that long ago,
    by a sender that never finished."""
    from sqlalchemy import create_engine

    from airflow_dataops.store import alerts as store_alerts
    from airflow_dataops.store.base import ensure_schema, sqlite_engine
    from airflow_dataops.store.schema import alerts as alerts_table

    engine = sqlite_engine(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else create_engine(url)
    ensure_schema(engine)
    if held_for is not None:
        with engine.begin() as conn:
            conn.execute(sa.delete(alerts_table))
        held = _claim_one(store_alerts, engine)
        with engine.begin() as conn:
            conn.execute(sa.update(alerts_table).where(alerts_table.c.id == held)
                         .values(claimed_at=store_alerts.utcnow() - held_for))
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


@pytest.mark.parametrize("url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_a_claim_abandoned_mid_send_is_taken_over_by_exactly_one_sender(url, tmp_path, request):
    from airflow_dataops.store.alerts import STALE_CLAIM

    url = f"sqlite:///{tmp_path / 'results.db'}" if url == "sqlite" else request.getfixturevalue("pg_url")
    young = _race(url, held_for=STALE_CLAIM / 2)  # its sender may still be retrying: leave it
    assert young == [None] * 6

    stale = _race(url, held_for=STALE_CLAIM + dt.timedelta(minutes=1))
    winners = [o for o in stale if o is not None]
    assert len(winners) == 1, stale


def _claim_three(url: str, barrier, results) -> None:
    from sqlalchemy import create_engine

    from airflow_dataops.store import alerts as store_alerts
    from airflow_dataops.store.base import sqlite_engine

    engine = sqlite_engine(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else create_engine(url)
    subjects = [{**ALERT, "event": "check_failed", "subject": name} for name in ("c_b", "c_a", "c_c")]
    barrier.wait()
    won = store_alerts.claim_many(engine, subjects, "slack:#data-alerts")
    results.put(sorted(alert["subject"] for alert, _ in won))
    engine.dispose()


@pytest.mark.parametrize("url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_processes_claiming_one_message_of_three_subjects_give_it_to_one_sender(url, tmp_path, request):
    """One message per (run, event, tier): six processes claim the same three checks at once; one
    wins all three, the others win nothing (never a split into two messages)."""
    from sqlalchemy import create_engine

    from airflow_dataops.store.base import ensure_schema, sqlite_engine

    url = f"sqlite:///{tmp_path / 'results.db'}" if url == "sqlite" else request.getfixturevalue("pg_url")
    engine = sqlite_engine(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else create_engine(url)
    ensure_schema(engine)
    engine.dispose()
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(6), ctx.Queue()
    workers = [ctx.Process(target=_claim_three, args=(url, barrier, results)) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    outcomes = sorted((results.get(timeout=5) for _ in workers), key=len)
    assert outcomes == [[]] * 5 + [["c_a", "c_b", "c_c"]], outcomes
