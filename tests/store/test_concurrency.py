"""Many writers at once lose nothing, and racing schema creation is safe: real processes, on a
SQLite file and on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time

import pytest
import sqlalchemy as sa

from airflow_dataops import settings
from airflow_dataops.engine.result import CheckResult
from airflow_dataops.store import base
from airflow_dataops.store.results import ResultsStore, RunRef
from airflow_dataops.store.schema import check_results, metadata, schema_version
from tests.store.conftest import make_engine

WRITERS, RUNS, CHECKS = 8, 50, 3
# fork: children inherit the imported modules (spawn would re-import Airflow in each, ~2 s apiece)
CTX = multiprocessing.get_context("fork")


def _results(worker: int, run: int) -> list[CheckResult]:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=run)
    return [
        CheckResult(name=f"check_{n}", check_type="row_count", action="fail", passed=True, observed=worker * 1000 + run,
                    expected={"min": 0}, table="t", checked_at=at)
        for n in range(CHECKS)
    ]


def _writer(url: str, worker: int, barrier) -> None:
    engine = make_engine(url)
    store = ResultsStore(engine, "writer")
    barrier.wait(timeout=60)
    started = time.perf_counter()
    for run in range(RUNS):
        store.record_results(RunRef("p", "p", f"w{worker}_r{run}", "checks", "prod"), _results(worker, run))
        if run % 10 == 0:  # every writer also writes one shared row as its own try: one must survive
            store.record_results(RunRef("p", "p", "shared", "checks", "prod", try_number=worker + 1), _results(worker, run)[:1])
    print(f"writer {worker}: {time.perf_counter() - started:.2f} s")
    engine.dispose()


def _ensure(url: str, barrier) -> None:
    engine = make_engine(url)
    barrier.wait(timeout=60)
    base.ensure_schema(engine)
    engine.dispose()


def _run_all(target, args_for, n: int) -> None:
    settings.get_int("failing_rows_sample")  # import Airflow's config once, before forking
    barrier = CTX.Barrier(n)
    procs = [CTX.Process(target=target, args=(*args_for(i), barrier)) for i in range(n)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0] * n, "a writer process failed (see its traceback above)"


@pytest.mark.timeout(180)
def test_concurrent_writer_processes_lose_nothing(store_url):
    engine = make_engine(store_url)
    base.ensure_schema(engine)

    _run_all(_writer, lambda i: (store_url, i), WRITERS)

    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(check_results)).scalar()
        per_run = conn.execute(
            sa.select(sa.func.count(sa.distinct(check_results.c.run_id))).where(check_results.c.run_id != "shared")
        ).scalar()
        shared = conn.execute(
            sa.select(check_results.c.check_name, check_results.c.try_number).where(check_results.c.run_id == "shared")
        ).all()
    engine.dispose()
    assert per_run == WRITERS * RUNS
    assert total == WRITERS * RUNS * CHECKS + 1
    assert shared == [("check_0", WRITERS)]  # the highest try won, once


@pytest.mark.timeout(120)
def test_processes_racing_to_create_the_schema_on_a_fresh_database_all_succeed(store_url):
    _run_all(_ensure, lambda i: (store_url,), 6)

    engine = make_engine(store_url)
    with engine.connect() as conn:
        versions = conn.execute(sa.select(schema_version.c.version)).scalars().all()
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert versions == [base.SCHEMA_VERSION]
    assert set(metadata.tables) <= tables


def test_sqlite_writers_take_the_write_lock_at_begin_and_readers_are_not_blocked(sqlite_url):
    """The SQLAlchemy 2.1 + pysqlite recipe really emits BEGIN IMMEDIATE (and DEFERRED for readers)."""
    path = sqlite_url.removeprefix("sqlite:///")
    first, second = base.sqlite_engine(path), base.sqlite_engine(path, busy_timeout_s=0.2)
    base.ensure_schema(first)
    store = ResultsStore(second, "second")
    with first.begin() as holder:
        holder.execute(sa.select(1))  # a transaction that has not written yet still holds the write lock
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            with second.begin() as conn:
                conn.execute(sa.select(1))
        assert store.latest_results("nobody") == []  # a reader goes through
    with second.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    first.dispose()
    second.dispose()


def test_a_write_that_meets_a_held_lock_is_retried_and_lands(sqlite_url):
    import threading

    path = sqlite_url.removeprefix("sqlite:///")
    holder_engine = base.sqlite_engine(path)
    base.ensure_schema(holder_engine)
    store = ResultsStore(base.sqlite_engine(path, busy_timeout_s=0.1), "impatient")
    locked, release = threading.Event(), threading.Event()

    def hold_the_write_lock():
        with holder_engine.begin():
            locked.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    locked.wait(5)
    threading.Timer(0.25, release.set).start()  # the first attempt times out; a retry gets through
    store.record_results(RunRef("p", "p", "r1", "t", "prod"), _results(0, 0))
    holder.join()

    assert len(store.results_for_run("p", "r1")) == CHECKS
    holder_engine.dispose()
    store.engine.dispose()
