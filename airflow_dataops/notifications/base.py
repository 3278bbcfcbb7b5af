"""The base of every airflow-dataops notifier: one message builder, ``notify`` and ``async_notify``.

A notifier is built with the alert it carries (``alert=``, a plain dict made by
``alerting.message.make_alert``), or without one when used directly as an Airflow callback in a
Python DAG (``on_failure_callback=SlackApiNotifier(channel="#x")``): then the alert is made from the
callback's context. Subclasses implement ``send(message)``; ``async_send`` defaults to running
``send`` in a thread (never blocking the triggerer's event loop).
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.sdk import BaseNotifier


class ChannelError(RuntimeError):
    """A channel could not deliver; the message is already scrubbed of secrets."""


def get_connection(conn_id: str):
    """The Airflow connection, or ``hooks.sql.ConnectionNotFound`` with how to create it."""
    from airflow_dataops.hooks.sql import _get_connection

    return _get_connection(conn_id)


def alert_from_context(context: Any) -> dict[str, Any]:
    """An alert describing a task or run failure, from an Airflow callback context."""
    from airflow_dataops.alerting.message import make_alert

    context = context or {}
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    get = (lambda k: dag_run.get(k)) if isinstance(dag_run, dict) else (lambda k: getattr(dag_run, k, None))
    dag_id = get("dag_id") or getattr(ti, "dag_id", None) or "unknown"
    run_id = get("run_id") or getattr(ti, "run_id", None) or "unknown"
    task_id = getattr(ti, "task_id", None)
    subject = task_id or "dag_run"
    error = context.get("exception")
    summary = f"Task {task_id} failed" if task_id else f"Run {run_id} of {dag_id} needs attention"
    if error is not None:
        summary += f": {type(error).__name__}"
    return make_alert({"pipeline": dag_id, "dag_id": dag_id}, run_id, "task_failed", subject, summary)


class DataOpsNotifier(BaseNotifier):
    """Base notifier: subclasses name their ``kind`` and implement ``send``."""

    kind = "notifier"

    def __init__(self, *, alert: dict[str, Any] | None = None, context: Any = None):
        super().__init__(context=context)
        self.alert = alert

    def budget_seconds(self) -> float:
        """The wall-clock bound of one send, retries included."""
        from airflow_dataops.notifications import slack

        return float(getattr(self, "total_seconds", None) or slack.DEFAULT_TOTAL_SECONDS)

    @property
    def target(self) -> str:
        """Where messages go, for the audit trail (never a secret)."""
        return self.kind

    def _message(self, context: Any):
        from airflow_dataops.alerting.message import build

        return build(self.alert or alert_from_context(context))

    def notify(self, context: Any) -> None:
        self.send(self._message(context))

    async def async_notify(self, context: Any) -> None:
        await self.async_send(self._message(context))

    def send(self, message) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def async_send(self, message) -> None:
        await asyncio.to_thread(self.send, message)
