"""One pipeline's history in the results store: runs, checks, results, freshness, alerts, audit.

Every function reads one DAG id (the route has checked the caller may read it) in one environment
(``environment``, default ``queries.shown_environment``: run ids repeat across environments sharing
a store, so two environments' runs never merge), through an index that leads with ``(dag_id,
environment)`` (``store/schema.py``), and pages with LIMIT/OFFSET and a total.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, case, desc, distinct, func, select, tuple_

from airflow_dataops.plugins.queries import (
    STATUSES,
    al,
    au,
    cr,
    fr,
    freshness_row,
    json_value,
    open_condition,
    shown_environment,
    utc,
)
from airflow_dataops.store.alerts import OPEN_EVENTS
from airflow_dataops.store.schema import alerts, audit, check_results, freshness


def _mine(conn: Connection, table, dag_id: str, environment: str | None) -> list:
    """The rows of ``table`` of one pipeline in one environment (None: the one it is shown in)."""
    return [table.c.dag_id == dag_id, table.c.environment == (environment or shown_environment(conn, dag_id))]


def run_history(
    conn: Connection, dag_id: str, *, environment: str | None = None, limit: int = 30, offset: int = 0
) -> dict[str, Any]:
    """Pass/warn/fail/error counts per run, newest first."""
    mine = _mine(conn, check_results, dag_id, environment)
    counts = [func.sum(case((cr.status == s, 1), else_=0)).label(s) for s in STATUSES]
    last = func.max(cr.checked_at).label("checked_at")
    rows = conn.execute(
        select(cr.run_id, last, *counts)
        .where(*mine)
        .group_by(cr.run_id)
        .order_by(desc(last), cr.run_id)
        .limit(limit)
        .offset(offset)
    ).all()
    total = conn.execute(select(func.count(distinct(cr.run_id))).where(*mine)).scalar_one()
    items = [
        {"run_id": r.run_id, "checked_at": utc(r.checked_at), "counts": {s: int(getattr(r, s) or 0) for s in STATUSES}}
        for r in rows
    ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def check_names(conn: Connection, dag_id: str, *, environment: str | None = None) -> list[dict[str, Any]]:
    """Every check this pipeline has results for, with its latest type, action and status."""
    mine = _mine(conn, check_results, dag_id, environment)
    newest = (
        select(cr.check_name, func.max(cr.checked_at).label("at"))
        .where(*mine)
        .group_by(cr.check_name)
        .subquery()
    )
    rows = conn.execute(
        select(cr.check_name, cr.check_type, cr.action, cr.status, cr.checked_at)
        .join(newest, (cr.check_name == newest.c.check_name) & (cr.checked_at == newest.c.at))
        .where(*mine)
        .order_by(cr.check_name)
    ).all()
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:
        seen.setdefault(
            r.check_name,
            {"check_name": r.check_name, "check_type": r.check_type, "action": r.action, "status": r.status,
             "checked_at": utc(r.checked_at)},
        )
    return list(seen.values())


def _result_row(r, *, samples: bool = False) -> dict[str, Any]:
    row = {
        "run_id": r.run_id,
        "task_id": r.task_id,
        "map_index": r.map_index,
        "environment": r.environment,
        "table_name": r.table_name,
        "check_name": r.check_name,
        "check_type": r.check_type,
        "action": r.action,
        "status": r.status,
        "observed": json_value(r.observed),
        "expected": json_value(r.expected),
        "message": r.message,
        "error": r.error,
        "duration_ms": r.duration_ms,
        "checked_at": utc(r.checked_at),
    }
    if samples:
        row["failing_rows"] = json_value(r.failing_rows)
    return row


def check_history(
    conn: Connection, dag_id: str, check_name: str, *, environment: str | None = None, limit: int = 60
) -> list[dict[str, Any]]:
    """The newest ``limit`` results of one check, oldest first (for a time chart)."""
    rows = conn.execute(
        select(check_results)
        .where(*_mine(conn, check_results, dag_id, environment), cr.check_name == check_name)
        .order_by(desc(cr.checked_at))
        .limit(limit)
    ).all()
    return [_result_row(r) for r in reversed(rows)]


def latest_task_run(conn: Connection, dag_id: str, task_id: str, *, environment: str | None = None) -> str | None:
    """The newest run in which ``task_id`` recorded check results (the Airflow task page has no run)."""
    return conn.execute(
        select(cr.run_id).where(*_mine(conn, check_results, dag_id, environment), cr.task_id == task_id)
        .order_by(desc(cr.checked_at)).limit(1)
    ).scalar()


def run_results(
    conn: Connection,
    dag_id: str,
    run_id: str,
    *,
    environment: str | None = None,
    statuses: Sequence[str] | None = None,
    task_id: str | None = None,
    map_index: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Results of one run (optionally of one task or mapped task instance), failures first;
    failing-row samples included where stored."""
    where = [*_mine(conn, check_results, dag_id, environment), cr.run_id == run_id]
    if statuses:
        where.append(cr.status.in_(statuses))
    if task_id is not None:
        where.append(cr.task_id == task_id)
    if map_index is not None:
        where.append(cr.map_index == map_index)
    order = case({"error": 0, "failed": 1, "warned": 2}, value=cr.status, else_=3)
    rows = conn.execute(
        select(check_results).where(*where).order_by(order, cr.check_name, cr.map_index).limit(limit).offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(check_results).where(*where)).scalar_one()
    return {"total": total, "limit": limit, "offset": offset, "items": [_result_row(r, samples=True) for r in rows]}


