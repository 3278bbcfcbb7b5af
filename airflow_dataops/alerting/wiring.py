"""What the DAG factory (and Python DAG authors) add to a DAG for a pipeline's ``sla`` and ``alerts``.

``dag_alerting_kwargs(ctx, sla, alerts)`` -> extra ``DAG(...)`` keyword arguments: ``deadline`` (the
SLA miss tier, and the SLA escalation tier) and ``default_args`` (``on_failure_callback``: a
``task_failed`` alert after a task's last try). ``escalation_task(ctx, alerts)`` -> the alert watch
task, to be made downstream of every other task. See docs/alerting.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

SLA_DEADLINE_NAME = "dataops_sla_miss"
SLA_ESCALATION_NAME = "dataops_sla_escalation"


def _callback_ctx(ctx: dict[str, Any]) -> dict[str, Any]:
    """Only JSON-able, secret-free facts: they are stored in the metadata database."""
    keys = ("pipeline", "dag_id", "environment", "owner", "ui_base_url")
    return {key: ctx.get(key) for key in keys}


def alerting_configured(alerts: dict[str, Any] | None) -> bool:
    """Whether an ``alerts`` section alerts anyone: channels, or an escalation target."""
    return bool((alerts or {}).get("channels")) or bool((alerts or {}).get("escalation"))


def deadline_alerts(ctx: dict[str, Any], sla: dict[str, Any] | None, alerts: dict[str, Any] | None) -> list:
    """The Deadline Alerts of ``sla.freshness``: an SLA miss, and (with escalation) its escalation.

    The SLA miss tier exists whenever ``sla.freshness`` is set, channels or not: without channels
    the miss is recorded in the results store (so the on-time rate counts it) and logged, and
    nothing is sent."""
    from airflow_dataops.alerting.callbacks import SlaMissNotifier
    from airflow_dataops.compat import deadline_alert

    freshness = (sla or {}).get("freshness")
    if not freshness:
        return []
    base = {"ctx": _callback_ctx(ctx), "alerts": alerts, "notifications": bool(ctx.get("notifications", True)),
            "sla_seconds": float(freshness)}
    result = [
        deadline_alert(interval=dt.timedelta(seconds=float(freshness)), callback=SlaMissNotifier,
                       kwargs={**base, "tier": 0}, name=SLA_DEADLINE_NAME),
    ]
    escalation = (alerts or {}).get("escalation")
    if escalation and escalation.get("to"):
        after = float(escalation["after"])
        result.append(
            deadline_alert(interval=dt.timedelta(seconds=float(freshness) + after), callback=SlaMissNotifier,
                           kwargs={**base, "tier": 1, "after_seconds": after}, name=SLA_ESCALATION_NAME)
        )
    return result


def dag_alerting_kwargs(ctx: dict[str, Any], sla: dict[str, Any] | None, alerts: dict[str, Any] | None) -> dict[str, Any]:
    """Extra DAG kwargs: ``{"deadline": [...], "default_args": {"on_failure_callback": ...}}``.

    Merge ``default_args`` into your own (do not replace them). ``deadline`` whenever
    ``sla.freshness`` is set; ``default_args`` only with alert channels or escalation. Empty when
    there is nothing to alert or record."""
    from airflow_dataops.alerting.callbacks import TaskFailureNotifier

    kwargs: dict[str, Any] = {}
    deadlines = deadline_alerts(ctx, sla, alerts)
    if deadlines:
        kwargs["deadline"] = deadlines
    if alerting_configured(alerts):
        kwargs["default_args"] = {
            "on_failure_callback": TaskFailureNotifier(
                ctx=_callback_ctx(ctx), alerts=alerts, notifications=bool(ctx.get("notifications", True))
            )
        }
    return kwargs


def escalation_task(ctx: dict[str, Any], alerts: dict[str, Any] | None):
    """The alert watch task (``dataops_alert_watch``), or None when the pipeline has no alerts.

    Create it inside the DAG context after every other task and make it downstream of all of them
    (``[t for t in dag.tasks if t is not watch] >> watch``). It resolves alerts when the run succeeds
    and, with ``alerts.escalation``, escalates unacknowledged failed checks without holding a slot."""
    if not alerting_configured(alerts):
        return None
    from airflow_dataops.alerting.escalation import TASK_ID, AlertWatchOperator

    return AlertWatchOperator(
        task_id=TASK_ID, ctx=_callback_ctx(ctx), alerts=alerts, notifications=bool(ctx.get("notifications", True)),
        on_failure_callback=None,
    )
