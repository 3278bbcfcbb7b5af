"""Parsing stays cheap: nothing heavy is imported, and the CI-sized parse benchmark runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.dag_builder.conftest import REPO

PROBE = r"""
import json, runpy, sys
import airflow.sdk
heavy = ("great_expectations", "pandas", "psycopg2", "asyncpg", "pyarrow", "slack_sdk", "fastapi")
# Only what the loader adds counts: Airflow 3.1's own `import airflow.sdk` loads psycopg2 already
# (3.2+ loads none of these), and a parse process has Airflow imported before it reads a DAG file.
preloaded = {m for m in heavy if m in sys.modules}
runpy.run_path(sys.argv[1])
print(json.dumps(sorted(m for m in heavy if m in sys.modules and m not in preloaded)))
"""


def test_parsing_the_loader_imports_no_heavy_library(tmp_path):
    env = {**os.environ, "AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR": str(tmp_path / "cache"),
           "AIRFLOW__DATAOPS__ENVIRONMENT": "production"}
    for attempt in ("cold cache", "warm cache"):
        out = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "dags" / "dataops_pipelines.py")],
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert json.loads(out.stdout.strip().splitlines()[-1]) == [], attempt


def test_the_parse_benchmark_runs_in_its_quick_form():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_parse.py"), "--quick", "--no-dag-factory"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    table = out.stdout.split("ratios against the baseline")[1]
    row = next(line.split() for line in table.splitlines() if line.strip().startswith("10 "))
    assert row[0] == "10" and float(row[1]) > 0 and float(row[2]) > 0
    assert row[-1] == "none"  # no heavy imports at parse time
