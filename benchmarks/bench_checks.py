"""Benchmark of the check engine: the same 8 checks run four ways on the same table.

A seeded table of N rows (ids, nullable customer ids and emails, a status from a small set, an
amount, a timestamp) on SQLite and on PostgreSQL, and the same 8 checks (row count, two null
checks, unique id, accepted status, amount range, freshness, email completeness) run by:

- engine:     airflow_dataops.engine.sql_runner.run_checks (one aggregate SELECT)
- floor:      one hand-written single-scan aggregate query (what the engine should cost)
- gx:         Great Expectations 1.x on the same table (context set up once, validation timed)
- common-sql: SQLColumnCheckOperator + SQLTableCheckOperator, their execute() with a real
              Airflow connection (AIRFLOW_CONN_*) and a minimal context

The table holds two seeded anomalies (a repeated id, an amount above the range), so two of the
checks fail and the four ways can be compared on something: every way must report the same checks
failing.

Runs the four ways round-robin (so load from other processes hits all alike) and prints, per table
size, the median time of ``--repeat`` runs, the statements each way sent in one run (counted as
they are sent: SQLAlchemy's ``before_cursor_execute`` on every engine, the hook's ``get_records``
calls for common-sql), the table scans in them (``FROM orders`` in the SQL sent), the ratio to the
floor, each check's pass/fail per way and whether they agree, and whether the engine meets the
target (at most 1.1x the floor; fewer statements, fewer scans and less time than both peers).

The timed runs follow one warm-up run per way, so connection set-up is not timed. On PostgreSQL
the engine sends 2 statements per run: ``SET LOCAL statement_timeout`` + the 1 scan, in one
transaction (a session-level timeout would leak to other clients behind PgBouncer in transaction
pooling and vanish after ``DISCARD ALL``); the table says how many of a way's statements are such
``SET``s. Neither the floor nor common-sql applies a timeout at all.

    .venv/bin/python benchmarks/bench_checks.py                    # 1M and 10M rows, SQLite + PostgreSQL
    .venv/bin/python benchmarks/bench_checks.py --rows 1000000     # one size
    .venv/bin/python benchmarks/bench_checks.py --quick            # CI: 5,000 rows, a few seconds
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
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
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # the common-sql hooks log every query
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
STATUSES = ["new", "paid", "shipped", "refunded"]
SEED = 20240601

CHECKS = [
    {"type": "row_count", "min": 1, "name": "row_count"},
    {"type": "null_check", "columns": ["id"], "name": "id_not_null"},
    {"type": "null_check", "columns": ["customer_id"], "max_null_pct": "5%", "name": "customer_nulls"},
    {"type": "unique", "columns": ["id"], "name": "id_unique"},
    {"type": "accepted_values", "column": "status", "values": STATUSES, "name": "status_accepted"},
    {"type": "range", "column": "amount", "min": 0, "max": 10000, "name": "amount_range"},
    {"type": "freshness", "column": "created_at", "max_age": "1 hour", "name": "fresh"},
    {"type": "completeness", "columns": ["email"], "min_pct": "90%", "name": "email_complete"},
]


# ----------------------------------------------------------------------------------- data
# The checks the seeded anomalies make fail, in every way.
EXPECTED_FAILING = {"id_unique", "amount_range"}


def rows(n: int):
    rnd = random.Random(SEED)
    base = NOW.replace(tzinfo=None)
    for i in range(1, n + 1):
        customer = None if rnd.random() < 0.02 else rnd.randint(1, max(1, n // 10))
        email = None if rnd.random() < 0.05 else f"user{rnd.randint(1, 10**6)}@example.com"
        age = 60 if i == n else rnd.randint(120, 30 * 86400)
        amount = 10_500.0 if i == n // 2 else round(rnd.uniform(0, 9999), 2)  # anomaly: above the range
        yield (1 if i == n - 1 else i, customer, email, rnd.choice(STATUSES), amount, base - dt.timedelta(seconds=age))  # anomaly: id 1 twice


DDL = ("CREATE TABLE orders (id BIGINT, customer_id BIGINT, email VARCHAR(100), status VARCHAR(20), "
       "amount NUMERIC(12, 2), created_at TIMESTAMP)")


def load_sqlite(path: Path, n: int):
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute(DDL.replace("NUMERIC(12, 2)", "REAL"))
    batch = []
    for row in rows(n):
        batch.append((*row[:5], row[5].isoformat(sep=" ")))
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", batch)
    conn.commit()
    conn.close()


def load_postgres(url: str, n: int):
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(DDL)
        buf = io.StringIO()
        for i, row in enumerate(rows(n), 1):
            buf.write("\t".join("\\N" if v is None else (v.isoformat(sep=" ") if isinstance(v, dt.datetime) else str(v)) for v in row))
            buf.write("\n")
            if i % 200_000 == 0:
                buf.seek(0)
                cur.copy_expert("COPY orders FROM STDIN", buf)
                buf = io.StringIO()
        buf.seek(0)
        cur.copy_expert("COPY orders FROM STDIN", buf)
        raw.commit()
        cur.execute("ANALYZE orders")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


# --------------------------------------------------------------------------- counting
class Counter:
    """The SQL statements sent, as they are sent."""

    def __init__(self):
        self.sent: list[str] = []

    @property
    def statements(self) -> int:
        return len(self.sent)

    def record(self, sql: str) -> None:
        self.sent.append(sql)

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.record(statement)


def settings_in(statements: list[str]) -> int:
    """Statements that only change a setting (the engine's ``SET LOCAL statement_timeout``)."""
    return sum(s.lstrip().upper().startswith("SET ") for s in statements)


def scans_in(statements: list[str]) -> int:
    """Table scans in the SQL sent: each ``FROM orders`` reads the table once (no index)."""
    return sum(s.count("FROM orders") for s in statements)


def listen_all(counter):
    import sqlalchemy as sa

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", counter)
    return lambda: sa.event.remove(sa.engine.Engine, "before_cursor_execute", counter)


# ------------------------------------------------------------------------------ the ways
def way_engine(engine):
    from airflow_dataops.config.checks import parse_checks
    from airflow_dataops.engine.sql_runner import run_checks

    checks = parse_checks(CHECKS)

    def run():
        results = run_checks(engine, "orders", checks, now=NOW, timestamp_column=None)
        errors = [f"{r.name}: {r.error}" for r in results if r.status == "error"]
        if errors:
            raise RuntimeError(f"the engine could not run every check: {errors}")
        return {r.name for r in results if r.status != "passed"}

    return run


# The floor: the cheapest single scan a person would write (count(CASE ...) skips the ELSE 0 adds).
FLOOR_SQL = f"""SELECT count(*), count(*) - count(id), count(*) - count(customer_id), count(id) - count(DISTINCT id),
 count(CASE WHEN status NOT IN ({", ".join(repr(s) for s in STATUSES)}) THEN 1 END),
 count(CASE WHEN amount < 0 OR amount > 10000 THEN 1 END), max(created_at), count(email)
FROM orders"""


def way_floor(engine):
    from airflow_dataops.engine.freshness import freshness_lag

    def run():
        with engine.connect() as conn:
            total, id_nulls, cust_nulls, dups, bad_status, bad_amount, newest, emails = conn.exec_driver_sql(FLOOR_SQL).one()
        failing = set()
        failing |= {"row_count"} if total < 1 else set()
        failing |= {"id_not_null"} if id_nulls else set()
        failing |= {"customer_nulls"} if total and 100.0 * cust_nulls / total > 5 else set()
        failing |= {"id_unique"} if dups else set()
        failing |= {"status_accepted"} if bad_status else set()
        failing |= {"amount_range"} if bad_amount else set()
        failing |= {"fresh"} if freshness_lag(newest, NOW) > dt.timedelta(hours=1) else set()
        failing |= {"email_complete"} if total and 100.0 * emails / total < 90 else set()
        return failing

    return run


def way_gx(engine):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from airflow_dataops.engine.gx_runner import _context

    context = _context()
    add = {"postgresql": "add_postgres", "sqlite": "add_sqlite"}[engine.dialect.name]
    source = getattr(context.data_sources, add)(name="bench", connection_string=engine.url.render_as_string(hide_password=False))
    batch_def = source.add_table_asset(name="orders", table_name="orders").add_batch_definition_whole_table("all")
    newest_allowed = (NOW - dt.timedelta(hours=1)).replace(tzinfo=None)
    named = {
        "row_count": gxe.ExpectTableRowCountToBeBetween(min_value=1),
        "id_not_null": gxe.ExpectColumnValuesToNotBeNull(column="id"),
        "customer_nulls": gxe.ExpectColumnValuesToNotBeNull(column="customer_id", mostly=0.95),
        "id_unique": gxe.ExpectColumnValuesToBeUnique(column="id"),
        "status_accepted": gxe.ExpectColumnValuesToBeInSet(column="status", value_set=STATUSES),
        "amount_range": gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=10000),
        # SQLite stores timestamps as text: compare with the same ISO text there.
        "fresh": gxe.ExpectColumnMaxToBeBetween(column="created_at", min_value=(
            newest_allowed.isoformat(sep=" ") if engine.dialect.name == "sqlite" else newest_allowed)),
        "email_complete": gxe.ExpectColumnValuesToNotBeNull(column="email", mostly=0.90),
    }
    suite = gx.ExpectationSuite(name="bench")
    for name, expectation in named.items():
        expectation.meta = {"check": name}
        suite.add_expectation(expectation)

    def run():
        validation = batch_def.get_batch().validate(suite)
        failing = set()
        for res in validation.results:
            if not res.success:
                failing.add((res.expectation_config.meta or {}).get("check", res.expectation_config.type))
        return failing

    return run


