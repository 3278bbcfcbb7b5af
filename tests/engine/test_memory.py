"""No table is read into memory: a `sql` check with `expect: truthy` over a wide result reads one
row (measured as peak RSS in a fresh process, on real PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa

from tests.conftest import REPO

ROWS, PAD = 120_000, 800  # ~100 MB if the driver buffered the result


def _peak_growth_mb(url: str, checks: str) -> float:
    code = textwrap.dedent(f"""
        import datetime as dt, resource, sys
        sys.path.insert(0, {str(REPO)!r})
        import sqlalchemy as sa
        from airflow_dataops.config.checks import parse_checks
        from airflow_dataops.engine.sql_runner import run_checks
        engine = sa.create_engine({url!r})
        checks = parse_checks({checks})
        warm = parse_checks([{{"type": "sql", "sql": "SELECT 1", "expect": "truthy"}}])  # imports, pool; reads nothing big
        run_checks(engine, "wide", warm, now=dt.datetime.now(dt.timezone.utc), timestamp_column=None)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results = run_checks(engine, "wide", checks, now=dt.datetime.now(dt.timezone.utc), timestamp_column=None)
        assert all(r.status == "passed" for r in results), results
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return float(done.stdout.strip().splitlines()[-1])


@pytest.mark.integration
def test_truthy_sql_check_does_not_buffer_the_result(pg_url):
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE wide AS SELECT g AS id, repeat('x', {PAD}) AS pad FROM generate_series(1, {ROWS}) g")
    engine.dispose()
    truthy = _peak_growth_mb(pg_url, '[{"type": "sql", "sql": "SELECT id, pad FROM wide ORDER BY id", "expect": "truthy"}]')
    aggregates = _peak_growth_mb(pg_url, '[{"type": "row_count", "min": 1}, {"type": "null_check", "columns": ["pad"]}]')
    assert truthy < 20, f"peak RSS grew by {truthy:.0f} MB reading one row"
    assert aggregates < 20
