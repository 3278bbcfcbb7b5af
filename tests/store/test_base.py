"""Schema creation and versioning of the results store."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from airflow_dataops.store import base
from airflow_dataops.store.schema import SCHEMA_VERSION, schema_version
from tests.store.conftest import make_engine


def _versions(engine) -> list[int]:
    with engine.connect() as conn:
        return conn.execute(sa.select(schema_version.c.version).order_by(schema_version.c.id)).scalars().all()


def test_ensure_schema_creates_the_tables_once_and_records_the_version(store_url):
    engine = make_engine(store_url)
    base.ensure_schema(engine)
    base._READY.discard(str(engine.url))  # a second process would start without the cache
    base.ensure_schema(engine)

    assert _versions(engine) == [SCHEMA_VERSION]
    assert {"dataops_check_results", "dataops_freshness", "dataops_alerts", "dataops_audit"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_a_store_written_by_a_newer_airflow_dataops_is_refused_with_the_fix(store_url):
    engine = make_engine(store_url)
    base.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION + 1, upgraded_at=dt.datetime.now(dt.timezone.utc)))
    base._READY.discard(str(engine.url))

    with pytest.raises(RuntimeError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than .* upgrade airflow-dataops"):
        base.ensure_schema(engine)
    engine.dispose()


def _schema_2_metadata(*, with_claimed_at: bool = True) -> sa.MetaData:
    """The tables as schema 2 defined them: check results, freshness observations and alerts keyed
    without the environment, no environment on freshness and audit rows, indexes led by the
    pipeline name or by dag_id alone. ``with_claimed_at=False``: schema 1."""
    from airflow_dataops.store.schema import metadata

    old = sa.MetaData()

    def table(name: str, *key: str, drop: tuple[str, ...] = ()) -> sa.Table:
        columns = [c._copy() for c in metadata.tables[name].columns if c.name not in drop]
        unique = [sa.UniqueConstraint(*key[1:], name=key[0])] if key else []
        return sa.Table(name, old, *columns, *unique)

    table("dataops_schema_version")
    results = table("dataops_check_results", "uq_dataops_result", "dag_id", "run_id", "task_id", "map_index", "check_name")
    fresh = table("dataops_freshness", "uq_dataops_freshness", "dag_id", "run_id", "task_id", "table_name", "column_name",
                  drop=("environment",))
    alerts = table("dataops_alerts", "uq_dataops_alert", "dag_id", "run_id", "event", "subject", "tier", "channel",
                   drop=() if with_claimed_at else ("claimed_at",))
    audit = table("dataops_audit", drop=("environment",))
    sa.Index("ix_dataops_results_pipeline_check_time", results.c.pipeline, results.c.check_name, results.c.checked_at)
    sa.Index("ix_dataops_results_dag_time", results.c.dag_id, results.c.checked_at, results.c.run_id, results.c.action,
             results.c.status)
    sa.Index("ix_dataops_results_time", results.c.checked_at)
    sa.Index("ix_dataops_freshness_pipeline_time", fresh.c.pipeline, fresh.c.observed_at)
    sa.Index("ix_dataops_alerts_pipeline_time", alerts.c.pipeline, alerts.c.created_at)
    sa.Index("ix_dataops_alerts_open", alerts.c.dag_id, alerts.c.acknowledged_at, alerts.c.resolved_at)
    sa.Index("ix_dataops_audit_pipeline_time", audit.c.pipeline, audit.c.at)
    return old


def _old_store(store_url: str, version: int, rows: dict[str, list[dict]]):
    engine = make_engine(store_url)
    old = _schema_2_metadata(with_claimed_at=version >= 2)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(schema_version).values(version=version, upgraded_at=NOW))
        for name, table_rows in rows.items():
            for row in table_rows:
                conn.execute(sa.insert(old.tables[name]).values(**row))
    return engine


NOW = dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.timezone.utc)
BASE = {"pipeline": "orders", "dag_id": "orders"}


def _result(run_id: str, environment: str, **extra) -> dict:
    return {**BASE, "run_id": run_id, "task_id": "quality_checks", "map_index": -1, "try_number": 1,
            "environment": environment, "check_name": "row_count", "check_type": "row_count", "action": "fail",
            "status": "passed", "passed": True, "checked_at": NOW, "recorded_at": NOW, **extra}


def _fresh(run_id: str, **extra) -> dict:
    return {**BASE, "run_id": run_id, "task_id": "wait_for_orders", "source": "sensor", "table_name": "orders",
            "column_name": "loaded_at", "newest": NOW, "observed_at": NOW, "lag_seconds": 0.0, "fresh": True, **extra}


def _alert(run_id: str, environment: str, **extra) -> dict:
    return {**BASE, "run_id": run_id, "environment": environment, "event": "sla_miss", "subject": "sla", "tier": 0,
            "channel": "email:team@example.com", "severity": "error", "status": "sent", "message": "late",
            "created_at": NOW, **extra}


def _audit(run_id: str | None) -> dict:
    return {**BASE, "run_id": run_id, "kind": "alert", "event": "sla_miss", "outcome": "sent", "at": NOW}


def test_a_schema_1_store_is_upgraded_in_place_and_keeps_its_rows(store_url):
    """Schema 1 had no ``dataops_alerts.claimed_at``: the upgrade adds it and loses nothing. A store
    that only ever had one environment gets it on the rows schema 3 gave an environment column."""
    from airflow_dataops.store import alerts as store_alerts

    engine = _old_store(store_url, 1, {
        "dataops_check_results": [_result("r1", "production")],
        "dataops_freshness": [_fresh("r1"), _fresh("sensor_only_run")],
        "dataops_alerts": [_alert("r1", "production", status="claimed")],
        "dataops_audit": [_audit("r1"), _audit(None)],
    })

    base.ensure_schema(engine)

    assert _versions(engine) == [1, SCHEMA_VERSION]
    assert "claimed_at" in {c["name"] for c in sa.inspect(engine).get_columns("dataops_alerts")}
    [row] = store_alerts.alert_rows(engine, "orders")
    assert row["status"] == "claimed" and row["claimed_at"] is None and row["message"] == "late"
    with engine.connect() as conn:
        assert set(conn.execute(sa.text("SELECT environment FROM dataops_freshness")).scalars()) == {"production"}
        assert set(conn.execute(sa.text("SELECT environment FROM dataops_audit")).scalars()) == {"production"}
    engine.dispose()


def _index_columns(engine) -> dict[str, list[str]]:
    inspector = sa.inspect(engine)
    return {ix["name"]: ix["column_names"] for t in inspector.get_table_names() for ix in inspector.get_indexes(t)
            if not ix.get("duplicates_constraint")}  # PostgreSQL lists a unique key's own index too


def _unique_keys(engine) -> dict[str, list[str]]:
    inspector = sa.inspect(engine)
    return {uq["name"]: uq["column_names"] for t in inspector.get_table_names() for uq in inspector.get_unique_constraints(t)}


def test_a_schema_2_store_is_rekeyed_by_environment_and_reindexed_keeping_its_rows(store_url):
    """Schema 3 keys check results, freshness observations and alerts by environment too (staging
    and production sharing a store never overwrite or deduplicate each other), records the
    environment of freshness and audit rows (taken from the same run's check results or alerts;
    ``unknown`` when nothing tells), and leads its indexes with (dag_id, environment). The upgrade
    keeps every row and id, and leaves exactly the keys and indexes a new store gets."""
    from airflow_dataops.engine.result import CheckResult
    from airflow_dataops.store import alerts as store_alerts
    from airflow_dataops.store.results import ResultsStore, RunRef
    from airflow_dataops.store.schema import metadata

    engine = _old_store(store_url, 2, {
        "dataops_check_results": [_result("r1", "production", id=7), _result("r2", "staging", id=8)],
        "dataops_freshness": [_fresh("r1", id=103), _fresh("r2"), _fresh("r9")],
        "dataops_alerts": [_alert("r1", "production", id=5), _alert("r2", "staging")],
        "dataops_audit": [_audit("r1"), _audit("r2"), _audit(None)],
    })

    base.ensure_schema(engine)

    assert _versions(engine) == [2, SCHEMA_VERSION]
    expected_indexes = {ix.name: [c.name for c in ix.columns] for t in metadata.tables.values() for ix in t.indexes}
    assert _index_columns(engine) == expected_indexes, "exactly schema 3's indexes, with schema 3's columns"
    keys = _unique_keys(engine)
    for table, key in (("dataops_check_results", "uq_dataops_result"), ("dataops_freshness", "uq_dataops_freshness"),
                       ("dataops_alerts", "uq_dataops_alert")):
        assert keys[key] == [c.name for c in next(c for c in metadata.tables[table].constraints if c.name == key).columns]
        assert "environment" in keys[key]
    with engine.connect() as conn:
        fresh = dict(conn.execute(sa.text("SELECT run_id, environment FROM dataops_freshness")).all())
        audit = {r: e for r, e in conn.execute(sa.text("SELECT run_id, environment FROM dataops_audit")).all()}
        kept_id = conn.execute(sa.text("SELECT id FROM dataops_freshness WHERE run_id = 'r1'")).scalar()
    assert fresh == {"r1": "production", "r2": "staging", "r9": "unknown"} and kept_id == 103
    assert audit == {"r1": "production", "r2": "staging", None: "unknown"}

    store = ResultsStore(engine, "upgraded")
    result = CheckResult(name="row_count", check_type="row_count", action="fail", passed=True, observed=5,
                         expected={"min": 1}, checked_at=NOW)
    store.record_results(RunRef("orders", "orders", "r1", "quality_checks", "staging"), [result])
    rows = store.results_for_run("orders", "r1")
    assert sorted((r["environment"], r["id"] == 7) for r in rows) == [("production", True), ("staging", False)]
    store.record_freshness(RunRef("orders", "orders", "r1", "wait_for_orders", "staging"), source="sensor",
                           table="orders", column="loaded_at", newest=NOW, observed_at=NOW, max_age_s=None, fresh=True)
    assert store.latest_freshness("orders", "production")["id"] == 103, "staging's observation did not replace it"
    staging_miss = {**_alert("r1", "staging"), "summary": "late"}
    assert len(store_alerts.claim_many(engine, [staging_miss], "email:team@example.com")) == 1, \
        "production's alert of the same run id does not make staging's a duplicate"
    engine.dispose()
