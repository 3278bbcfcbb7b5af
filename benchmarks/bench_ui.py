"""Benchmark of the Data Quality page: overview and pipeline view over a large results store.

Full run (by hand): 1,000 pipelines x 100 runs x 10 checks = 1,000,000 check results, 200,000
freshness rows (two tables per run), 10,000 alerts and 100,000 audit rows in a fresh PostgreSQL
database on 127.0.0.1, then times

* the store queries each page issues (overview page of 50 pipelines, one pipeline's view), and
* the real HTTP round trip, end to end, through Airflow's api-server app (``create_app``) with the
  plugin mounted: a simple-auth-manager token, 1,000 DAGs and their 100,000 DAG runs in Airflow's
  metadata DB (auth, the readable-DAG check, the on-time rate's DAG runs, rendering, charts).

    .venv/bin/python benchmarks/bench_ui.py            # 1M results on PostgreSQL (~2 min to seed)
    .venv/bin/python benchmarks/bench_ui.py --quick    # CI: 50 pipelines, 10,000 results
    .venv/bin/python benchmarks/bench_ui.py --keep     # keep the database for poking at

Prints p50 / p95 / max milliseconds per measurement; exits 1 when a p50 exceeds ``--budget-ms``
(default 300: "well under a second", with room for a loaded machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small store (CI): 50 pipelines x 40 runs x 5 checks")
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100, help="runs per pipeline")
    parser.add_argument("--checks", type=int, default=10, help="checks per run")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--budget-ms", type=float, default=300.0)
    parser.add_argument("--keep", action="store_true", help="do not drop the benchmark database")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP round trips through Airflow's app")
    args = parser.parse_args(argv)
    if args.quick:
        args.pipelines, args.runs, args.checks, args.repeat = 50, 40, 5, 5
    return args


def create_database():
    import sqlalchemy as sa

    name = f"dataops_bench_ui_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return admin, name, f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def seed(engine, pipelines: int, runs: int, checks: int, now: dt.datetime) -> None:
    """Server-side generation (generate_series), built as SQLAlchemy Core expressions."""
    from sqlalchemy import Integer, String, case, cast, column, func, insert, literal, select, text, true

    from airflow_dataops.store.base import ensure_schema
    from airflow_dataops.store.schema import alerts, audit, check_results, freshness

    ensure_schema(engine)
    per_pipeline = runs * checks
    g = func.generate_series(0, pipelines * per_pipeline - 1).table_valued(column("i", Integer)).render_derived("g")
    i = g.c.i
    p, r, c = i // per_pipeline, (i // checks) % runs, i % checks
    dag_id = literal("pipeline_") + func.lpad(cast(p, String), 4, "0")
    run_at = literal(now) - func.make_interval(0, 0, 0, 0, cast(runs - 1 - r, Integer) * 6)  # a run every 6 h
    run_id = literal("scheduled__") + cast(r, String)
    spread = (p * 7 + r * 3 + c) % 11
    status = case((spread == 9, literal("warned")), (spread == 10, literal("failed")), else_=literal("passed"))
    check_cols = {
        "pipeline": dag_id, "dag_id": dag_id, "run_id": run_id, "task_id": literal("quality_checks"),
        "map_index": literal(-1), "try_number": literal(1), "environment": literal("production"),
        "table_name": literal("public.orders"), "check_name": literal("check_") + cast(c, String),
        "check_type": literal("row_count"), "action": literal("fail"), "status": status,
        "passed": status == "passed", "observed": cast(1000 + (i % 97) * 10, String),
        "expected": literal('{"min": 1000}'), "message": literal(""), "engine": literal("sql"),
        "duration_ms": literal(12.5), "checked_at": run_at, "recorded_at": run_at,
    }
    g2 = func.generate_series(0, pipelines * runs - 1).table_valued(column("i", Integer)).render_derived("g")
    j = g2.c.i
    fp, fr_ = j // runs, j % runs
    tables = func.generate_series(0, 1).table_valued(column("t", Integer)).render_derived("tables")
    fdag = literal("pipeline_") + func.lpad(cast(fp, String), 4, "0")
    fat = literal(now) - func.make_interval(0, 0, 0, 0, cast(runs - 1 - fr_, Integer) * 6)
    fresh_cols = {
        "pipeline": fdag, "dag_id": fdag, "run_id": literal("scheduled__") + cast(fr_, String),
        "task_id": literal("freshness"), "source": literal("check"),
        "table_name": literal("public.orders_") + cast(tables.c.t, String),
        "column_name": literal("updated_at"), "newest": fat - func.make_interval(0, 0, 0, 0, 2),
        "observed_at": fat, "lag_seconds": literal(7200.0), "max_age_seconds": literal(6 * 3600.0), "fresh": literal(True),
    }
    alert_runs = min(runs, 10)
    alert_cols = {
        "pipeline": fdag, "dag_id": fdag, "run_id": literal("scheduled__") + cast(fr_, String),
        "environment": literal("production"), "event": literal("check_failed"), "subject": literal("check_0"),
        "tier": literal(0), "channel": literal("slack:#alerts"), "severity": literal("error"),
        "status": literal("sent"), "created_at": fat, "sent_at": fat,
    }
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(check_results).from_select(list(check_cols), select(*check_cols.values()).select_from(g)))
        conn.execute(insert(freshness).from_select(list(fresh_cols), select(*fresh_cols.values()).select_from(g2).join(tables, true())))
        conn.execute(
            insert(alerts).from_select(list(alert_cols), select(*alert_cols.values()).select_from(g2).where(fr_ >= runs - alert_runs))
        )
        audit_cols = {"pipeline": fdag, "dag_id": fdag, "run_id": alert_cols["run_id"], "kind": literal("alert"),
                      "event": literal("check_failed"), "channel": literal("slack:#alerts"), "outcome": literal("sent"), "at": fat}
        # One audit row per run: the page reads a pipeline's trail through (dag_id, at).
        conn.execute(insert(audit).from_select(list(audit_cols), select(*audit_cols.values()).select_from(g2)))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))  # hint bits + visibility map, as a live store has
        conn.execute(text("CHECKPOINT"))  # flush the bulk load now, not while timing
    print(f"seeded {pipelines * per_pipeline:,} check results, {2 * pipelines * runs:,} freshness rows, "
          f"{pipelines * alert_runs:,} alerts, {pipelines * runs:,} audit rows in {time.perf_counter() - started:.1f} s")


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * pct // 100) - 1))]


def timed(label: str, fn, repeat: int, budget_ms: float, failures: list[str]) -> None:
    fn()  # warm-up (connections, caches)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    p50, p95 = statistics.median(samples), percentile(samples, 95)
    print(f"  {label:<58} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   max {max(samples):8.1f} ms")
    if p50 > budget_ms:
        failures.append(f"{label}: p50 {p50:.0f} ms > {budget_ms:.0f} ms")


def bench_queries(engine, dag_ids: list[str], args, failures: list[str]) -> None:
    from airflow_dataops.plugins import history, queries

    target = dag_ids[len(dag_ids) // 2]

    def overview():
        with engine.connect() as conn:
            page = queries.overview(conn, dag_ids, limit=50, offset=0)
            assert page["total"] == len(dag_ids) and len(page["items"]) == min(50, len(dag_ids))

    def overview_last_page():
        with engine.connect() as conn:
            queries.overview(conn, dag_ids, limit=50, offset=max(0, len(dag_ids) - 50))

    def pipeline_view():
        with engine.connect() as conn:
            summary = queries.summaries(conn, [target])[0]
            history.run_history(conn, target, limit=30)
            checks = history.check_names(conn, target)
            history.run_results(conn, target, summary["last_run_id"], limit=200)
            history.check_history(conn, target, checks[0]["check_name"], limit=30)
            queries.latest_freshness(conn, [target])
            history.freshness_history(conn, target, limit=60)
            history.incidents(conn, target, limit=20)
            history.audit_trail(conn, target, limit=50)

    print("store queries:")
    timed("overview, first page of 50 pipelines", overview, args.repeat, args.budget_ms, failures)
    timed("overview, last page", overview_last_page, args.repeat, args.budget_ms, failures)
    timed(f"pipeline view queries ({target})", pipeline_view, args.repeat, args.budget_ms, failures)


def seed_dag_runs(dag_ids: list[str], runs: int, now: dt.datetime) -> None:
    """Airflow's own DAG runs (the on-time rate reads them): one per stored run, a few failed."""
    from sqlalchemy import insert

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    rows = [
        {"dag_id": d, "run_id": f"scheduled__{r}", "run_type": "scheduled", "state": "failed" if (p + r) % 13 == 0 else "success",
         "run_after": now - dt.timedelta(hours=6 * (runs - 1 - r)), "queued_at": now - dt.timedelta(hours=6 * (runs - 1 - r))}
        for p, d in enumerate(dag_ids) for r in range(runs)
    ]
    with create_session() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(DagRun.__table__), rows[start : start + 5000])


