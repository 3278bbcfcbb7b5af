"""Read queries over the results store, for the Data Quality page and its JSON API.

Every query is scoped to DAG ids the caller may read (the route passes them in). Aggregates run in
the database and every page issues a fixed number of statements whatever the number of
pipelines on it (no N+1). Lists are paginated with LIMIT/OFFSET.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, String, and_, case, desc, distinct, func, literal, select, tuple_, union_all

from airflow_dataops.store.alerts import OPEN_EVENTS
from airflow_dataops.store.schema import alerts, audit, check_results, freshness
from airflow_dataops.timeutil import as_utc

cr, fr, al, au = check_results.c, freshness.c, alerts.c, audit.c

STATUSES = ("passed", "warned", "failed", "error")
ON_TIME_DAYS = 30
UNION_CHUNK = 200


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: the store writes UTC, so read them as UTC."""
    return None if value is None else as_utc(value)


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _distinct_dag_ids(conn: Connection, column) -> list[str]:
    """Distinct values of an indexed leading column by a loose index scan.

    A recursive CTE hops from one value to the next through the index (one probe per pipeline)
    instead of reading a million index entries; it runs the same on PostgreSQL and SQLite.
    """
    seed = select(func.min(column).label("v")).cte("loose_scan", recursive=True)
    step = select(select(func.min(column)).where(column > seed.c.v).scalar_subquery()).where(seed.c.v.is_not(None))
    scan = seed.union_all(step)
    return [v for (v,) in conn.execute(select(scan.c.v).where(scan.c.v.is_not(None)))]


def pipeline_dag_ids(conn: Connection, readable: Iterable[str]) -> list[str]:
    """Sorted DAG ids that have anything in the store and that the caller may read."""
    allowed = set(readable)
    found: set[str] = set()
    for column in (cr.dag_id, fr.dag_id, al.dag_id):
        found.update(_distinct_dag_ids(conn, column))
    return sorted(found & allowed)


