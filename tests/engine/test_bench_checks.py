"""CI runs the check benchmark small (5,000 rows) so it cannot rot; the full run is by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_available

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_checks.py"


def _run(backends: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--backends", backends],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _table(out: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in out.splitlines():
        for way in ("floor (hand-written)", "airflow-dataops engine", "common-sql Column+Table", "Great Expectations 1.x"):
            if way in line:
                rows[(line.split()[0], way)] = line.split(way)[1].split()
    return rows


def _assert_shape(out: str, backend: str) -> None:
    rows = _table(out)
    assert "8 checks on 5,000 rows" in out
    engine, floor, common = rows[(backend, "airflow-dataops engine")], rows[(backend, "floor (hand-written)")], rows[(backend, "common-sql Column+Table")]
    assert floor[2:4] == ["1", "1"]  # statements, scans
    assert engine[3] == "1", "the engine scans the table once"
    assert common[3] == "9"
    # Same data, same verdicts: every way agrees that no check fails on the generated table.
    assert all(cells[-1] == "-" for (b, _), cells in rows.items() if b == backend), out


def test_quick_benchmark_sqlite():
    out = _run("sqlite")
    _assert_shape(out, "sqlite")
    assert _table(out)[("sqlite", "airflow-dataops engine")][2] == "1"  # one statement


@pytest.mark.integration
def test_quick_benchmark_postgresql():
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    out = _run("postgresql")
    _assert_shape(out, "postgresql")
    assert _table(out)[("postgresql", "airflow-dataops engine")][2] == "2"  # the scan + SET LOCAL statement_timeout
