"""Benchmark of the Data Quality page: overview and pipeline view over a large results store.

Full run (by hand): 1,000 pipelines x 100 runs x 10 checks = 1,000,000 check results, 100,000
freshness rows and 10,000 alerts in a fresh PostgreSQL database on 127.0.0.1, then times

* the store queries each page issues (overview page of 50 pipelines, one pipeline's view), and
* the real HTTP round trip through Airflow's api-server app (``create_app``) with the plugin mounted,
  a simple-auth-manager token and 1,000 DAGs in Airflow's metadata DB (auth, filtering, rendering).

    .venv/bin/python benchmarks/bench_ui.py            # 1M results on PostgreSQL (~2 min to seed)
    .venv/bin/python benchmarks/bench_ui.py --quick    # CI: 50 pipelines, 10,000 results
    .venv/bin/python benchmarks/bench_ui.py --keep     # keep the database for poking at

Prints median and max milliseconds per measurement; exits 1 when a median exceeds ``--budget-ms``
(default 1000: "well under a second").
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
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--budget-ms", type=float, default=1000.0)
    parser.add_argument("--keep", action="store_true", help="do not drop the benchmark database")
    parser.add_argument(
        "--covering-index", action="store_true",
        help="also create (dag_id, checked_at, run_id, action, status) on the results, the index proposed to replace "
        "ix_dataops_results_dag_time: the on-time query becomes index-only",
    )
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP round trips through Airflow's app")
    args = parser.parse_args(argv)
    if args.quick:
        args.pipelines, args.runs, args.checks, args.repeat = 50, 40, 5, 3
    return args


def create_database():
    import sqlalchemy as sa

    name = f"dataops_bench_ui_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return admin, name, f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def seed(engine, pipelines: int, runs: int, checks: int, now: dt.datetime, covering_index: bool = False) -> None:
    """Server-side generation (generate_series), built as SQLAlchemy Core expressions."""
    from sqlalchemy import Integer, String, case, cast, column, func, insert, literal, select, text

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
    fdag = literal("pipeline_") + func.lpad(cast(fp, String), 4, "0")
    fat = literal(now) - func.make_interval(0, 0, 0, 0, cast(runs - 1 - fr_, Integer) * 6)
    fresh_cols = {
        "pipeline": fdag, "dag_id": fdag, "run_id": literal("scheduled__") + cast(fr_, String),
        "task_id": literal("freshness"), "source": literal("check"), "table_name": literal("public.orders"),
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
        conn.execute(insert(freshness).from_select(list(fresh_cols), select(*fresh_cols.values()).select_from(g2)))
        conn.execute(
            insert(alerts).from_select(list(alert_cols), select(*alert_cols.values()).select_from(g2).where(fr_ >= runs - alert_runs))
        )
        audit_cols = {"pipeline": fdag, "dag_id": fdag, "run_id": alert_cols["run_id"], "kind": literal("alert"),
                      "event": literal("check_failed"), "channel": literal("slack:#alerts"), "outcome": literal("sent"), "at": fat}
        conn.execute(insert(audit).from_select(list(audit_cols), select(*audit_cols.values()).select_from(g2).where(fr_ >= runs - alert_runs)))
    if covering_index:
        from sqlalchemy import Index

        Index("ix_bench_results_dag_time_status", check_results.c.dag_id, check_results.c.checked_at,
              check_results.c.run_id, check_results.c.action, check_results.c.status).create(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))  # hint bits + visibility map, as a live store has
        conn.execute(text("CHECKPOINT"))  # flush the bulk load now, not while timing
    print(f"seeded {pipelines * per_pipeline:,} check results, {pipelines * runs:,} freshness rows, "
          f"{pipelines * alert_runs:,} alerts in {time.perf_counter() - started:.1f} s")


def timed(label: str, fn, repeat: int, budget_ms: float, failures: list[str]) -> None:
    fn()  # warm-up (connections, caches)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    print(f"  {label:<58} median {median:8.1f} ms   max {max(samples):8.1f} ms")
    if median > budget_ms:
        failures.append(f"{label}: median {median:.0f} ms > {budget_ms:.0f} ms")


def bench_queries(engine, dag_ids: list[str], args, failures: list[str]) -> None:
    from airflow_dataops.plugins import queries

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
            queries.run_history(conn, target, limit=30)
            checks = queries.check_names(conn, target)
            queries.run_results(conn, target, summary["last_run_id"], limit=200)
            queries.check_history(conn, target, checks[0]["check_name"], limit=30)
            queries.freshness_history(conn, target, limit=30)
            queries.alert_list(conn, target, limit=50)
            queries.audit_trail(conn, target, limit=50)

    print("store queries:")
    timed("overview, first page of 50 pipelines", overview, args.repeat, args.budget_ms, failures)
    timed("overview, last page", overview_last_page, args.repeat, args.budget_ms, failures)
    timed(f"pipeline view queries ({target})", pipeline_view, args.repeat, args.budget_ms, failures)


def bench_http(url: str, dag_ids: list[str], args, failures: list[str]) -> None:
    """Through Airflow's real app: token auth, authorized-DAG filtering, HTML rendering."""
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

        print("HTTP through Airflow's api-server app (auth + render):")
        first = get("/dataops/api/pipelines?limit=50")()
        assert json.loads(first.text)["total"] == len(dag_ids)
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
        print(f"store: PostgreSQL database {name}; {args.pipelines} pipelines x {args.runs} runs x {args.checks} checks"
              f"{' + covering index' if args.covering_index else ''}")
        seed(engine, args.pipelines, args.runs, args.checks, dt.datetime.now(dt.timezone.utc), args.covering_index)
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
