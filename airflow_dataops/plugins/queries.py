"""Overview queries over the results store: which pipelines exist, and their summaries.

Every query is scoped to DAG ids the caller may read (the route passes them in). Aggregates run in
the database and a page issues a fixed number of statements whatever the number of pipelines on
it (no N+1). One pipeline's lists (runs, results, alerts...) are in ``history``.

Environments may share one store, and run ids repeat across them (``scheduled__<date>``), so a
pipeline is always shown in one environment (``shown_environments``: this deployment's own
``[dataops] environment`` when the store has anything of it for the pipeline, else the environment
of its newest row) and every query filters on it: two environments' runs never merge.

The on-time rate counts a DAG's runs of the last 30 days. The store alone knows the runs that
recorded something; inside the api-server the route also passes the DAG runs Airflow itself knows
(``airflow_runs``: state from Airflow's own ``dag_run`` table, which the UI may read though tasks
may not), so a run that failed before any check ran counts too, as not on time. Those are this
deployment's runs: they count only where the page shows this deployment's own environment.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, String, and_, case, func, literal, or_, select, tuple_, union, union_all

from airflow_dataops.store.alerts import OPEN_EVENTS
from airflow_dataops.store.schema import alerts, audit, check_results, freshness
from airflow_dataops.timeutil import as_utc

cr, fr, al, au = check_results.c, freshness.c, alerts.c, audit.c

STATUSES = ("passed", "warned", "failed", "error")
ON_TIME_DAYS = 30
UNION_CHUNK = 200

# (dag_ids, since) -> (dag_id, run_id, state) of the DAG runs Airflow knows that are due since then.
AirflowRuns = Callable[[Sequence[str], dt.datetime], Iterable[tuple[str, str, str | None]]]


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes: the store writes UTC, so read them as UTC."""
    return None if value is None else as_utc(value)


def json_value(text: str | None) -> Any:
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


def own_environment() -> str:
    """This deployment's environment (``[dataops] environment``): the one its Airflow runs belong to."""
    from airflow_dataops import settings

    return settings.get("environment")


def shown_environments(conn: Connection, dag_ids: Sequence[str], own: str | None = None) -> dict[str, str]:
    """The environment each pipeline is shown in: this deployment's own (``own``, default
    ``[dataops] environment``) when the store has a check result, freshness observation or alert of
    it for the pipeline; else the environment of its newest one; else (nothing stored) its own.

    Two statements at most (the second only for pipelines the own environment never ran)."""
    own = own or own_environment()
    shown = dict.fromkeys(dag_ids, own)
    if not dag_ids:
        return shown
    sources = ((cr.dag_id, cr.environment, cr.checked_at), (fr.dag_id, fr.environment, fr.observed_at),
               (al.dag_id, al.environment, al.created_at))
    present = set()
    for start in range(0, len(dag_ids), UNION_CHUNK):
        # One probe per pipeline and table, each stopping at the first row: (dag_id, environment) leads every index.
        present.update(conn.execute(union_all(*(
            select(literal(d, String)).where(or_(*(select(literal(1)).where(dag == d, env == own).exists()
                                                   for dag, env, _at in sources)))
            for d in dag_ids[start : start + UNION_CHUNK]
        ))).scalars())
    missing = [d for d in dag_ids if d not in present]
    newest: dict[str, tuple] = {}
    for start in range(0, len(missing), UNION_CHUNK):
        chunk = missing[start : start + UNION_CHUNK]
        rows = conn.execute(union_all(*(
            select(dag.label("dag_id"), env.label("environment"), func.max(at).label("at"))
            .where(dag.in_(chunk)).group_by(dag, env) for dag, env, at in sources
        ))).all()
        for row in rows:
            if row.dag_id not in newest or utc(row.at) > newest[row.dag_id][0]:
                newest[row.dag_id] = (utc(row.at), row.environment)
    shown.update({dag_id: environment for dag_id, (_at, environment) in newest.items()})
    return shown


def shown_environment(conn: Connection, dag_id: str) -> str:
    """``shown_environments`` of one pipeline."""
    return shown_environments(conn, [dag_id])[dag_id]


def environments(conn: Connection, dag_id: str) -> list[str]:
    """Every environment the store has anything of for the pipeline (sorted)."""
    found = conn.execute(union(*(
        select(table.c.environment).where(table.c.dag_id == dag_id).distinct()
        for table in (check_results, freshness, alerts, audit)
    ))).scalars()
    return sorted(set(found))


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
    airflow_runs: AirflowRuns | None = None,
) -> dict[str, Any]:
    """One page of pipeline summaries, ordered by DAG id, with the total for pagination."""
    ids = pipeline_dag_ids(conn, readable)
    if search:
        needle = search.lower()
        ids = [d for d in ids if needle in d.lower()]
    page = ids[offset : offset + limit]
    return {"total": len(ids), "limit": limit, "offset": offset, "items": summaries(conn, page, now=now, airflow_runs=airflow_runs)}


