"""Where the results store lives, and making sure its tables exist at the current version.

``[dataops] results_conn_id`` (default ``dataops_results``) names an Airflow connection; when it does
not exist the embedded default is a SQLite file in ``$AIRFLOW_HOME``, and we say so plainly: with
several machines each would write its own file, so production points the connection at PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, select, text, union, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.schema import CreateColumn

from airflow_dataops import settings
from airflow_dataops.store.schema import (
    SCHEMA_VERSION,
    UNKNOWN_ENVIRONMENT,
    audit,
    check_results,
    freshness,
    key_columns,
    metadata,
    schema_version,
)
from airflow_dataops.store.schema import alerts as alerts_table

log = logging.getLogger(__name__)

EMBEDDED_FILENAME = "dataops_results.db"
_READY: set[str] = set()
_LOCK = threading.Lock()


def embedded_path() -> Path:
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / EMBEDDED_FILENAME


# Execution option naming how a SQLite transaction begins. Writers take the write lock up front
# (IMMEDIATE): a deferred transaction that later writes gets SQLITE_BUSY at once in WAL mode, without
# waiting out the busy timeout. Pure readers may ask for DEFERRED so they never queue behind writers.
SQLITE_BEGIN_OPTION = "dataops_sqlite_begin"


def _use_wal(cursor, busy_timeout_s: float) -> None:
    """Switch the file to WAL once (the mode persists). The switch needs an exclusive lock, and SQLite
    answers "database is locked" at once, without its busy handler, while another process holds one:
    several processes opening a fresh store together must retry, not fail."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.05)


def sqlite_engine(path: Path | str, *, busy_timeout_s: float = 30.0) -> Engine:
    """SQLite tuned for several writers (threads or processes): WAL, a busy timeout, and
    ``BEGIN IMMEDIATE`` transactions (``reading()`` connections begin DEFERRED).

    pysqlite's own transaction handling is switched off (``isolation_level = None``) and SQLAlchemy's
    ``begin`` event emits the BEGIN: the recipe of SQLAlchemy 2.1's SQLite docs (verified by
    tests/store: concurrent processes lose no write)."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        _use_wal(cursor, busy_timeout_s)
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fsync per checkpoint, not per commit
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")

    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only: on SQLite it begins DEFERRED, so readers never wait for writers."""
    with engine.connect() as conn:
        conn.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
        yield conn


def resolve_engine() -> tuple[Engine, str]:
    """The store's engine and a plain description of where it is (for logs and the UI)."""
    from airflow_dataops.hooks.sql import ConnectionNotFound, create_engine_for

    conn_id = settings.get("results_conn_id")
    try:
        engine = create_engine_for(conn_id)
    except ConnectionNotFound:
        path = embedded_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        where = (
            f"embedded SQLite file {path}, because connection {conn_id!r} does not exist. This is "
            "for a single machine only: with several machines each would write its own file, so "
            f"there create connection {conn_id!r} pointing at PostgreSQL."
        )
        log.warning("dataops results store: %s", where)
        return sqlite_engine(path), where
    if engine.dialect.name == "sqlite":
        engine.dispose()
        engine = sqlite_engine(engine.url.database)
    return engine, f"connection {conn_id!r} ({engine.dialect.name})"


def ensure_schema(engine: Engine) -> None:
    """Create missing tables and bring the schema to ``SCHEMA_VERSION`` (idempotent, safe to race).

    Everything happens in one transaction that first takes a lock: a transaction-scoped advisory
    lock on PostgreSQL, the database write lock (``BEGIN IMMEDIATE``) on SQLite, ``GET_LOCK`` on
    MySQL. Elsewhere a losing racer's "already exists" error is retried, and then finds the tables.
    """
    key = str(engine.url)
    if key in _READY:
        return
    with _LOCK:
        if key in _READY:
            return
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                _create_and_upgrade(engine)
                break
            except DBAPIError as exc:
                if attempt + 1 == _CREATE_ATTEMPTS or not _lost_a_race(exc):
                    raise
                log.info("dataops results store: another process created the schema first; checking again")
                time.sleep(0.2 * (attempt + 1))
        _READY.add(key)


_CREATE_ATTEMPTS = 5
# pg_advisory_xact_lock key: a fixed number meaning "dataops results store schema".
_PG_LOCK_KEY = 0x64617461_6F7073  # "dataops"


def _lost_a_race(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "already exists" in text or "duplicate" in text or isinstance(exc, IntegrityError)


def _create_and_upgrade(engine: Engine) -> None:
    with engine.begin() as conn:
        dialect = engine.dialect.name
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        elif dialect in {"mysql", "mariadb"}:
            conn.execute(text("SELECT GET_LOCK('dataops_results_schema', 60)"))
        try:
            metadata.create_all(conn, checkfirst=True)
            current = conn.execute(select(func.max(schema_version.c.version))).scalar()
            if current is None or current < SCHEMA_VERSION:
                _upgrade(conn, current or 0)
                conn.execute(
                    insert(schema_version).values(
                        version=SCHEMA_VERSION, upgraded_at=dt.datetime.now(dt.timezone.utc)
                    )
                )
            elif current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the results store at {engine.url!r} is at schema version {current}, newer than "
                    f"this airflow-dataops understands ({SCHEMA_VERSION}): upgrade airflow-dataops "
                    "on every machine that writes to it"
                )
        finally:
            if dialect in {"mysql", "mariadb"}:
                conn.execute(text("SELECT RELEASE_LOCK('dataops_results_schema')"))


