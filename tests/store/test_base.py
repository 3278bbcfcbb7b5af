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


def test_a_schema_1_store_is_upgraded_in_place_and_keeps_its_rows(store_url):
    """Schema 1 had no ``dataops_alerts.claimed_at``: the upgrade adds it and loses nothing."""
    from airflow_dataops.store import alerts as store_alerts

    engine = make_engine(store_url)
    base.ensure_schema(engine)
    alert = {"pipeline": "orders", "dag_id": "orders", "run_id": "r1", "environment": "production",
             "event": "sla_miss", "subject": "sla", "tier": 0, "severity": "error"}
    store_alerts.claim(engine, alert, "email:team@example.com", "late")
    with engine.begin() as conn:  # make it a schema-1 store
        conn.exec_driver_sql("ALTER TABLE dataops_alerts DROP COLUMN claimed_at")
        conn.execute(sa.delete(schema_version))
        conn.execute(sa.insert(schema_version).values(version=1, upgraded_at=dt.datetime.now(dt.timezone.utc)))
    base._READY.discard(str(engine.url))

    base.ensure_schema(engine)

    assert _versions(engine) == [1, SCHEMA_VERSION]
    assert "claimed_at" in {c["name"] for c in sa.inspect(engine).get_columns("dataops_alerts")}
    [row] = store_alerts.alert_rows(engine, "orders")
    assert row["status"] == "claimed" and row["claimed_at"] is None and row["message"] == "late"
    engine.dispose()


def _schema_2_metadata() -> sa.MetaData:
    """The tables as schema 2 defined them: results keyed without the environment, indexes led by
    the pipeline name."""
    from airflow_dataops.store.schema import metadata

    old = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(old)
    results = old.tables["dataops_check_results"]
    for constraint in [c for c in results.constraints if c.name == "uq_dataops_result"]:
        results.constraints.discard(constraint)
    results.append_constraint(sa.UniqueConstraint("dag_id", "run_id", "task_id", "map_index", "check_name",
                                                  name="uq_dataops_result"))
    for table in old.tables.values():
        for index in list(table.indexes):
            table.indexes.discard(index)
    sa.Index("ix_dataops_results_pipeline_check_time", results.c.pipeline, results.c.check_name, results.c.checked_at)
    sa.Index("ix_dataops_results_time", results.c.checked_at)
    for name, column in (("freshness", "observed_at"), ("alerts", "created_at"), ("audit", "at")):
        table = old.tables[f"dataops_{name}"]
        sa.Index(f"ix_dataops_{name}_pipeline_time", table.c.pipeline, table.c[column])
    return old


def test_a_schema_2_store_is_rekeyed_by_environment_and_reindexed_keeping_its_rows(store_url):
    """Schema 3 keys check results by environment too (staging and production sharing a store never
    overwrite each other) and leads its indexes with dag_id; the upgrade keeps every row."""
    from airflow_dataops.engine.result import CheckResult
    from airflow_dataops.store.results import ResultsStore, RunRef

    engine = make_engine(store_url)
    _schema_2_metadata().create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(sa.insert(schema_version).values(version=2, upgraded_at=now))
        conn.execute(sa.text(
            "INSERT INTO dataops_check_results (id, pipeline, dag_id, run_id, task_id, map_index, try_number, "
            "environment, check_name, check_type, action, status, passed, checked_at, recorded_at) VALUES "
            "(7, 'orders', 'orders', 'r1', 'quality_checks', -1, 1, 'production', 'row_count', 'row_count', "
            "'fail', 'passed', true, :now, :now)"), {"now": now})

    base.ensure_schema(engine)

    assert _versions(engine) == [2, SCHEMA_VERSION]
    inspector = sa.inspect(engine)
    indexes = {ix["name"] for t in inspector.get_table_names() for ix in inspector.get_indexes(t)}
    assert {"ix_dataops_results_history", "ix_dataops_results_dag_check_time", "ix_dataops_audit_dag_time",
            "ix_dataops_freshness_dag_time", "ix_dataops_alerts_dag_time"} <= indexes
    assert not any("pipeline_" in name for name in indexes), indexes
    store = ResultsStore(engine, "upgraded")
    result = CheckResult(name="row_count", check_type="row_count", action="fail", passed=True, observed=5, expected={"min": 1},
                         checked_at=now)
    store.record_results(RunRef("orders", "orders", "r1", "quality_checks", "staging"), [result])
    rows = store.results_for_run("orders", "r1")
    assert sorted((r["environment"], r["id"] == 7) for r in rows) == [("production", True), ("staging", False)]
    engine.dispose()
