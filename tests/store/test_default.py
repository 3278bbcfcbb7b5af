"""Where the default store lives: the `dataops_results` connection when it exists, else the
embedded SQLite file in $AIRFLOW_HOME, with a plain warning that it is for a single machine."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from airflow_dataops.engine.result import CheckResult
from airflow_dataops.store.results import ResultsStore, RunRef
from airflow_dataops.store.schema import check_results

RESULT = CheckResult(name="row_count", check_type="row_count", action="fail", passed=True, observed=5, expected={"min": 1})


def test_without_the_connection_the_store_is_an_embedded_sqlite_file_and_says_single_machine(tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_DATAOPS_RESULTS", raising=False)

    with caplog.at_level(logging.WARNING, logger="airflow_dataops.store.base"):
        store = ResultsStore.default()
    store.record_results(RunRef("p", "p", "r1", "t", "dev"), [RESULT])

    assert store.embedded and store.engine.dialect.name == "sqlite"
    assert (tmp_path / "dataops_results.db").is_file()
    assert "single machine" in store.description and "dataops_results" in store.description
    assert str(tmp_path / "dataops_results.db") in store.description
    # Airflow's logging set-up may route the record to its own handler instead of caplog's
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    logged += [line for line in capfd.readouterr().out.splitlines() if "warning" in line]
    assert any("single machine" in line and "connection 'dataops_results' pointing at PostgreSQL" in line for line in logged)
    assert ResultsStore.default() is store  # cached for the process
    assert [r["check_name"] for r in store.results_for_run("p", "r1")] == ["row_count"]


def test_the_results_conn_id_option_names_the_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DATAOPS__RESULTS_CONN_ID", "my_store")
    monkeypatch.setenv("AIRFLOW_CONN_MY_STORE", f"sqlite:///{tmp_path / 'named.db'}")

    store = ResultsStore.default()
    store.record_results(RunRef("p", "p", "r1", "t", "dev"), [RESULT])

    assert not store.embedded and "my_store" in store.description
    assert (tmp_path / "named.db").is_file() and not (tmp_path / "dataops_results.db").exists()


@pytest.mark.integration
def test_an_existing_connection_is_used(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_DATAOPS_RESULTS", pg_url.replace("postgresql+psycopg2://", "postgresql://"))

    store = ResultsStore.default()
    store.record_results(RunRef("p", "p", "r1", "t", "prod"), [RESULT])

    assert store.engine.dialect.name == "postgresql" and not store.embedded
    assert store.description == "connection 'dataops_results' (postgresql)"
    assert not (tmp_path / "dataops_results.db").exists()
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(check_results.c.run_id)).scalars().all() == ["r1"]
    engine.dispose()
