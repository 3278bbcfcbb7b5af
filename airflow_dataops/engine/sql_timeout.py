"""Statement timeouts per dialect, and telling a timeout (or an error no retry can fix) apart
from other query errors.

- PostgreSQL: ``SET LOCAL statement_timeout`` inside the statement's own transaction, so it is
  gone at the transaction's end. Never a session setting: behind PgBouncer in transaction pooling
  a session ``SET`` stays on a server connection other clients get next, and a ``DISCARD ALL`` or
  ``RESET ALL`` (PgBouncer's ``server_reset_query``, say) would silently remove it. The price is one
  more (cheap) statement per transaction.
- SQLite: a progress handler that interrupts the query once the deadline has passed.
- MySQL: the ``MAX_EXECUTION_TIME`` optimizer hint on each SELECT.
- Others: no timeout is applied (logged once per run); the database's own limits hold.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator

import sqlalchemy as sa

log = logging.getLogger(__name__)


def sqlite_regexp(pattern: str, value: object) -> bool | None:
    """SQLite's REGEXP operator (NULL stays NULL), registered on every SQLite connection we use."""
    if value is None:
        return None
    return re.search(pattern, str(value)) is not None


def prepare_connection(conn: sa.Connection) -> None:
    """Give SQLite the REGEXP function the ``pattern`` check compiles to (idempotent)."""
    if conn.dialect.name == "sqlite":
        conn.connection.dbapi_connection.create_function("regexp", 2, sqlite_regexp, deterministic=True)


def with_hint(stmt: sa.Select, dialect_name: str, timeout_s: int) -> sa.Select:
    if dialect_name in {"mysql", "mariadb"} and timeout_s > 0:
        return stmt.prefix_with(f"/*+ MAX_EXECUTION_TIME({int(timeout_s) * 1000}) */", dialect=dialect_name)
    return stmt


@contextlib.contextmanager
def statement_timeout(conn: sa.Connection, timeout_s: int) -> Iterator[None]:
    """Applies ``timeout_s`` to the statements run inside (call within a transaction: on PostgreSQL
    the setting ends with it). 0 applies none: the database's own limits hold."""
    name = conn.dialect.name
    if timeout_s <= 0:
        yield
        return
    if name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_s) * 1000}")
        yield
    elif name == "sqlite":
        raw = conn.connection.dbapi_connection
        deadline = time.monotonic() + timeout_s
        raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 20_000)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)
    else:
        if name not in {"mysql", "mariadb"}:
            log.info("no statement timeout applied on %s: the database's own limits hold", name)
        yield


def is_timeout(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "pgcode", None) == "57014" or getattr(orig, "sqlstate", None) == "57014":
        return True
    text = str(orig).lower()
    if "interrupted" in text and "sqlite" in type(orig).__module__:
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in (3024, 1969)  # MySQL/MariaDB max execution time exceeded


_SQLITE_DETERMINISTIC = ("syntax error", "incomplete input", "unrecognized token", "no such function",
                         "wrong number of arguments", "misuse of aggregate", "user-defined function raised exception")
_PG_RETRYABLE = {"42P01", "42703", "42501", "42P02"}  # missing table / column, no privilege, missing parameter


def is_deterministic(exc: BaseException) -> bool:
    """An error that the same query will hit again (bad SQL, a bad literal or regex): retrying
    cannot fix it. A missing table or column, a lost connection or a timeout may pass."""
    if is_timeout(exc):
        return False
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if code:
        return code[:2] in {"22", "42"} and code not in _PG_RETRYABLE
    if "sqlite" in type(orig).__module__:
        return any(marker in str(orig).lower() for marker in _SQLITE_DETERMINISTIC)
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in (1064, 1305)  # MySQL syntax error, no such function


def describe_error(exc: BaseException) -> str:
    """The database's own first line, without SQLAlchemy's echo of SQL and parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:300]