def summaries(
    conn: Connection,
    dag_ids: Sequence[str],
    *,
    now: dt.datetime | None = None,
    airflow_runs: AirflowRuns | None = None,
    environment: str | None = None,
) -> list[dict[str, Any]]:
    """Summaries of the given pipelines in about ten statements (per 200 pipelines), whatever their
    number, each in its ``shown_environments`` environment (or in ``environment``).

    ``airflow_runs``: Airflow's own DAG runs, for the on-time rate (see the module docstring)."""
    if not dag_ids:
        return []
    now = now or dt.datetime.now(dt.timezone.utc)
    shown = dict.fromkeys(dag_ids, environment) if environment else shown_environments(conn, dag_ids)
    items = {d: _empty_summary(d, shown[d]) for d in dag_ids}

    # One max() per pipeline, glued with UNION ALL: each is a single backward index probe on
    # (dag_id, environment, checked_at), where a GROUP BY would read every result of every pipeline
    # on the page. Chunked: SQLite allows at most 500 terms in a compound SELECT.
    latest = []
    for start in range(0, len(dag_ids), UNION_CHUNK):
        chunk = dag_ids[start : start + UNION_CHUNK]
        latest_at = union_all(*(
            select(literal(d, String).label("dag_id"), literal(shown[d], String).label("environment"),
                   func.max(cr.checked_at).label("at")).where(cr.dag_id == d, cr.environment == shown[d])
            for d in chunk
        )).subquery()
        latest += conn.execute(
            select(cr.dag_id, cr.run_id, cr.pipeline, cr.checked_at).join(latest_at, and_(
                cr.dag_id == latest_at.c.dag_id, cr.environment == latest_at.c.environment, cr.checked_at == latest_at.c.at
            ))
        ).all()
    for row in latest:
        item = items[row.dag_id]
        item.update(pipeline=row.pipeline, last_run_id=row.run_id)
        item["last_checked_at"] = utc(row.checked_at)

    runs = [(d, shown[d], i["last_run_id"]) for d, i in items.items() if i["last_run_id"]]
    if runs:
        counts = conn.execute(
            select(cr.dag_id, cr.status, func.count().label("n"))
            .where(tuple_(cr.dag_id, cr.environment, cr.run_id).in_(runs))
            .group_by(cr.dag_id, cr.status)
        ).all()
        for row in counts:
            if row.status in STATUSES:
                items[row.dag_id]["counts"][row.status] = row.n

    for row in latest_freshness(conn, dag_ids, shown):
        item = items[row["dag_id"]]
        lag = row["lag_seconds"]
        if row["newest"] is not None:
            lag = (now - row["newest"]).total_seconds()
        row["current_lag_seconds"] = lag
        worst = item["freshness"]
        if worst is None or _lag_ratio(row) > _lag_ratio(worst):
            item["freshness"] = row
        if item["last_run_id"] is None and (item["last_checked_at"] is None or row["observed_at"] > item["last_checked_at"]):
            # Only sensors or freshness rows so far: their run is the last one the store knows.
            item["last_checked_at"], item["last_seen_run_id"] = row["observed_at"], row["run_id"]

    for row in _open_alert_counts(conn, shown):
        items[row.dag_id]["open_alerts"] = row.open
        items[row.dag_id]["open_escalations"] = row.escalated or 0

    for dag_id, (met, total) in _on_time(conn, shown, now, airflow_runs).items():
        items[dag_id]["on_time_runs"] = met
        items[dag_id]["runs_30d"] = total
        items[dag_id]["on_time_rate"] = round(met / total, 4) if total else None

    for item in items.values():
        item["health"] = _health(item)
    return [items[d] for d in dag_ids]


def _empty_summary(dag_id: str, environment: str) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "pipeline": dag_id,
        "environment": environment,
        "last_run_id": None,  # the newest run with check results
        "last_seen_run_id": None,  # without check results: the run of the newest freshness observation
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


