"""Send an alert to its channels exactly once, record everything, and never raise.

For every channel: ``notifications: false`` -> recorded as suppressed and logged; otherwise the
send is claimed in the results store first (a duplicate claimer skips), then delivered, then its
outcome recorded. A channel that fails (or whose connection is missing) is recorded with its
scrubbed error and the other channels are still tried. Alerting problems are logged, never raised:
the data task's own outcome does not depend on them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from airflow_dataops.alerting import channels as channel_mod
from airflow_dataops.alerting.message import build, make_alert
from airflow_dataops.alerting.secrets import scrub
from airflow_dataops.store import alerts as store

log = logging.getLogger(__name__)

ESCALATING_EVENTS = ("check_failed", "task_failed", "sla_miss")


def _engine(engine):
    return engine if engine is not None else store.store_engine()


def _prepare(alert: dict[str, Any], channel: dict[str, Any], notifications: bool, engine) -> tuple[Any, int] | str:
    """The (notifier, claim id) to send with, or the outcome when there is nothing to send."""
    name = channel_mod.key(channel)
    if not notifications:
        store.record_suppressed(engine, alert, name, "notifications are off in this environment")
        log.info("alert suppressed (notifications: false): %s -> %s: %s", alert["event"], name, alert["title"])
        return "suppressed"
    try:
        notifier = channel_mod.notifier_for(channel, alert)
    except Exception as exc:
        error = scrub(f"{name}: {exc}")
        log.warning("alert %s not sent to %s: %s", alert["event"], name, error)
        store.record_error(engine, alert, name, error)
        return "failed"
    alert_id = store.claim(engine, alert, name, alert["summary"])
    if alert_id is None:
        log.info("alert %s on %s of run %s was already claimed: not sending it again", alert["event"], name, alert["run_id"])
        return "duplicate"
    return notifier, alert_id


def _done(alert, channel, alert_id, error: BaseException | None, engine) -> str:
    name = channel_mod.key(channel)
    text = scrub(str(error) or type(error).__name__) if error is not None else None
    store.finish(engine, alert, alert_id, name, text)
    if text:
        log.warning("alert %s to %s failed: %s", alert["event"], name, text)
        return "failed"
    log.info("alert %s sent to %s: %s", alert["event"], name, alert["title"])
    return "sent"


def deliver(alert: dict[str, Any], channels: list[dict[str, Any]], *, notifications: bool = True, engine=None) -> dict[str, str]:
    """Send ``alert`` to ``channels`` (synchronously); returns {channel key: outcome}."""
    outcomes: dict[str, str] = {}
    try:
        engine = _engine(engine)
        message = build(alert)
        for channel in channels:
            name = channel_mod.key(channel)
            prepared = _prepare(alert, channel, notifications, engine)
            if isinstance(prepared, str):
                outcomes[name] = prepared
                continue
            notifier, alert_id = prepared
            error = None
            try:
                notifier.send(message)
            except Exception as exc:
                error = exc
            outcomes[name] = _done(alert, channel, alert_id, error, engine)
    except Exception as exc:  # the store itself failed: say so, never fail the task for it
        log.error("alerting failed for %s %s: %s", alert.get("event"), alert.get("subject"), scrub(exc))
    return outcomes


async def async_deliver(
    alert: dict[str, Any], channels: list[dict[str, Any]], *, notifications: bool = True, engine=None
) -> dict[str, str]:
    """``deliver`` for the triggerer: store work in threads, sends through ``async_send``."""
    outcomes: dict[str, str] = {}
    try:
        engine = engine if engine is not None else await asyncio.to_thread(store.store_engine)
        message = build(alert)
        for channel in channels:
            name = channel_mod.key(channel)
            prepared = await asyncio.to_thread(_prepare, alert, channel, notifications, engine)
            if isinstance(prepared, str):
                outcomes[name] = prepared
                continue
            notifier, alert_id = prepared
            error = None
            try:
                await notifier.async_send(message)
            except Exception as exc:
                error = exc
            outcomes[name] = await asyncio.to_thread(_done, alert, channel, alert_id, error, engine)
    except Exception as exc:
        log.error("alerting failed for %s %s: %s", alert.get("event"), alert.get("subject"), scrub(exc))
    return outcomes


def _run_field(run: Any, name: str, default: Any = None) -> Any:
    if isinstance(run, dict):
        return run.get(name, default)
    return getattr(run, name, default)


def run_ctx(ctx: dict[str, Any], run: Any) -> dict[str, Any]:
    """The pipeline context, with the run's own pipeline, dag id and environment."""
    merged = dict(ctx or {})
    for name in ("pipeline", "dag_id", "environment"):
        value = _run_field(run, name)
        if value:
            merged[name] = value
    return merged


