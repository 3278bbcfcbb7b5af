"""Benchmark of the results store: write throughput, and the history reads on a large store.

Full run (by hand): write throughput on PostgreSQL and on a SQLite file (one writer, then several
writer processes at once), then 1,000 pipelines x 125 runs x 8 checks = 1,000,000 check results
seeded server-side into a fresh PostgreSQL database on 127.0.0.1, and the reads timed on it:
``observed_history`` (what ``volume_anomaly`` asks every run), ``previous_check_status`` (alerting),
``latest_results`` and ``results_for_run`` (UI), one ``record_results`` into the big table, and a
``purge`` that deletes the oldest ~28% of rows (older than 90 days in the full run).

    .venv/bin/python benchmarks/bench_store.py           # 1M results (~1 min to seed)
    .venv/bin/python benchmarks/bench_store.py --quick   # CI: 20,000 results, a few seconds
    .venv/bin/python benchmarks/bench_store.py --keep    # keep the database for poking at

Prints calls/s and rows/s for writes, median and max milliseconds for reads; exits 1 when a read's
median exceeds ``--budget-ms`` (default 50).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
CHECKS_PER_CALL = 8


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small store (CI): 50 pipelines x 50 runs x 8 checks")
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=125, help="runs per pipeline")
    parser.add_argument("--checks", type=int, default=8, help="checks per run")
    parser.add_argument("--writes", type=int, default=300, help="record_results calls per writer")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer processes")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per read")
    parser.add_argument("--budget-ms", type=float, default=50.0)
    parser.add_argument("--keep", action="store_true", help="do not drop the benchmark database")
    args = parser.parse_args(argv)
    if args.quick:
        args.pipelines, args.runs, args.writes, args.writers, args.repeat = 50, 50, 40, 2, 5
    return args


def create_database():
    import sqlalchemy as sa

    name = f"dataops_bench_store_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return admin, name, f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def drop_database(admin, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


def make_store(url: str):
    import sqlalchemy as sa

    from airflow_dataops.store import base
    from airflow_dataops.store.results import ResultsStore

    engine = base.sqlite_engine(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else sa.create_engine(url)
    base.ensure_schema(engine)
    return ResultsStore(engine, f"bench {engine.dialect.name}")


def results(seed: int):
    from airflow_dataops.engine.result import CheckResult

    now = dt.datetime.now(dt.timezone.utc)
    return [
        CheckResult(name=f"check_{n}", check_type="row_count", action="fail", passed=True, observed=1000 + seed % 97,
                    expected={"min": 1}, table="public.orders", sql="SELECT count(*) FROM public.orders",
                    duration_ms=3.0, checked_at=now)
        for n in range(CHECKS_PER_CALL)
    ]


def _writer(url: str, worker: int, calls: int, barrier, out) -> None:
    from airflow_dataops.store.results import RunRef

    store = make_store(url)
    barrier.wait(timeout=120)
    started = time.perf_counter()
    for call in range(calls):
        store.record_results(RunRef("bench", "bench", f"w{worker}_{call}", "checks", "bench"), results(call))
    out.put(time.perf_counter() - started)
    store.engine.dispose()


def _result_of(out, procs) -> float:
    """The next writer's elapsed time; a writer that died (its traceback is on stderr) stops the run
    at once instead of leaving the queue waiting."""
    import queue

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            return out.get(timeout=1)
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"writer process(es) died with exit code {[p.exitcode for p in dead]}")
    raise TimeoutError("writers did not finish within 600 s")


def bench_writes(label: str, url: str, writers: int, calls: int) -> None:
    from airflow_dataops import settings

    settings.get_int("failing_rows_sample")  # import Airflow's config once, before forking
    ctx = multiprocessing.get_context("fork")
    for count in sorted({1, writers}):
        barrier, out = ctx.Barrier(count), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(url, f"{count}_{i}", calls, barrier, out)) for i in range(count)]
        for proc in procs:
            proc.start()
        elapsed = max(_result_of(out, procs) for _ in procs)
        for proc in procs:
            proc.join()
        total = count * calls
        print(f"  {label:<11} {count} writer(s): {total / elapsed:8.0f} calls/s  {total * CHECKS_PER_CALL / elapsed:9.0f} rows/s"
              f"  ({total} calls of {CHECKS_PER_CALL} results in {elapsed:.2f} s)")


ENVIRONMENT = "production"  # of every seeded result
SEED_SQL = """
INSERT INTO dataops_check_results (pipeline, dag_id, run_id, task_id, map_index, try_number, environment,
    table_name, check_name, check_type, action, status, passed, observed, expected, message, sql, engine,
    duration_ms, checked_at, recorded_at)
