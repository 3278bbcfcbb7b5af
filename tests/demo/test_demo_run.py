"""`make demo-run`: the headless main job runs the example pipeline on the embedded default and
prints the outcome; a stale warehouse makes it fail with the freshness check named."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _demo_run(demo_dir: Path, *make_args: str) -> subprocess.CompletedProcess:
    # The demo must not depend on the caller's Airflow settings (pytest's own AIRFLOW_HOME here).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    return subprocess.run(
        # -o: use the venv as it is; `make venv` is CI's job, not this test's.
        ["make", "--no-print-directory", "-o", ".venv/.installed", "demo-run", f"DEMO_DIR={demo_dir}", *make_args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.integration
def test_demo_run_succeeds_on_fresh_data_and_fails_on_stale(tmp_path):
    demo = tmp_path / "demo"
    ok = _demo_run(demo)
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-4000:]
    assert re.search(r"pipeline orders_daily: run \S+ -> SUCCESS", ok.stdout), ok.stdout[-3000:]
    assert re.search(r"passed\s+row_count\s+orders_daily\s+2000 rows", ok.stdout)
    assert re.search(r"passed\s+freshness\s+orders_daily", ok.stdout)
    assert "dag.test() raised" not in ok.stdout
    assert (demo / "warehouse.db").exists() and (demo / "airflow" / "airflow.db").exists()

    stale = _demo_run(demo, "DEMO_SEED_ARGS=--stale")
    assert stale.returncode != 0
    assert re.search(r"pipeline orders_daily: run \S+ -> FAILED", stale.stdout), stale.stdout[-3000:]
    assert re.search(r"failed\s+freshness\s+orders_daily", stale.stdout)
