"""SLA misses through Airflow's own deadline callback trigger, escalation, acknowledgement, resolution."""

from __future__ import annotations

import asyncio
import json


from airflow_dataops.alerting.wiring import dag_alerting_kwargs
from airflow_dataops.store import alerts as store_alerts
from tests.alerting.conftest import alerts_section

ALERTS = alerts_section({"slack": "#data-alerts"}, escalation={"after": 20, "to": "oncall_webhook"})
SLA = {"freshness": 20.0, "completeness": None}


def _deadline_kwargs(ctx, tier: int) -> dict:
    """The callback kwargs exactly as the DAG stores them in the metadata database."""
    deadline = dag_alerting_kwargs(ctx, SLA, ALERTS)["deadline"][tier]
    return json.loads(json.dumps(deadline.callback.kwargs))


def fire(ctx, run_id: str, tier: int, state: str = "running") -> dict:
    """Run the deadline callback the way the triggerer does (airflow.triggers.callback.CallbackTrigger)."""
    from airflow.triggers.callback import CallbackTrigger

    kwargs = _deadline_kwargs(ctx, tier)
    kwargs["context"] = {"dag_run": {"dag_id": ctx["dag_id"], "dag_run_id": run_id, "state": state,
                                     "queued_at": "2026-01-01T00:00:00Z"},
                         "deadline": {"id": "x", "deadline_time": "2026-01-01T00:00:20Z"}}
    trigger = CallbackTrigger(callback_path="airflow_dataops.alerting.callbacks.SlaMissNotifier", callback_kwargs=kwargs)

    async def collect():
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(collect())
    assert events[-1]["state"] == "success", events
    return json.loads(events[-1]["body"])  # Airflow stores the body as the callback's text output


def test_deadline_alert_tiers_are_json_and_secret_free(connections, ctx, slack):
    kwargs = dag_alerting_kwargs({**ctx, "secret_like": slack.token}, SLA, ALERTS)
    first, second = kwargs["deadline"]
    assert first.interval.total_seconds() == 20 and second.interval.total_seconds() == 40
    assert str(first.reference) == str(second.reference) and "QUEUED" in str(first.reference).upper()
    dumped = json.dumps([first.callback.kwargs, second.callback.kwargs])
    assert slack.token not in dumped and "fakeWebhookSecret" not in dumped
    assert kwargs["default_args"]["on_failure_callback"].__class__.__name__ == "TaskFailureNotifier"
    assert dag_alerting_kwargs(ctx, None, None) == {}


def test_sla_miss_then_escalation_when_nobody_acts(connections, slack, ctx, default_store):
    assert fire(ctx, "run_a", 0) == {"slack:#data-alerts": "sent"}
    assert fire(ctx, "run_a", 1) == {"connection:oncall_webhook": "sent"}
    first, escalated = slack.wait_for(2)
    assert first["kind"] == "api" and "SLA missed" in first["text"] and "20s" in first["text"]
    assert escalated["kind"] == "webhook" and escalated["text"].startswith("[CRITICAL] ESCALATION - Unacknowledged")
    # a second scheduler / restarted triggerer firing the same deadlines sends nothing more
    assert fire(ctx, "run_a", 0) == {"slack:#data-alerts": "duplicate"}
    assert fire(ctx, "run_a", 1) == {"connection:oncall_webhook": "duplicate"}
    assert len(slack.wait_for(3, timeout=1)) == 2


def test_acknowledgement_stops_escalation(connections, slack, ctx, default_store):
    fire(ctx, "run_b", 0)
    assert store_alerts.acknowledge(default_store, ctx["dag_id"], "run_b", by="alice") == 1
    assert fire(ctx, "run_b", 1) == {}
    assert len(slack.wait_for(2, timeout=1)) == 1
    assert store_alerts.open_alerts(default_store, ctx["dag_id"]) == []
    kinds = [(a["kind"], a["actor"], a["outcome"]) for a in store_alerts.audit_rows(default_store, ctx["dag_id"])]
    assert ("ack", "alice", "recorded") in kinds and ("escalation", None, "skipped") in kinds


def test_a_later_successful_run_resolves_and_stops_escalation(connections, slack, ctx, default_store):
    fire(ctx, "run_c", 0, state="failed")  # a failed run's deadline still fires (apache/airflow#60927)
    resolved = store_alerts.resolve(default_store, ctx["dag_id"], "later_run_succeeded",
                                    created_before=store_alerts.utcnow())
    assert resolved == [{"pipeline": ctx["pipeline"], "run_id": "run_c", "event": "sla_miss", "subject": "sla"}]
    assert fire(ctx, "run_c", 1) == {}
    assert "state: failed" in slack.wait_for(1)[0]["text"]
    assert len(slack.wait_for(2, timeout=1)) == 1


def test_ack_without_run_acknowledges_every_open_alert_of_the_pipeline(connections, ctx, default_store):
    for run in ("r1", "r2"):
        fire(ctx, run, 0)
    other = {**ctx, "dag_id": ctx["dag_id"] + "_other", "pipeline": ctx["pipeline"] + "_other"}
    fire(other, "r1", 0)
    assert len(store_alerts.open_alerts(default_store)) >= 3
    assert store_alerts.acknowledge(default_store, ctx["dag_id"], None, by="bob") == 2
    assert store_alerts.open_alerts(default_store, ctx["dag_id"]) == []
    assert [a["run_id"] for a in store_alerts.open_alerts(default_store, other["dag_id"])] == ["r1"]
    assert store_alerts.acknowledge(default_store, ctx["dag_id"], None, by="bob") == 0


def test_notifications_off_sla_miss_is_suppressed_and_not_escalated(connections, slack, ctx, default_store):
    quiet = {**ctx, "notifications": False}
    assert fire(quiet, "run_q", 0) == {"slack:#data-alerts": "suppressed"}
    assert fire(quiet, "run_q", 1) == {"connection:oncall_webhook": "suppressed"}
    assert slack.requests == []
