"""Slack API notifier against a real HTTP server on 127.0.0.1 that answers like Slack."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_dataops.alerting.message import make_alert
from airflow_dataops.notifications.base import ChannelError
from airflow_dataops.notifications.slack import SlackApiNotifier


@pytest.fixture()
def alert(ctx):
    return make_alert(ctx, "scheduled__2026-01-01T00:00:00+00:00", "check_failed", "orders_row_count",
                      "Check orders_row_count failed", {"observed": 3, "expected": {"min": 10}})


def _send(notifier, mode: str) -> None:
    if mode == "sync":
        notifier.notify({})
    else:
        asyncio.run(notifier.async_notify({}))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_posts_blocks_with_text_fallback_and_all_facts(connections, slack, alert, ctx, mode):
    _send(SlackApiNotifier(channel="#data-alerts", alert=alert), mode)

    [message] = slack.wait_for(1)
    assert message["channel"] == "#data-alerts"
    assert slack.requests[0]["authorization"] == f"Bearer {slack.token}"
    text = message["text"]
    for fact in (ctx["pipeline"], "production", "scheduled__2026-01-01T00:00:00+00:00", "ERROR", "data-team",
                 "Observed: 3", 'Expected: {"min": 10}', "orders_row_count"):
        assert fact in text
    assert f"http://airflow.example.com/dags/{ctx['dag_id']}/runs/scheduled__2026-01-01T00%3A00%3A00%2B00%3A00" in text
    assert message["blocks"][0]["type"] == "header"
    rendered = str(message["blocks"])
    assert "Open the run in Airflow" in rendered and "*Observed*\\n3" in rendered


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_rate_limit_server_error_and_dropped_connection_are_retried(connections, slack, alert, mode):
    slack.plan("429:1", "500", "drop")
    started = time.monotonic()
    _send(SlackApiNotifier(channel="#x", alert=alert), mode)

    assert [r["answer"] for r in slack.requests] == ["429:1", "500", "drop", "ok"]
    assert len(slack.messages) == 1  # delivered exactly once
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_read_timeout_is_retried(connections, slack, alert, mode):
    slack.plan("slow:3")  # the connection's timeout is 2 s
    _send(SlackApiNotifier(channel="#x", alert=alert), mode)

    assert len(slack.requests) == 2 and slack.requests[1]["answer"] == "ok"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_retries_stop_within_the_time_budget_and_the_error_has_no_token(connections, slack, alert, mode):
    slack.plan(*["500"] * 50)
    started = time.monotonic()
    with pytest.raises(ChannelError) as raised:
        _send(SlackApiNotifier(channel="#x", alert=alert, total_seconds=2), mode)

    assert time.monotonic() - started < 2 + 2 + 1  # budget + one request timeout + slack
    assert 2 <= len(slack.requests) <= 5
    assert "500" in str(raised.value) and "slack:#x" in str(raised.value)
    assert slack.token not in str(raised.value)
    assert slack.messages == []


def test_a_long_retry_after_is_not_waited_out_past_the_budget(connections, slack, alert):
    slack.plan("429:30")
    started = time.monotonic()
    with pytest.raises(ChannelError, match="429"):
        SlackApiNotifier(channel="#x", alert=alert, total_seconds=5).notify({})
    assert time.monotonic() - started < 3
    assert len(slack.requests) == 1


def test_base_url_comes_from_the_connection_extra(monkeypatch, slack, alert):
    import json

    monkeypatch.setenv("AIRFLOW_CONN_OTHER_SLACK", json.dumps(
        {"conn_type": "slack", "password": slack.token, "extra": {"extra__slack__base_url": slack.api_url}}))
    SlackApiNotifier(channel="#y", slack_conn_id="other_slack", alert=alert).notify({})
    assert slack.wait_for(1)[0]["channel"] == "#y"


def test_used_directly_as_a_python_dag_callback(connections, slack):
    class TI:
        dag_id, run_id, task_id, try_number = "hand_written", "manual__1", "load", 3

    SlackApiNotifier(channel="#x")({"ti": TI(), "dag_run": None, "exception": ValueError("boom")})
    [message] = slack.wait_for(1)
    assert "Task load failed: ValueError" in message["text"] and "hand_written" in message["text"]
