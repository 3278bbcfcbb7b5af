"""Alert claims, acknowledgements, resolutions and the audit trail, on ``dataops_alerts`` and
``dataops_audit``.

One row of ``dataops_alerts`` per (run, environment, event, subject, tier, channel): the state of
one subject (a check, a task, a source, the SLA) on one channel, which acknowledgements, resolutions
and the UI work on. Run ids repeat across environments sharing a store (``scheduled__<date>``), so
whatever names a run names its environment too. A message may carry several subjects of one (run,
event, tier) (one Slack post for five failing checks): its sender *claims* all their rows on that
channel in one transaction (``claim_many``) before anything goes out, so retries, duplicate triggers
and several schedulers send each subject once, and the message lists only the subjects its sender
won. An alert with no channel to go to is still kept (channel ``none``, status ``recorded``). Every
message (sent, failed, suppressed, recorded) also writes one audit row: the history the UI shows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from airflow_dataops.store.schema import alerts as alerts_table
from airflow_dataops.store.schema import audit as audit_table
from airflow_dataops.store.schema import check_results
from airflow_dataops.timeutil import utcnow

log = logging.getLogger(__name__)

# A claim with no outcome after this long belongs to a sender that died: a send gives up after its
# retry budget (about a minute) plus one request timeout.
STALE_CLAIM = dt.timedelta(minutes=10)

OPEN_EVENTS = ("check_failed", "check_warned", "task_failed", "freshness_timeout", "sla_miss")
#: The channel of an alert that had nowhere to go (no channels, or ``alerts.on`` routes it nowhere).
NO_CHANNEL = "none"


def store_engine() -> Engine:
    """The results store engine of this process (``ResultsStore.default()``: one per process,
    ``[dataops] results_conn_id`` and AIRFLOW_HOME; schema ensured)."""
    from airflow_dataops.store.results import ResultsStore

    return ResultsStore.default().engine


def _audit_row(alert: dict[str, Any], kind: str, **values: Any) -> dict[str, Any]:
    return {
        "pipeline": alert["pipeline"],
        "dag_id": alert["dag_id"],
        "run_id": alert.get("run_id"),
        "environment": alert["environment"],
        "kind": kind,
        "event": alert.get("event"),
        "at": utcnow(),
        **values,
    }


def _key(alert: dict[str, Any], channel: str):
    return and_(
        alerts_table.c.dag_id == alert["dag_id"],
        alerts_table.c.run_id == alert["run_id"],
        alerts_table.c.environment == alert["environment"],
        alerts_table.c.event == alert["event"],
        alerts_table.c.subject == alert["subject"],
        alerts_table.c.tier == alert.get("tier", 0),
        alerts_table.c.channel == channel,
    )


def _alert_row(alert: dict[str, Any], channel: str, status: str, message: str | None) -> dict[str, Any]:
    now = utcnow()
    return {
        "pipeline": alert["pipeline"],
        "dag_id": alert["dag_id"],
        "run_id": alert["run_id"],
        "environment": alert["environment"],
        "event": alert["event"],
        "subject": alert["subject"],
        "tier": alert.get("tier", 0),
        "channel": channel,
        "severity": alert["severity"],
        "status": status,
        "message": message,
        "created_at": now,
        "claimed_at": now if status == "claimed" else None,
    }


def _take_over(conn, alert: dict[str, Any], channel: str, now: dt.datetime) -> int | None:
    """Claim an existing row whose send failed, or whose claim went stale; one UPDATE, one winner."""
    claimed_at = func.coalesce(alerts_table.c.claimed_at, alerts_table.c.created_at)
    retryable = or_(
        alerts_table.c.status == "failed",
        and_(alerts_table.c.status == "claimed", claimed_at < now - STALE_CLAIM),
    )
    found = conn.execute(select(alerts_table.c.id, alerts_table.c.status).where(_key(alert, channel), retryable)).first()
    if found is None:
        return None
    won = conn.execute(
        update(alerts_table).where(alerts_table.c.id == found.id, retryable).values(status="claimed", error=None, claimed_at=now)
    ).rowcount
    if won == 1 and found.status == "claimed":
        log.warning(
            "alert %s %s on %s of run %s was claimed more than %s ago by a sender that never finished "
            "(killed mid-send?): sending it now",
            alert["event"], alert["subject"], channel, alert["run_id"], STALE_CLAIM,
        )
    return found.id if won == 1 else None


def _order(alert: dict[str, Any]) -> tuple:
    # One order for every claimer: two senders of overlapping subjects never wait on each other in a cycle.
    return (alert["dag_id"], alert["run_id"], alert["environment"], alert["event"], alert.get("tier", 0), alert["subject"])


def claim_many(engine: Engine, alerts: list[dict[str, Any]], channel: str) -> list[tuple[dict[str, Any], int]]:
    """Claim the send of several subjects' alerts on ``channel`` at once; the (alert, row id) this caller won.

    One transaction, a savepoint per row, rows in one fixed order: a concurrent claimer of the same
    subjects waits for this one (PostgreSQL row locks; SQLite's write lock) and then finds them
    taken, so one message carries them. Each row's ``message`` is its alert's own summary.

    Besides fresh rows, two existing rows may be claimed: one whose send ``failed``, and one left
    ``claimed`` for longer than ``STALE_CLAIM`` (its sender died mid-send: a send gives up well
    before). Either way by one conditional UPDATE, so exactly one claimer wins."""
    won: list[tuple[dict[str, Any], int]] = []
    now = utcnow()
    with engine.begin() as conn:
        for alert in sorted(alerts, key=_order):
            row = _alert_row(alert, channel, "claimed", alert.get("summary"))
            try:
                with conn.begin_nested():
                    row_id = conn.execute(insert(alerts_table).values(**row)).inserted_primary_key[0]
            except IntegrityError:
                row_id = _take_over(conn, alert, channel, now)
            if row_id is not None:
                won.append((alert, row_id))
    return won


def _kind(alert: dict[str, Any]) -> str:
    return "escalation" if alert.get("tier", 0) else ("recovered" if alert["event"] == "recovered" else "alert")


def finish_many(engine: Engine, message: dict[str, Any], row_ids: list[int], channel: str, error: str | None) -> None:
    """Record the outcome of one claimed send (every row it carried) and its audit row."""
    now = utcnow()
    status = "failed" if error else "sent"
    with engine.begin() as conn:
        conn.execute(
            update(alerts_table)
            .where(alerts_table.c.id.in_(row_ids))
            .values(status=status, error=error, sent_at=None if error else now)
        )
        conn.execute(
            insert(audit_table).values(
                **_audit_row(message, _kind(message), channel=channel, outcome=status, detail=message.get("title"), error=error)
            )
        )


def record_error(engine: Engine, alert: dict[str, Any], channel: str, error: str,
                 items: list[dict[str, Any]] | None = None) -> None:
    """A channel that could not even be prepared (missing connection, bad type): recorded as failed
    (for every subject of ``items``, default the alert alone)."""
    won = claim_many(engine, items or [alert], channel)
    if won:
        finish_many(engine, alert, [row_id for _, row_id in won], channel, error)


def _record_unsent(engine: Engine, message: dict[str, Any], items: list[dict[str, Any]], channel: str,
                   status: str, kind: str, detail: str, resolution: str | None = None) -> list[dict[str, Any]]:
    """Keep alerts that are not sent (status ``suppressed`` or ``recorded``) and audit them once;
    the items newly recorded (a duplicate caller records nothing). ``resolution``: closed at once."""
    recorded = []
    closed = {"resolved_at": utcnow(), "resolution": resolution} if resolution else {}
    with engine.begin() as conn:
        for alert in sorted(items, key=_order):
            try:
                with conn.begin_nested():
                    conn.execute(insert(alerts_table).values(**_alert_row(alert, channel, status, alert.get("summary")), **closed))
            except IntegrityError:
                continue
            recorded.append(alert)
        if recorded:
            conn.execute(insert(audit_table).values(**_audit_row(message, kind, channel=channel, outcome=status, detail=detail)))
    return recorded


def record_suppressed(engine: Engine, alert: dict[str, Any], channel: str, reason: str,
                      items: list[dict[str, Any]] | None = None) -> bool:
    """``notifications: false``: keep the alert (status ``suppressed``) and audit it; nothing is sent."""
    return bool(_record_unsent(engine, alert, items or [alert], channel, "suppressed", "suppressed", reason))


def record_unrouted(engine: Engine, alert: dict[str, Any], reason: str, items: list[dict[str, Any]] | None = None,
                    *, resolution: str | None = None) -> bool:
    """An alert with no channel (no ``alerts.channels``, or ``alerts.on`` sends the event nowhere):
    kept with channel ``none`` and status ``recorded``, so it still counts (an SLA miss in the
    on-time rate) and can be acknowledged and escalated; nothing is sent. ``resolution`` closes it at
    once (a pipeline with no alerting at all: nothing would ever resolve it, nobody to escalate to)."""
    return bool(_record_unsent(engine, alert, items or [alert], NO_CHANNEL, "recorded", _kind(alert), reason,
                               resolution))


def audit(engine: Engine, alert: dict[str, Any], kind: str, outcome: str, detail: str, actor: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(insert(audit_table).values(**_audit_row(alert, kind, outcome=outcome, detail=detail, actor=actor)))


def _open_clause():
    return and_(
        alerts_table.c.acknowledged_at.is_(None),
        alerts_table.c.resolved_at.is_(None),
        alerts_table.c.event.in_(OPEN_EVENTS),
        alerts_table.c.tier == 0,
    )


def _mine(dag_id: str, environment: str | None, **equal: Any) -> list:
    """The alert rows of a pipeline in one environment (None: in every one) whose columns equal the
    ``equal`` values that are not None (``run_id``, ``event``, ``subject``)."""
    where = [alerts_table.c.dag_id == dag_id]
    for column, value in {"environment": environment, **equal}.items():
        if value is not None:
            where.append(alerts_table.c[column] == value)
    return where


def open_alerts(engine: Engine, dag_id: str | None = None, environment: str | None = None) -> list[dict[str, Any]]:
    """First-tier alerts nobody has acknowledged and nothing has resolved, oldest first."""
    stmt = select(alerts_table).where(_open_clause()).order_by(alerts_table.c.created_at, alerts_table.c.id)
    if dag_id is not None:
        stmt = stmt.where(*_mine(dag_id, environment))
    elif environment is not None:
        stmt = stmt.where(alerts_table.c.environment == environment)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]


def _close(engine: Engine, dag_id: str, where: list, values: dict[str, Any], *, kind: str, actor: str | None,
           detail: str) -> tuple[int, list[tuple]]:
    """Set ``values`` on the alert rows matching ``where``, with one audit row per first-tier (run,
    environment, event, subject) among them; (rows changed, those keys)."""
    c = alerts_table.c
    with engine.begin() as conn:
        rows = conn.execute(select(c.id, c.pipeline, c.run_id, c.environment, c.event, c.subject, c.tier).where(*where)).all()
        if not rows:
            return 0, []
        conn.execute(update(alerts_table).where(c.id.in_([r.id for r in rows])).values(**values))
        closed = sorted({(r.pipeline, r.run_id, r.environment, r.event, r.subject) for r in rows if r.tier == 0})
        for pipeline, run, environment, event, subject in closed:
            conn.execute(insert(audit_table).values(
                pipeline=pipeline, dag_id=dag_id, run_id=run, environment=environment, kind=kind, event=event,
                outcome="recorded", actor=actor, detail=detail.format(event=event, subject=subject), at=utcnow(),
            ))
    return len(rows), closed


def acknowledge(
    engine: Engine, dag_id: str, run_id: str | None, by: str, *, event: str | None = None, subject: str | None = None,
    environment: str | None = None,
) -> int:
    """Acknowledge the open alerts of a pipeline (of one ``environment`` or every one; one run, or
    every run; optionally only one ``event`` and/or ``subject``, i.e. one alert): escalation stops.

    Returns how many alert rows were acknowledged; each acknowledged (run, environment, event,
    subject) gets an audit row naming ``by``."""
    where = [*_mine(dag_id, environment, run_id=run_id, event=event, subject=subject), _open_clause()]
    count, _ = _close(engine, dag_id, where, {"acknowledged_at": utcnow(), "acknowledged_by": by}, kind="ack",
                      actor=by, detail="acknowledged {event} {subject}")
    return count


def resolve(
    engine: Engine,
    dag_id: str,
    resolution: str,
    *,
    environment: str,
    run_ids: Iterable[str] | None = None,
    created_before: dt.datetime | None = None,
    event: str | None = None,
    subject: str | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Mark open alerts of ``environment`` resolved (a run of one environment proves nothing about
    another's); returns the distinct (pipeline, run_id, event, subject) resolved."""
    where = [*_mine(dag_id, environment, event=event, subject=subject), alerts_table.c.resolved_at.is_(None),
             alerts_table.c.event.in_(OPEN_EVENTS)]
    if run_ids is not None:
        where.append(alerts_table.c.run_id.in_(list(run_ids)))
    if created_before is not None:
        where.append(alerts_table.c.created_at <= created_before)
    _, closed = _close(engine, dag_id, where, {"resolved_at": utcnow(), "resolution": resolution}, kind="recovered",
                       actor=actor, detail=f"resolved {{event}} {{subject}}: {resolution}")
    return [{"pipeline": p, "run_id": r, "event": e, "subject": s} for p, r, _env, e, s in closed]


def incident(engine: Engine, dag_id: str, run_id: str, event: str, subject: str, *, environment: str) -> dict[str, Any] | None:
    """The state of one first-tier alert across its channels: when it was first raised, whether it
    was acknowledged or resolved, and whether it was only suppressed. None when it was never raised."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(alerts_table).where(
                *_mine(dag_id, environment, run_id=run_id, event=event, subject=subject),
                alerts_table.c.tier == 0,
            )
        ).all()
    if not rows:
        return None
    return {
        "created_at": min(r.created_at for r in rows),
        "acknowledged_by": next((r.acknowledged_by for r in rows if r.acknowledged_at), None),
        "acknowledged": any(r.acknowledged_at is not None for r in rows),
        "resolved": next((r.resolution for r in rows if r.resolved_at is not None), None),
        "suppressed": all(r.status == "suppressed" for r in rows),
        "message": next((r.message for r in rows if r.message), None),
    }


def run_incidents(engine: Engine, dag_id: str, run_id: str, events: Iterable[str], *, environment: str) -> list[dict[str, Any]]:
    """Distinct first-tier (event, subject) alerts of one run of ``environment``, with their earliest
    time, oldest first (alerts that were only suppressed count too)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(alerts_table.c.event, alerts_table.c.subject, func.min(alerts_table.c.created_at).label("at"))
            .where(*_mine(dag_id, environment, run_id=run_id), alerts_table.c.tier == 0,
                   alerts_table.c.event.in_(list(events)))
            .group_by(alerts_table.c.event, alerts_table.c.subject)
        ).all()
    found = sorted(rows, key=lambda r: (r.at, r.event, r.subject))
    return [{"event": r.event, "subject": r.subject, "created_at": r.at} for r in found]


