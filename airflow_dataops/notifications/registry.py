"""Which notifier an Airflow connection stands for, decided by its type at alert time.

A registry, not an if-chain: a new channel kind registers its connection types here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_dataops.notifications.base import ChannelError, DataOpsNotifier, get_connection


def _slack(conn, alert):
    from airflow_dataops.notifications.slack import SlackApiNotifier

    channel = (conn.extra_dejson or {}).get("channel")
    if not channel:
        raise ChannelError(f"Slack connection {conn.conn_id!r} has no extra `channel`: add {{\"channel\": \"#oncall\"}}")
    return SlackApiNotifier(channel=channel, slack_conn_id=conn.conn_id, alert=alert)


def _slack_webhook(conn, alert):
    from airflow_dataops.notifications.slack_webhook import SlackWebhookNotifier

    return SlackWebhookNotifier(slack_webhook_conn_id=conn.conn_id, alert=alert)


def _smtp(conn, alert):
    from airflow_dataops.notifications.smtp import SmtpNotifier

    return SmtpNotifier(smtp_conn_id=conn.conn_id, alert=alert)


def _http(conn, alert):
    from airflow_dataops.notifications.webhook import HttpWebhookNotifier

    return HttpWebhookNotifier(http_conn_id=conn.conn_id, alert=alert)


NOTIFIERS_BY_CONN_TYPE: dict[str, Callable[[Any, dict | None], DataOpsNotifier]] = {
    "slack": _slack,
    "slackwebhook": _slack_webhook,
    "slack_webhook": _slack_webhook,
    "smtp": _smtp,
    "email": _smtp,
    "http": _http,
    "https": _http,
}


def notifier_for_connection(conn_id: str, alert: dict | None = None) -> DataOpsNotifier:
    """The notifier for connection ``conn_id`` (raises ``ConnectionNotFound`` or ``ChannelError``)."""
    conn = get_connection(conn_id)
    factory = NOTIFIERS_BY_CONN_TYPE.get((conn.conn_type or "").lower())
    if factory is None:
        raise ChannelError(
            f"connection {conn_id!r} has type {conn.conn_type!r}, which cannot receive alerts: use a Slack API "
            f"(extra `channel`), Slack webhook, SMTP (extra `to`) or HTTP connection"
        )
    return factory(conn, alert)
