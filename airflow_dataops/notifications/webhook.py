"""A generic JSON webhook through an Airflow HTTP connection: POSTs the alert as JSON.

Connection: host (a full URL, or a host with ``schema`` http/https and ``port``), optional login and
password (basic auth), extra ``endpoint`` (a path appended to the host) and ``headers`` (a dict).
Bounded retries on 429/5xx and connection errors.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

from airflow_dataops.notifications.base import ChannelError, DataOpsNotifier, get_connection

RETRIES = 3


def endpoint_url(conn) -> str:
    host = (conn.host or "").strip()
    if not host:
        raise ChannelError(f"HTTP connection {conn.conn_id!r} has no host: give the webhook URL as its host")
    if "://" not in host:
        scheme = conn.schema if conn.schema in {"http", "https"} else "https"
        host = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    extra = conn.extra_dejson or {}
    endpoint = str(extra.get("endpoint") or "")
    return host.rstrip("/") + ("/" + endpoint.lstrip("/") if endpoint else "")


class HttpWebhookNotifier(DataOpsNotifier):
    """POST the alert as a JSON document (with a ``text`` summary) to an HTTP endpoint."""

    kind = "http"

    def __init__(self, *, http_conn_id: str, timeout: float = 10, alert: dict[str, Any] | None = None, context: Any = None):
        super().__init__(alert=alert, context=context)
        self.http_conn_id = http_conn_id
        self.timeout = timeout

    @property
    def target(self) -> str:
        return f"connection:{self.http_conn_id}"

    def send(self, message) -> None:
        from airflow_dataops.alerting.secrets import mask, scrub

        conn = get_connection(self.http_conn_id)
        url = endpoint_url(conn)
        mask(conn.password)
        headers = {"Content-Type": "application/json", **dict((conn.extra_dejson or {}).get("headers") or {})}
        if conn.login:
            token = base64.b64encode(f"{conn.login}:{conn.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        body = json.dumps(message.payload, default=str).encode()
        error: str = ""
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        return
                    error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    break
            except (urllib.error.URLError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < RETRIES:
                time.sleep(0.5 * 2**attempt)
        # Never the URL: for many webhooks (Teams, Discord, ?token=...) the URL is the secret.
        raise ChannelError(scrub(f"{self.target}: {error}", [conn.password, url]))