# Worst first: the status of a check in a run where several mapped task instances ran it.
STATUS_SEVERITY = {"error": 3, "failed": 2, "warned": 1, "passed": 0}


def previous_check_status(engine: Engine, dag_id: str, check_name: str, run_id: str, *, environment: str) -> str | None:
    """Status of the same check in the run of ``environment`` before this one (None: it never ran
    there); where several mapped task instances ran it in that run, the worst (error > failed >
    warned > passed). "Before" is by the check's own time, so clearing an old run, or runs
    overlapping, never compares with a later run; another environment's runs never count."""
    c = check_results.c
    mine = (c.dag_id == dag_id, c.environment == environment, c.check_name == check_name)
    this_run = select(func.min(c.checked_at)).where(*mine, c.run_id == run_id).scalar_subquery()
    previous = (
        select(c.run_id)
        .where(*mine, c.run_id != run_id, or_(this_run.is_(None), c.checked_at < this_run))
        .order_by(c.checked_at.desc(), c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    with engine.connect() as conn:
        statuses = conn.execute(select(c.status).where(*mine, c.run_id == previous)).scalars().all()
    return max(statuses, key=lambda status: STATUS_SEVERITY.get(status, 3)) if statuses else None


def task_had_failed_checks(engine: Engine, dag_id: str, run_id: str, task_id: str, *, environment: str) -> bool:
    """Whether the task recorded failing checks in this run of ``environment`` (their alerts said it)."""
    c = check_results.c
    stmt = select(c.id).where(
        c.dag_id == dag_id, c.run_id == run_id, c.environment == environment, c.task_id == task_id,
        c.status.in_(("failed", "error")),
    ).limit(1)
    with engine.connect() as conn:
        return conn.execute(stmt).scalar() is not None


def alert_rows(engine: Engine, dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
    stmt = select(alerts_table).where(alerts_table.c.dag_id == dag_id).order_by(alerts_table.c.id)
    if run_id is not None:
        stmt = stmt.where(alerts_table.c.run_id == run_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def audit_rows(engine: Engine, dag_id: str) -> list[dict[str, Any]]:
    stmt = select(audit_table).where(audit_table.c.dag_id == dag_id).order_by(audit_table.c.id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]
