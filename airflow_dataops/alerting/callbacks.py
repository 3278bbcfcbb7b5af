"""Airflow callbacks: the SLA-miss (and SLA escalation) Deadline Alert notifier, and the task failure
notifier. Their constructor arguments are plain JSON (pipeline context and ``alerts`` section): they
are stored in Airflow's metadata database, so they never hold secrets (connection ids only).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import logging
from typing import Any

from airflow.sdk import BaseNotifier

from airflow_dataops.timeutil import human_duration, utcnow

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


#: Resolution of an SLA miss recorded for a pipeline that alerts nobody.
NOT_ALERTED = "no_alerting_configured"


class SlaMissNotifier(BaseNotifier):
    """Deadline Alert callback (``AsyncCallback``, runs in the triggerer).

    ``tier=0``: the run has not succeeded within ``sla_seconds`` of being queued -> ``sla_miss`` to the
    pipeline's channels (recorded only, when there are none). ``tier=1`` (the escalation deadline,
    ``after_seconds`` later): escalate that SLA miss to ``alerts.escalation.to`` if it is neither
    acknowledged nor resolved ``after_seconds`` after it was *alerted*. If the SLA miss was not
    recorded yet (both deadlines came due together: a scheduler or triggerer backlog longer than
    ``after``), this tier sends it first (the claim keeps it to one message), and it waits in the
    triggerer until the alert's time plus ``after_seconds`` (an absolute moment taken from the store,
    so a triggerer restart resumes the wait; no worker slot is held) before deciding.
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
        from airflow_dataops.alerting.wiring import alerting_configured

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
        channels = channel_mod.route(self.alerts, "sla_miss")
        if self.tier == 0:
            # No alerting at all (no channels, no escalation): nothing will ever resolve the miss
            # (there is no alert watch) and nobody is to hear of it, so it is recorded already closed:
            # it counts in the on-time rate without piling up as an "open alert".
            return await async_deliver(alert, channels, notifications=self.notifications,
                                       unrouted_resolution=None if alerting_configured(self.alerts) else NOT_ALERTED)
        await self._wait_for_the_first_alert(alert, channels)
        return await escalate(self.ctx, self.alerts, self.notifications, alert, self.after_seconds)

    async def _wait_for_the_first_alert(self, alert: dict[str, Any], channels: list[dict[str, Any]]) -> None:
        """Make sure the SLA miss itself went out, then sleep until its time + ``after_seconds``."""
        from airflow_dataops.alerting.dispatch import async_deliver
        from airflow_dataops.store import alerts as store

        engine = await asyncio.to_thread(store.store_engine)

        def first_alert():
            return store.incident(engine, alert["dag_id"], alert["run_id"], "sla_miss", "sla",
                                  environment=alert["environment"])

        first = await asyncio.to_thread(first_alert)
        if first is None:
            log.warning("the SLA escalation deadline of run %s fired before its SLA miss was recorded (both came due "
                        "together: scheduler or triggerer backlog): sending the SLA miss first", alert["run_id"])
            await async_deliver(alert, channels, notifications=self.notifications, engine=engine)
            first = await asyncio.to_thread(first_alert)
        if first is None or first["acknowledged"] or first["resolved"]:
            return  # nothing to wait for: escalate() records why it does not escalate
        due = first["created_at"] + dt.timedelta(seconds=float(self.after_seconds or 0))
        wait = (due - utcnow()).total_seconds()
        if wait > 0:
            log.info("SLA miss of run %s was alerted at %s: escalating at %s unless acknowledged or resolved first",
                     alert["run_id"], first["created_at"].isoformat(), due.isoformat())
            await asyncio.sleep(wait)


def _escalated(alert: dict[str, Any], after_seconds: float | None) -> dict[str, Any]:
    """The tier-1 form of an alert (or of a combined message), saying how to acknowledge it."""
    from airflow_dataops.alerting.message import ack_command

    many = int((alert.get("details") or {}).get("count") or 1) > 1
    ack = ack_command(alert["dag_id"], alert["run_id"], alert["environment"], alert["event"],
                      None if many else alert["subject"])
    return {
        **alert,
        "tier": 1,
        "severity": "critical",
        "title": f"Unacknowledged for {human_duration(after_seconds)}: {alert['title']}",
        "summary": f"{alert['summary']}{chr(10) if many else ' '}Nobody acknowledged or resolved "
                   f"{'them' if many else 'it'} within {human_duration(after_seconds)} "
                   f"(ack: {ack}).",
    }


