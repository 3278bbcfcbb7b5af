"""The alert watch: the last task of a pipeline's DAG (trigger rule ``all_done``).

* Every other task succeeded (or skipped): this run resolves its own open alerts and every open
  alert of the pipeline raised before this run started ("a later run succeeded"), and sends one
  "recovered" message listing every SLA miss / task failure / freshness timeout it closed. A skip
  proves nothing only when a freshness sensor skipped on its timeout (``on_timeout: skip``: the
  run skipped its work because data was late): then nothing is resolved. Branch skips and other
  ordinary skips do not stop the resolution.
* Something failed: when ``alerts.escalation`` is set and this run raised a failed-check or
  task-failure alert, the task defers (holding no worker slot) to ``EscalationTrigger`` until
  ``after`` past that alert, escalates what is still unacknowledged and unresolved (one message per
  event), and then fails again, so the run's state stays "failed". Without escalation it fails at
  once. With ``notifications: false`` nothing would be sent, so it does not wait: it records the
  escalation as suppressed at once (as the SLA escalation records its own) and fails.

Airflow 3.3 has no per-task deadlines, so a failed check cannot have a Deadline Alert of its own:
this task is the per-check deadline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_dataops.compat import AirflowFailException

log = logging.getLogger(__name__)

TASK_ID = "dataops_alert_watch"
WATCHED_EVENTS = ("check_failed", "task_failed")
RECOVERABLE_EVENTS = {"sla_miss", "task_failed", "freshness_timeout"}
FAILED_STATES = {"failed", "upstream_failed"}
POLL_SECONDS = 15.0


class AlertWatchOperator(BaseOperator):
    """Resolve alerts when the run succeeded; escalate unacknowledged failures when it did not."""

    ui_color = "#fde2e2"

    def __init__(self, *, ctx: dict[str, Any], alerts: dict[str, Any] | None, notifications: bool = True, **kwargs):
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.ctx = ctx
        self.alerts = alerts or {}
        self.notifications = notifications

    def _tasks_in(self, context, wanted: set[str] | frozenset[str]) -> list[str]:
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        return sorted(t for t, s in states.items() if t != self.task_id and str(s).split(".")[-1].lower() in wanted)

    def _failed_tasks(self, context) -> list[str]:
        return self._tasks_in(context, FAILED_STATES)

    def _sources_skipped_on_timeout(self, context) -> list[str]:
        """Skipped freshness sensors that skipped because their data was late (they leave an XCom
        marker, ``sensors.freshness.TIMED_OUT_XCOM_KEY``); a branch-skipped one leaves none."""
        from airflow_dataops.sensors.freshness import TIMED_OUT_XCOM_KEY

        skipped = self._tasks_in(context, {"skipped"})
        dag = getattr(self, "dag", None)
        candidates = [t for t in skipped if dag is None or t not in dag.task_dict
                      or getattr(dag.task_dict[t], "skip_on_timeout", False)]
        ti = context["ti"]
        return [t for t in candidates if ti.xcom_pull(task_ids=t, key=TIMED_OUT_XCOM_KEY)]

    def execute(self, context) -> dict[str, Any]:
        from airflow_dataops.alerting.message import ack_command, environment_of
        from airflow_dataops.store import alerts as store
        from airflow_dataops.triggers.settle import not_before

        ti = context["ti"]
        dag_id, run_id, environment = ti.dag_id, ti.run_id, environment_of(self.ctx)
        engine = store.store_engine()
        failed = self._failed_tasks(context)
        if not failed:
            late = self._sources_skipped_on_timeout(context)
            if late:
                # The run skipped its work because its data was late (on_timeout: skip): it produced
                # nothing, so it proves nothing: no alert is resolved and no "recovered" is sent.
                self.log.info("source(s) %s skipped on their timeout: no alert is resolved", ", ".join(late))
                return {"resolved": 0, "skipped": late}
            started = getattr(context.get("dag_run"), "start_date", None)
            return self._resolve(engine, dag_id, run_id, environment, started)
        escalation = self.alerts.get("escalation") or {}
        # Suppressed alerts (notifications: false) count: their escalation is recorded as suppressed.
        incidents = store.run_incidents(engine, dag_id, run_id, WATCHED_EVENTS, environment=environment)
        message = f"upstream task(s) failed: {', '.join(failed)}"
        ctx = {**self.ctx, "environment": environment}  # the triggerer's own setting need not be looked at
        if not escalation.get("to") or not incidents:
            raise AirflowFailException(message)
        if not self.notifications:
            # Nothing would be sent after the wait: record the escalation as suppressed now rather
            # than hold a failing development run open for `after`.
            escalated = asyncio.run(escalate_incidents(ctx, self.alerts, False, dag_id, run_id,
                                                       [{"event": i["event"], "subject": i["subject"]} for i in incidents],
                                                       engine))
            self.log.info("notifications are off: escalation to %s recorded as suppressed: %s", escalation["to"], escalated)
            raise AirflowFailException(message)
        moment = incidents[0]["created_at"] + dt.timedelta(seconds=float(escalation["after"]))
        self.log.info("%s; escalating to %s at %s unless acknowledged or resolved first (%s)",
                      message, escalation["to"], moment.isoformat(), ack_command(dag_id, run_id, environment))
        self.defer(
            trigger=EscalationTrigger(
                ctx=ctx, alerts=self.alerts, notifications=self.notifications, dag_id=dag_id, run_id=run_id,
                moment=moment.isoformat(),
                incidents=[{"event": i["event"], "subject": i["subject"]} for i in incidents],
                not_before=not_before(),
            ),
            method_name="execute_complete",
            kwargs={"failed": failed},
        )

    def execute_complete(self, context, event: dict[str, Any], failed: list[str] | None = None) -> None:
        self.log.info("escalation: %s", event)
        raise AirflowFailException(f"upstream task(s) failed: {', '.join(failed or [])}")

    def _resolve(self, engine, dag_id: str, run_id: str, environment: str, started: dt.datetime | None) -> dict[str, Any]:
        """Resolve this run's alerts, and those raised before this run started (a run that began
        before an alert, such as a concurrent older run, proves nothing about it), in this run's
        environment only: another environment's alerts are not this run's to close."""
        from airflow_dataops.alerting import channels as channel_mod
        from airflow_dataops.alerting.dispatch import deliver_group, run_ctx
        from airflow_dataops.alerting.message import combine, make_alert
        from airflow_dataops.store import alerts as store

        same = store.resolve(engine, dag_id, "same_run_succeeded", environment=environment, run_ids=[run_id])
        earlier = store.resolve(engine, dag_id, "later_run_succeeded", environment=environment,
                                created_before=started or store.utcnow())
        ctx = run_ctx(self.ctx, {"dag_id": dag_id, "environment": environment})
        closed = [
            make_alert(
                ctx, item["run_id"], "recovered", f"{item['event']}:{item['subject']}",
                f"Run {run_id} of {dag_id} succeeded: the {item['event'].replace('_', ' ')} of run "
                f"{item['run_id']} ({item['subject']}) is resolved.",
                {"resolved_by_run": run_id}, title=f"Recovered: {item['event'].replace('_', ' ')}",
            )
            for item in same + earlier if item["event"] in RECOVERABLE_EVENTS
        ]
        # One "recovered" message for everything this run closed; a row per closed alert (the claim).
        deliver_group(closed, channel_mod.route(self.alerts, "recovered"), notifications=self.notifications,
                      engine=engine, compose=lambda won: combine(won, ctx=ctx, run_id=run_id))
        self.log.info("run succeeded: resolved %d open alert(s) of this run and %d earlier", len(same), len(earlier))
        return {"resolved": len(same) + len(earlier)}


class EscalationTrigger(BaseTrigger):
    """Wait until an absolute moment (restarts do not extend the wait), polling the results store so
    an acknowledgement or resolution ends the wait early; then escalate what is still open."""

    def __init__(self, *, ctx, alerts, notifications, dag_id, run_id, moment: str, incidents: list[dict[str, str]],
                 not_before: str | None = None):
        super().__init__()
        self.ctx, self.alerts, self.notifications = ctx, alerts, notifications
        self.dag_id, self.run_id, self.moment, self.incidents = dag_id, run_id, moment, incidents
        self.not_before = not_before  # see triggers.settle: no event before this moment

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"ctx": self.ctx, "alerts": self.alerts, "notifications": self.notifications, "dag_id": self.dag_id,
             "run_id": self.run_id, "moment": self.moment, "incidents": self.incidents, "not_before": self.not_before},
        )

    async def _all_closed(self, engine) -> bool:
        from airflow_dataops.alerting.message import environment_of
        from airflow_dataops.store import alerts as store

        for item in self.incidents:
            state = await asyncio.to_thread(store.incident, engine, self.dag_id, self.run_id, item["event"],
                                            item["subject"], environment=environment_of(self.ctx))
            if state is not None and not (state["acknowledged"] or state["resolved"]):
                return False
        return True

    async def run(self):
        from airflow_dataops.triggers.settle import hold_until

        async for event in self._watch():
            await hold_until(self.not_before)
            yield event

    async def _watch(self):
        from airflow_dataops.alerting.callbacks import preload

        await preload()
        from airflow_dataops.store import alerts as store

        moment = dt.datetime.fromisoformat(self.moment)
        engine = await asyncio.to_thread(store.store_engine)
        while True:
            remaining = (moment - dt.datetime.now(dt.timezone.utc)).total_seconds()
            if remaining <= 0:
                break
            if await self._all_closed(engine):
                yield TriggerEvent({"escalated": {}, "closed_before_escalation": True})
                return
            await asyncio.sleep(min(POLL_SECONDS, remaining))
        escalated = await escalate_incidents(self.ctx, self.alerts, self.notifications, self.dag_id, self.run_id,
                                             self.incidents, engine)
        yield TriggerEvent({"escalated": escalated})


async def escalate_incidents(ctx: dict[str, Any], alerts: dict[str, Any], notifications: bool, dag_id: str,
                             run_id: str, incidents: list[dict[str, str]], engine=None) -> dict[str, Any]:
    """Escalate the run's still-open incidents: one escalation message per (run, event)."""
    from airflow_dataops.alerting.callbacks import escalate_group
    from airflow_dataops.alerting.dispatch import run_ctx
    from airflow_dataops.alerting.message import environment_of, make_alert
    from airflow_dataops.store import alerts as store

    engine = engine or await asyncio.to_thread(store.store_engine)
    after = float((alerts.get("escalation") or {}).get("after") or 0)
    ctx = run_ctx(ctx, {"dag_id": dag_id, "environment": environment_of(ctx)})
    by_event: dict[str, list[dict[str, Any]]] = {}
    for item in incidents:
        state = await asyncio.to_thread(store.incident, engine, dag_id, run_id, item["event"], item["subject"],
                                        environment=ctx["environment"])
        summary = (state or {}).get("message") or f"{item['event'].replace('_', ' ').capitalize()}: {item['subject']}."
        by_event.setdefault(item["event"], []).append(make_alert(ctx, run_id, item["event"], item["subject"], summary))
    escalated: dict[str, Any] = {}
    for event, items in by_event.items():
        outcomes = await escalate_group(ctx, alerts, notifications, items, after)
        for alert in items:
            escalated[f"{event}:{alert['subject']}"] = outcomes
    return escalated
