"""Seed the results store (and Airflow's DAG table) for the Data Quality page tests.

Rows go straight into the store tables with SQLAlchemy, as the operators and notifiers would
write them, so the page is tested against exactly what is stored.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Engine, insert

from airflow_dataops.store.base import ensure_schema
from airflow_dataops.store.schema import alerts, audit, check_results, freshness

DAY = dt.timedelta(days=1)


def result(dag_id: str, run_id: str, check_name: str, status: str, at: dt.datetime, **extra: Any) -> dict[str, Any]:
    row = {
        "pipeline": dag_id, "dag_id": dag_id, "run_id": run_id, "task_id": "quality_checks", "map_index": -1,
        "try_number": 1, "environment": "production", "table_name": "public.orders", "check_name": check_name,
        "check_type": check_name.split("__")[0], "action": "fail", "status": status, "passed": status == "passed",
        "observed": None, "expected": None, "message": "", "sql": None, "engine": "sql", "duration_ms": 12.5,
        "checked_at": at, "recorded_at": at, "error": None, "failing_rows": None,
    }
    row.update(extra)
    for key in ("observed", "expected", "failing_rows"):
        if not isinstance(row[key], str | None):
            row[key] = json.dumps(row[key])
    return row


def seed(engine: Engine, *, results=(), fresh=(), alert_rows=(), audit_rows=()) -> None:
    ensure_schema(engine)
    with engine.begin() as conn:
        for table, rows in ((check_results, results), (freshness, fresh), (alerts, alert_rows), (audit, audit_rows)):
            if rows:
                conn.execute(insert(table), list(rows))


def run_id(day: int, now: dt.datetime) -> str:
    return f"scheduled__{(now - day * DAY).strftime('%Y-%m-%dT%H:%M:%S')}+00:00"


def demo_store(engine: Engine, now: dt.datetime | None = None) -> dict[str, Any]:
    """A small, known world: one failing pipeline with alerts, one healthy, one warning, one secret.

    Returns the facts the tests assert on.
    """
    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    results, fresh, alert_rows, audit_rows = [], [], [], []

    # orders_daily: 10 daily runs; the newest fails its row count and warns on status values.
    for day in range(9, -1, -1):
        rid, at = run_id(day, now), now - day * DAY - dt.timedelta(minutes=5)
        latest = day == 0
        rows = 120 if latest else 1000 + 37 * (9 - day)
        results += [
            result("orders_daily", rid, "row_count", "failed" if latest else "passed", at,
                   observed=rows, expected={"min": 1000}, message="row count 120 < min 1000" if latest else ""),
            result("orders_daily", rid, "null_check__customer_id", "passed", at,
                   observed={"customer_id": 0}, expected={"max_nulls": 0}),
            result("orders_daily", rid, "accepted_values__status", "warned" if latest else "passed", at,
                   action="warn", observed={"unexpected": 3 if latest else 0}, expected={"values": ["new", "paid", "shipped"]},
                   failing_rows=[{"id": 17, "status": "lost"}, {"id": 23, "status": "??"}] if latest else None),
        ]
        newest = at - dt.timedelta(hours=2 if not latest else 30)
        fresh.append({
            "pipeline": "orders_daily", "dag_id": "orders_daily", "run_id": rid, "task_id": "freshness",
            "environment": "production", "source": "check", "table_name": "public.orders", "column_name": "updated_at", "newest": newest,
            "observed_at": at, "lag_seconds": (at - newest).total_seconds(), "max_age_seconds": 6 * 3600.0,
            "fresh": not latest,
        })
    latest_run, sla_run, old_run = run_id(0, now), run_id(4, now), run_id(7, now)
    alert_rows += [
        _alert("orders_daily", latest_run, "check_failed", "row_count", 0, "slack:#orders-alerts", now - dt.timedelta(minutes=4)),
        _alert("orders_daily", latest_run, "check_failed", "row_count", 0, "email", now - dt.timedelta(minutes=4)),
        _alert("orders_daily", latest_run, "check_failed", "row_count", 1, "connection:data-oncall", now - dt.timedelta(minutes=1),
               severity="critical"),
        _alert("orders_daily", sla_run, "sla_miss", "sla", 0, "slack:#orders-alerts", now - 4 * DAY,
               acknowledged_at=now - 4 * DAY + dt.timedelta(minutes=20), acknowledged_by="alice"),
        _alert("orders_daily", old_run, "check_failed", "row_count", 0, "slack:#orders-alerts", now - 7 * DAY,
               resolved_at=now - 6 * DAY, resolution="later_run_succeeded"),
    ]
    audit_rows += [
        _audit("orders_daily", latest_run, "alert", "check_failed", "slack:#orders-alerts", "sent", None, now - dt.timedelta(minutes=4)),
        _audit("orders_daily", latest_run, "escalation", "check_failed", "connection:data-oncall", "sent", None, now - dt.timedelta(minutes=1)),
        _audit("orders_daily", sla_run, "ack", "sla_miss", None, "recorded", "alice", now - 4 * DAY + dt.timedelta(minutes=20)),
    ]

    # customers_hourly: everything passes, data is fresh.
    for day in range(4, -1, -1):
        rid, at = run_id(day, now), now - day * DAY - dt.timedelta(minutes=30)
        results.append(result("customers_hourly", rid, "row_count", "passed", at, environment="staging",
                              table_name="public.customers", observed=5000 + day, expected={"min": 100}))
        fresh.append({
            "pipeline": "customers_hourly", "dag_id": "customers_hourly", "run_id": rid, "task_id": "freshness",
            "environment": "staging", "source": "sensor", "table_name": "public.customers", "column_name": "updated_at",
            "newest": at - dt.timedelta(minutes=10), "observed_at": at, "lag_seconds": 600.0,
            "max_age_seconds": 3600.0, "fresh": True,
        })
    # inventory_sync: one warning only.
    results.append(result("inventory_sync", run_id(0, now), "completeness__sku", "warned", now - dt.timedelta(hours=1),
                          action="warn", table_name="public.inventory", observed={"sku": 97.5}, expected={"min_pct": 99.5}))
    # secret_pipeline: stored, but its DAG is unknown to Airflow, so nobody may see it on the page.
    results.append(result("secret_pipeline", run_id(0, now), "row_count", "failed", now, observed=0, expected={"min": 1}))

    seed(engine, results=results, fresh=fresh, alert_rows=alert_rows, audit_rows=audit_rows)
    return {
        "now": now,
        "visible": ["customers_hourly", "inventory_sync", "orders_daily"],
        "hidden": ["secret_pipeline"],
        "latest_run": latest_run,
        "orders_on_time": (8, 10),  # the failing newest run and the SLA-miss run are not on time
    }


def _alert(dag_id, run, event, subject, tier, channel, at, **extra) -> dict[str, Any]:
    row = {
        "pipeline": dag_id, "dag_id": dag_id, "run_id": run, "environment": "production", "event": event,
        "subject": subject, "tier": tier, "channel": channel, "severity": "error", "status": "sent",
        "message": f"{event} in {dag_id}", "error": None, "created_at": at, "sent_at": at,
        "acknowledged_at": None, "acknowledged_by": None, "resolved_at": None, "resolution": None,
    }
    row.update(extra)
    return row


def _audit(dag_id, run, kind, event, channel, outcome, actor, at) -> dict[str, Any]:
    return {
        "pipeline": dag_id, "dag_id": dag_id, "run_id": run, "environment": "production", "kind": kind, "event": event, "channel": channel,
        "outcome": outcome, "actor": actor, "detail": None, "error": None, "at": at,
    }


def register_dags(dag_ids, bundle: str = "dags-folder", metadata_url: str | None = None) -> None:
    """Make Airflow's metadata DB know these DAGs (the auth manager lists only DAGs it knows).

    ``metadata_url``: another Airflow's metadata database (a real api-server's), else this process's."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    engine = create_engine(metadata_url) if metadata_url else None
    with (Session(engine) if engine else create_session()) as session:
        if session.scalar(select(DagBundleModel).where(DagBundleModel.name == bundle)) is None:
            session.add(DagBundleModel(name=bundle))
            session.flush()
        for dag_id in dag_ids:
            if session.get(DagModel, dag_id) is None:
                session.add(DagModel(dag_id=dag_id, bundle_name=bundle, fileloc=f"/dags/{dag_id}.py", is_stale=False))
        if engine:
            session.commit()
    if engine:
        engine.dispose()


def clear_dag_runs(dag_ids) -> None:
    """Forget this process's Airflow DAG runs of these DAGs: other tests of the session (an example
    pipeline's ``dag.test()``) run DAGs of the same ids, and the on-time rate counts Airflow's runs."""
    from sqlalchemy import delete

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id.in_(list(dag_ids))))


def add_dag_runs(runs) -> None:
    """DAG runs in this process's Airflow metadata DB: (dag_id, run_id, state, run_after)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType

    with create_session() as session:
        for dag_id, run, state, run_after in runs:
            session.add(DagRun(dag_id=dag_id, run_id=run, state=state, run_after=run_after,
                               run_type=DagRunType.MANUAL, queued_at=run_after))
