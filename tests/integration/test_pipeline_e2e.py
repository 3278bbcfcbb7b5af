"""A YAML pipeline through the whole product, with real Airflow processes (api-server, scheduler,
dag-processor, triggerer), a PostgreSQL results store, a SQLite warehouse and a loopback Slack:

the factory builds the DAG from the YAML file; run 1 finds too few rows, so its real `fail` check
fails, the channel hears it with observed vs expected, the SLA deadline (sla.freshness: 20s) fires
in the triggerer, and nobody acknowledges, so on-call hears it after `after` (30s); the warehouse
is then reloaded and run 2 succeeds, which resolves run 1's alerts ("recovered").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.fake_slack import FakeSlack
from tests.support.waiting import wait_until as _wait

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
AFTER_SECONDS = 30

PIPELINE = """\
pipeline:
  name: orders_e2e
  owner: analytics-engineering
  sla:
    freshness: "20s"
environments:
  - name: production
    schedule: manual
dataset:
  conn_id: warehouse
  table: orders
  timestamp_column: updated_at
quality_checks:
  - type: row_count
    threshold: 500
  - type: null_check
    columns: [order_id]
  - type: freshness
    max_age: "1 day"
alerts:
  channels:
    - slack: "#orders-alerts"
  escalation:
    after: "30s"
    to: oncall_webhook
"""


def _about(messages: list[dict], run_id: str, kind: str) -> list[dict]:
    return [m for m in messages if f"\nRun: {run_id}\n" in (m["text"] or "") and m["kind"] == kind]


def test_yaml_pipeline_check_failure_sla_escalation_and_recovery(tmp_path: Path, pg_url: str):
    from airflow_dataops.demo.seed import seed
    from tests.support.airflow_processes import AirflowCluster

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "dataops_pipelines.py", dags / "dataops_pipelines.py")
    (dags / "orders_e2e.yaml").write_text(PIPELINE)
    warehouse = tmp_path / "warehouse.db"
    seed(warehouse, orders=100)  # fewer than the 500 rows the pipeline promises

    with FakeSlack() as slack:
        env = {
            "AIRFLOW__DATAOPS__ENVIRONMENT": "production",
            "AIRFLOW_CONN_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
            "AIRFLOW_CONN_DATAOPS_RESULTS": pg_url.replace("postgresql+psycopg2://", "postgresql://"),
            "AIRFLOW_CONN_SLACK_API_DEFAULT": json.dumps(
                {"conn_type": "slack", "password": slack.token, "extra": {"base_url": slack.api_url, "timeout": 5}}),
            "AIRFLOW_CONN_ONCALL_WEBHOOK": json.dumps({"conn_type": "slackwebhook", "password": slack.webhook_url}),
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        }
        with AirflowCluster(tmp_path, dags, extra_env=env) as af:
            af.wait_dag("orders_e2e")
            assert af.import_errors() == []
            af.unpause("orders_e2e")

            run1 = af.trigger("orders_e2e")
            assert af.wait_run("orders_e2e", run1, timeout=240) == "failed", af.describe_run("orders_e2e", run1)
            states = af.task_states("orders_e2e", run1)
            assert states["quality_checks"] == "failed" and states["dataops_alert_watch"] == "failed"

            checks = _wait(lambda: [m for m in _about(slack.messages, run1, "api") if "Check failed: row_count" in m["text"]],
                           30, "the failed row_count check on #orders-alerts")
            assert len(checks) == 1 and checks[0]["channel"] == "#orders-alerts"
            assert "Observed: 100" in checks[0]["text"] and "500" in checks[0]["text"]
            assert "Owner: analytics-engineering" in checks[0]["text"] and "production" in checks[0]["text"]
            _wait(lambda: [m for m in _about(slack.messages, run1, "api") if "SLA missed" in m["text"]],
                  120, "the SLA miss of run 1 (Deadline Alert in the triggerer)")
            escalations = _about(slack.messages, run1, "webhook")
            assert escalations and all("ESCALATION" in m["text"] for m in escalations)
            assert min(m["at"] for m in escalations) - checks[0]["at"] >= AFTER_SECONDS - 1

            seed(warehouse, orders=800)  # the load is fixed
            run2 = af.trigger("orders_e2e")
            assert af.wait_run("orders_e2e", run2, timeout=240) == "success", af.describe_run("orders_e2e", run2)
            log = af.task_log("orders_e2e", run2, "quality_checks")
            assert "[PASSED] row_count" in log
            for secret in (slack.token, slack.webhook_url):
                assert secret not in log

    store = sa.create_engine(pg_url)
    with store.connect() as conn:
        results = conn.execute(sa.text(
            "SELECT run_id, check_name, status FROM dataops_check_results WHERE dag_id = 'orders_e2e'")).all()
        alerts = conn.execute(sa.text(
            "SELECT run_id, event, tier, status, resolution FROM dataops_alerts WHERE dag_id = 'orders_e2e'")).all()
    store.dispose()
    by_check = {(r.run_id, r.check_name): r.status for r in results}
    assert by_check[(run1, "row_count")] == "failed" and by_check[(run2, "row_count")] == "passed"
    assert by_check[(run1, "null_check_order_id")] == "passed" and by_check[(run1, "freshness")] == "passed"
    first = [a for a in alerts if a.run_id == run1 and a.tier == 0 and a.event == "check_failed"]
    assert first and first[0].status == "sent" and first[0].resolution == "recovered"  # the check passed again
    assert any(a.run_id == run1 and a.tier == 1 and a.status == "sent" for a in alerts)
