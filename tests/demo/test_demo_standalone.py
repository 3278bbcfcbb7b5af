"""`make demo`: a newcomer gets Airflow on 127.0.0.1 with the example pipelines, and can trigger one."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.airflow_processes import free_port

REPO = Path(__file__).resolve().parents[2]


def _poll(fn, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(2)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
    raise AssertionError(f"{what} not reached after {timeout:.0f}s (last: {last!r}); make demo output:\n{tail}")


@pytest.mark.integration
@pytest.mark.e2e
def test_make_demo_serves_the_example_pipelines_and_runs_one(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    # Log-server ports of their own, so a `make demo` already running on this machine does not clash.
    env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
    env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    log = tmp_path / "make-demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/.installed", "demo", f"DEMO_DIR={tmp_path / 'demo'}", f"DEMO_PORT={port}"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            def healthy():
                health = http.get("/api/v2/monitor/health").json()
                return all(health[k]["status"] == "healthy" for k in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

            _poll(healthy, 300, "a healthy demo Airflow", log)
            # Demo mode: no login; a token is handed out to anyone on 127.0.0.1.
            token = http.get("/auth/token").json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            _poll(lambda: http.get("/api/v2/dags/orders_daily").status_code == 200, 180, "orders_daily parsed", log)
            assert http.get("/api/v2/importErrors").json()["total_entries"] == 0
            assert http.patch("/api/v2/dags/orders_daily", json={"is_paused": False}).status_code == 200
            run = http.post("/api/v2/dags/orders_daily/dagRuns", json={"logical_date": None})
            assert run.status_code == 200, run.text
            run_id = run.json()["dag_run_id"]

            def finished():
                state = http.get(f"/api/v2/dags/orders_daily/dagRuns/{run_id}").json()["state"]
                return state if state in ("success", "failed") else None

            assert _poll(finished, 300, "the end of the orders_daily run", log) == "success"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
