"""Idempotent writes: insert a row, or update the one with the same natural key.

PostgreSQL and SQLite use ``INSERT .. ON CONFLICT DO UPDATE``, MySQL/MariaDB
``ON DUPLICATE KEY UPDATE``; any other database gets update-then-insert, with the insert in a
savepoint so a racing writer's row turns into an update instead of an error. With ``newer`` (a
column such as ``try_number``) an incoming row replaces the stored one only when its value is at
least the stored one: a late duplicate of an older try never overwrites a newer try.
"""

from __future__ import annotations

import functools

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, func, select, update
from sqlalchemy.exc import IntegrityError

# Rows per statement: well under SQLite's 32,766 bound-parameter limit with our ~25 columns.
BATCH = 200


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str],
    *,
    newer: str | None = None,
    generic: bool = False,
) -> None:
    """Write ``rows`` keyed by the columns ``key`` (a unique constraint of ``table``).

    ``generic=True`` forces the portable update-then-insert path (used by the tests to cover it on
    SQLite)."""
    if not rows:
        return
    # One row per key (the last wins): a single statement may not update the same row twice.
    unique = list({tuple(row[name] for name in key): dict(row) for row in rows}.values())
    dialect = conn.dialect.name
    for start in range(0, len(unique), BATCH):
        batch = unique[start : start + BATCH]
        if generic:
            _generic(conn, table, batch, key, newer)
        elif dialect in {"postgresql", "sqlite", "mysql", "mariadb"}:
            _native(conn, table, batch, key, newer)
        else:
            _generic(conn, table, batch, key, newer)


def _update_columns(table: Table, row: Mapping[str, Any], key: Sequence[str]) -> list[str]:
    return [name for name in row if name not in key and name != "id" and name in table.c]


@functools.lru_cache(maxsize=64)
def _native_statement(dialect: str, table: Table, key: tuple[str, ...], columns: tuple[str, ...], newer: str | None):
    """The upsert statement, built once per shape: executed as executemany, its compiled form is
    cached by SQLAlchemy too (building it costs more than running it)."""
    if dialect in {"mysql", "mariadb"}:
        from sqlalchemy.dialects.mysql import insert

        stmt = insert(table)
        if not newer:
            return stmt.on_duplicate_key_update({name: stmt.inserted[name] for name in columns})
        # MySQL applies assignments left to right: compare against the stored ``newer`` value
        # before it is overwritten, so it goes last.
        take_new = stmt.inserted[newer] >= table.c[newer]
        ordered = [name for name in columns if name != newer] + [newer]
        return stmt.on_duplicate_key_update(
            [(name, func.if_(take_new, stmt.inserted[name], table.c[name])) for name in ordered]
        )
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={name: stmt.excluded[name] for name in columns},
        where=stmt.excluded[newer] >= table.c[newer] if newer else None,
    )
    # With RETURNING, SQLAlchemy sends an executemany upsert as one multi-row statement (without it,
    # one round trip per row: sqlalchemy#13130); safe because the rows' keys are unique.
    return stmt.returning(table.c[key[0]])


def _native(conn, table, batch, key, newer) -> None:
    columns = tuple(_update_columns(table, batch[0], key))
    conn.execute(_native_statement(conn.dialect.name, table, tuple(key), columns, newer), batch).close()


def _generic(conn, table, batch, key, newer) -> None:
    for row in batch:
        match = and_(*(table.c[name] == row[name] for name in key))
        columns = _update_columns(table, row, key)
        values = {name: row[name] for name in columns}
        if _update(conn, table, match, values, newer, row):
            continue
        exists = conn.execute(select(table.c[key[0]]).where(match).limit(1)).first()
        if exists is not None:  # present, but newer than this row: keep it
            continue
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(row))
        except IntegrityError:  # a concurrent writer inserted it first: update theirs
            _update(conn, table, match, values, newer, row)


def _update(conn, table, match, values, newer, row) -> bool:
    condition = match if newer is None else and_(match, table.c[newer] <= row[newer])
    result = conn.execute(update(table).where(condition).values(values))
    return result.rowcount > 0
