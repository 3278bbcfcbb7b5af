"""A small orders table (and its customers) on real SQLite and real PostgreSQL, with a known
composition, so every check type has a passing and a failing configuration."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
_NAIVE = NOW.replace(tzinfo=None)

metadata = sa.MetaData()
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.Integer), sa.Column("customer_id", sa.Integer), sa.Column("email", sa.String(100)),
    sa.Column("status", sa.String(20)), sa.Column("amount", sa.Float), sa.Column("updated_at", sa.DateTime),
)
customers = sa.Table("customers", metadata, sa.Column("id", sa.Integer, primary_key=True))

ORDER_ROWS = [
    # id, customer_id, email, status, amount, age
    (1, 1, "a@x.io", "new", 10.0, dt.timedelta(hours=1)),
    (2, 2, "b@x.io", "paid", 20.0, dt.timedelta(hours=2)),
    (3, None, None, "paid", 20.0, dt.timedelta(hours=3)),
    (4, 3, "c@x.io", "shipped", 40.0, dt.timedelta(hours=4)),
    (4, 9, "bad-email", "new", 500.0, dt.timedelta(hours=5)),
]


def order_dicts() -> list[dict]:
    keys = ("id", "customer_id", "email", "status", "amount")
    return [dict(zip(keys, row[:5], strict=True), updated_at=_NAIVE - row[5]) for row in ORDER_ROWS]


def fill(engine: sa.Engine) -> sa.Engine:
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(orders.insert(), order_dicts())
        conn.execute(customers.insert(), [{"id": i} for i in (1, 2, 3)])
    return engine


@pytest.fixture()
def sqlite_engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    yield fill(engine)
    engine.dispose()


@pytest.fixture()
def postgresql_engine(pg_url):
    engine = sa.create_engine(pg_url)
    yield fill(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db(request) -> sa.Engine:
    """The orders table on SQLite, then on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_engine")


class StatementCounter:
    """Counts the statements SQLAlchemy sends (``before_cursor_execute``)."""

    def __init__(self, engine: sa.Engine):
        self.engine, self.statements = engine, []

    def _listen(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._listen)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._listen)

    def data_statements(self) -> list[str]:
        """Statements that read data (PostgreSQL's SET LOCAL statement_timeout is not one)."""
        return [s for s in self.statements if not s.lstrip().upper().startswith("SET ")]
