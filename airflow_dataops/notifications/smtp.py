"""Email through an Airflow SMTP connection: one message with a text and an HTML part.

Connection: host, port, login, password; extra ``from_email``, ``disable_ssl``, ``disable_tls``,
``timeout`` (the smtp provider's names; SSL is on unless ``disable_ssl``, STARTTLS unless
``disable_tls``) and, for escalation targets, ``to`` (a string or list of recipients).
The async path runs the same ``smtplib`` exchange in a thread.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from airflow_dataops.notifications.base import ChannelError, DataOpsNotifier, get_connection


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes", "on"}


def recipients(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    return [str(part).strip() for part in value if str(part).strip()]


class SmtpNotifier(DataOpsNotifier):
    """Send an alert by email (text + HTML) to ``to`` (or the connection extra ``to``)."""

    kind = "email"

    def __init__(
        self,
        *,
        to: list[str] | str | None = None,
        smtp_conn_id: str | None = None,
        alert: dict[str, Any] | None = None,
        context: Any = None,
    ):
        super().__init__(alert=alert, context=context)
        from airflow_dataops import settings

        self.to = recipients(to)
        self.smtp_conn_id = smtp_conn_id or settings.get("smtp_conn_id")

    @property
    def target(self) -> str:
        return "email:" + ",".join(self.to) if self.to else f"connection:{self.smtp_conn_id}"

    def send(self, message) -> None:
        from airflow_dataops.alerting.secrets import mask, scrub

        conn = get_connection(self.smtp_conn_id)
        mask(conn.password)
        extra = conn.extra_dejson or {}
        to = self.to or recipients(extra.get("to"))
        if not to:
            raise ChannelError(
                f"no email recipients for SMTP connection {self.smtp_conn_id!r}: give `email: [...]` in the "
                "pipeline or an extra `to` on the connection"
            )
        sender = extra.get("from_email") or conn.login or "airflow-dataops@localhost"
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = sender
        email["To"] = ", ".join(to)
        email.set_content(message.text)
        email.add_alternative(message.html, subtype="html")
        timeout = float(extra.get("timeout") or 30)
        use_ssl = not _flag(extra.get("disable_ssl", False))
        use_tls = not _flag(extra.get("disable_tls", False))
        port = conn.port or (465 if use_ssl else 587 if use_tls else 25)
        try:
            if use_ssl:
                server = smtplib.SMTP_SSL(conn.host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                server = smtplib.SMTP(conn.host, port, timeout=timeout)
            with server:
                if use_tls and not use_ssl:
                    server.starttls(context=ssl.create_default_context())
                if conn.login and conn.password:
                    server.login(conn.login, conn.password)
                server.send_message(email, from_addr=sender, to_addrs=to)
        except Exception as exc:
            raise ChannelError(
                scrub(f"{self.target}: {type(exc).__name__}: {exc} (SMTP {conn.host}:{port})", [conn.password])
            ) from None
