"""Send an alert to its channels exactly once, record everything, and never raise.

One message per (run, event, tier) and channel: several subjects of one event (five failing checks
of a run) go out as one message listing them (``message.combine``), while the store keeps one row
per subject (acknowledged, resolved and shown one by one).

For every channel: ``notifications: false`` -> recorded as suppressed and logged; otherwise the
send is claimed in the results store first (every subject's row in one transaction; a duplicate
claimer wins nothing and skips, and the message lists only the subjects this sender won), then
delivered, then its outcome recorded. A channel that fails (or whose connection is missing) is
recorded with its scrubbed error and the other channels are still tried. An event with no channel
at all is still recorded (channel ``none``) and logged. Alerting problems are logged, never raised:
the data task's own outcome does not depend on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import Any

from airflow_dataops.alerting import channels as channel_mod
from airflow_dataops.alerting.message import build, combine, environment_of, make_alert
from airflow_dataops.alerting.secrets import scrub
from airflow_dataops.store import alerts as store

log = logging.getLogger(__name__)

ESCALATING_EVENTS = ("check_failed", "task_failed", "sla_miss")
#: "recovered" only closes what was open: with nowhere to send it there is nothing to keep.
_NOT_KEPT_WITHOUT_CHANNEL = {"recovered"}

Compose = Callable[[list[dict[str, Any]]], dict[str, Any]]


def _engine(engine):
    return engine if engine is not None else store.store_engine()


def _record_unrouted(items: list[dict[str, Any]], compose: Compose, engine, resolution: str | None = None) -> dict[str, str]:
    message = compose(items)
    if message["event"] in _NOT_KEPT_WITHOUT_CHANNEL:
        return {}
    reason = f"no alert channel for {message['event']} (alerts.channels / alerts.on): recorded, nothing sent"
    if store.record_unrouted(engine, message, reason, items, resolution=resolution):
        log.warning("alert %s recorded only, %s: %s", message["event"], reason.split(":")[0], message["title"])
    return {store.NO_CHANNEL: "recorded"}


def _prepare(items: list[dict[str, Any]], compose: Compose, channel: dict[str, Any], notifications: bool, engine):
    """(notifier, won rows) to send with, or the outcome when there is nothing to send."""
    name = channel_mod.key(channel)
    if not notifications:
        message = compose(items)
        store.record_suppressed(engine, message, name, "notifications are off in this environment", items)
        log.info("alert suppressed (notifications: false): %s -> %s: %s", message["event"], name, message["title"])
        return "suppressed"
    try:
        notifier = channel_mod.notifier_for(channel, items[0])
    except Exception as exc:
        error = scrub(f"{name}: {exc}")
        log.warning("alert %s not sent to %s: %s", items[0]["event"], name, error)
        store.record_error(engine, compose(items), name, error, items)
        return "failed"
    won = store.claim_many(engine, items, name)
    if not won:
        log.info("alert %s on %s of run %s was already claimed: not sending it again", items[0]["event"], name,
                 items[0]["run_id"])
        return "duplicate"
    return notifier, won


def _done(message: dict[str, Any], channel, won, error: BaseException | None, engine) -> str:
    name = channel_mod.key(channel)
    text = scrub(str(error) or type(error).__name__) if error is not None else None
    store.finish_many(engine, message, [row_id for _, row_id in won], name, text)
    if text:
        log.warning("alert %s to %s failed: %s", message["event"], name, text)
        return "failed"
    log.info("alert %s sent to %s: %s", message["event"], name, message["title"])
    return "sent"


def _delivery(items: list[dict[str, Any]], channels: list[dict[str, Any]], compose: Compose, notifications: bool,
              engine, unrouted_resolution: str | None) -> Generator[tuple, Any, dict[str, str]]:
    """The one delivery of a group, for ``deliver_group`` and ``async_deliver_group`` alike.

    It does no I/O itself: it yields ``("store", function, *args)`` (store work, whose result is
    sent back) and ``("send", notifier, message)``, and its driver runs each step its own way (a
    plain call, or a thread and ``async_send`` in the triggerer), throwing a step's exception back
    in. So the sync path needs no event loop (it may run inside one) and the paths cannot drift."""
    outcomes: dict[str, str] = {}
    if not items:
        return outcomes
    try:
        if engine is None:
            engine = yield ("store", store.store_engine)
        if not channels:
            return (yield ("store", _record_unrouted, items, compose, engine, unrouted_resolution))
        for channel in channels:
            name = channel_mod.key(channel)
            prepared = yield ("store", _prepare, items, compose, channel, notifications, engine)
            if isinstance(prepared, str):
                outcomes[name] = prepared
                continue
            notifier, won = prepared
            message = compose([alert for alert, _ in won])
            error = None
            try:
                yield ("send", notifier, build(message))
            except Exception as exc:
                error = exc
            outcomes[name] = yield ("store", _done, message, channel, won, error, engine)
    except Exception as exc:  # the store itself failed: say so, never fail the task for it
        log.error("alerting failed for %s %s: %s", items[0].get("event"), items[0].get("subject"), scrub(exc))
    return outcomes


def _advance(steps: Generator, *, reply: Any = None, error: BaseException | None = None) -> tuple[bool, Any]:
    """Give the delivery a step's result (or its exception): (True, outcomes) once it is done, else
    (False, its next step)."""
    try:
        return False, (steps.throw(error) if error is not None else steps.send(reply))
    except StopIteration as done:
        return True, done.value


def deliver_group(
    items: list[dict[str, Any]],
    channels: list[dict[str, Any]],
    *,
    compose: Compose = combine,
    notifications: bool = True,
    engine=None,
    unrouted_resolution: str | None = None,
) -> dict[str, str]:
    """Send the alerts ``items`` (one (run, event, tier), one or more subjects) as one message per
    channel, ``compose`` making it from the items this sender won; returns {channel key: outcome}.
    ``unrouted_resolution``: with no channel, record the alerts already closed with that resolution."""
    steps = _delivery(items, channels, compose, notifications, engine, unrouted_resolution)
    done, step = _advance(steps)
    while not done:
        try:
            reply = step[1].send(step[2]) if step[0] == "send" else step[1](*step[2:])
        except Exception as exc:
            done, step = _advance(steps, error=exc)
        else:
            done, step = _advance(steps, reply=reply)
    return step


async def async_deliver_group(
    items: list[dict[str, Any]],
    channels: list[dict[str, Any]],
    *,
    compose: Compose = combine,
    notifications: bool = True,
    engine=None,
    unrouted_resolution: str | None = None,
) -> dict[str, str]:
    """``deliver_group`` for the triggerer: store work in threads, sends through ``async_send``."""
    steps = _delivery(items, channels, compose, notifications, engine, unrouted_resolution)
    done, step = _advance(steps)
    while not done:
        try:
            if step[0] == "send":
                reply = await step[1].async_send(step[2])
            else:
                reply = await asyncio.to_thread(step[1], *step[2:])
        except Exception as exc:
            done, step = _advance(steps, error=exc)
        else:
            done, step = _advance(steps, reply=reply)
    return step


def deliver(alert: dict[str, Any], channels: list[dict[str, Any]], *, notifications: bool = True, engine=None) -> dict[str, str]:
    """Send one ``alert`` to ``channels`` (synchronously); returns {channel key: outcome}."""
    return deliver_group([alert], channels, notifications=notifications, engine=engine)


async def async_deliver(
    alert: dict[str, Any], channels: list[dict[str, Any]], *, notifications: bool = True, engine=None,
    unrouted_resolution: str | None = None,
) -> dict[str, str]:
    """``deliver`` for the triggerer."""
    return await async_deliver_group([alert], channels, notifications=notifications, engine=engine,
                                     unrouted_resolution=unrouted_resolution)


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

    One message per event and channel: every check that starts failing in this run goes out in one
    ``check_failed`` message (observed vs expected for each, the first ``message.MAX_LISTED``), the
    same for ``check_warned`` and for ``recovered``; the store keeps a row per check. Anti-fatigue:
    unless ``alerts.repeat`` (default ``[dataops] alert_on_repeat``), a check whose status is the
    same as in the pipeline's previous run (of the same environment) is not alerted again. Returns
    {check: {channel: outcome}}."""
    from airflow_dataops import settings

    sent: dict[str, dict[str, str]] = {}
    try:
        engine = _engine(engine)
        repeat = (alerts or {}).get("repeat")
        repeat = settings.get_bool("alert_on_repeat") if repeat is None else bool(repeat)
        ctx = run_ctx(ctx, run)
        dag_id, run_id = ctx.get("dag_id") or ctx["pipeline"], _run_field(run, "run_id")
        task_id, environment = _run_field(run, "task_id"), environment_of(ctx)
        by_event: dict[str, list[dict[str, Any]]] = {"check_failed": [], "check_warned": [], "recovered": []}
        for result in results:
            r = _result_dict(result)
            status = r["status"]
            previous = store.previous_check_status(engine, dag_id, r["name"], run_id, environment=environment)
            details = {"observed": r.get("observed"), "expected": r.get("expected"), "table": r.get("table"),
                       "check_type": r.get("type"), "task": task_id}
            if status == "passed":
                if previous in {"warned", "failed", "error"}:
                    store.resolve(engine, dag_id, "recovered", environment=environment, subject=r["name"])
                    by_event["recovered"].append(make_alert(
                        ctx, run_id, "recovered", r["name"], f"Check {r['name']} passes again (it was {previous}).",
                        details, title=f"Recovered: {r['name']}"))
                continue
            if not repeat and previous == status:
                log.info("check %s is still %s (as in the previous run): alerted when it started, not again "
                         "(set alerts.repeat: true to alert every run)", r["name"], status)
                continue
            event = "check_warned" if status == "warned" else "check_failed"
            by_event[event].append(make_alert(ctx, run_id, event, r["name"], _check_summary(r), details))
        for event, items in by_event.items():
            if not items:
                continue
            outcomes = deliver_group(items, channel_mod.route(alerts, event), notifications=notifications, engine=engine)
            for item in items:
                sent[item["subject"]] = outcomes
    except Exception as exc:
        log.error("alerting failed for the checks of %s: %s", _run_field(run, "task_id"), scrub(exc))
    return sent
