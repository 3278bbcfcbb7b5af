"""SLA misses through Airflow's own deadline callback trigger, escalation, acknowledgement, resolution."""

from __future__ import annotations

import asyncio
import json
import time


from airflow_dataops.alerting.wiring import dag_alerting_kwargs
from airflow_dataops.store import alerts as store_alerts
from tests.alerting.conftest import alerts_section

ALERTS = alerts_section({"slack": "#data-alerts"}, escalation={"after": 3, "to": "oncall_webhook"})
SLA = {"freshness": 20.0, "completeness": None}


def _deadline_kwargs(ctx, tier: int, sla=SLA, alerts=ALERTS) -> dict:
    """The callback kwargs exactly as the DAG stores them in the metadata database."""
    deadline = dag_alerting_kwargs(ctx, sla, alerts)["deadline"][tier]
    return json.loads(json.dumps(deadline.callback.kwargs))


async def fire_async(ctx, run_id: str, tier: int, state: str = "running", sla=SLA, alerts=ALERTS) -> dict:
    """Run the deadline callback the way the triggerer does (airflow.triggers.callback.CallbackTrigger)."""
    from tests.support.compat import deadline_callback_trigger

    kwargs = _deadline_kwargs(ctx, tier, sla, alerts)
    kwargs["context"] = {"dag_run": {"dag_id": ctx["dag_id"], "dag_run_id": run_id, "state": state,
                                     "queued_at": "2026-01-01T00:00:00Z"},
                         "deadline": {"id": "x", "deadline_time": "2026-01-01T00:00:20Z"}}
    trigger = deadline_callback_trigger("airflow_dataops.alerting.callbacks.SlaMissNotifier", kwargs)
    events = [event.payload async for event in trigger.run()]
    assert events[-1]["state"] == "success", events
    return json.loads(events[-1]["body"])  # Airflow stores the body as the callback's text output


def fire(ctx, run_id: str, tier: int, state: str = "running", sla=SLA, alerts=ALERTS) -> dict:
    return asyncio.run(fire_async(ctx, run_id, tier, state, sla, alerts))