def freshness_history(
    conn: Connection, dag_id: str, *, environment: str | None = None, limit: int = 60, offset: int = 0
) -> dict[str, Any]:
    """Freshness observations of every table and column, newest first."""
    mine = _mine(conn, freshness, dag_id, environment)
    rows = conn.execute(
        select(freshness).where(*mine).order_by(desc(fr.observed_at), desc(fr.id)).limit(limit).offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(freshness).where(*mine)).scalar_one()
    return {"total": total, "limit": limit, "offset": offset, "items": [freshness_row(r) for r in rows]}


def _alert_row(r) -> dict[str, Any]:
    return {
        "id": r.id, "run_id": r.run_id, "environment": r.environment, "event": r.event, "subject": r.subject,
        "tier": r.tier, "channel": r.channel, "severity": r.severity, "status": r.status, "message": r.message,
        "error": r.error, "created_at": utc(r.created_at), "sent_at": utc(r.sent_at),
        "acknowledged_at": utc(r.acknowledged_at), "acknowledged_by": r.acknowledged_by,
        "resolved_at": utc(r.resolved_at), "resolution": r.resolution,
        "open": r.tier == 0 and r.acknowledged_at is None and r.resolved_at is None and r.event in OPEN_EVENTS,
    }


def alert_list(
    conn: Connection, dag_id: str, *, environment: str | None = None, open_only: bool = False, limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Alert messages (one row per run, event, subject, tier and channel), newest first."""
    where = _mine(conn, alerts, dag_id, environment)
    if open_only:
        where.append(open_condition())
    rows = conn.execute(
        select(alerts).where(*where).order_by(desc(al.created_at), desc(al.id)).limit(limit).offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(alerts).where(*where)).scalar_one()
    return {"total": total, "limit": limit, "offset": offset, "items": [_alert_row(r) for r in rows]}


def incidents(
    conn: Connection, dag_id: str, *, environment: str | None = None, open_only: bool = False, limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """Alerts as people see them: one per (run, event, subject) with every message sent for it
    (channels, escalation tiers). Open ones first, then newest first, so an old open alert is never
    pushed off the first page by newer resolved ones."""
    mine = _mine(conn, alerts, dag_id, environment)
    is_open = func.max(case((open_condition(), 1), else_=0))
    first_tier = func.max(case((al.tier == 0, al.severity)))
    grouped = (
        select(
            al.run_id, al.event, al.subject, is_open.label("open"), func.min(al.created_at).label("created_at"),
            func.max(al.created_at).label("last_at"), func.max(al.tier).label("tier"), first_tier.label("severity"),
            func.max(al.environment).label("environment"),
            func.max(al.acknowledged_at).label("acknowledged_at"), func.max(al.acknowledged_by).label("acknowledged_by"),
            func.max(al.resolved_at).label("resolved_at"), func.max(al.resolution).label("resolution"),
        )
        .where(*mine)
        .group_by(al.run_id, al.event, al.subject)
    )
    if open_only:
        grouped = grouped.having(is_open == 1)
    total = conn.execute(select(func.count()).select_from(grouped.subquery())).scalar_one()
    rows = conn.execute(
        grouped.order_by(desc(is_open), desc(func.min(al.created_at)), al.run_id, al.event, al.subject)
        .limit(limit).offset(offset)
    ).all()
    keys = [(r.run_id, r.event, r.subject) for r in rows]
    messages: dict[tuple[str, str, str], list[dict[str, Any]]] = {k: [] for k in keys}
    if keys:
        for m in conn.execute(
            select(al.run_id, al.event, al.subject, al.tier, al.channel, al.status, al.error, al.sent_at, al.message)
            .where(*mine, tuple_(al.run_id, al.event, al.subject).in_(keys))
            .order_by(al.tier, al.channel)
        ):
            messages[(m.run_id, m.event, m.subject)].append(
                {"tier": m.tier, "channel": m.channel, "status": m.status, "error": m.error, "sent_at": utc(m.sent_at),
                 "message": m.message}
            )
    items = [
        {
            "run_id": r.run_id, "event": r.event, "subject": r.subject, "environment": r.environment,
            "severity": r.severity or "error", "open": bool(r.open), "escalated": (r.tier or 0) > 0,
            "created_at": utc(r.created_at), "last_at": utc(r.last_at),
            "acknowledged_at": utc(r.acknowledged_at), "acknowledged_by": r.acknowledged_by,
            "resolved_at": utc(r.resolved_at), "resolution": r.resolution,
            "messages": messages[(r.run_id, r.event, r.subject)],
        }
        for r in rows
    ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def audit_trail(
    conn: Connection, dag_id: str, *, environment: str | None = None, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """What alerting did for a pipeline (alerts, suppressions, acks, escalations), newest first."""
    mine = _mine(conn, audit, dag_id, environment)
    rows = conn.execute(
        select(audit).where(*mine).order_by(desc(au.at), desc(au.id)).limit(limit).offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(audit).where(*mine)).scalar_one()
    items = [
        {
            "id": r.id, "run_id": r.run_id, "kind": r.kind, "event": r.event, "channel": r.channel,
            "outcome": r.outcome, "actor": r.actor, "detail": r.detail, "error": r.error, "at": utc(r.at),
        }
        for r in rows
    ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}