SELECT 'pipeline_' || p, 'pipeline_' || p, 'scheduled__' || lpad(r::text, 5, '0'), 'quality_checks', -1, 1,
    'production', 'public.orders', 'check_' || c, 'row_count', 'fail',
    CASE WHEN (p + r + c) % 17 = 0 THEN 'failed' WHEN (p + r + c) % 11 = 0 THEN 'warned' ELSE 'passed' END,
    (p + r + c) % 17 <> 0, (1000 + (p * r * c) % 500)::text, '{"min": 1}', '', 'SELECT count(*)', 'sql', 3.0,
    now() - (:runs - r) * interval '1 day', now() - (:runs - r) * interval '1 day'
FROM generate_series(1, :pipelines) p, generate_series(1, :runs) r, generate_series(1, :checks) c
"""


def seed(store, pipelines: int, runs: int, checks: int) -> None:
    import sqlalchemy as sa

    started = time.perf_counter()
    with store.engine.begin() as conn:
        conn.execute(sa.text(SEED_SQL), {"pipelines": pipelines, "runs": runs, "checks": checks})
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE dataops_check_results")
    total = pipelines * runs * checks
    print(f"  seeded {total:,} check results in {time.perf_counter() - started:.1f} s")


def timed(label: str, repeat: int, call) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    print(f"  {label:<48} median {median:7.2f} ms   max {max(samples):7.2f} ms")
    return median


def bench_reads(store, args) -> dict[str, float]:
    from airflow_dataops.store.alerts import previous_check_status
    from airflow_dataops.store.results import RunRef

    rng = random.Random(42)

    def pipeline() -> str:
        return f"pipeline_{rng.randint(1, args.pipelines)}"

    def run_id() -> str:
        return f"scheduled__{rng.randint(2, args.runs):05d}"

    medians = {
        "observed_history (lookback 14)": timed(
            "observed_history(pipeline, check, 14)", args.repeat,
            lambda: store.observed_history(pipeline(), f"check_{rng.randint(1, args.checks)}", 14,
                                           exclude_run_id=f"scheduled__{args.runs:05d}")),
        "previous_check_status": timed(
            "previous_check_status(dag, check, run, env)", args.repeat,
            lambda: previous_check_status(store.engine, pipeline(), f"check_{rng.randint(1, args.checks)}", run_id(),
                                          environment=ENVIRONMENT)),
        "latest_results": timed("latest_results(dag)", args.repeat, lambda: store.latest_results(pipeline())),
        "results_for_run": timed("results_for_run(dag, run)", args.repeat,
                                 lambda: store.results_for_run(pipeline(), run_id())),
        "record_results": timed(
            f"record_results({CHECKS_PER_CALL} results) into the big table", args.repeat,
            lambda: store.record_results(RunRef("bench", "bench", uuid.uuid4().hex, "checks", "bench"),
                                         results(rng.randint(0, 1000)))),
    }
    started = time.perf_counter()
    retention = max(1, round(args.runs * 0.72))  # the oldest ~28% of runs (90 days of the full 125)
    deleted = store.purge(retention_days=retention)
    elapsed = time.perf_counter() - started
    print(f"  purge({retention} days): deleted {deleted['check_results']:,} check results in {elapsed:.1f} s "
          f"({deleted['check_results'] / max(elapsed, 1e-9):,.0f} rows/s, batches of 5,000)")
    return medians


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    admin, name, url = create_database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"write throughput ({args.writes} record_results calls per writer):")
            bench_writes("postgresql", url, args.writers, args.writes)
            bench_writes("sqlite file", f"sqlite:///{tmp}/bench.db", args.writers, args.writes)
        store = make_store(url)
        import sqlalchemy as sa

        with store.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE dataops_check_results")
        total = args.pipelines * args.runs * args.checks
        print(f"reads on PostgreSQL with {total:,} check results ({args.pipelines} pipelines x {args.runs} runs x {args.checks} checks):")
        seed(store, args.pipelines, args.runs, args.checks)
        medians = bench_reads(store, args)
        with store.engine.connect() as conn:
            left = conn.execute(sa.text("SELECT count(*) FROM dataops_check_results")).scalar()
        print(f"  {left:,} check results left after the purge")
        store.engine.dispose()
    finally:
        if args.keep:
            print(f"kept database {name}: {url}")
            admin.dispose()
        else:
            drop_database(admin, name)
    slow = {label: ms for label, ms in medians.items() if ms > args.budget_ms}
    if slow:
        print(f"over the {args.budget_ms:.0f} ms budget: {slow}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
