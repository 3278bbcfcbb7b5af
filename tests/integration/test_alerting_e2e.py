"""End to end with real Airflow processes (api-server, scheduler, dag-processor, triggerer):
SLA miss -> channel; nobody acknowledges -> on-call after `after`; an acknowledgement stops the
escalation; a later successful run stops it. Real task and component logs never show a secret.

Timeline (sla 20 s, after 30 s): the SLA tier fires ~20 s after the run is queued, its escalation
tier ~50 s after. Runs 1 and 2 run for 70 s, so both tiers fire while they are running; run 3 fails
at 25 s (its deadlines still fire, apache/airflow#60927) and run 4 succeeds before run 3's escalation.
A second DAG without an SLA covers failed-check escalation through the alert watch task: run 6 is
escalated after `after`; run 5 is fixed and cleared, and the same run succeeding stops it. (Clearing a
run of the SLA DAG is not possible while its queued-at deadlines are pending: Airflow 3.3.2 answers
HTTP 500, apache/airflow#70368.)
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.waiting import wait_until as _wait

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(600)]

DAG_ID = "sla_e2e"
SLA_SECONDS, AFTER_SECONDS = 20, 30

DAG_SOURCE = """
import datetime as dt
import os
import time

from airflow.sdk import DAG, get_current_context, task

from airflow_dataops.alerting.wiring import dag_alerting_kwargs, escalation_task

CTX = {"pipeline": "sla_e2e", "dag_id": "sla_e2e", "environment": "production", "owner": "data-team",
       "notifications": True, "ui_base_url": None}
SLA = {"freshness": %(sla)s, "completeness": None}
ALERTS = {"channels": [{"slack": {"channel": "#data-alerts", "conn_id": None}}], "on": None,
          "escalation": {"after": %(after)s, "to": "oncall_webhook"}, "repeat": False}

extra = dag_alerting_kwargs(CTX, SLA, ALERTS)
with DAG("sla_e2e", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
         deadline=extra["deadline"], default_args={**extra["default_args"], "retries": 0}) as dag:

    @task
    def work():
        conf = get_current_context()["dag_run"].conf or {}
        flag = conf.get("fail_flag")
        if flag and os.path.exists(flag):  # fails until someone fixes it (removes the flag)
            time.sleep(25)
            raise RuntimeError("the warehouse load failed until fixed")
        time.sleep(float(conf.get("sleep", 0)))
        if conf.get("fail"):
            raise RuntimeError("the warehouse load failed")

    done = work()
    watch = escalation_task(CTX, ALERTS)
    done >> watch
"""

CHECK_DAG_ID = "checks_e2e"
CHECK_DAG_SOURCE = """
import datetime as dt
import os

from airflow.sdk import DAG, get_current_context, task
from airflow_dataops.compat import AirflowFailException

from airflow_dataops.alerting.dispatch import dispatch_event
from airflow_dataops.alerting.wiring import dag_alerting_kwargs, escalation_task

CTX = {"pipeline": "checks_e2e", "dag_id": "checks_e2e", "environment": "production", "owner": "data-team",
       "notifications": True, "ui_base_url": None}
ALERTS = {"channels": [{"slack": {"channel": "#data-alerts", "conn_id": None}}], "on": None,
          "escalation": {"after": %(after)s, "to": "oncall_webhook"}, "repeat": False}

extra = dag_alerting_kwargs(CTX, None, ALERTS)
with DAG("checks_e2e", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
         default_args={**extra["default_args"], "retries": 0}) as dag:

    @task
    def check_orders():
        context = get_current_context()
        flag = (context["dag_run"].conf or {}).get("fail_flag")
        if flag and os.path.exists(flag):  # the data stays bad until someone fixes it
            run = {"pipeline": "checks_e2e", "dag_id": "checks_e2e", "run_id": context["run_id"],
                   "task_id": "check_orders", "environment": "production"}
            dispatch_event(CTX, run, "check_failed", "orders_row_count", "Check orders_row_count failed",
                           {"observed": 3, "expected": ">= 10"}, ALERTS, True)
            raise AirflowFailException("orders_row_count failed")

    done = check_orders()
    watch = escalation_task(CTX, ALERTS)
    done >> watch
