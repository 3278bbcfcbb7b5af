"""Tables of the results store: our own database, never Airflow's metadata database.

Check results, freshness observations, alerts (one row per (run, event, subject, tier, channel),
claimed before sending) and the audit trail of everything alerting did. ``SCHEMA_VERSION`` is
bumped with every change, and ``store.base.ensure_schema`` upgrades older stores.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

# 2: dataops_alerts.claimed_at (stale claims are taken over)
# 3: environments sharing a store never collide (scheduled run ids repeat across environments):
#    check results, freshness observations and alerts keyed by environment too; freshness and audit
#    rows record it; indexes led by (dag_id, environment), what every read filters on
SCHEMA_VERSION = 3

#: The environment of rows written before schema 3 whose environment could not be told.
UNKNOWN_ENVIRONMENT = "unknown"


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (UTC).

    SQLite keeps no zone: an aware non-UTC value would be stored as its local wall time, and reads
    come back naive. So binds are converted to UTC (naive values are taken as UTC) and naive reads
    get UTC attached. The DDL is the plain ``DateTime(timezone=True)``, so this is no schema change.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


metadata = MetaData()

schema_version = Table(
    "dataops_schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("upgraded_at", UTCDateTime(), nullable=False),
)

check_results = Table(
    "dataops_check_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(250), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("task_id", String(250), nullable=False),
    Column("map_index", Integer, nullable=False, default=-1),
    Column("try_number", Integer, nullable=False, default=1),
    Column("environment", String(100), nullable=False),
    Column("table_name", String(400)),
    Column("check_name", String(250), nullable=False),
    Column("check_type", String(50), nullable=False),
    Column("action", String(10), nullable=False),
    Column("status", String(10), nullable=False),  # passed | warned | failed | error
    Column("passed", Boolean),
    Column("observed", Text),  # JSON
    Column("expected", Text),  # JSON
    Column("message", Text),
    Column("sql", Text),
    Column("engine", String(30)),
    Column("duration_ms", Float),
    Column("checked_at", UTCDateTime(), nullable=False),  # the run's single "now"
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("error", Text),
    Column("failing_rows", Text),  # JSON, only when [dataops] failing_rows_sample > 0
    # A run id names a run only within one deployment: environments sharing a store never overwrite.
    UniqueConstraint("dag_id", "run_id", "task_id", "map_index", "environment", "check_name", name="uq_dataops_result"),
    # volume_anomaly's history of one check in one environment.
    Index("ix_dataops_results_history", "pipeline", "environment", "check_name", "checked_at"),
    # The UI's history of one check; alerting's "status in the previous run".
    Index("ix_dataops_results_dag_check_time", "dag_id", "environment", "check_name", "checked_at"),
    # Covers the UI's 30-day on-time query on its own; its leading columns serve every (dag_id,
    # environment, time) query.
    Index("ix_dataops_results_dag_time", "dag_id", "environment", "checked_at", "run_id", "action", "status"),
    Index("ix_dataops_results_time", "checked_at"),
)

freshness = Table(
    "dataops_freshness",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(250), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("task_id", String(250), nullable=False),
    Column("environment", String(100), nullable=False, server_default=UNKNOWN_ENVIRONMENT),
    Column("source", String(20), nullable=False),  # check | sensor
    Column("table_name", String(400)),
    Column("column_name", String(250)),
    Column("newest", UTCDateTime()),  # max(timestamp column); NULL on an empty table
    Column("observed_at", UTCDateTime(), nullable=False),
    Column("lag_seconds", Float),
    Column("max_age_seconds", Float),
    Column("fresh", Boolean),
    UniqueConstraint("dag_id", "run_id", "task_id", "environment", "table_name", "column_name", name="uq_dataops_freshness"),
    Index("ix_dataops_freshness_dag_time", "dag_id", "environment", "observed_at"),
    # The UI's newest observation per (pipeline, environment, table, column), read from the index alone.
    Index("ix_dataops_freshness_latest", "dag_id", "environment", "table_name", "column_name", "observed_at"),
    Index("ix_dataops_freshness_time", "observed_at"),
)

alerts = Table(
    "dataops_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(250), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("environment", String(100), nullable=False),
    # check_failed | check_warned | task_failed | freshness_timeout | sla_miss | recovered | escalation
    Column("event", String(40), nullable=False),
    Column("subject", String(250), nullable=False),  # check name, task id, source, or "sla"
    Column("tier", Integer, nullable=False, default=0),  # 0 = first alert, 1.. = escalation tiers
    Column("channel", String(300), nullable=False),  # "slack:#orders-alerts", "email", "connection:oncall"
    Column("severity", String(10), nullable=False),  # info | warning | error | critical
    Column("status", String(12), nullable=False),  # claimed | sent | failed | suppressed
    Column("message", Text),
    Column("error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("claimed_at", UTCDateTime()),  # when the current claim was taken (NULL: rows of schema 1)
    Column("sent_at", UTCDateTime()),
    Column("acknowledged_at", UTCDateTime()),
    Column("acknowledged_by", String(250)),
    Column("resolved_at", UTCDateTime()),
    Column("resolution", String(40)),  # same_run_succeeded | cleared | later_run_succeeded | recovered
    UniqueConstraint("dag_id", "run_id", "environment", "event", "subject", "tier", "channel", name="uq_dataops_alert"),
    Index("ix_dataops_alerts_dag_time", "dag_id", "environment", "created_at"),
    Index("ix_dataops_alerts_open", "dag_id", "environment", "acknowledged_at", "resolved_at"),
)

audit = Table(
    "dataops_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(250), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250)),
    Column("environment", String(100), nullable=False, server_default=UNKNOWN_ENVIRONMENT),
    Column("kind", String(20), nullable=False),  # alert | suppressed | ack | escalation | recovered | error
    Column("event", String(40)),
    Column("channel", String(300)),
    Column("outcome", String(20)),  # sent | failed | suppressed | recorded
    Column("actor", String(250)),
    Column("detail", Text),
    Column("error", Text),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_dataops_audit_dag_time", "dag_id", "environment", "at"),
    Index("ix_dataops_audit_time", "at"),
)


def key_columns(table: Table, name: str) -> tuple[str, ...]:
    """The columns of ``table``'s unique constraint ``name``: the natural key its writers upsert on."""
    return tuple(next(c for c in table.constraints if c.name == name).columns.keys())