def test_deadline_alert_tiers_are_json_and_secret_free(connections, ctx, slack):
    kwargs = dag_alerting_kwargs({**ctx, "secret_like": slack.token}, SLA, ALERTS)
    first, second = kwargs["deadline"]
    assert first.interval.total_seconds() == 20 and second.interval.total_seconds() == 23
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
    resolved = store_alerts.resolve(default_store, ctx["dag_id"], "later_run_succeeded", environment=ctx["environment"],
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


QUICK = alerts_section({"slack": "#data-alerts"}, escalation={"after": 2, "to": "oncall_webhook"})


def test_an_escalation_deadline_that_finds_no_sla_miss_sends_it_first_then_waits_after(connections, slack, ctx,
                                                                                        default_store):
    """Both deadlines came due together (scheduler or triggerer down longer than `after`) and the
    escalation tier ran first: it sends the SLA miss itself, then escalates `after` past *that* alert,
    never "skipped: it was never alerted"."""
    started = time.monotonic()
    assert fire(ctx, "run_late", 1, alerts=QUICK) == {"connection:oncall_webhook": "sent"}
    assert time.monotonic() - started >= 2
    first, escalated = slack.wait_for(2)
    assert first["kind"] == "api" and "SLA missed" in first["text"]
    assert escalated["kind"] == "webhook" and "ESCALATION" in escalated["text"]
    assert escalated["at"] - first["at"] >= 2 - 0.2
    assert fire(ctx, "run_late", 0, alerts=QUICK) == {"slack:#data-alerts": "duplicate"}  # tier 0, when it runs
    assert len(slack.wait_for(3, timeout=1)) == 2
    assert not [a for a in store_alerts.audit_rows(default_store, ctx["dag_id"]) if a["outcome"] == "skipped"]


def test_both_tiers_running_at_once_give_one_sla_miss_and_one_escalation(connections, slack, ctx, default_store):
    """The triggerer runs callbacks that came due together concurrently."""

    async def both():
        return await asyncio.gather(fire_async(ctx, "run_both", 1, alerts=QUICK), fire_async(ctx, "run_both", 0, alerts=QUICK))

    escalation, first = asyncio.run(both())
    assert escalation == {"connection:oncall_webhook": "sent"}
    assert set(first.values()) <= {"sent", "duplicate"}
    messages = slack.wait_for(3, timeout=2)
    assert [m["kind"] for m in messages] == ["api", "webhook"]
    assert messages[1]["at"] - messages[0]["at"] >= 2 - 0.2


def test_after_is_measured_from_the_alert_not_from_the_deadline(connections, slack, ctx, default_store):
    """An SLA miss alerted late (its deadline was handled late): the escalation waits `after` past it."""
    fire(ctx, "run_slow", 0, alerts=QUICK)
    started = time.monotonic()
    fire(ctx, "run_slow", 1, alerts=QUICK)  # its own deadline came right after
    assert time.monotonic() - started >= 1.5
    first, escalated = slack.wait_for(2)
    assert escalated["at"] - first["at"] >= 2 - 0.2


def test_an_acknowledgement_during_the_wait_stops_the_escalation(connections, slack, ctx, default_store):
    import threading

    fire(ctx, "run_ack", 0, alerts=QUICK)
    acker = threading.Timer(0.5, store_alerts.acknowledge, args=(default_store, ctx["dag_id"], "run_ack", "dana"))
    acker.start()
    assert fire(ctx, "run_ack", 1, alerts=QUICK) == {}
    acker.join()
    assert len(slack.wait_for(2, timeout=1)) == 1
    assert any(a["outcome"] == "skipped" and "dana" in a["detail"] for a in store_alerts.audit_rows(default_store, ctx["dag_id"]))


def test_an_sla_without_alert_channels_is_still_a_deadline_and_is_recorded(connections, slack, ctx, default_store,
                                                                          caplog):
    """sla.freshness with no alerts: the miss is recorded (the UI's on-time rate counts it), logged,
    and nothing is sent."""
    import logging

    from airflow_dataops.plugins import queries
    from tests.support.compat import deadline_alerts_have_names

    kwargs = dag_alerting_kwargs(ctx, SLA, None)
    assert len(kwargs["deadline"]) == 1 and "default_args" not in kwargs
    if deadline_alerts_have_names():  # Airflow 3.2+ (3.1's DeadlineAlert has no name)
        assert [d.name for d in kwargs["deadline"]] == ["dataops_sla_miss"]
    with caplog.at_level(logging.WARNING, logger="airflow_dataops.alerting.dispatch"):
        assert fire(ctx, "run_quiet", 0, alerts=None) == {"none": "recorded"}
    assert slack.requests == []
    [row] = store_alerts.alert_rows(default_store, ctx["dag_id"])
    assert (row["event"], row["channel"], row["status"]) == ("sla_miss", "none", "recorded")
    # no alert watch will ever resolve it and nobody is to hear of it: counted, but not left "open"
    assert row["resolution"] == "no_alerting_configured" and store_alerts.open_alerts(default_store, ctx["dag_id"]) == []
    assert "alert sla_miss recorded only" in caplog.text
    with default_store.connect() as conn:
        on_time = queries._on_time(conn, {ctx["dag_id"]: ctx["environment"]}, store_alerts.utcnow())
        assert on_time == {ctx["dag_id"]: (0, 1)}
    assert fire(ctx, "run_quiet", 0, alerts=None) == {"none": "recorded"}  # again: still one row
    assert len(store_alerts.alert_rows(default_store, ctx["dag_id"])) == 1


def test_escalation_without_channels_still_reaches_on_call(connections, slack, ctx, default_store):
    only_oncall = alerts_section(escalation={"after": 1, "to": "oncall_webhook"})
    assert len(dag_alerting_kwargs(ctx, SLA, only_oncall)["deadline"]) == 2
    assert fire(ctx, "run_oc", 0, alerts=only_oncall) == {"none": "recorded"}
    [recorded] = store_alerts.open_alerts(default_store, ctx["dag_id"])  # open: on-call may still hear it
    assert recorded["channel"] == "none"
    assert fire(ctx, "run_oc", 1, alerts=only_oncall) == {"connection:oncall_webhook": "sent"}
    [escalated] = slack.wait_for(1)
    assert escalated["kind"] == "webhook" and "SLA missed" in escalated["text"]