def overview(
    conn: Connection,
    readable: Iterable[str],
    *,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """One page of pipeline summaries, ordered by DAG id, with the total for pagination."""
    ids = pipeline_dag_ids(conn, readable)
    if search:
        needle = search.lower()
        ids = [d for d in ids if needle in d.lower()]
    page = ids[offset : offset + limit]
    return {"total": len(ids), "limit": limit, "offset": offset, "items": summaries(conn, page, now=now)}


def summaries(conn: Connection, dag_ids: Sequence[str], *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Summaries of the given pipelines in seven statements (per 200 pipelines), whatever their number."""
    if not dag_ids:
        return []
    now = now or dt.datetime.now(dt.timezone.utc)
    items = {d: _empty_summary(d) for d in dag_ids}

    # One max() per pipeline, glued with UNION ALL: each is a single backward index probe on
    # (dag_id, checked_at), where a GROUP BY would read every result of every pipeline on the page.
    # Chunked: SQLite allows at most 500 terms in a compound SELECT.
    latest = []
    for start in range(0, len(dag_ids), UNION_CHUNK):
        chunk = dag_ids[start : start + UNION_CHUNK]
        latest_at = union_all(
            *(select(literal(d, String).label("dag_id"), func.max(cr.checked_at).label("at")).where(cr.dag_id == d) for d in chunk)
        ).subquery()
        latest += conn.execute(
            select(cr.dag_id, cr.run_id, cr.pipeline, cr.environment, cr.checked_at).join(
                latest_at, and_(cr.dag_id == latest_at.c.dag_id, cr.checked_at == latest_at.c.at)
            )
        ).all()
    for row in latest:
        item = items[row.dag_id]
        item.update(pipeline=row.pipeline, environment=row.environment, last_run_id=row.run_id)
        item["last_checked_at"] = utc(row.checked_at)

    runs = [(d, i["last_run_id"]) for d, i in items.items() if i["last_run_id"]]
    if runs:
        counts = conn.execute(
            select(cr.dag_id, cr.status, func.count().label("n"))
            .where(tuple_(cr.dag_id, cr.run_id).in_(runs))
            .group_by(cr.dag_id, cr.status)
        ).all()
        for row in counts:
            if row.status in STATUSES:
                items[row.dag_id]["counts"][row.status] = row.n

    for row in latest_freshness(conn, dag_ids):
        item = items[row["dag_id"]]
        lag = row["lag_seconds"]
        if row["newest"] is not None:
            lag = (now - row["newest"]).total_seconds()
        row["current_lag_seconds"] = lag
        worst = item["freshness"]
        if worst is None or _lag_ratio(row) > _lag_ratio(worst):
            item["freshness"] = row

    for row in _open_alert_counts(conn, dag_ids):
        items[row.dag_id]["open_alerts"] = row.open
        items[row.dag_id]["open_escalations"] = row.escalated or 0

    for dag_id, (met, total) in _on_time(conn, dag_ids, now).items():
        items[dag_id]["on_time_runs"] = met
        items[dag_id]["runs_30d"] = total
        items[dag_id]["on_time_rate"] = round(met / total, 4) if total else None

    for item in items.values():
        item["health"] = _health(item)
    return [items[d] for d in dag_ids]


def _empty_summary(dag_id: str) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "pipeline": dag_id,
        "environment": None,
        "last_run_id": None,
        "last_checked_at": None,
        "counts": dict.fromkeys(STATUSES, 0),
        "freshness": None,
        "open_alerts": 0,
        "open_escalations": 0,
        "on_time_rate": None,
        "on_time_runs": 0,
        "runs_30d": 0,
        "health": "no_results",
    }


def _lag_ratio(row: dict[str, Any]) -> float:
    lag, sla = row.get("current_lag_seconds"), row.get("max_age_seconds")
    if lag is None:
        return float("inf")  # an empty table is the worst news
    return lag / sla if sla else 0.0


def _health(item: dict[str, Any]) -> str:
    counts, fresh = item["counts"], item["freshness"]
    if item["last_run_id"] is None and fresh is None:
        return "no_results"
    if counts["failed"] or counts["error"]:
        return "failing"
    if fresh is not None and fresh["max_age_seconds"] and _lag_ratio(fresh) > 1:
        return "stale"
    if counts["warned"]:
        return "warning"
    return "healthy"


def latest_freshness(conn: Connection, dag_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The newest freshness observation of every (pipeline, table, column)."""
    newest_first = func.row_number().over(
        partition_by=(fr.dag_id, fr.table_name, fr.column_name), order_by=(desc(fr.observed_at), desc(fr.id))
    )
    ranked = select(freshness, newest_first.label("rank")).where(fr.dag_id.in_(dag_ids)).subquery()
    rows = conn.execute(select(ranked).where(ranked.c.rank == 1)).all()
    return [_freshness_row(r) for r in rows]


def _freshness_row(row) -> dict[str, Any]:
    return {
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "task_id": row.task_id,
        "source": row.source,
        "table_name": row.table_name,
        "column_name": row.column_name,
        "newest": utc(row.newest),
        "observed_at": utc(row.observed_at),
        "lag_seconds": row.lag_seconds,
        "max_age_seconds": row.max_age_seconds,
        "fresh": row.fresh,
    }


def _open_condition():
    """A first-tier alert nobody acknowledged and nothing resolved (as ``store.alerts`` defines it)."""
    return and_(al.acknowledged_at.is_(None), al.resolved_at.is_(None), al.event.in_(OPEN_EVENTS), al.tier == 0)


def _open_alert_counts(conn: Connection, dag_ids: Sequence[str]):
    """Open alerts per pipeline: one per (run, event, subject) however many channels and tiers it
    went to; escalated when a tier above 0 went out for it."""
    is_open = case((_open_condition(), 1), else_=0)
    per_alert = (
        select(al.dag_id, func.max(al.tier).label("tier"))
        .where(al.dag_id.in_(dag_ids), al.event.in_(OPEN_EVENTS))
        .group_by(al.dag_id, al.run_id, al.event, al.subject)
        .having(func.max(is_open) == 1)
        .subquery()
    )
    return conn.execute(
        select(
            per_alert.c.dag_id,
            func.count().label("open"),
            func.sum(case((per_alert.c.tier > 0, 1), else_=0)).label("escalated"),
        ).group_by(per_alert.c.dag_id)
    ).all()


def _on_time(conn: Connection, dag_ids: Sequence[str], now: dt.datetime) -> dict[str, tuple[int, int]]:
    """Per pipeline (runs that met their SLA and passed their fail checks, runs) over 30 days.

    A run is late when it has an ``sla_miss`` alert; it failed when a ``fail`` check failed or
    errored. Runs with an SLA miss but no stored checks still count as runs.
    """
    since = now - dt.timedelta(days=ON_TIME_DAYS)
    bad_check = case((and_(cr.action == "fail", cr.status.in_(("failed", "error"))), 1), else_=0)
    runs: dict[tuple[str, str], bool] = {}
    for row in conn.execute(
        select(cr.dag_id, cr.run_id, func.max(bad_check).label("bad"))
        .where(cr.dag_id.in_(dag_ids), cr.checked_at >= since)
        .group_by(cr.dag_id, cr.run_id)
    ):
        runs[(row.dag_id, row.run_id)] = bool(row.bad)
    for row in conn.execute(
        select(al.dag_id, al.run_id)
        .where(al.dag_id.in_(dag_ids), al.event == "sla_miss", al.created_at >= since)
        .group_by(al.dag_id, al.run_id)
    ):
        runs[(row.dag_id, row.run_id)] = True
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (dag_id, _run), bad in runs.items():
        tally[dag_id][1] += 1
        tally[dag_id][0] += 0 if bad else 1
    return {d: (met, total) for d, (met, total) in tally.items()}


def run_history(conn: Connection, dag_id: str, *, limit: int = 30, offset: int = 0) -> dict[str, Any]:
    """Pass/warn/fail/error counts per run, newest first."""
    counts = [func.sum(case((cr.status == s, 1), else_=0)).label(s) for s in STATUSES]
    last = func.max(cr.checked_at).label("checked_at")
    rows = conn.execute(
        select(cr.run_id, last, *counts)
        .where(cr.dag_id == dag_id)
        .group_by(cr.run_id)
        .order_by(desc(last), cr.run_id)
        .limit(limit)
        .offset(offset)
    ).all()
    total = conn.execute(select(func.count(distinct(cr.run_id))).where(cr.dag_id == dag_id)).scalar_one()
    items = [
        {"run_id": r.run_id, "checked_at": utc(r.checked_at), "counts": {s: int(getattr(r, s) or 0) for s in STATUSES}}
        for r in rows
    ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def check_names(conn: Connection, dag_id: str) -> list[dict[str, Any]]:
    """Every check this pipeline has results for, with its latest type, action and status."""
    newest = (
        select(cr.check_name, func.max(cr.checked_at).label("at"))
        .where(cr.dag_id == dag_id)
        .group_by(cr.check_name)
        .subquery()
    )
    rows = conn.execute(
        select(cr.check_name, cr.check_type, cr.action, cr.status, cr.checked_at)
        .join(newest, and_(cr.check_name == newest.c.check_name, cr.checked_at == newest.c.at))
        .where(cr.dag_id == dag_id)
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
        "observed": _json(r.observed),
        "expected": _json(r.expected),
        "message": r.message,
        "error": r.error,
        "duration_ms": r.duration_ms,
        "checked_at": utc(r.checked_at),
    }
    if samples:
        row["failing_rows"] = _json(r.failing_rows)
    return row


def check_history(conn: Connection, dag_id: str, check_name: str, *, limit: int = 60) -> list[dict[str, Any]]:
    """The newest ``limit`` results of one check, oldest first (for a time chart)."""
    rows = conn.execute(
        select(check_results)
        .where(cr.dag_id == dag_id, cr.check_name == check_name)
        .order_by(desc(cr.checked_at))
        .limit(limit)
    ).all()
    return [_result_row(r) for r in reversed(rows)]


def run_results(
    conn: Connection,
    dag_id: str,
    run_id: str,
    *,
    statuses: Sequence[str] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Results of one run, failures first; failing-row samples included where stored."""
    where = [cr.dag_id == dag_id, cr.run_id == run_id]
    if statuses:
        where.append(cr.status.in_(statuses))
    order = case({"error": 0, "failed": 1, "warned": 2}, value=cr.status, else_=3)
    rows = conn.execute(
        select(check_results).where(*where).order_by(order, cr.check_name).limit(limit).offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(check_results).where(*where)).scalar_one()
    return {"total": total, "limit": limit, "offset": offset, "items": [_result_row(r, samples=True) for r in rows]}


def freshness_history(conn: Connection, dag_id: str, *, limit: int = 60, offset: int = 0) -> dict[str, Any]:
    """Freshness observations, newest first."""
    rows = conn.execute(
        select(freshness).where(fr.dag_id == dag_id).order_by(desc(fr.observed_at)).limit(limit).offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(freshness).where(fr.dag_id == dag_id)).scalar_one()
    return {"total": total, "limit": limit, "offset": offset, "items": [_freshness_row(r) for r in rows]}


def alert_list(
    conn: Connection, dag_id: str, *, open_only: bool = False, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """Alerts and escalations of a pipeline, newest first."""
    where = [al.dag_id == dag_id]
    if open_only:
        where.append(_open_condition())
    rows = conn.execute(
        select(alerts).where(*where).order_by(desc(al.created_at), desc(al.id)).limit(limit).offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(alerts).where(*where)).scalar_one()
    items = [
        {
            "id": r.id, "run_id": r.run_id, "environment": r.environment, "event": r.event, "subject": r.subject,
            "tier": r.tier, "channel": r.channel, "severity": r.severity, "status": r.status, "message": r.message,
            "error": r.error, "created_at": utc(r.created_at), "sent_at": utc(r.sent_at),
            "acknowledged_at": utc(r.acknowledged_at), "acknowledged_by": r.acknowledged_by,
            "resolved_at": utc(r.resolved_at), "resolution": r.resolution,
            "open": r.tier == 0 and r.acknowledged_at is None and r.resolved_at is None and r.event in OPEN_EVENTS,
        }
        for r in rows
    ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def audit_trail(conn: Connection, dag_id: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """What alerting did for a pipeline (alerts, suppressions, acks, escalations), newest first."""
    rows = conn.execute(
        select(audit).where(au.dag_id == dag_id).order_by(desc(au.at), desc(au.id)).limit(limit).offset(offset)
    ).all()
    total = conn.execute(select(func.count()).select_from(audit).where(au.dag_id == dag_id)).scalar_one()
    items = [
        {
            "id": r.id, "run_id": r.run_id, "kind": r.kind, "event": r.event, "channel": r.channel,
            "outcome": r.outcome, "actor": r.actor, "detail": r.detail, "error": r.error, "at": utc(r.at),
        }
        for r in rows
    ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}
