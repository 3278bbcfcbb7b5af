"""Store queries behind the page, on SQLite and on real PostgreSQL, against the same seeded world."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

import datetime as dt

from sqlalchemy import select, text

from airflow_dataops.plugins import history, queries
from airflow_dataops.store.base import sqlite_engine
from airflow_dataops.store.schema import alerts, audit, check_results, freshness

from tests.plugins.seeding import _alert, _audit, demo_store, result, seed


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
        "table_name": "t", "column_name": "c", "newest": None, "observed_at": dt.datetime.now(),
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
        first = history.run_history(conn, "orders_daily", limit=4)
        rest = history.run_history(conn, "orders_daily", limit=10, offset=4)
        results = history.run_results(conn, "orders_daily", world["latest_run"], limit=1)
    assert first["total"] == 10 and len(first["items"]) == 4 and len(rest["items"]) == 6
    assert first["items"][0]["run_id"] == world["latest_run"]
    assert {r["run_id"] for r in first["items"]}.isdisjoint(r["run_id"] for r in rest["items"])
    assert results["total"] == 3 and results["items"][0]["check_name"] == "row_count"  # failures first


def test_a_run_with_a_failed_fail_check_is_not_on_time(engine):
    """On-time = met the SLA and passed every fail check: one failed check makes the run late."""
    at = dt.datetime.now(dt.timezone.utc)
    seed(engine, results=[result("p", "r1", "row_count", "passed", at), result("p", "r1", "null_check__x", "failed", at)])
    with engine.connect() as conn:
        summary = queries.summaries(conn, ["p"])[0]
    assert summary["counts"] == {"passed": 1, "warned": 0, "failed": 1, "error": 0}
    assert summary["on_time_rate"] == 0.0 and summary["runs_30d"] == 1


def test_summaries_of_more_pipelines_than_one_union_holds(engine, monkeypatch):
    monkeypatch.setattr(queries, "UNION_CHUNK", 3)
    at = dt.datetime.now(dt.timezone.utc)
    names = [f"p{i:02d}" for i in range(8)]
    seed(engine, results=[result(n, f"run_{n}", "row_count", "passed", at) for n in names])
    with engine.connect() as conn:
        items = queries.summaries(conn, names)
    assert [i["last_run_id"] for i in items] == [f"run_{n}" for n in names]


def _fresh(dag_id, run, table, column, at, lag, **extra):
    row = {"pipeline": dag_id, "dag_id": dag_id, "run_id": run, "task_id": extra.pop("task_id", "t"),
           "environment": "production", "source": "check",
           "table_name": table, "column_name": column, "newest": at - dt.timedelta(seconds=lag), "observed_at": at,
           "lag_seconds": float(lag), "max_age_seconds": 3600.0, "fresh": lag < 3600}
    row.update(extra)
    return row


def test_latest_freshness_is_the_newest_row_of_every_table_and_column(engine):
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    rows = [_fresh("p", f"r{i}", "orders", "updated_at", t0 + dt.timedelta(hours=i), 60 * i) for i in range(5)]
    rows += [_fresh("p", "r0", "customers", "updated_at", t0, 7200)]  # observed once, long ago: still its latest
    rows += [_fresh("p", "r4", None, None, t0 + dt.timedelta(hours=4), 5, task_id="asset")]  # NULL table and column
    rows += [_fresh("p", "r4", "orders", "updated_at", t0 + dt.timedelta(hours=4), 999, task_id="sensor")]  # a tie: newer id wins
    rows += [_fresh("q", "r9", "orders", "updated_at", t0 + dt.timedelta(hours=9), 1)]
    seed(engine, fresh=rows)
    with engine.connect() as conn:
        latest = queries.latest_freshness(conn, ["p", "q"])
    got = {(r["dag_id"], r["table_name"], r["column_name"]): (r["run_id"], r["lag_seconds"]) for r in latest}
    assert got == {
        ("p", "orders", "updated_at"): ("r4", 999.0),
        ("p", "customers", "updated_at"): ("r0", 7200.0),
        ("p", None, None): ("r4", 5.0),
        ("q", "orders", "updated_at"): ("r9", 1.0),
    }
    with engine.connect() as conn:
        summary = queries.summaries(conn, ["p"], now=t0 + dt.timedelta(hours=5))[0]
    assert summary["freshness"]["table_name"] == "customers"  # the stalest against its SLA


def test_on_time_counts_airflows_runs_when_given(engine, production, monkeypatch):
    now = dt.datetime(2026, 3, 31, tzinfo=dt.timezone.utc)
    seed(engine, results=[result("p", "checked", "row_count", "passed", now - dt.timedelta(days=1)),
                          result("p", "store_only", "row_count", "passed", now - dt.timedelta(days=2)),
                          result("p", "running_bad", "row_count", "failed", now)],
         alert_rows=[_alert("p", "late", "sla_miss", "sla", 0, "none", now - dt.timedelta(days=1))])
    asked = []

    def airflow_runs(dag_ids, since):
        asked.append((list(dag_ids), since))
        return [("p", "checked", "success"), ("p", "failed_early", "failed"), ("p", "late", "success"),
                ("p", "running_ok", "running"), ("p", "running_bad", "running"), ("p", "queued", "queued")]

    with engine.connect() as conn:
        without = queries.summaries(conn, ["p"], now=now)[0]
        with_airflow = queries.summaries(conn, ["p"], now=now, airflow_runs=airflow_runs)[0]
    assert (without["on_time_runs"], without["runs_30d"]) == (2, 4)  # checked, store_only / + running_bad, late
    # + failed_early (no results at all); running_ok and queued are not decided yet.
    assert (with_airflow["on_time_runs"], with_airflow["runs_30d"]) == (2, 5)
    assert asked == [(["p"], now - dt.timedelta(days=30))]
    # Another deployment (staging) shows p's production rows: its own Airflow runs are not p's there.
    monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", "staging")
    with engine.connect() as conn:
        elsewhere = queries.summaries(conn, ["p"], now=now, airflow_runs=airflow_runs)[0]
    assert elsewhere["environment"] == "production" and (elsewhere["on_time_runs"], elsewhere["runs_30d"]) == (2, 4)
    assert len(asked) == 1


def test_incidents_put_old_open_alerts_first_and_group_their_messages(engine):
    now = dt.datetime(2026, 3, 31, tzinfo=dt.timezone.utc)
    rows = [_alert("p", "old", "check_failed", "row_count", 0, ch, now - dt.timedelta(days=5)) for ch in ("a", "b")]
    rows += [_alert("p", "old", "check_failed", "row_count", 1, "oncall", now - dt.timedelta(days=5, hours=-1))]
    rows += [_alert("p", f"new{i}", "check_failed", "row_count", 0, "a", now - dt.timedelta(hours=i),
                    resolved_at=now, resolution="recovered") for i in range(30)]
    seed(engine, alert_rows=rows)
    with engine.connect() as conn:
        page = history.incidents(conn, "p", limit=5)
        open_only = history.incidents(conn, "p", open_only=True)
        last = history.incidents(conn, "p", limit=5, offset=30)
    assert page["total"] == 31 and page["items"][0]["run_id"] == "old" and page["items"][0]["escalated"]
    assert [m["channel"] for m in page["items"][0]["messages"]] == ["a", "b", "oncall"]
    assert [i["run_id"] for i in page["items"][1:]] == ["new0", "new1", "new2", "new3"]
    assert open_only["total"] == 1 and last["items"][0]["run_id"] == "new29"


def _plan(conn, stmt) -> str:
    compiled = stmt.compile(conn, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "sqlite":
        return "\n".join(r[-1] for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    return "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {compiled}")))


def _seed_many(engine, pipelines=100, runs=40):
    """Enough rows (and statistics) that PostgreSQL's planner picks what it would on a real store."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    results, fresh, alert_rows, audit_rows = [], [], [], []
    for p in range(pipelines):
        dag = f"p{p:03d}"
        for r in range(runs):
            at = t0 + dt.timedelta(hours=6 * r)
            results += [result(dag, f"r{r}", f"check_{c}", "passed", at) for c in range(4)]
            fresh += [_fresh(dag, f"r{r}", f"t{t}", "c", at, 60) for t in range(2)]
            alert_rows.append(_alert(dag, f"r{r}", "check_failed", "check_0", 0, "slack:#a", at))
            audit_rows.append(_audit(dag, f"r{r}", "alert", "check_failed", "slack:#a", "sent", None, at))
    seed(engine, results=results, fresh=fresh, alert_rows=alert_rows, audit_rows=audit_rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))