"""


def _for_run(messages: list[dict], run_id: str, kind: str | None = None) -> list[dict]:
    """Messages about an alert of ``run_id`` (its "Run:" fact line, not a mere mention)."""
    return [m for m in messages if f"\nRun: {run_id}\n" in (m["text"] or "") and (kind is None or m["kind"] == kind)]


def test_sla_miss_escalation_ack_and_resolution(tmp_path: Path):
    from tests.support.airflow_processes import AirflowCluster

    from airflow_dataops.store import alerts as store_alerts
    from airflow_dataops.store.base import ensure_schema, sqlite_engine

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "sla_e2e.py").write_text(textwrap.dedent(DAG_SOURCE % {"sla": SLA_SECONDS, "after": AFTER_SECONDS}))
    (dags / "checks_e2e.py").write_text(textwrap.dedent(CHECK_DAG_SOURCE % {"after": AFTER_SECONDS}))
    results_db = tmp_path / "results.db"
    store = sqlite_engine(results_db)
    ensure_schema(store)

    with FakeSlack() as slack:
        env = {
            "AIRFLOW__DATAOPS__ENVIRONMENT": "production",
            "AIRFLOW_CONN_DATAOPS_RESULTS": f"sqlite:///{results_db}",
            "AIRFLOW_CONN_SLACK_API_DEFAULT": json.dumps(
                {"conn_type": "slack", "password": slack.token, "extra": {"base_url": slack.api_url, "timeout": 5}}),
            "AIRFLOW_CONN_ONCALL_WEBHOOK": json.dumps({"conn_type": "slackwebhook", "password": slack.webhook_url}),
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        }
        with AirflowCluster(tmp_path, dags, extra_env=env) as af:
            af.unpause(DAG_ID)
            af.unpause(CHECK_DAG_ID)

            # Runs 1 and 2: both miss the SLA while running. Run 6 (no SLA) fails a check.
            flag6 = tmp_path / "broken6"
            flag6.write_text("bad data")
            run1 = af.trigger(DAG_ID, {"sleep": 70})
            run2 = af.trigger(DAG_ID, {"sleep": 70})
            run6 = af.trigger(CHECK_DAG_ID, {"fail_flag": str(flag6)})
            first = _wait(lambda: len(_for_run(slack.messages, run1, "api")) >= 1 and len(_for_run(slack.messages, run2, "api")) >= 1,
                          90, "the SLA misses of runs 1 and 2 on #data-alerts")
            sla1 = _for_run(slack.messages, run1, "api")[0]
            assert sla1["channel"] == "#data-alerts" and "SLA missed" in sla1["text"]
            assert f"{af.base_url}/dags/{DAG_ID}/runs/" in sla1["text"] and "Owner: data-team" in sla1["text"]
            # Someone acknowledges run 2 (what `airflow-dataops ack sla_e2e --run RUN` does).
            assert store_alerts.acknowledge(store, DAG_ID, run2, by="alice") == 1
            assert first

            # Nobody acknowledged run 1: on-call hears it `after` later.
            escalation = _wait(lambda: _for_run(slack.messages, run1, "webhook"), 90, "the escalation of run 1")
            assert len(escalation) == 1 and "ESCALATION" in escalation[0]["text"]
            assert escalation[0]["at"] - sla1["at"] >= AFTER_SECONDS - 5

            assert af.wait_run(DAG_ID, run1, timeout=180) == "success", af.describe_run(DAG_ID, run1)
            assert af.wait_run(DAG_ID, run2, timeout=180) == "success", af.describe_run(DAG_ID, run2)
            assert _for_run(slack.messages, run2, "webhook") == []  # the acknowledgement stopped it
            recovered = _wait(lambda: [m for m in _for_run(slack.messages, run1, "api") if "Recovered" in m["text"]],
                              30, "the recovery message of run 1")
            assert len(recovered) == 1

            # Nobody acknowledged run 6's failed check: the alert watch escalated it, the run failed.
            assert af.wait_run(CHECK_DAG_ID, run6, timeout=120) == "failed", af.describe_run(CHECK_DAG_ID, run6)
            check6, escalated6 = _for_run(slack.messages, run6, "api"), _for_run(slack.messages, run6, "webhook")
            assert len(check6) == 1 and "Check failed: orders_row_count" in check6[0]["text"]
            assert len(escalated6) == 1 and "ESCALATION" in escalated6[0]["text"]
            # `after` counts from when the alert was raised (its row, claimed before the send), not
            # from when the Slack stand-in got it: under load the send itself may take a second.
            raised6 = min(r["created_at"] for r in store_alerts.alert_rows(store, CHECK_DAG_ID, run6) if r["tier"] == 0)
            assert escalated6[0]["at"] >= raised6.timestamp() + AFTER_SECONDS - 0.5, (escalated6[0]["at"], raised6)
            assert af.task_states(CHECK_DAG_ID, run6)["dataops_alert_watch"] == "failed"

            # Run 3 misses its SLA and fails; run 4 succeeds before run 3's escalation is due.
            run3 = af.trigger(DAG_ID, {"sleep": 25, "fail": True})
            _wait(lambda: _for_run(slack.messages, run3, "api"), 90, "the SLA miss of run 3")
            af.wait_task_state(DAG_ID, run3, "work", {"failed"}, timeout=120)
            run4 = af.trigger(DAG_ID, {"sleep": 0})
            assert af.wait_run(DAG_ID, run4, timeout=120) == "success", af.describe_run(DAG_ID, run4)
            assert af.wait_run(DAG_ID, run3, timeout=180) == "failed", af.describe_run(DAG_ID, run3)
            # Past run 3's escalation deadline (queued + sla + after) with a margin for the scheduler loop.
            queued3 = _for_run(slack.messages, run3, "api")[0]["at"] - SLA_SECONDS
            time.sleep(max(0.0, queued3 + SLA_SECONDS + AFTER_SECONDS + 15 - time.time()))
            assert _for_run(slack.messages, run3, "webhook") == []
            texts3 = [m["text"] for m in _for_run(slack.messages, run3)]
            assert any("SLA missed" in t for t in texts3) and any("Task failed: work" in t for t in texts3)

            # Run 5 fails a check, is fixed and cleared: the same run succeeding stops its escalation.
            flag5 = tmp_path / "broken5"
            flag5.write_text("bad data")
            run5 = af.trigger(CHECK_DAG_ID, {"fail_flag": str(flag5)})
            af.wait_task_state(CHECK_DAG_ID, run5, "dataops_alert_watch", {"deferred"}, timeout=120)
            [check5] = _for_run(slack.messages, run5, "api")
            flag5.unlink()
            cleared = af.api("POST", f"/api/v2/dags/{CHECK_DAG_ID}/clearTaskInstances", {
                "dry_run": False, "dag_run_id": run5, "task_ids": ["check_orders"], "include_downstream": True,
                "only_failed": False, "reset_dag_runs": True})
            assert cleared.status_code == 200, cleared.text
            assert af.wait_run(CHECK_DAG_ID, run5, timeout=120) == "success", af.describe_run(CHECK_DAG_ID, run5)
            time.sleep(max(0.0, check5["at"] + AFTER_SECONDS + 10 - time.time()))
            assert _for_run(slack.messages, run5, "webhook") == []
            [row5] = store_alerts.alert_rows(store, CHECK_DAG_ID, run5)
            assert row5["resolution"] == "same_run_succeeded"

            rows = store_alerts.alert_rows(store, DAG_ID)
            by_run = {(r["run_id"], r["event"], r["tier"]): r for r in rows}
            assert by_run[(run1, "sla_miss", 1)]["status"] == "sent"
            assert by_run[(run2, "sla_miss", 0)]["acknowledged_by"] == "alice"
            assert by_run[(run3, "sla_miss", 0)]["resolution"] == "later_run_succeeded"
            for run in (run2, run3):
                assert (run, "sla_miss", 1) not in by_run and (run, "task_failed", 1) not in by_run
            audit = store_alerts.audit_rows(store, DAG_ID)
            assert any(a["kind"] == "escalation" and a["outcome"] == "skipped" and a["run_id"] == run2 for a in audit)

            # No token or webhook URL in any real task log or component log.
            logs = []
            for dag_id, run in [(DAG_ID, r) for r in (run1, run2, run3, run4)] + [(CHECK_DAG_ID, run5), (CHECK_DAG_ID, run6)]:
                for ti in af.task_instances(dag_id, run):
                    for try_number in range(1, (ti.get("try_number") or 0) + 1):
                        logs.append(af.task_log(dag_id, run, ti["task_id"], try_number))
            logs.extend(p.read_text(errors="replace") for p in af.log_dir.glob("*.log"))
            logs.extend(p.read_text(errors="replace") for p in (af.home / "logs").rglob("*") if p.is_file())
            everything = "\n".join(logs)
            assert "alert task_failed sent to slack:#data-alerts" in everything  # the logs are the real ones
            for secret in (slack.token, slack.webhook_url, "fakeWebhookSecret0123"):
                assert secret not in everything