COMMON_SQL_NAMES = {("id", "null_check"): "id_not_null", ("id", "unique_check"): "id_unique",
                    ("amount", "min"): "amount_range", ("amount", "max"): "amount_range"}


def way_common_sql(conn_id: str, counter: Counter):
    from airflow.providers.common.sql.operators.sql import SQLColumnCheckOperator, SQLTableCheckOperator

    cutoff = (NOW - dt.timedelta(hours=1)).replace(tzinfo=None).isoformat(sep=" ")
    statuses = ", ".join(repr(s) for s in STATUSES)

    def make():
        column = SQLColumnCheckOperator(
            task_id="columns", conn_id=conn_id, table="orders", column_mapping={
                "id": {"null_check": {"equal_to": 0}, "unique_check": {"equal_to": 0}},
                "amount": {"min": {"geq_to": 0}, "max": {"leq_to": 10000}},
            })
        table = SQLTableCheckOperator(
            task_id="table", conn_id=conn_id, table="orders", checks={
                "row_count": {"check_statement": "COUNT(*) >= 1"},
                "customer_nulls": {"check_statement": "(COUNT(*) - COUNT(customer_id)) * 100.0 <= 5 * COUNT(*)"},
                "status_accepted": {"check_statement": f"status IN ({statuses})"},
                "fresh": {"check_statement": f"MAX(created_at) >= '{cutoff}'"},
                "email_complete": {"check_statement": "COUNT(email) * 100.0 >= 90 * COUNT(*)"},
            })
        return column, table

    def counted(op):
        hook = op.get_db_hook()
        real = hook.get_records

        def get_records(sql, *args, **kwargs):
            counter.record(sql if isinstance(sql, str) else "; ".join(sql))  # the hook's DBAPI calls bypass SQLAlchemy
            return real(sql, *args, **kwargs)

        hook.get_records = get_records  # a counting wrapper around the real call, not a mock
        return op

    def run():
        failing = set()
        column, table = ops = tuple(map(counted, make()))
        for op in ops:
            try:
                op.execute(context={})
            except Exception as exc:  # AirflowException("... tests have failed ..."): read the operators below
                if "tests have failed" not in str(exc):
                    raise
        for col, checks in column.column_mapping.items():
            failing |= {COMMON_SQL_NAMES[(col, name)] for name, values in checks.items() if not values.get("success")}
        failing |= {name for name, values in table.checks.items() if not values.get("success")}
        return failing

    return run


