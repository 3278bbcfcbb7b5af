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