async def escalate(
    ctx: dict[str, Any], alerts: dict[str, Any], notifications: bool, alert: dict[str, Any], after_seconds: float | None
) -> dict[str, str]:
    """Send ``alert`` as tier 1 to the escalation target, unless it was acknowledged or resolved."""
    return await escalate_group(ctx, alerts, notifications, [alert], after_seconds)


async def escalate_group(
    ctx: dict[str, Any], alerts: dict[str, Any], notifications: bool, items: list[dict[str, Any]],
    after_seconds: float | None,
) -> dict[str, str]:
    """Escalate the alerts ``items`` of one (run, event) that are still open, as one tier-1 message
    to the escalation target; each one acknowledged, resolved or never raised is recorded as
    ``escalation skipped`` with the reason."""
    await preload()
    from airflow_dataops.alerting import channels as channel_mod
    from airflow_dataops.alerting.dispatch import async_deliver_group
    from airflow_dataops.alerting.message import combine
    from airflow_dataops.store import alerts as store

    target = channel_mod.escalation_channel(alerts)
    if target is None or not items:
        return {}
    engine = await asyncio.to_thread(store.store_engine)
    still_open: dict[str, dict[str, Any]] = {}
    for alert in items:
        state = await asyncio.to_thread(store.incident, engine, alert["dag_id"], alert["run_id"], alert["event"],
                                        alert["subject"], environment=alert["environment"])
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
            await asyncio.to_thread(store.audit, engine, alert, "escalation", "skipped",
                                    f"{alert['subject']} not escalated: {reason}")
            continue
        still_open[alert["subject"]] = alert
    if not still_open:
        return {}
    tier1 = [_escalated(alert, after_seconds) for alert in still_open.values()]
    return await async_deliver_group(
        tier1, [target], notifications=notifications, engine=engine,
        compose=lambda won: _escalated(combine([still_open[w["subject"]] for w in won]), after_seconds),
    )


#: What Airflow 3.3's scheduler writes when it fails a task it thinks was killed externally; the
#: resume race (apache/airflow#72716) goes through this path.
SCHEDULER_FAILURE_NOTE = (
    "Airflow's scheduler marked it failed: the task itself raised no error (heartbeat timeout, killed "
    "externally, or a 'state mismatch' in the DAG's audit log)"
)
RESUME_RACE_NOTE = (
    "; this task defers, and a task failed this way just after resuming is most likely a victim of Airflow "
    "3.3's resume race (apache/airflow#72716), not of a data problem: check the task log, then rerun"
)


class TaskFailureNotifier(BaseNotifier):
    """``on_failure_callback`` (runs after the task's last try): a ``task_failed`` alert.

    Skipped when the task already alerted its own failing checks or freshness timeout in this try.
    A failure the scheduler inflicted (the callback then runs in the dag-processor, whose context has
    no ``exception``: a heartbeat timeout, an external kill, or Airflow 3.3's resume race) says so in
    the alert, with ``details.failed_by = "scheduler"``: the context cannot tell those apart."""

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
        from airflow_dataops.alerting.message import environment_of
        from airflow_dataops.alerting.secrets import scrub
        from airflow_dataops.store import alerts as store

        ti = context["ti"]
        dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
        if task_id == TASK_ID:  # the alert watch re-fails on purpose; the failure was alerted upstream
            return
        engine, environment = store.store_engine(), environment_of(self.ctx)
        if store.task_had_failed_checks(engine, dag_id, run_id, task_id, environment=environment):
            log.info("task %s failed on its checks, which were alerted already", task_id)
            return
        started = getattr(ti, "start_date", None)
        for found in store.run_incidents(engine, dag_id, run_id, ["freshness_timeout", "check_failed"],
                                         environment=environment):
            if started is None or found["created_at"] >= started:
                log.info("task %s already alerted %s: no separate task failure alert", task_id, found["event"])
                return
        summary = f"Task {task_id} failed after {getattr(ti, 'try_number', '?')} tries"
        details: dict[str, Any] = {"task": task_id}
        if "exception" not in context:
            task = getattr(ti, "task", None)
            summary += ": " + SCHEDULER_FAILURE_NOTE + (RESUME_RACE_NOTE if getattr(task, "deferrable", False) else "") + "."
            details["failed_by"] = "scheduler"
        elif context.get("exception") is not None:
            error = context["exception"]
            summary += f": {type(error).__name__}: {scrub(error)[:300]}"
        run = {"run_id": run_id, "dag_id": dag_id, "task_id": task_id, "environment": environment}
        dispatch_event(self.ctx, run, "task_failed", task_id, summary, details, self.alerts, self.notifications)
