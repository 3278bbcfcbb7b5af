"""Results-store fixtures: a store on a fresh SQLite file, and one on a fresh PostgreSQL database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from airflow_dataops.store import base
from airflow_dataops.store.results import ResultsStore


def make_engine(url: str) -> sa.Engine:
    """The engine the store would build for this URL (SQLite gets the multi-writer tuning)."""
    if url.startswith("sqlite"):
        return base.sqlite_engine(url.removeprefix("sqlite:///"))
    return sa.create_engine(url)


@pytest.fixture()
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request, tmp_path) -> str:
    """A fresh, empty results database URL: SQLite file, then real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture()
def store(store_url):
    engine = make_engine(store_url)
    base.ensure_schema(engine)
    yield ResultsStore(engine, f"test store {engine.dialect.name}")
    engine.dispose()


@pytest.fixture(autouse=True)
def _no_cached_default_store():
    ResultsStore.reset_default()
    yield
    ResultsStore.reset_default()