def bench_http(url: str, dag_ids: list[str], args, failures: list[str]) -> None:
    """End to end through Airflow's real app: token auth, the readable-DAG check, Airflow's DAG
    runs for the on-time rate, HTML rendering and charts."""
    import json

    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine

    from airflow.api_fastapi.app import create_app
    from airflow.utils import db

    from airflow_dataops.plugins import dataops_plugin
    from airflow_dataops.plugins.app import StoreHandle
    from tests.plugins.conftest import ensure_plugin_discoverable
    from tests.plugins.seeding import register_dags

    db.initdb()
    register_dags(dag_ids)
    seed_dag_runs(dag_ids, args.runs, dt.datetime.now(dt.timezone.utc))
    from airflow import settings

    ensure_plugin_discoverable(settings.PLUGINS_FOLDER)
    engine = create_engine(url)
    dataops_plugin.app.state.store = StoreHandle(lambda: (engine, "benchmark store"))
    target = dag_ids[len(dag_ids) // 2]
    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        token = client.post("/auth/token", json={"username": "admin", "password": "bench-pass"}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def get(path):
            def call():
                response = client.get(path, headers=headers)
                assert response.status_code == 200, response.text[:300]
                return response
            return call

        print("HTTP end to end through Airflow's api-server app (auth + Airflow's DAG runs + render):")
        first = json.loads(get("/dataops/api/pipelines?limit=50")().text)
        assert first["total"] == len(dag_ids) and first["items"][0]["runs_30d"] > 0, first["items"][0]
        timed("GET /dataops/api/pipelines?limit=50", get("/dataops/api/pipelines?limit=50"), args.repeat, args.budget_ms, failures)
        timed("GET /dataops/ (overview page)", get("/dataops/"), args.repeat, args.budget_ms, failures)
        timed(f"GET /dataops/pipelines/{target} (pipeline page)", get(f"/dataops/pipelines/{target}"), args.repeat, args.budget_ms, failures)
        timed(f"GET /dataops/api/pipelines/{target}/runs", get(f"/dataops/api/pipelines/{target}/runs"), args.repeat, args.budget_ms, failures)


def main(argv=None) -> int:
    args = parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="dataops-bench-ui-"))
    (home / "passwords.json").write_text('{"admin": "bench-pass"}')
    os.environ.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex * 2,
    })
    import sqlalchemy as sa

    admin, name, url = create_database()
    failures: list[str] = []
    try:
        engine = sa.create_engine(url)
        print(f"store: PostgreSQL database {name}; {args.pipelines} pipelines x {args.runs} runs x {args.checks} checks")
        seed(engine, args.pipelines, args.runs, args.checks, dt.datetime.now(dt.timezone.utc))
        dag_ids = [f"pipeline_{n:04d}" for n in range(args.pipelines)]
        bench_queries(engine, dag_ids, args, failures)
        if not args.no_http:
            bench_http(url, dag_ids, args, failures)
        engine.dispose()
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()")
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()
    for failure in failures:
        print(f"OVER BUDGET: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
