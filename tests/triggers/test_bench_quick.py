"""CI's small run of benchmarks/bench_triggers.py: 20 triggers in one process against PostgreSQL
all fire ``fresh`` after their data turns fresh, within a bounded number of connections."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_dataops.triggers.freshness import MAX_CONNECTIONS_PER_CONN_ID

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_quick_benchmark_runs_and_passes(pg_url):  # pg_url: skip (or fail in CI) without PostgreSQL
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_triggers.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    row = [line for line in proc.stdout.splitlines() if line.startswith("| 20 |")]
    assert row and row[0].rstrip().endswith("| True |"), proc.stdout
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert 1 <= int(cells[5]) <= MAX_CONNECTIONS_PER_CONN_ID  # database connections used by 20 triggers
    assert float(cells[10]) < 2 + 3  # worst lateness: one poke interval (2 s) plus slack