def latest_freshness(
    conn: Connection, dag_ids: Sequence[str], shown: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The newest freshness observation of every (pipeline, table, column), each pipeline in its
    ``shown`` environment (default: ``shown_environments``).

    Two index reads, not a window over the whole history: the newest time per (dag, environment,
    table, column) from ``ix_dataops_freshness_latest`` alone (index-only), then the rows at those
    times through ``(dag_id, environment, observed_at)``; ties and NULL tables are settled here, by
    (time, id)."""
    if not dag_ids:
        return []
    shown = shown or shown_environments(conn, dag_ids)
    newest = conn.execute(
        select(fr.dag_id, fr.environment, fr.table_name, fr.column_name, func.max(fr.observed_at).label("at"))
        .where(tuple_(fr.dag_id, fr.environment).in_([(d, shown[d]) for d in dag_ids]))
        .group_by(fr.dag_id, fr.environment, fr.table_name, fr.column_name)
    ).all()
    wanted = {(r.dag_id, r.table_name, r.column_name): utc(r.at) for r in newest}
    moments = sorted({(r.dag_id, r.environment, r.at) for r in newest})
    best: dict[tuple, Any] = {}
    for start in range(0, len(moments), 500):
        chunk = moments[start : start + 500]
        for row in conn.execute(select(freshness).where(tuple_(fr.dag_id, fr.environment, fr.observed_at).in_(chunk))):
            key = (row.dag_id, row.table_name, row.column_name)
            if wanted.get(key) != utc(row.observed_at):
                continue
            if key not in best or row.id > best[key].id:
                best[key] = row
    return [freshness_row(best[k]) for k in sorted(best, key=lambda k: tuple("" if v is None else v for v in k))]


def freshness_row(row) -> dict[str, Any]:
    return {
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "environment": row.environment,
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


def open_condition():
    """A first-tier alert nobody acknowledged and nothing resolved (as ``store.alerts`` defines it)."""
    return and_(al.acknowledged_at.is_(None), al.resolved_at.is_(None), al.event.in_(OPEN_EVENTS), al.tier == 0)


def _open_alert_counts(conn: Connection, shown: dict[str, str]):
    """Open alerts per pipeline in its shown environment: one per (run, event, subject) however many
    channels and tiers it went to; escalated when a tier above 0 went out for it."""
    is_open = case((open_condition(), 1), else_=0)
    per_alert = (
        select(al.dag_id, func.max(al.tier).label("tier"))
        .where(tuple_(al.dag_id, al.environment).in_(list(shown.items())), al.event.in_(OPEN_EVENTS))
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


def _on_time(
    conn: Connection, shown: dict[str, str], now: dt.datetime, airflow_runs: AirflowRuns | None = None
) -> dict[str, tuple[int, int]]:
    """Per pipeline (runs on time, runs) over 30 days, in its shown environment.

    A run is on time when it succeeded, has no ``sla_miss`` alert (alerting records one for every
    SLA miss, channels or not) and no ``fail`` check failed or errored. Runs come from Airflow
    (``airflow_runs``: finished runs count; an unfinished one only once it is already late or
    failing; only for pipelines shown in this deployment's own environment, the one Airflow's runs
    belong to) and from the store (runs Airflow no longer knows, e.g. after ``airflow db clean``)."""
    since = now - dt.timedelta(days=ON_TIME_DAYS)
    pairs = list(shown.items())
    bad_check = case((and_(cr.action == "fail", cr.status.in_(("failed", "error"))), 1), else_=0)
    runs: dict[tuple[str, str], bool] = {}  # (dag_id, run_id) of the shown environment -> not on time
    for row in conn.execute(
        select(cr.dag_id, cr.run_id, func.max(bad_check).label("bad"))
        .where(tuple_(cr.dag_id, cr.environment).in_(pairs), cr.checked_at >= since)
        .group_by(cr.dag_id, cr.run_id)
    ):
        runs[(row.dag_id, row.run_id)] = bool(row.bad)
    for row in conn.execute(
        select(al.dag_id, al.run_id)
        .where(tuple_(al.dag_id, al.environment).in_(pairs), al.event == "sla_miss", al.created_at >= since)
        .group_by(al.dag_id, al.run_id)
    ):
        runs[(row.dag_id, row.run_id)] = True
    own = own_environment()
    local = [dag_id for dag_id, environment in shown.items() if environment == own]
    if airflow_runs is not None and local:
        for dag_id, run_id, state in airflow_runs(local, since):
            key = (dag_id, run_id)
            if state == "failed":
                runs[key] = True
            elif state == "success":
                runs.setdefault(key, False)
            elif not runs.get(key):
                runs.pop(key, None)  # queued or running, and nothing wrong yet: not decided
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (dag_id, _run), bad in runs.items():
        tally[dag_id][1] += 1
        tally[dag_id][0] += 0 if bad else 1
    return {d: (met, total) for d, (met, total) in tally.items()}
