"""The demo warehouse: realistic, deterministic, fresh by default, and breakable on purpose."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from airflow_dataops.demo.seed import STATUSES, seed
from airflow_dataops.engine.freshness import freshness_lag, newest_timestamp_stmt

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def _example_checks() -> dict[str, dict]:
    config = yaml.safe_load((REPO / "dags" / "orders_daily.yaml").read_text())
    return {check["type"]: check for check in config["quality_checks"]}


def _rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _lag(path: Path, now: dt.datetime) -> dt.timedelta:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            newest = conn.execute(newest_timestamp_stmt("orders_daily", "updated_at")).scalar()
    finally:
        engine.dispose()
    return freshness_lag(newest, now)


def test_default_warehouse_passes_the_example_pipelines_checks(tmp_path):
    db = tmp_path / "warehouse.db"
    summary = seed(db, now=NOW)

    checks = _example_checks()
    (count,) = _rows(db, "SELECT count(*) FROM orders_daily")[0]
    assert count == summary.orders == 2000
    assert count >= checks["row_count"]["threshold"]
    assert _lag(db, NOW) == dt.timedelta(minutes=2)  # far inside the example's "2 hours"
    (nulls,) = _rows(db, "SELECT count(*) FROM orders WHERE customer_id IS NULL")[0]
    assert 0 < nulls < count * 0.01, "a few guest checkouts, so the example's null_check has something to report"


def test_default_warehouse_is_consistent(tmp_path):
    db = tmp_path / "warehouse.db"
    seed(db, now=NOW)
    assert {s for (s,) in _rows(db, "SELECT DISTINCT status FROM orders")} <= set(STATUSES)
    assert _rows(db, "SELECT count(*) FROM orders WHERE amount <= 0") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM orders o LEFT JOIN customers c USING (customer_id) "
                     "WHERE o.customer_id IS NOT NULL AND c.customer_id IS NULL") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM payments p LEFT JOIN orders o USING (order_id) WHERE o.order_id IS NULL") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM orders WHERE email NOT LIKE '%_@_%._%'") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM orders WHERE updated_at < created_at") == [(0,)]
    oldest, newest = _rows(db, "SELECT min(created_at), max(updated_at) FROM orders")[0]
    assert dt.datetime.fromisoformat(oldest) >= (NOW - dt.timedelta(days=31)).replace(tzinfo=None)
    assert dt.datetime.fromisoformat(newest) <= NOW.replace(tzinfo=None)


def test_same_seed_and_moment_give_the_same_data(tmp_path):
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    seed(a, now=NOW)
    seed(b, now=NOW)
    seed(c, now=NOW, random_seed=7)
    dump = "SELECT * FROM orders ORDER BY order_id"
    assert _rows(a, dump) == _rows(b, dump)
    assert _rows(a, dump) != _rows(c, dump)


def test_reseeding_replaces_the_file(tmp_path):
    db = tmp_path / "warehouse.db"
    seed(db, now=NOW, dirty=True)
    seed(db, now=NOW, orders=600)
    assert _rows(db, "SELECT count(*) FROM orders") == [(600,)]
    assert _rows(db, "SELECT count(*) FROM orders WHERE amount <= 0") == [(0,)]


def test_stale_makes_the_freshness_check_fail(tmp_path):
    db = tmp_path / "warehouse.db"
    seed(db, now=NOW, stale=True)
    max_age_hours = int(_example_checks()["freshness"]["max_age"].split()[0])
    assert _lag(db, NOW) > dt.timedelta(hours=max_age_hours)


def test_dirty_adds_the_problems_checks_catch(tmp_path):
    db = tmp_path / "warehouse.db"
    seed(db, now=NOW, dirty=True)
    (count,) = _rows(db, "SELECT count(*) FROM orders")[0]
    (nulls,) = _rows(db, "SELECT count(*) FROM orders WHERE customer_id IS NULL")[0]
    assert nulls > count * 0.02
    assert _rows(db, "SELECT count(*) FROM orders WHERE amount < 0")[0][0] > 0
    assert _rows(db, "SELECT count(*) FROM orders WHERE status = 'lost'")[0][0] > 0
    assert _rows(db, "SELECT count(*) FROM orders WHERE email NOT LIKE '%_@_%._%'")[0][0] > 0
    orphans = _rows(db, "SELECT count(*) FROM orders o LEFT JOIN customers c USING (customer_id) "
                        "WHERE o.customer_id IS NOT NULL AND c.customer_id IS NULL")[0][0]
    assert orphans > 0
    assert _lag(db, NOW) < dt.timedelta(hours=2), "--dirty alone keeps the data fresh"


def test_command_line_seeds_and_reports(tmp_path):
    db = tmp_path / "nested" / "warehouse.db"
    proc = subprocess.run([sys.executable, "-m", "airflow_dataops.demo.seed", str(db), "--orders", "700", "--stale"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"demo warehouse {db}: 175 customers, 700 orders" in proc.stdout
    assert _lag(db, dt.datetime.now(dt.timezone.utc)) > dt.timedelta(days=2)


def test_command_line_rejects_a_bad_order_count(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "airflow_dataops.demo.seed", str(tmp_path / "w.db"), "--orders", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "orders must be at least 1, got 0" in proc.stderr


@pytest.mark.parametrize("uri_form", ["json", "uri"])
def test_the_demo_connection_reaches_the_warehouse_through_airflow(tmp_path, monkeypatch, uri_form):
    """`make demo` points AIRFLOW_CONN_DATAOPS_DEFAULT at the file; the checks' engine must reach it."""
    from airflow_dataops.hooks.sql import create_engine_for

    db = tmp_path / "warehouse.db"
    seed(db, now=NOW)
    value = f'{{"conn_type": "sqlite", "host": "{db}"}}' if uri_form == "json" else f"sqlite:///{db}"
    monkeypatch.setenv("AIRFLOW_CONN_DATAOPS_DEMO_TEST", value)
    engine = create_engine_for("dataops_demo_test")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM orders_daily").scalar() == 2000
    finally:
        engine.dispose()


@pytest.mark.integration
def test_seeds_postgresql_for_docker_compose(pg_url):
    summary = seed(pg_url, now=NOW, orders=800)
    assert summary.target == sa.make_url(pg_url).render_as_string(hide_password=True)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM orders_daily").scalar() == 800
            newest = conn.execute(newest_timestamp_stmt("orders_daily", "updated_at")).scalar()
            assert freshness_lag(newest, NOW) == dt.timedelta(minutes=2)
            orphans = conn.exec_driver_sql(
                "SELECT count(*) FROM payments p LEFT JOIN orders o USING (order_id) WHERE o.order_id IS NULL"
            ).scalar()
            assert orphans == 0
        seed(pg_url, now=NOW, orders=600, stale=True)  # replaces the tables and the view
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM orders_daily").scalar() == 600
            newest = conn.execute(newest_timestamp_stmt("orders_daily", "updated_at")).scalar()
            assert freshness_lag(newest, NOW) > dt.timedelta(days=2)
    finally:
        engine.dispose()


def test_command_line_error_hides_the_password(tmp_path):
    url = "postgresql+psycopg2://someone:s3cret-pw@127.0.0.1:1/warehouse"
    proc = subprocess.run([sys.executable, "-m", "airflow_dataops.demo.seed", url], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "error: cannot seed postgresql+psycopg2://someone:***@127.0.0.1:1/warehouse" in proc.stderr
    assert "s3cret-pw" not in proc.stderr + proc.stdout
