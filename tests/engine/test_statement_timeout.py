"""The PostgreSQL statement timeout lives in the check's own transaction (``SET LOCAL``), never in
the pooled server session: behind PgBouncer in transaction pooling a session setting would reach
other clients, and a ``DISCARD ALL``/``RESET ALL`` on the connection would silently remove it.

Real PostgreSQL; one pooled connection throughout, so "the same server session" is checked by its
backend pid. (A slow query cancelled: tests/engine/test_sql_errors.py.)"""

from __future__ import annotations

import time

import pytest

from airflow_dataops.config.checks import parse_checks
from airflow_dataops.engine.sql_runner import run_checks
from tests.engine.conftest import NOW, StatementCounter

pytestmark = pytest.mark.integration

SLOW = parse_checks([{"type": "sql", "sql": "SELECT 1 FROM pg_sleep(3)", "expect": "truthy", "name": "slow"}])
ROWS = parse_checks([{"type": "row_count", "min": 1}])


def _session(engine) -> tuple[int, str]:
    """(backend pid, statement_timeout) of the pooled connection, outside any check."""
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one(), conn.exec_driver_sql("SHOW statement_timeout").scalar_one()


def _discard_all(engine) -> None:
    """What a pooler (PgBouncer's server_reset_query) or another library does to a server session."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # DISCARD ALL refuses to run in a transaction
        conn.exec_driver_sql("DISCARD ALL")


def test_the_timeout_applies_inside_the_check_and_does_not_outlive_its_transaction(postgresql_engine):
    engine = postgresql_engine
    pid, before = _session(engine)
    inside = parse_checks([{"type": "sql", "name": "timeout_inside", "expect": "truthy",
                            "sql": "SELECT current_setting('statement_timeout') = '7s'"}])
    (result,) = run_checks(engine, "orders", inside, now=NOW, timestamp_column=None, statement_timeout_s=7)
    assert result.status == "passed", result  # the check's own statement ran under the timeout
    assert _session(engine) == (pid, before), "the server session must not keep the check's timeout"
    assert before == "0"  # the server default of this test cluster: the assertion above means something


def test_a_discard_all_on_the_pooled_connection_does_not_disable_the_timeout(postgresql_engine):
    engine = postgresql_engine
    pid, _ = _session(engine)
    (first,) = run_checks(engine, "orders", ROWS, now=NOW, timestamp_column=None, statement_timeout_s=1)
    _discard_all(engine)
    started = time.monotonic()
    (slow,) = run_checks(engine, "orders", SLOW, now=NOW, timestamp_column=None, statement_timeout_s=1)
    assert first.status == "passed"
    assert slow.status == "error" and "timed out after 1s" in slow.error, slow
    assert time.monotonic() - started < 2.5
    assert _session(engine)[0] == pid, "every run used the one pooled connection"


def test_each_statement_carries_its_timeout_two_statements_per_scan(postgresql_engine):
    """The cost of being correct behind a pooler: SET LOCAL + the scan, in every run."""
    checks = parse_checks([{"type": "row_count", "min": 1}, {"type": "null_check", "columns": ["id"]}])
    for _ in range(2):
        with StatementCounter(postgresql_engine) as counter:
            run_checks(postgresql_engine, "orders", checks, now=NOW, timestamp_column=None, statement_timeout_s=300)
        assert counter.statements[0] == "SET LOCAL statement_timeout = 300000"
        assert len(counter.statements) == 2 and len(counter.data_statements()) == 1, counter.statements


def test_no_timeout_sends_no_set(postgresql_engine):
    with StatementCounter(postgresql_engine) as counter:
        (result,) = run_checks(postgresql_engine, "orders", ROWS, now=NOW, timestamp_column=None, statement_timeout_s=0)
    assert result.status == "passed" and len(counter.statements) == 1, counter.statements
