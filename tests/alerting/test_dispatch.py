"""Dispatch: every channel tried, exactly once, everything recorded, nothing raised."""

from __future__ import annotations

import json
import logging
import threading

from airflow_dataops.alerting.dispatch import dispatch_event
from airflow_dataops.store import alerts as store_alerts
from tests.alerting.conftest import alerts_section

RUN = {"run_id": "manual__2026-01-01", "task_id": "wait_for_orders"}


def test_every_channel_hears_once_and_a_missing_connection_is_recorded(connections, slack, smtp, store, ctx):
    alerts = alerts_section({"slack": {"channel": "#data-alerts"}}, {"connection": "does_not_exist"},
                            {"email": {"to": ["team@example.com"]}})
    outcomes = dispatch_event(ctx, RUN, "freshness_timeout", "orders", "orders is 3 h old", {"observed": "3:00:00"},
                              alerts, True, engine=store)

    assert outcomes == {"slack:#data-alerts": "sent", "connection:does_not_exist": "failed",
                        "email:team@example.com": "sent"}
    assert len(slack.wait_for(1)) == 1 and len(smtp.wait_for(1)) == 1
    rows = {r["channel"]: r for r in store_alerts.alert_rows(store, ctx["dag_id"])}
    assert rows["slack:#data-alerts"]["status"] == "sent" and rows["slack:#data-alerts"]["sent_at"] is not None
    assert rows["connection:does_not_exist"]["status"] == "failed"
    assert "does_not_exist" in rows["connection:does_not_exist"]["error"]
    assert "airflow connections add" in rows["connection:does_not_exist"]["error"]
    audit = store_alerts.audit_rows(store, ctx["dag_id"])
    assert sorted((a["channel"], a["outcome"]) for a in audit) == [
        ("connection:does_not_exist", "failed"), ("email:team@example.com", "sent"), ("slack:#data-alerts", "sent")]

    # the same alert again (a retry, a duplicate trigger): nothing more is sent
    again = dispatch_event(ctx, RUN, "freshness_timeout", "orders", "orders is 3 h old", {}, alerts, True, engine=store)
    assert again["slack:#data-alerts"] == "duplicate" and again["email:team@example.com"] == "duplicate"
    assert len(slack.messages) == 1 and len(smtp.messages) == 1


def test_a_channel_that_failed_is_tried_again_later(connections, slack, store, ctx, monkeypatch):
    alerts = alerts_section({"connection": "late_slack"})
    assert dispatch_event(ctx, RUN, "task_failed", "load", "boom", {}, alerts, True, engine=store) == {
        "connection:late_slack": "failed"}
    monkeypatch.setenv("AIRFLOW_CONN_LATE_SLACK", json.dumps(
        {"conn_type": "slack", "password": slack.token, "extra": {"base_url": slack.api_url, "channel": "#late"}}))
    assert dispatch_event(ctx, RUN, "task_failed", "load", "boom", {}, alerts, True, engine=store) == {
        "connection:late_slack": "sent"}
    assert [m["channel"] for m in slack.wait_for(1)] == ["#late"]
    [row] = store_alerts.alert_rows(store, ctx["dag_id"])
    assert row["status"] == "sent" and row["error"] is None


def test_slack_down_is_recorded_and_email_still_delivers(connections, slack, smtp, store, ctx, monkeypatch):
    monkeypatch.setattr("airflow_dataops.notifications.slack.DEFAULT_TOTAL_SECONDS", 1.0)
    slack.plan(*["500"] * 50)
    alerts = alerts_section({"slack": "#data-alerts"}, {"email": "team@example.com"})
    outcomes = dispatch_event(ctx, RUN, "task_failed", "load", "boom", {}, alerts, True, engine=store)

    assert outcomes == {"slack:#data-alerts": "failed", "email:team@example.com": "sent"}
    assert len(smtp.wait_for(1)) == 1
    failed = next(r for r in store_alerts.alert_rows(store, ctx["dag_id"]) if r["channel"] == "slack:#data-alerts")
    assert "HTTP 500" in failed["error"] and slack.token not in failed["error"]


def test_notifications_off_sends_nothing_but_records_and_logs(connections, slack, smtp, store, ctx, caplog):
    alerts = alerts_section({"slack": "#data-alerts"}, {"email": "team@example.com"})
    with caplog.at_level(logging.INFO, logger="airflow_dataops.alerting.dispatch"):
        outcomes = dispatch_event(ctx, RUN, "sla_miss", "sla", "late", {}, alerts, False, engine=store)

    assert set(outcomes.values()) == {"suppressed"}
    assert slack.requests == [] and smtp.messages == []
    assert {r["status"] for r in store_alerts.alert_rows(store, ctx["dag_id"])} == {"suppressed"}
    assert {(a["kind"], a["outcome"]) for a in store_alerts.audit_rows(store, ctx["dag_id"])} == {("suppressed", "suppressed")}
    assert "alert suppressed (notifications: false): sla_miss -> slack:#data-alerts" in caplog.text


def test_alerts_on_narrows_where_an_event_goes(connections, slack, smtp, store, ctx):
    alerts = alerts_section({"slack": "#data-alerts"}, {"email": "team@example.com"},
                            on={"check_warned": ["slack"], "recovered": []})
    assert dispatch_event(ctx, RUN, "check_warned", "nulls", "some nulls", {}, alerts, True, engine=store) == {
        "slack:#data-alerts": "sent"}
    assert dispatch_event(ctx, RUN, "recovered", "nulls", "fine again", {}, alerts, True, engine=store) == {}
    assert dispatch_event(ctx, RUN, "task_failed", "load", "boom", {}, alerts, True, engine=store) == {
        "slack:#data-alerts": "sent", "email:team@example.com": "sent"}
    assert len(slack.wait_for(2)) == 2 and len(smtp.wait_for(1)) == 1


def test_concurrent_senders_deliver_once(connections, slack, store, ctx):
    alerts = alerts_section({"slack": "#data-alerts"})
    barrier = threading.Barrier(8)
    outcomes: list[dict] = []

    def send():
        barrier.wait()
        outcomes.append(dispatch_event(ctx, RUN, "sla_miss", "sla", "late", {}, alerts, True, engine=store))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(o["slack:#data-alerts"] for o in outcomes) == ["duplicate"] * 7 + ["sent"]
    assert len(slack.wait_for(1, timeout=2)) == 1


def test_store_failure_never_raises(connections, slack, ctx, tmp_path):
    from sqlalchemy import create_engine

    broken = create_engine(f"sqlite:///{tmp_path}/no-such-dir/x.db")
    assert dispatch_event(ctx, RUN, "sla_miss", "sla", "late", {}, alerts_section({"slack": "#x"}), True,
                          engine=broken) == {}
