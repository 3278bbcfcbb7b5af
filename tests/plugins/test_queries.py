"""Store queries behind the page, on SQLite and on real PostgreSQL, against the same seeded world."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from airflow_dataops.plugins import queries
from airflow_dataops.store.base import sqlite_engine

from tests.plugins.seeding import demo_store, result, seed


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "results.db")
    else:
        engine = create_engine(request.getfixturevalue("pg_url"))
    yield engine
    engine.dispose()


ALL = {"orders_daily", "customers_hourly", "inventory_sync", "secret_pipeline"}


def test_overview_summaries_on_both_databases(engine):
    world = demo_store(engine)
    with engine.connect() as conn:
        page = queries.overview(conn, ALL - {"secret_pipeline"}, now=world["now"])
    assert [p["dag_id"] for p in page["items"]] == world["visible"]
    orders = page["items"][2]
    assert orders["counts"] == {"passed": 1, "warned": 1, "failed": 1, "error": 0}
    assert (orders["on_time_runs"], orders["runs_30d"]) == world["orders_on_time"]
    assert orders["open_alerts"] == 1 and orders["open_escalations"] == 1
    assert orders["freshness"]["fresh"] is False and orders["health"] == "failing"


def test_loose_scan_finds_every_pipeline_with_any_stored_row(engine):
    demo_store(engine)
    seed(engine, fresh=[{
        "pipeline": "sensor_only", "dag_id": "sensor_only", "run_id": "r1", "task_id": "wait", "source": "sensor",
        "table_name": "t", "column_name": "c", "newest": None, "observed_at": __import__("datetime").datetime.now(),
        "lag_seconds": None, "max_age_seconds": 60.0, "fresh": False,
    }])
    with engine.connect() as conn:
        found = queries.pipeline_dag_ids(conn, ALL | {"sensor_only", "not_in_store"})
        page = queries.summaries(conn, ["sensor_only"])
    assert found == sorted(ALL | {"sensor_only"})
    assert page[0]["health"] == "stale" and page[0]["freshness"]["current_lag_seconds"] is None


def test_run_history_and_results_paginate(engine):
    world = demo_store(engine)
    with engine.connect() as conn:
        first = queries.run_history(conn, "orders_daily", limit=4)
        rest = queries.run_history(conn, "orders_daily", limit=10, offset=4)
        results = queries.run_results(conn, "orders_daily", world["latest_run"], limit=1)
    assert first["total"] == 10 and len(first["items"]) == 4 and len(rest["items"]) == 6
    assert first["items"][0]["run_id"] == world["latest_run"]
    assert {r["run_id"] for r in first["items"]}.isdisjoint(r["run_id"] for r in rest["items"])
    assert results["total"] == 3 and results["items"][0]["check_name"] == "row_count"  # failures first


def test_a_run_with_a_failed_fail_check_is_not_on_time(engine):
    """On-time = met the SLA and passed every fail check: one failed check makes the run late."""
    import datetime as dt

    at = dt.datetime.now(dt.timezone.utc)
    seed(engine, results=[result("p", "r1", "row_count", "passed", at), result("p", "r1", "null_check__x", "failed", at)])
    with engine.connect() as conn:
        summary = queries.summaries(conn, ["p"])[0]
    assert summary["counts"] == {"passed": 1, "warned": 0, "failed": 1, "error": 0}
    assert summary["on_time_rate"] == 0.0 and summary["runs_30d"] == 1


def test_summaries_of_more_pipelines_than_one_union_holds(engine, monkeypatch):
    import datetime as dt

    monkeypatch.setattr(queries, "UNION_CHUNK", 3)
    at = dt.datetime.now(dt.timezone.utc)
    names = [f"p{i:02d}" for i in range(8)]
    seed(engine, results=[result(n, f"run_{n}", "row_count", "passed", at) for n in names])
    with engine.connect() as conn:
        items = queries.summaries(conn, names)
    assert [i["last_run_id"] for i in items] == [f"run_{n}" for n in names]
