"""A source table for freshness tests on real SQLite or PostgreSQL, reachable as an Airflow connection.

Each ``Source`` gets a unique connection id (``AIRFLOW_CONN_<ID>``), so the process-wide engine
cache of ``hooks.sql.get_engine`` never hands one test another test's database.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


@dataclass
class Source:
    kind: str  # sqlite | postgres
    url: str  # SQLAlchemy URL the test itself uses
    conn_uri: str  # Airflow connection URI
    conn_id: str = field(default_factory=lambda: f"fresh_{uuid.uuid4().hex[:10]}")
    table: str = "events"
    column: str = "updated_at"

    def __post_init__(self) -> None:
        self.engine = sa.create_engine(self.url)
        tz_aware = self.kind == "postgres"
        self.meta = sa.MetaData()
        self.tbl = sa.Table(
            self.table,
            self.meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("region", sa.String(10)),
            sa.Column(self.column, sa.DateTime(timezone=tz_aware)),
        )
        self.meta.create_all(self.engine)
        os.environ[f"AIRFLOW_CONN_{self.conn_id.upper()}"] = self.conn_uri

    def insert(self, moment: dt.datetime, region: str = "eu") -> None:
        value = moment if self.kind == "postgres" else moment.astimezone(UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(self.tbl.insert().values(region=region, **{self.column: value}))

    def insert_age(self, seconds: float, region: str = "eu") -> dt.datetime:
        moment = utcnow() - dt.timedelta(seconds=seconds)
        self.insert(moment, region)
        return moment

    def close(self) -> None:
        from airflow_dataops.hooks.sql import forget_engine

        forget_engine(self.conn_id)  # this test's cached engines and their pooled connections
        self.engine.dispose()
        os.environ.pop(f"AIRFLOW_CONN_{self.conn_id.upper()}", None)


def sqlite_source(tmp_path) -> Source:
    path = tmp_path / "source.db"
    return Source("sqlite", f"sqlite:///{path}", f"sqlite:///{path}")


def postgres_source(pg_url: str) -> Source:
    db = pg_url.rsplit("/", 1)[1]
    return Source("postgres", pg_url, f"postgres://postgres@127.0.0.1:5432/{db}")