# ---------------------------------------------------------------------------- measuring
def measure_interleaved(ways: list[tuple[str, object]], repeat: int, counter: Counter) -> list[dict]:
    """Round-robin over the ways (a warm-up run of each first), so load from other processes hits
    all alike. Statements and scans are those of the last timed run of each way."""
    for _, run in ways:
        run()
    times: dict[str, list[float]] = {label: [] for label, _ in ways}
    last: dict[str, dict] = {}
    for _ in range(repeat):
        for label, run in ways:
            before = len(counter.sent)
            started = time.perf_counter()
            failing = run()
            times[label].append(time.perf_counter() - started)
            sent = counter.sent[before:]
            last[label] = {"way": label, "statements": len(sent), "sets": settings_in(sent), "scans": scans_in(sent),
                           "failing": failing}
    return [{**last[label], "median_s": statistics.median(times[label])} for label, _ in ways]


def bench_backend(name: str, url: str, conn_uri: str, repeat: int) -> list[dict]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    conn_id = f"bench_{uuid.uuid4().hex[:8]}"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn_uri
    counter = Counter()
    stop = listen_all(counter)
    try:
        out = measure_interleaved([
            (FLOOR, way_floor(engine)),
            (ENGINE, way_engine(engine)),
            (COMMON_SQL, way_common_sql(conn_id, counter)),
            (GX, way_gx(engine)),
        ], repeat, counter)
    finally:
        stop()
        engine.dispose()
        os.environ.pop(f"AIRFLOW_CONN_{conn_id.upper()}", None)
    floor = out[0]
    for row in out:
        row["backend"] = name
        row["ratio"] = row["median_s"] / floor["median_s"] if floor["median_s"] else float("nan")
    return out


