"""Benchmark: N FreshnessTriggers in one triggerer-like process against PostgreSQL.

A child process plays the triggerer: it builds N triggers (each watching its own source through
``where source_id = i`` on one indexed table) and runs their ``run()`` generators in one event
loop, as the triggerer does. The parent measures that process from outside:

- CPU seconds per minute of wall time while all N wait on stale data,
- RSS memory (after imports, and while waiting),
- database connections the process holds (peak of ``pg_stat_activity`` for the bench database),
- event-loop lag (the child's own ticker: worst extra delay of a 50 ms sleep), separately for the
  start-up (first polls: imports and connection set-up in the pool threads) and steady waiting,
- lateness: the moment each trigger fires minus the moment its data turned fresh (one INSERT
  makes every source fresh at once). The expected value is up to one poke interval.

Usage::

    .venv/bin/python benchmarks/bench_triggers.py               # N = 100 and 1000
    .venv/bin/python benchmarks/bench_triggers.py --quick       # N = 20, short windows (CI)
    .venv/bin/python benchmarks/bench_triggers.py --n 100 --poke-interval 60 --window 120

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); it creates and drops its own
database. Exit status 1 if any trigger did not fire ``fresh`` or connections exceed the bound.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def child(n: int, poke_interval: float, db: str, conn, steady) -> None:
    """The triggerer stand-in: N trigger coroutines in one event loop."""
    import asyncio
    import datetime as dt

    import psutil

    os.environ["AIRFLOW_CONN_BENCH_SOURCE"] = f"postgres://postgres@127.0.0.1:5432/{db}"
    sys.path.insert(0, str(REPO))
    from airflow_dataops.triggers.freshness import FreshnessTrigger

    conn.send(("imported", psutil.Process().memory_info().rss))
    deadline = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()
    triggers = [
        FreshnessTrigger("bench_source", "bench_events", "loaded_at", 600, where_sql=f"source_id = {i}",
                         poke_interval=poke_interval, deadline=deadline)
        for i in range(n)
    ]
    fired: list[tuple[float, str]] = [(0.0, "")] * n
    worst_lag = [0.0, 0.0]  # start-up (first polls, imports in the pool threads), steady waiting

    async def one(i: int, trigger: FreshnessTrigger) -> None:
        event = await anext(trigger.run())
        fired[i] = (time.time(), event.payload["status"])

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.05)
            phase = 1 if steady.is_set() else 0
            worst_lag[phase] = max(worst_lag[phase], time.perf_counter() - start - 0.05)

    async def main() -> None:
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        tasks = [asyncio.create_task(one(i, t)) for i, t in enumerate(triggers)]
        conn.send(("started", None))
        await asyncio.gather(*tasks)
        stop.set()
        await tick

    asyncio.run(main())
    conn.send(("done", (fired, worst_lag)))


def run_case(n: int, poke_interval: float, window: float, admin, sa) -> dict:
    import psutil

    db = f"dataops_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{db}"')
    source = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}", poolclass=sa.pool.NullPool,
                              connect_args={"application_name": "bench_parent"})
    try:
        with source.begin() as c:
            c.exec_driver_sql("CREATE TABLE bench_events (source_id int NOT NULL, loaded_at timestamptz NOT NULL)")
            c.exec_driver_sql("CREATE INDEX ON bench_events (source_id, loaded_at)")
            c.exec_driver_sql(
                f"INSERT INTO bench_events SELECT g, now() - interval '3 hours' FROM generate_series(0, {n - 1}) g"
            )
        ctx = mp.get_context("spawn")
        parent_end, child_end = ctx.Pipe()
        steady = ctx.Event()
        proc = ctx.Process(target=child, args=(n, poke_interval, db, child_end, steady), daemon=True)
        proc.start()
        ps = psutil.Process(proc.pid)
        _, rss_imported = parent_end.recv()
        parent_end.recv()  # started

        peak_conns = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                with admin.connect() as c:
                    count = c.exec_driver_sql(
                        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' "
                        "AND application_name <> 'bench_parent'"
                    ).scalar()
                peak_conns[0] = max(peak_conns[0], count)
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(max(3.0, poke_interval))  # let the first round of polls settle
        steady.set()
        cpu0 = sum(ps.cpu_times()[:2])
        t0 = time.monotonic()
        rss_peak = 0
        while time.monotonic() - t0 < window:
            rss_peak = max(rss_peak, ps.memory_info().rss)
            time.sleep(0.5)
        cpu_per_min = (sum(ps.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0) * 60

        with source.begin() as c:  # every source turns fresh at once
            c.exec_driver_sql(f"INSERT INTO bench_events SELECT g, now() FROM generate_series(0, {n - 1}) g")
        fresh_at = time.time()
        kind, (fired, loop_lag) = parent_end.recv()
        proc.join(30)
        sampling.set()
        sampler.join()
        late = sorted(t - fresh_at for t, _ in fired)
        statuses = {s for _, s in fired}
        return {
            "n": n,
            "poke_s": poke_interval,
            "cpu_s_per_min": cpu_per_min,
            "rss_imported_mb": rss_imported / 2**20,
            "rss_peak_mb": rss_peak / 2**20,
            "db_conns_peak": peak_conns[0],
            "loop_lag_start_ms": loop_lag[0] * 1000,
            "loop_lag_steady_ms": loop_lag[1] * 1000,
            "late_p50_s": statistics.median(late),
            "late_p95_s": late[int(0.95 * (len(late) - 1))],
            "late_max_s": late[-1],
            "all_fresh": statuses == {"fresh"},
        }
    finally:
        source.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'")
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="number of triggers (repeatable); default 100 and 1000")
    parser.add_argument("--poke-interval", type=float, default=10.0, help="seconds between polls (default 10)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of steady waiting measured (default 60)")
    parser.add_argument("--quick", action="store_true", help="N=20, poke 2 s, 10 s window (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        sizes, poke, window = [20], 2.0, 10.0
    else:
        sizes, poke, window = args.n or [100, 1000], args.poke_interval, args.window
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="dataops-bench-home-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    import sqlalchemy as sa

    sys.path.insert(0, str(REPO))
    from airflow_dataops.triggers.freshness import MAX_CONNECTIONS_PER_CONN_ID

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    rows = [run_case(n, poke, window, admin, sa) for n in sizes]
    header = ("N", "poke s", "CPU s/min", "RSS imports MB", "RSS peak MB", "DB conns", "loop lag start ms",
              "loop lag steady ms",
              "late p50 s", "late p95 s", "late max s", "all fresh")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r['n']} | {r['poke_s']:g} | {r['cpu_s_per_min']:.2f} | {r['rss_imported_mb']:.0f} | "
            f"{r['rss_peak_mb']:.0f} | {r['db_conns_peak']} | {r['loop_lag_start_ms']:.0f} | "
            f"{r['loop_lag_steady_ms']:.0f} | {r['late_p50_s']:.2f} | "
            f"{r['late_p95_s']:.2f} | {r['late_max_s']:.2f} | {r['all_fresh']} |"
        )
    ok = all(r["all_fresh"] and r["db_conns_peak"] <= MAX_CONNECTIONS_PER_CONN_ID for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