def _upgrade(conn: Connection, from_version: int) -> None:
    """Per-version upgrade steps go here, each ``if from_version < N:`` (version 1 is the first:
    ``create_all`` made it). Runs inside the locked schema transaction."""
    if not from_version:
        return
    log.info("dataops results store: upgrading schema %s -> %s", from_version, SCHEMA_VERSION)
    if from_version < 2:
        _add_column(conn, alerts_table.c.claimed_at)
    if from_version < 3:
        for column in (freshness.c.environment, audit.c.environment):
            _add_column(conn, column)
        for table, key in _REKEYED.items():
            _rekey(conn, table, key)
        _fill_environment(conn, freshness, check_results)
        _fill_environment(conn, audit, alerts_table)
        _replace_indexes(conn)


# Schema 3: the unique keys that gained the environment.
_REKEYED = {check_results: "uq_dataops_result", freshness: "uq_dataops_freshness", alerts_table: "uq_dataops_alert"}

# Indexes of schema 2 that schema 3 dropped (led by the pipeline name) or redefined under the same
# name (led by (dag_id, environment) now).
_DROPPED_INDEXES = {
    "dataops_check_results": ("ix_dataops_results_pipeline_check_time", "ix_dataops_results_dag_time"),
    "dataops_freshness": ("ix_dataops_freshness_pipeline_time",),
    "dataops_alerts": ("ix_dataops_alerts_pipeline_time", "ix_dataops_alerts_open"),
    "dataops_audit": ("ix_dataops_audit_pipeline_time",),
}


def _rekey(conn: Connection, table, key: str) -> None:
    """Give ``table``'s unique constraint ``key`` the columns ``schema.metadata`` defines. SQLite
    cannot alter a constraint, so there the table is rebuilt (rows, ids and all); elsewhere the
    constraint is dropped and added again."""
    preparer = conn.dialect.identifier_preparer
    name = preparer.format_table(table)
    if conn.dialect.name != "sqlite":
        # Plain DDL text: SQLAlchemy's AddConstraint/DropConstraint would mark the shared constraint
        # object as "not inline", and every later CREATE TABLE of it would then lack the key.
        constraint = preparer.quote(key)
        drop = "DROP INDEX" if conn.dialect.name in {"mysql", "mariadb"} else "DROP CONSTRAINT"
        columns = ", ".join(preparer.quote(c) for c in key_columns(table, key))
        conn.execute(text(f"ALTER TABLE {name} {drop} {constraint}"))
        conn.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {constraint} UNIQUE ({columns})"))
        return
    old = preparer.quote(f"{table.name}_v2")
    for index in inspect(conn).get_indexes(table.name):  # index names are per database in SQLite
        conn.execute(text(f"DROP INDEX {preparer.quote(index['name'])}"))
    conn.execute(text(f"ALTER TABLE {name} RENAME TO {old}"))
    table.create(conn)
    columns = ", ".join(preparer.quote(c) for c in table.c.keys())
    conn.execute(text(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {old}"))
    conn.execute(text(f"DROP TABLE {old}"))


def _fill_environment(conn: Connection, table, source) -> None:
    """Rows that schema 3 gave an environment column (``UNKNOWN_ENVIRONMENT`` so far) take the
    environment of the same run's rows in ``source``; the rest, the store's only environment when it
    has just one (a store that was never shared), else they stay unknown."""
    unknown = table.c.environment == UNKNOWN_ENVIRONMENT
    known = (
        select(func.max(source.c.environment))
        .where(source.c.dag_id == table.c.dag_id, source.c.run_id == table.c.run_id,
               source.c.environment != UNKNOWN_ENVIRONMENT)
        .scalar_subquery()
    )
    conn.execute(update(table).where(unknown, known.is_not(None)).values(environment=known))
    environments = union(*(select(t.c.environment).where(t.c.environment != UNKNOWN_ENVIRONMENT).distinct()
                           for t in (check_results, alerts_table))).subquery()
    found = conn.execute(select(environments.c.environment).limit(2)).scalars().all()
    if len(found) == 1:
        conn.execute(update(table).where(unknown).values(environment=found[0]))


def _replace_indexes(conn: Connection) -> None:
    """Create the indexes of ``schema.metadata`` that an older store lacks; drop the replaced ones."""
    preparer = conn.dialect.identifier_preparer
    existing = {table: {ix["name"] for ix in inspect(conn).get_indexes(table)} for table in _DROPPED_INDEXES}
    for table_name, names in _DROPPED_INDEXES.items():
        table = metadata.tables[table_name]
        for name in names:
            if name in existing[table_name]:  # text DDL: an Index() object would join the shared table
                on = f" ON {preparer.format_table(table)}" if conn.dialect.name in {"mysql", "mariadb"} else ""
                conn.execute(text(f"DROP INDEX {preparer.quote(name)}{on}"))
                existing[table_name].discard(name)
        for index in table.indexes:
            if index.name not in existing[table_name]:
                index.create(conn, checkfirst=True)


def _add_column(conn: Connection, column) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for a column of ``schema.metadata`` (nullable, or with a server
    default for the existing rows), quoted, typed and defaulted for the connection's dialect."""
    spec = CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(column.table)} ADD COLUMN {spec}"))