FLOOR, ENGINE, COMMON_SQL, GX = ("floor (hand-written)", "airflow-dataops engine", "common-sql Column+Table",
                                 "Great Expectations 1.x")
TARGET_RATIO = 1.1


def verdicts(rows_: list[dict]) -> dict:
    """Per check: pass/FAIL in each way, and whether the ways agree (and match the seeded anomalies)."""
    names = [c["name"] for c in CHECKS]
    table = {name: {r["way"]: ("FAIL" if name in r["failing"] else "pass") for r in rows_} for name in names}
    unknown = set().union(*(r["failing"] for r in rows_)) - set(names)
    agree = all(len(set(ways.values())) == 1 for ways in table.values()) and not unknown
    expected = all((name in EXPECTED_FAILING) == (ways[ENGINE] == "FAIL") for name, ways in table.items())
    return {"table": table, "agree": agree, "expected": expected, "unknown": unknown}


def target(rows_: list[dict]) -> dict:
    by_way = {r["way"]: r for r in rows_}
    engine, peers = by_way[ENGINE], [by_way[COMMON_SQL], by_way[GX]]
    return {
        "ratio": engine["ratio"],
        "ratio_met": engine["ratio"] <= TARGET_RATIO,
        "fewer_statements": all(engine["statements"] < p["statements"] for p in peers),
        "fewer_scans": all(engine["scans"] < p["scans"] for p in peers),
        "less_time": all(engine["median_s"] < p["median_s"] for p in peers),
    }


