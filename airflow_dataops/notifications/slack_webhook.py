"""Slack incoming webhook, with an Airflow Slack webhook connection (``slackwebhook``).

The webhook URL is secret: the connection's password holds either the full URL or the token part
(``T000/B000/XXX``) appended to ``schema://host`` (default ``https://hooks.slack.com/services``), as
the Slack provider's ``SlackWebhookHook`` reads it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_dataops.notifications.base import ChannelError, DataOpsNotifier, get_connection
from airflow_dataops.notifications.slack import DEFAULT_TIMEOUT, _extra


def webhook_url(conn) -> str:
    token = (conn.password or "").strip()
    if not token:
        raise ChannelError(
            f"Slack webhook connection {conn.conn_id!r} has no webhook URL: put it in the password field"
        )
    if "://" in token:
        return token
    base = conn.host if conn.host and "://" in conn.host else f"{conn.schema or 'https'}://{conn.host or 'hooks.slack.com/services'}"
    return base.rstrip("/") + "/" + token.lstrip("/")


class SlackWebhookNotifier(DataOpsNotifier):
    """Post an alert (blocks + text fallback) to a Slack incoming webhook."""

    kind = "slack_webhook"

    def __init__(
        self,
        *,
        slack_webhook_conn_id: str,
        total_seconds: float | None = None,
        alert: dict[str, Any] | None = None,
        context: Any = None,
    ):
        super().__init__(alert=alert, context=context)
        self.slack_webhook_conn_id = slack_webhook_conn_id
        self.total_seconds = total_seconds

    @property
    def target(self) -> str:
        return f"connection:{self.slack_webhook_conn_id}"

    def _params(self) -> tuple[str, int]:
        from airflow_dataops.alerting.secrets import mask

        conn = get_connection(self.slack_webhook_conn_id)
        url = webhook_url(conn)
        mask(url, conn.password)
        extra = conn.extra_dejson or {}
        return url, int(_extra(extra, "timeout", "extra__slackwebhook__") or DEFAULT_TIMEOUT)

    def _check(self, response, url: str) -> None:
        if response.status_code != 200:
            from airflow_dataops.alerting.secrets import scrub

            raise ChannelError(scrub(f"{self.target}: HTTP {response.status_code}: {response.body}", [url]))

    def send(self, message) -> None:
        from slack_sdk.webhook import WebhookClient

        from airflow_dataops.alerting.secrets import scrub
        from airflow_dataops.notifications.retry import Budget, sync_handlers

        url, timeout = self._params()
        client = WebhookClient(url, timeout=timeout, retry_handlers=sync_handlers(Budget(self.budget_seconds())))
        try:
            response = client.send(text=message.text, blocks=message.blocks)
        except Exception as exc:
            raise ChannelError(scrub(f"{self.target}: {type(exc).__name__}: {exc}", [url])) from None
        self._check(response, url)

    async def async_send(self, message) -> None:
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        from airflow_dataops.alerting.secrets import scrub
        from airflow_dataops.notifications.retry import Budget, async_handlers

        url, timeout = await asyncio.to_thread(self._params)
        client = AsyncWebhookClient(url, timeout=timeout, retry_handlers=async_handlers(Budget(self.budget_seconds())))
        try:
            response = await asyncio.wait_for(
                client.send(text=message.text, blocks=message.blocks), timeout=self.budget_seconds() + timeout
            )
        except Exception as exc:
            raise ChannelError(scrub(f"{self.target}: {type(exc).__name__}: {exc}", [url])) from None
        self._check(response, url)