def dispatch_event(
    ctx: dict[str, Any],
    run: Any,
    event: str,
    subject: str,
    message: str,
    details: dict[str, Any] | None,
    alerts: dict[str, Any] | None,
    notifications: bool,
    *,
    engine=None,
) -> dict[str, str]:
    """Alert ``event`` (task_failed, freshness_timeout, sla_miss, ...) about ``subject`` of ``run``."""
    try:
        alert = make_alert(run_ctx(ctx, run), _run_field(run, "run_id"), event, subject, message, details)
        return deliver(alert, channel_mod.route(alerts, event), notifications=notifications, engine=engine)
    except Exception as exc:
        log.error("alerting failed for %s %s: %s", event, subject, scrub(exc))
        return {}


def _result_dict(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return result
    return result.to_xcom()


def _check_summary(r: dict[str, Any]) -> str:
    where = f" on {r['table']}" if r.get("table") else ""
    if r["status"] == "error":
        return f"Check {r['name']} ({r.get('type')}){where} could not run: {scrub(r.get('error') or r.get('message'))}"
    verb = "warned" if r["status"] == "warned" else "failed"
    text = f"Check {r['name']} ({r.get('type')}){where} {verb}: observed {r.get('observed')!r}, expected {r.get('expected')!r}"
    return f"{text}. {r['message']}" if r.get("message") else text


def dispatch_check_results(
    ctx: dict[str, Any],
    run: Any,
    results: list[Any],
    alerts: dict[str, Any] | None,
    notifications: bool,
    *,
    engine=None,
) -> dict[str, dict[str, str]]:
    """Alert the warned/failed checks of one task run, and send "recovered" for checks that pass again.

    Anti-fatigue: unless ``alerts.repeat`` (default ``[dataops] alert_on_repeat``), a check whose
    status is the same as in the pipeline's previous run is not alerted again."""
    from airflow_dataops import settings

    sent: dict[str, dict[str, str]] = {}
    try:
        engine = _engine(engine)
        repeat = (alerts or {}).get("repeat")
        repeat = settings.get_bool("alert_on_repeat") if repeat is None else bool(repeat)
        ctx = run_ctx(ctx, run)
        dag_id, run_id = ctx.get("dag_id") or ctx["pipeline"], _run_field(run, "run_id")
        task_id = _run_field(run, "task_id")
        for result in results:
            r = _result_dict(result)
            status = r["status"]
            previous = store.previous_check_status(engine, dag_id, r["name"], run_id)
            details = {"observed": r.get("observed"), "expected": r.get("expected"), "table": r.get("table"),
                       "check_type": r.get("type"), "task": task_id}
            if status == "passed":
                if previous in {"warned", "failed", "error"}:
                    store.resolve(engine, dag_id, "recovered", subject=r["name"])
                    alert = make_alert(ctx, run_id, "recovered", r["name"],
                                       f"Check {r['name']} passes again (it was {previous}).", details,
                                       title=f"Recovered: {r['name']}")
                    sent[r["name"]] = deliver(alert, channel_mod.route(alerts, "recovered"),
                                              notifications=notifications, engine=engine)
                continue
            if not repeat and previous == status:
                log.info("check %s is still %s (as in the previous run): alerted when it started, not again "
                         "(set alerts.repeat: true to alert every run)", r["name"], status)
                continue
            event = "check_warned" if status == "warned" else "check_failed"
            alert = make_alert(ctx, run_id, event, r["name"], _check_summary(r), details)
            sent[r["name"]] = deliver(alert, channel_mod.route(alerts, event), notifications=notifications, engine=engine)
    except Exception as exc:
        log.error("alerting failed for the checks of %s: %s", _run_field(run, "task_id"), scrub(exc))
    return sent
