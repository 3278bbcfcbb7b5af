"""Slack webhook, SMTP email and generic HTTP webhook notifiers, and connection-type resolution."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_dataops.alerting.message import make_alert
from airflow_dataops.hooks.sql import ConnectionNotFound
from airflow_dataops.notifications.base import ChannelError
from airflow_dataops.notifications.registry import notifier_for_connection
from airflow_dataops.notifications.slack_webhook import SlackWebhookNotifier
from airflow_dataops.notifications.smtp import SmtpNotifier
from tests.support.fake_slack import WEBHOOK_PATH


@pytest.fixture()
def alert(ctx):
    return make_alert(ctx, "manual__1", "sla_miss", "sla", "Run manual__1 has not succeeded within 0:00:20",
                      {"sla": "0:00:20"}, title="SLA missed")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_slack_webhook_delivers_once_through_rate_limit(connections, slack, alert, mode):
    slack.plan("429:1")
    notifier = SlackWebhookNotifier(slack_webhook_conn_id="oncall_webhook", alert=alert)
    notifier.notify({}) if mode == "sync" else asyncio.run(notifier.async_notify({}))

    [message] = slack.wait_for(1)
    assert message["kind"] == "webhook" and "SLA missed" in message["text"]
    assert [r["path"] for r in slack.requests] == [WEBHOOK_PATH, WEBHOOK_PATH]


def test_slack_webhook_error_never_shows_the_webhook_url(connections, slack, alert):
    slack.plan(*["500"] * 50)
    with pytest.raises(ChannelError) as raised:
        SlackWebhookNotifier(slack_webhook_conn_id="oncall_webhook", alert=alert, total_seconds=1).notify({})
    assert "500" in str(raised.value)
    assert "fakeWebhookSecret" not in str(raised.value) and slack.webhook_url not in str(raised.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_email_has_text_and_html_parts(connections, smtp, alert, ctx, mode):
    notifier = SmtpNotifier(to=["team@example.com", "lead@example.com"], alert=alert)
    notifier.notify({}) if mode == "sync" else asyncio.run(notifier.async_notify({}))

    [received] = smtp.wait_for(1)
    assert received["to"] == ["team@example.com", "lead@example.com"]
    email = received["message"]
    assert email["Subject"] == f"[ERROR] SLA missed ({ctx['pipeline']}, production)"
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "manual__1" in text and "data-team" in text
    assert "<table>" in html and "Open the run in Airflow" in html


def test_smtp_connection_extra_to_is_used_for_escalation_targets(connections, smtp, alert):
    notifier_for_connection("oncall_email", alert).notify({})
    assert smtp.wait_for(1)[0]["to"] == ["oncall@example.com"]


def test_http_webhook_posts_the_alert_as_json(connections, slack, alert, ctx):
    notifier = notifier_for_connection("oncall_http", alert)
    notifier.notify({})
    [message] = slack.wait_for(1)
    body = message["body"]
    assert message["kind"] == "http"
    assert body["event"] == "sla_miss" and body["pipeline"] == ctx["pipeline"] and body["run_id"] == "manual__1"
    assert json.dumps(body)  # plain JSON


def test_connection_type_decides_the_channel(connections, alert):
    assert type(notifier_for_connection("oncall_slack", alert)).__name__ == "SlackApiNotifier"
    assert type(notifier_for_connection("oncall_webhook", alert)).__name__ == "SlackWebhookNotifier"
    assert type(notifier_for_connection("oncall_email", alert)).__name__ == "SmtpNotifier"
    assert type(notifier_for_connection("oncall_http", alert)).__name__ == "HttpWebhookNotifier"
    with pytest.raises(ConnectionNotFound, match="nobody_home"):
        notifier_for_connection("nobody_home", alert)


def test_connection_of_a_type_that_cannot_alert_says_what_works(monkeypatch, alert):
    monkeypatch.setenv("AIRFLOW_CONN_A_DATABASE", "postgresql://u:p@127.0.0.1/db")
    with pytest.raises(ChannelError, match="Slack API.*SMTP.*HTTP"):
        notifier_for_connection("a_database", alert)


def test_http_webhook_error_never_shows_the_url(connections, slack, alert, monkeypatch):
    """For many webhooks (Teams, Discord, ?token=...) the URL itself is the secret."""
    monkeypatch.setenv("AIRFLOW_CONN_SECRET_HOOK", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": slack.port, "schema": "http",
        "extra": {"endpoint": "/hook/T0KEN-in-the-path?token=s3cr3t-query"}}))
    slack.plan(*["500"] * 50)
    with pytest.raises(ChannelError) as raised:
        notifier_for_connection("secret_hook", alert).notify({})
    text = str(raised.value)
    assert "HTTP 500" in text
    assert "T0KEN-in-the-path" not in text and "s3cr3t-query" not in text
