"""Airflow callbacks: the SLA-miss (and SLA escalation) Deadline Alert notifier, and the task failure
notifier. Their constructor arguments are plain JSON (pipeline context and ``alerts`` section): they
are stored in Airflow's metadata database, so they never hold secrets (connection ids only).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from typing import Any

from airflow.sdk import BaseNotifier

from airflow_dataops.timeutil import human_duration

log = logging.getLogger(__name__)

# Imported in a thread before first use in the triggerer: a first import (SQLAlchemy, slack-sdk,
# aiohttp) on the event loop would stall every trigger of that triggerer. This module itself stays
# light because the triggerer imports it on the loop.
_SENDING_MODULES = (
    "airflow_dataops.alerting.dispatch",
    "airflow_dataops.store.alerts",
    "airflow_dataops.notifications.registry",
    "airflow_dataops.notifications.slack",
    "airflow_dataops.notifications.slack_webhook",
    "airflow_dataops.notifications.smtp",
    "airflow_dataops.notifications.webhook",
    "slack_sdk.web.async_client",
    "slack_sdk.webhook.async_client",
)


def _import_sending_modules() -> None:
    for name in _SENDING_MODULES:
        importlib.import_module(name)


async def preload() -> None:
    """Import the sending machinery off the event loop (cheap once loaded)."""
    await asyncio.to_thread(_import_sending_modules)


def _dag_run(context: Any) -> dict[str, Any]:
    dag_run = (context or {}).get("dag_run") or {}
    if not isinstance(dag_run, dict):
        dag_run = {k: getattr(dag_run, k, None) for k in ("dag_id", "run_id", "state", "queued_at")}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
    return {**dag_run, "run_id": run_id}


class SlaMissNotifier(BaseNotifier):
    """Deadline Alert callback (``AsyncCallback``, runs in the triggerer).

    ``tier=0``: the run has not succeeded within ``sla_seconds`` of being queued -> ``sla_miss`` to the
    pipeline's channels. ``tier=1``: ``after_seconds`` later -> if that SLA miss is neither
    acknowledged nor resolved, escalate it to ``alerts.escalation.to``.
    """

    def __init__(
        self,
        *,
        ctx: dict[str, Any],
        alerts: dict[str, Any] | None,
        notifications: bool = True,
        tier: int = 0,
        sla_seconds: float | None = None,
        after_seconds: float | None = None,
        context: Any = None,
    ):
        super().__init__(context=context)
        self.ctx = ctx
        self.alerts = alerts or {}
        self.notifications = notifications
        self.tier = tier
        self.sla_seconds = sla_seconds
        self.after_seconds = after_seconds

    def notify(self, context: Any) -> None:
        asyncio.run(self.async_notify(context))

    async def async_notify(self, context: Any) -> str:
        """Returns the outcomes as a JSON string: Airflow stores it as the callback's output (text)."""
        return json.dumps(await self._notify(context))

    async def _notify(self, context: Any) -> dict[str, str]:
        await preload()
        from airflow_dataops.alerting import channels as channel_mod
        from airflow_dataops.alerting.dispatch import async_deliver
        from airflow_dataops.alerting.message import make_alert

        dag_run = _dag_run(context)
        run_id = dag_run["run_id"]
        if not run_id:
            log.error("SLA deadline fired without a dag run in its context: %r", context)
            return {}
        state = dag_run.get("state")
        details = {"sla": human_duration(self.sla_seconds), "queued_at": dag_run.get("queued_at"), "run_state": state}
        summary = (
            f"Run {run_id} has not succeeded within {human_duration(self.sla_seconds)} of being queued "
            f"(state: {state})."
        )
        alert = make_alert(self.ctx, run_id, "sla_miss", "sla", summary, details, title="SLA missed")
        if self.tier == 0:
            return await async_deliver(alert, channel_mod.route(self.alerts, "sla_miss"), notifications=self.notifications)
        return await escalate(self.ctx, self.alerts, self.notifications, alert, self.after_seconds)