def test_every_pipeline_view_query_reads_an_index_led_by_dag_id(engine):
    """EXPLAIN on SQLite and PostgreSQL: one pipeline's view reads indexes led by dag_id, never a
    full scan of a store table, and the paged lists need no sort."""
    from sqlalchemy import desc, func, tuple_

    _seed_many(engine)
    cr, fr, al, au = check_results.c, freshness.c, alerts.c, audit.c
    page_ids = [f"p{p:03d}" for p in range(10, 15)]  # 5% of the pipelines, as 50 of 1,000 on an overview page
    env = "production"  # every view reads one pipeline in one environment (queries.shown_environments)
    statements = {
        "audit page": (select(audit).where(au.dag_id == "p042", au.environment == env).order_by(desc(au.at), desc(au.id))
                       .limit(50), "ix_dataops_audit_dag_time"),
        "audit count": (select(func.count()).select_from(audit).where(au.dag_id == "p042", au.environment == env),
                        "ix_dataops_audit_dag_time"),
        "check history": (select(check_results).where(cr.dag_id == "p042", cr.environment == env, cr.check_name == "check_1")
                          .order_by(desc(cr.checked_at)).limit(30), "ix_dataops_results_dag_check_time"),
        "freshness history": (select(freshness).where(fr.dag_id == "p042", fr.environment == env)
                              .order_by(desc(fr.observed_at), desc(fr.id)).limit(30), "ix_dataops_freshness_dag_time"),
        "latest freshness": (select(fr.dag_id, fr.table_name, fr.column_name, func.max(fr.observed_at))
                             .where(tuple_(fr.dag_id, fr.environment).in_([(d, env) for d in page_ids]))
                             .group_by(fr.dag_id, fr.environment, fr.table_name, fr.column_name),
                             "ix_dataops_freshness_"),  # _latest (index-only) or _dag_time: PostgreSQL's choice
        "alerts": (select(alerts).where(al.dag_id == "p042", al.environment == env)
                   .order_by(desc(al.created_at), desc(al.id)).limit(50), "ix_dataops_alerts_"),
    }
    with engine.connect() as conn:
        for name, (stmt, index) in statements.items():
            plan = _plan(conn, stmt)
            assert index in plan, f"{name}: {plan}"
            assert "Seq Scan" not in plan, f"{name}: {plan}"
            full_scans = [line for line in plan.splitlines()  # (a VALUES list of (dag_id, environment) is no table)
                          if line.startswith("SCAN ") and " USING " not in line and "CONSTANT ROWS" not in line]
            assert full_scans == [], f"{name}: {plan}"
