"""The one message builder, routing rules, and secret scrubbing."""

from __future__ import annotations

from airflow_dataops.alerting.channels import parse_channels, route
from airflow_dataops.alerting.message import build, make_alert
from airflow_dataops.alerting.secrets import scrub


def test_every_format_carries_the_same_facts():
    ctx = {"pipeline": "orders", "environment": "staging", "owner": "ana", "ui_base_url": "https://af.example.com/"}
    alert = make_alert(ctx, "manual__1", "check_warned", "<nulls>", "5 nulls in customer_id",
                       {"observed": 5, "expected": {"max": 0}, "table": "public.orders"})
    message = build(alert)
    assert message.subject == "[WARNING] Check warning: <nulls> (orders, staging)"
    for part in (message.text, str(message.blocks)):
        for fact in ("orders", "staging", "manual__1", "WARNING", "ana", "5", '{"max": 0}', "public.orders",
                     "https://af.example.com/dags/orders/runs/manual__1"):
            assert fact in part
    assert "&lt;nulls&gt;" in message.html and "<nulls>" not in message.html  # escaped in HTML
    assert message.payload["run_url"] == "https://af.example.com/dags/orders/runs/manual__1"


def test_escalations_are_critical_and_say_so():
    message = build(make_alert({"pipeline": "p"}, "r", "sla_miss", "sla", "late", tier=1))
    assert message.subject.startswith("[CRITICAL] ESCALATION - ")
    assert message.blocks[0]["text"]["text"].startswith("ESCALATION - ")


def test_routing_by_kind_target_and_address():
    alerts = {"channels": [{"slack": {"channel": "#a", "conn_id": None}}, {"slack": "#b"},
                           {"email": {"to": ["x@e.com", "y@e.com"], "conn_id": None}}, {"connection": "hook"}],
              "on": {"check_warned": ["#b", "y@e.com"], "sla_miss": ["connection"], "recovered": []}}
    names = lambda event: [c["target"] for c in route(alerts, event)]  # noqa: E731
    assert names("check_warned") == ["#b", "x@e.com,y@e.com"]
    assert names("sla_miss") == ["hook"]
    assert names("recovered") == []
    assert names("check_failed") == ["#a", "#b", "x@e.com,y@e.com", "hook"]
    assert [c["kind"] for c in parse_channels(alerts)] == ["slack", "slack", "email", "connection"]


def test_scrub_removes_tokens_webhook_paths_and_url_passwords():
    text = ("failed xoxb-123-456-abc at https://hooks.slack.com/services/T0/B0/secretpart and "
            "postgresql://user:hunter2@db/x and s3cr3t-value")
    cleaned = scrub(text, ["s3cr3t-value"])
    for secret in ("xoxb-123-456-abc", "secretpart", "hunter2", "s3cr3t-value"):
        assert secret not in cleaned
    assert "https://hooks.slack.com/services/***" in cleaned and "postgresql://***@db/x" in cleaned


def test_secrets_written_into_a_pipeline_file_are_recognised():
    from airflow_dataops.alerting.secrets import looks_like_secret

    assert looks_like_secret("xoxb-1234567-abcdef") == "a Slack token"
    assert looks_like_secret("https://hooks.slack.com/services/T0/B0/abc") == "a Slack webhook URL"
    assert looks_like_secret("smtp://me:hunter2@mail.example.com") == "a URL with a password"
    assert looks_like_secret("#data-alerts") is None and looks_like_secret("data-engineering-oncall") is None