async def escalate(
    ctx: dict[str, Any], alerts: dict[str, Any], notifications: bool, alert: dict[str, Any], after_seconds: float | None
) -> dict[str, str]:
    """Send ``alert`` as tier 1 to the escalation target, unless it was acknowledged or resolved."""
    await preload()
    from airflow_dataops.alerting import channels as channel_mod
    from airflow_dataops.alerting.dispatch import async_deliver
    from airflow_dataops.store import alerts as store

    target = channel_mod.escalation_channel(alerts)
    if target is None:
        return {}
    engine = await asyncio.to_thread(store.store_engine)
    state = await asyncio.to_thread(store.incident, engine, alert["dag_id"], alert["run_id"], alert["event"], alert["subject"])
    reason = None
    if state is None:
        reason = "it was never alerted"
    elif state["acknowledged"]:
        reason = f"acknowledged by {state['acknowledged_by']}"
    elif state["resolved"]:
        reason = f"resolved ({state['resolved']})"
    elif state["suppressed"] and notifications:
        reason = "it was suppressed"
    if reason:
        log.info("no escalation of %s %s of run %s: %s", alert["event"], alert["subject"], alert["run_id"], reason)
        await asyncio.to_thread(store.audit, engine, alert, "escalation", "skipped", f"not escalated: {reason}")
        return {}
    escalated = {
        **alert,
        "tier": 1,
        "severity": "critical",
        "title": f"Unacknowledged for {human_duration(after_seconds)}: {alert['title']}",
        "summary": f"{alert['summary']} Nobody acknowledged or resolved it within {human_duration(after_seconds)} "
                   f"(ack: airflow-dataops ack {alert['dag_id']} --run {alert['run_id']}).",
    }
    return await async_deliver(escalated, [target], notifications=notifications, engine=engine)


class TaskFailureNotifier(BaseNotifier):
    """``on_failure_callback`` (runs after the task's last try): a ``task_failed`` alert.

    Skipped when the task already alerted its own failing checks or freshness timeout in this try."""

    def __init__(self, *, ctx: dict[str, Any], alerts: dict[str, Any] | None, notifications: bool = True):
        super().__init__()
        self.ctx = ctx
        self.alerts = alerts or {}
        self.notifications = notifications

    def notify(self, context: Any) -> None:
        try:
            self._notify(context)
        except Exception as exc:  # never turn an alerting problem into a task problem
            from airflow_dataops.alerting.secrets import scrub

            log.error("task failure alert failed: %s", scrub(exc))

    def _notify(self, context: Any) -> None:
        from airflow_dataops.alerting.dispatch import dispatch_event
        from airflow_dataops.alerting.escalation import TASK_ID
        from airflow_dataops.alerting.secrets import scrub
        from airflow_dataops.store import alerts as store

        ti = context["ti"]
        dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
        if task_id == TASK_ID:  # the alert watch re-fails on purpose; the failure was alerted upstream
            return
        engine = store.store_engine()
        if store.task_had_failed_checks(engine, dag_id, run_id, task_id):
            log.info("task %s failed on its checks, which were alerted already", task_id)
            return
        started = getattr(ti, "start_date", None)
        for found in store.run_incidents(engine, dag_id, run_id, ["freshness_timeout", "check_failed"]):
            if started is None or found["created_at"] >= started:
                log.info("task %s already alerted %s: no separate task failure alert", task_id, found["event"])
                return
        error = context.get("exception")
        summary = f"Task {task_id} failed after {getattr(ti, 'try_number', '?')} tries"
        if error is not None:
            summary += f": {type(error).__name__}: {scrub(error)[:300]}"
        run = {"run_id": run_id, "dag_id": dag_id, "task_id": task_id}
        dispatch_event(self.ctx, run, "task_failed", task_id, summary, {"task": task_id}, self.alerts, self.notifications)
