from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_freshness_db():
    """tests/ is not a package: load the shared source helper by path (the sensor tests use it too)."""
    if "freshness_db" not in sys.modules:
        spec = importlib.util.spec_from_file_location("freshness_db", Path(__file__).with_name("freshness_db.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["freshness_db"] = module
        spec.loader.exec_module(module)
    return sys.modules["freshness_db"]


freshness_db = _load_freshness_db()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def source(request, tmp_path):
    """An empty ``events(id, region, updated_at)`` table on real SQLite, then real PostgreSQL."""
    if request.param == "sqlite":
        src = freshness_db.sqlite_source(tmp_path)
    else:
        src = freshness_db.postgres_source(request.getfixturevalue("pg_url"))
    yield src
    src.close()


@pytest.fixture()
def pg_source(pg_url):
    src = freshness_db.postgres_source(pg_url)
    yield src
    src.close()
