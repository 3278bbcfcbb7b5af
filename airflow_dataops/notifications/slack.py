"""Slack Web API (``chat.postMessage``) through slack-sdk, with an Airflow Slack API connection.

The connection's password is the token; its extra may hold ``base_url``, ``timeout`` and ``proxy``
(also under the ``extra__slack__`` prefix), exactly as the Slack provider's ``SlackHook`` reads them.
Retries: see ``notifications.retry`` (429 with Retry-After, 5xx, timeouts, dropped connections),
bounded by ``total_seconds``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_dataops.notifications.base import ChannelError, DataOpsNotifier, get_connection

DEFAULT_TIMEOUT = 10
DEFAULT_TOTAL_SECONDS = 60.0


def _extra(extra: dict[str, Any], name: str, prefix: str = "extra__slack__") -> Any:
    value = extra.get(name)
    return extra.get(prefix + name) if value in (None, "") else value


class SlackApiNotifier(DataOpsNotifier):
    """Post an alert to a Slack channel with blocks and a plain-text fallback."""

    kind = "slack"

    def __init__(
        self,
        *,
        channel: str,
        slack_conn_id: str | None = None,
        total_seconds: float | None = None,
        alert: dict[str, Any] | None = None,
        context: Any = None,
    ):
        super().__init__(alert=alert, context=context)
        from airflow_dataops import settings

        self.channel = channel
        self.slack_conn_id = slack_conn_id or settings.get("slack_conn_id")
        self.total_seconds = total_seconds

    @property
    def target(self) -> str:
        return f"slack:{self.channel}"

    def _client_params(self) -> dict[str, Any]:
        from airflow_dataops.alerting.secrets import mask

        conn = get_connection(self.slack_conn_id)
        token = (conn.password or "").strip()
        if not token:
            raise ChannelError(
                f"Slack connection {self.slack_conn_id!r} has no token: put the bot token in its password field"
            )
        mask(token)
        extra = conn.extra_dejson or {}
        params: dict[str, Any] = {"token": token, "timeout": int(_extra(extra, "timeout") or DEFAULT_TIMEOUT)}
        if _extra(extra, "base_url"):
            params["base_url"] = _extra(extra, "base_url")
        if _extra(extra, "proxy"):
            params["proxy"] = _extra(extra, "proxy")
        return params

    def _post_kwargs(self, message) -> dict[str, Any]:
        return {"channel": self.channel, "text": message.text, "blocks": message.blocks}

    def send(self, message) -> None:
        from slack_sdk import WebClient

        from airflow_dataops.notifications.retry import Budget, sync_handlers

        params = self._client_params()
        client = WebClient(**params, retry_handlers=sync_handlers(Budget(self.budget_seconds())))
        try:
            client.chat_postMessage(**self._post_kwargs(message))
        except Exception as exc:
            raise _channel_error(self.target, exc, params) from None

    async def async_send(self, message) -> None:
        from slack_sdk.web.async_client import AsyncWebClient

        from airflow_dataops.notifications.retry import Budget, async_handlers

        params = await asyncio.to_thread(self._client_params)
        client = AsyncWebClient(**params, retry_handlers=async_handlers(Budget(self.budget_seconds())))
        try:
            # The budget stops new retries; this stops a request hanging past it.
            await asyncio.wait_for(
                client.chat_postMessage(**self._post_kwargs(message)),
                timeout=self.budget_seconds() + params["timeout"],
            )
        except Exception as exc:
            raise _channel_error(self.target, exc, params) from None


def _channel_error(target: str, exc: BaseException, params: dict[str, Any]) -> ChannelError:
    from airflow_dataops.alerting.secrets import scrub

    detail = str(exc) or type(exc).__name__
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        detail = f"HTTP {response.status_code}: {getattr(response, 'data', '')}"
    return ChannelError(scrub(f"{target}: {type(exc).__name__}: {detail}", [params.get("token")]))
