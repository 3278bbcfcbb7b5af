"""Connection -> SQLAlchemy engine, written once and reused by operator, sensor, trigger and store.

Any Airflow connection whose hook is a common-sql ``DbApiHook`` works (PostgreSQL, SQLite, MySQL,
Snowflake, ...). Engines are cached per process and connection id, so every trigger in one
triggerer shares one pool per connection instead of opening a connection each.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

_ENGINES: dict[tuple[int, str, str], Engine] = {}  # (pid, conn_id, settings fingerprint)
_LOOKUPS: dict[str, tuple[str, float]] = {}  # conn_id -> (fingerprint, looked up at)
_LOCK = threading.Lock()


class ConnectionNotFound(LookupError):
    """The Airflow connection a check, sensor or store needs does not exist."""


def register_sqlite_functions(engine: Engine) -> None:
    """Give SQLite the ``REGEXP`` operator the ``pattern`` check needs."""
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event

    from airflow_dataops.engine.sql_timeout import sqlite_regexp

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised through SQL
        dbapi_connection.create_function("regexp", 2, sqlite_regexp, deterministic=True)


def connection_exists(conn_id: str) -> bool:
    try:
        _get_connection(conn_id)
    except ConnectionNotFound:
        return False
    return True


def _get_connection(conn_id: str):
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:
        if type(exc).__name__ in {"AirflowNotFoundException", "ConnectionNotFound"} or "isn't defined" in str(exc):
            raise ConnectionNotFound(
                f"Airflow connection {conn_id!r} does not exist: create it (Admin > Connections, "
                f"`airflow connections add {conn_id} --conn-uri ...` or AIRFLOW_CONN_{conn_id.upper()})"
            ) from None
        raise


def create_engine_for(conn_id: str, *, connection=None, **engine_kwargs) -> Engine:
    """A new engine for the connection (callers that need their own pool)."""
    conn = connection if connection is not None else _get_connection(conn_id)
    hook = conn.get_hook()
    if not hasattr(hook, "get_sqlalchemy_engine"):
        raise TypeError(
            f"connection {conn_id!r} has type {conn.conn_type!r}, whose hook cannot give a SQLAlchemy "
            "engine: use a SQL connection (postgres, sqlite, mysql, snowflake, ...)"
        )
    engine = hook.get_sqlalchemy_engine(engine_kwargs={"pool_pre_ping": True, **engine_kwargs})
    register_sqlite_functions(engine)
    return engine


def _fingerprint(conn) -> str:
    """Identifies a connection's settings without keeping its secrets around in clear."""
    import hashlib

    parts = (conn.conn_type, conn.host, conn.port, conn.login, conn.password, conn.schema, conn.extra)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def get_engine(conn_id: str, *, lookup_ttl_s: float = 0.0) -> Engine:
    """The process-wide engine for ``conn_id``, shared by every caller in this process.

    The connection is looked up again (at most every ``lookup_ttl_s`` seconds: long-lived pollers
    such as triggers pass a TTL) so that a changed connection, a rotated password say, gets a new
    engine instead of the stale one."""
    import time

    now = time.monotonic()
    cached = _LOOKUPS.get(conn_id)
    connection = None
    if cached is not None and lookup_ttl_s > 0 and now - cached[1] < lookup_ttl_s:
        fingerprint = cached[0]
    else:
        connection = _get_connection(conn_id)
        fingerprint = _fingerprint(connection)
        _LOOKUPS[conn_id] = (fingerprint, now)
    key = (os.getpid(), conn_id, fingerprint)  # a forked child never reuses its parent's pooled connections
    engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            stale = [k for k in _ENGINES if k[0] == key[0] and k[1] == conn_id]
            for old in stale:
                _ENGINES.pop(old).dispose()
            engine = create_engine_for(conn_id, connection=connection)
            _ENGINES[key] = engine
    return engine


def forget_engine(conn_id: str) -> None:
    """Drop this process's engines of ``conn_id`` (and their pooled connections)."""
    with _LOCK:
        for key in [k for k in _ENGINES if k[1] == conn_id]:
            _ENGINES.pop(key).dispose()
        _LOOKUPS.pop(conn_id, None)


def dispose_engines() -> None:
    """Forget cached engines (tests; a connection that changed)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
        _LOOKUPS.clear()