def print_table(rows_: list[dict], n: int) -> None:
    print(f"\n8 checks on {n:,} rows (median of runs; statements = SQL statements sent per run)")
    print(f"{'backend':<11} {'way':<26} {'median':>9} {'x floor':>8} {'stmts':>6} {'scans':>6}  failing checks")
    for r in rows_:
        fails = ", ".join(sorted(r["failing"])) or "-"
        print(f"{r['backend']:<11} {r['way']:<26} {r['median_s']:>8.3f}s {r['ratio']:>7.2f}x {r['statements']:>6} "
              f"{r['scans']:>6}  {fails}")
    for r in rows_:
        if r["sets"]:
            print(f"  {r['way']}: {r['statements']} statements = {r['sets']} SET LOCAL statement_timeout "
                  f"+ {r['statements'] - r['sets']} reading ({r['scans']} scan{'s' if r['scans'] != 1 else ''})")
    v = verdicts(rows_)
    ways = [r["way"] for r in rows_]
    print(f"  {'check':<16} " + " ".join(f"{w.split()[0]:>12}" for w in ways))
    for name, per_way in v["table"].items():
        print(f"  {name:<16} " + " ".join(f"{per_way[w]:>12}" for w in ways))
    print(f"  the four ways agree on every check: {'yes' if v['agree'] else 'NO'}"
          + (f" (unknown names: {sorted(v['unknown'])})" if v["unknown"] else "")
          + f"; failing checks are the seeded anomalies ({', '.join(sorted(EXPECTED_FAILING))}): {'yes' if v['expected'] else 'NO'}")
    t = target(rows_)
    print(f"  target: engine {t['ratio']:.2f}x the floor (at most {TARGET_RATIO}x: {'met' if t['ratio_met'] else 'NOT met'}); "
          f"fewer statements than both peers: {'yes' if t['fewer_statements'] else 'NO'}; "
          f"fewer scans than both peers: {'yes' if t['fewer_scans'] else 'NO'}; "
          f"less time than both peers: {'yes' if t['less_time'] else 'NO'}")


def sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def bench_size(n: int, backends: list[str], repeat: int, tmp: str) -> list[dict]:
    import sqlalchemy as sa

    results: list[dict] = []
    if "sqlite" in backends:
        path = Path(tmp) / f"bench_{n}.db"
        started = time.perf_counter()
        load_sqlite(path, n)
        print(f"SQLite: loaded {n:,} rows in {time.perf_counter() - started:.1f}s ({path})", flush=True)
        try:
            # SqliteHook.get_conn needs one more slash than SQLAlchemy (it maps "sqlite:///" to "file:")
            results += bench_backend("sqlite", f"sqlite:///{path}", f"sqlite:////{path}", repeat)
        finally:
            path.unlink(missing_ok=True)
        print_table([r for r in results if r["backend"] == "sqlite"], n)
    if "postgresql" in backends:
        name = f"dataops_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
            started = time.perf_counter()
            load_postgres(url, n)
            print(f"PostgreSQL: loaded {n:,} rows in {time.perf_counter() - started:.1f}s", flush=True)
            results += bench_backend("postgresql", url, f"postgres://postgres@127.0.0.1:5432/{name}", repeat)
            print_table([r for r in results if r["backend"] == "postgresql"], n)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()")
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            admin.dispose()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=sizes, default=[1_000_000, 10_000_000], help="table sizes, comma-separated (default 1000000,10000000)")
    parser.add_argument("--quick", action="store_true", help="5,000 rows, 2 repeats (CI)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    import logging

    for noisy in ("great_expectations", "airflow.task", "airflow.providers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ns, repeat = ([5_000], 2) if args.quick else (args.rows, args.repeat)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    ok = True
    with tempfile.TemporaryDirectory(prefix="dataops-bench-") as tmp:
        os.environ.setdefault("AIRFLOW_HOME", tmp)
        for n in ns:
            results = bench_size(n, backends, repeat, tmp)
            for backend in backends:
                rows_ = [r for r in results if r["backend"] == backend]
                v = verdicts(rows_)
                ok &= v["agree"] and v["expected"]
    if not ok:
        print("\nthe ways disagree on which checks fail, or fail other checks than the seeded anomalies", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
