"""The results store: every check outcome and freshness observation, kept for history.

Its own database (``[dataops] results_conn_id``, or the embedded SQLite file on a single machine),
never Airflow's metadata database. Writes are idempotent upserts keyed by (DAG, run, task, map index,
environment, check): a retry replaces its earlier try, a duplicate never double-counts. Reads serve the
``volume_anomaly`` check (``observed_history``, per environment and per filter state) and the demo;
alerting reads through ``store.alerts``, the UI page through ``plugins.queries``/``plugins.history``.

Every datetime going in is stored as UTC, and every datetime coming out is timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import OperationalError

from airflow_dataops import settings
from airflow_dataops.store import base
from airflow_dataops.store.schema import alerts, audit, check_results, freshness, key_columns
from airflow_dataops.store.upsert import upsert
from airflow_dataops.timeutil import as_utc, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from airflow_dataops.engine.result import CheckResult

log = logging.getLogger(__name__)

RESULT_KEY = key_columns(check_results, "uq_dataops_result")
FRESHNESS_KEY = key_columns(freshness, "uq_dataops_freshness")
HISTORY_STATUSES = ("passed", "warned")
PURGE_BATCH = 5000
WRITE_ATTEMPTS = 3
_TRANSIENT = ("deadlock", "database is locked", "could not serialize", "lock wait timeout", "lock timeout")

_DEFAULTS: dict[tuple, ResultsStore] = {}
_DEFAULTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class RunRef:
    """Which task instance of which pipeline run produced a result."""

    pipeline: str
    dag_id: str
    run_id: str
    task_id: str
    environment: str
    map_index: int = -1
    try_number: int = 1


def _transient(exc: OperationalError) -> bool:
    return any(marker in str(exc.orig or exc).lower() for marker in _TRANSIENT)


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _row_dict(row) -> dict[str, Any]:
    record = dict(row._mapping)
    for name in ("observed", "expected", "failing_rows"):
        if name in record:
            record[name] = _decode(record[name])
    return record


DROPPED_FILTER_NOTE = "`where` dropped"  # what the operator writes in a result whose filter could not apply


def _where_applied(expected: str | None, message: str | None) -> bool | None:
    """Whether a stored result counted filtered rows (True), the whole table (False), or unknown."""
    decoded = _decode(expected)
    if isinstance(decoded, dict) and isinstance(decoded.get("where_applied"), bool):
        return decoded["where_applied"]
    if message and DROPPED_FILTER_NOTE in message:
        return False
    return None


def _number(value: Any) -> float | None:
    """The numeric observed value, or None (booleans, texts, structures are not measurements)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class ResultsStore:
    """Reads and writes the results store tables through one SQLAlchemy engine."""

    def __init__(self, engine: Engine, description: str) -> None:
        self.engine = engine
        self.description = description
        self._generic_upserts = False  # tests force the portable path on SQLite

    def __repr__(self) -> str:
        return f"ResultsStore({self.description})"

    @classmethod
    def default(cls) -> ResultsStore:
        """The store of ``[dataops] results_conn_id`` (or the embedded SQLite file), schema ensured.

        Cached per process (a forked child builds its own, never sharing pooled connections)."""
        conn_id = settings.get("results_conn_id")
        key = (os.getpid(), conn_id, os.environ.get("AIRFLOW_HOME"))
        store = _DEFAULTS.get(key)
        if store is not None:
            return store
        with _DEFAULTS_LOCK:
            store = _DEFAULTS.get(key)
            if store is None:
                engine, description = base.resolve_engine()
                if not description.startswith("embedded"):
                    log.info("dataops results store: %s", description)
                base.ensure_schema(engine)
                store = cls(engine, description)
                _DEFAULTS[key] = store
        return store

    @staticmethod
    def reset_default() -> None:
        """Forget the cached default stores (tests; a connection that changed)."""
        with _DEFAULTS_LOCK:
            for store in _DEFAULTS.values():
                store.engine.dispose()
            _DEFAULTS.clear()

    @property
    def embedded(self) -> bool:
        return self.description.startswith("embedded")

    # ------------------------------------------------------------------ writes

    def record_results(self, run: RunRef, results: Sequence[CheckResult]) -> None:
        """Upsert one row per result, in one transaction; a later try replaces an earlier one."""
        if not results:
            return
        now = utcnow()
        sample_limit = max(settings.get_int("failing_rows_sample"), 0)
        rows = [self._result_row(run, result, now, sample_limit) for result in results]
        rows.sort(key=lambda row: row["check_name"])  # one lock order for every writer: no deadlocks
        self._write(check_results, rows, RESULT_KEY, newer="try_number")

    @staticmethod
    def _result_row(run: RunRef, result: CheckResult, now: dt.datetime, sample_limit: int) -> dict[str, Any]:
        record = result.to_record()
        failing_rows = None
        if sample_limit and result.failing_rows:
            failing_rows = json.dumps(json.loads(record["failing_rows"])[:sample_limit])
        return {
            "pipeline": run.pipeline,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "task_id": run.task_id,
            "map_index": run.map_index,
            "try_number": run.try_number,
            "environment": run.environment,
            "table_name": result.table,
            "check_name": result.name,
            "check_type": result.check_type,
            "action": result.action,
            "status": result.status,
            "passed": result.passed,
            "observed": record["observed"],
            "expected": record["expected"],
            "message": result.message,
            "sql": result.sql,
            "engine": result.engine,
            "duration_ms": float(result.duration_ms),
            "checked_at": as_utc(result.checked_at) if result.checked_at else now,
            "recorded_at": now,
            "error": result.error,
            "failing_rows": failing_rows,
        }

    def record_freshness(
        self,
        run: RunRef,
        *,
        source: str,
        table: str,
        column: str,
        newest: dt.datetime | None,
        observed_at: dt.datetime,
        max_age_s: float | None,
        fresh: bool | None,
    ) -> None:
        """Upsert the freshness observation of (run, task, environment, table, column): the latest
        poke wins."""
        observed_at = as_utc(observed_at)
        newest = as_utc(newest) if newest is not None else None
        row = {
            "pipeline": run.pipeline,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "task_id": run.task_id,
            "environment": run.environment,
            "source": source,
            "table_name": table,
            "column_name": column,
            "newest": newest,
            "observed_at": observed_at,
            "lag_seconds": (observed_at - newest).total_seconds() if newest is not None else None,
            "max_age_seconds": float(max_age_s) if max_age_s is not None else None,
            "fresh": fresh,
        }
        self._write(freshness, [row], FRESHNESS_KEY)

    def _write(self, table, rows, key, *, newer: str | None = None) -> None:
        """One transaction; retried on a deadlock or a lock timeout (safe: the upsert is idempotent)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    upsert(conn, table, rows, key, newer=newer, generic=self._generic_upserts)
                return
            except OperationalError as exc:
                if attempt == WRITE_ATTEMPTS or not _transient(exc):
                    raise
                log.warning("dataops results store: %s, retrying the write (%s/%s)", _first_line(exc), attempt, WRITE_ATTEMPTS)
                time.sleep(0.1 * 2**attempt)

    # ------------------------------------------------------------------- reads

    def observed_history(
        self,
        pipeline: str,
        check_name: str,
        limit: int,
        *,
        environment: str | None = None,
        where_applied: bool | None = None,
        exclude_run_id: str | None = None,
    ) -> list[float]:
        """Numeric observed values of ``check_name`` from the last ``limit`` runs in which it passed
        or warned, newest first (one value per run: its newest row).

        ``environment``: only that environment's runs (run ids repeat across environments).
        ``where_applied``: only runs that counted the same rows, i.e. whose ``where`` filter was
        applied (True) or that counted the whole table (False: no filter, or a filter dropped on a
        run without a data interval). Results record this as ``expected.where_applied``; older
        rows without it count as the whole table when their message says the filter was dropped,
        and as either otherwise."""
        if limit <= 0:
            return []
        c = check_results.c
        query = (
            select(c.run_id, c.observed, c.expected, c.message)
            .where(c.pipeline == pipeline, c.check_name == check_name, c.status.in_(HISTORY_STATUSES))
            .order_by(c.checked_at.desc(), c.id.desc())
        )
        if environment is not None:
            query = query.where(c.environment == environment)
        if exclude_run_id is not None:
            query = query.where(c.run_id != exclude_run_id)
        values: list[float] = []
        seen: set[str] = set()
        page, offset = max(limit * 2, 20), 0
        with base.reading(self.engine) as conn:
            while len(values) < limit:
                rows = conn.execute(query.limit(page).offset(offset)).all()
                for run_id, observed, expected, message in rows:
                    if run_id in seen:
                        continue
                    seen.add(run_id)
                    if where_applied is not None and _where_applied(expected, message) not in (None, where_applied):
                        continue
                    number = _number(_decode(observed))
                    if number is not None:
                        values.append(number)
                        if len(values) == limit:
                            break
                if len(rows) < page:
                    break
                offset += page
        return values

    def results_for_run(self, dag_id: str, run_id: str, environment: str | None = None) -> list[dict[str, Any]]:
        """Every stored result of one DAG run (of one ``environment``, or of every environment that
        has a run of that id), by task, map index and check name."""
        query = (
            select(check_results)
            .where(check_results.c.dag_id == dag_id, check_results.c.run_id == run_id)
            .order_by(check_results.c.task_id, check_results.c.map_index, check_results.c.check_name)
        )
        if environment is not None:
            query = query.where(check_results.c.environment == environment)
        with base.reading(self.engine) as conn:
            return [_row_dict(row) for row in conn.execute(query)]

    def latest_results(self, dag_id: str) -> list[dict[str, Any]]:
        """The newest result of each check of the DAG (whichever run it came from), by check name."""
        ranked = select(
            check_results,
            func.row_number()
            .over(
                partition_by=(check_results.c.check_name, check_results.c.task_id, check_results.c.map_index),
                order_by=(check_results.c.checked_at.desc(), check_results.c.id.desc()),
            )
            .label("rank"),
        ).where(check_results.c.dag_id == dag_id).subquery()
        columns = [ranked.c[column.name] for column in check_results.columns]
        query = select(*columns).where(ranked.c.rank == 1).order_by(ranked.c.check_name, ranked.c.map_index)
        with base.reading(self.engine) as conn:
            return [_row_dict(row) for row in conn.execute(query)]

    def latest_freshness(self, dag_id: str, environment: str | None = None) -> dict[str, Any] | None:
        """The newest freshness observation of the DAG (in ``environment``, or in any)."""
        query = (
            select(freshness)
            .where(freshness.c.dag_id == dag_id)
            .order_by(freshness.c.observed_at.desc(), freshness.c.id.desc())
            .limit(1)
        )
        if environment is not None:
            query = query.where(freshness.c.environment == environment)
        with base.reading(self.engine) as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row is not None else None

    # ----------------------------------------------------------------- purging

    def purge(self, retention_days: int | None = None) -> dict[str, int]:
        """Delete check results, freshness rows, audit rows and resolved or acknowledged alerts
        older than ``retention_days`` (default ``[dataops] results_retention_days``; 0 or less
        keeps everything). Deletes in batches of ids, one short transaction each, so a big table is
        never locked for long. Returns the number of rows deleted per table."""
        days = settings.get_int("results_retention_days") if retention_days is None else retention_days
        deleted = {"check_results": 0, "freshness": 0, "alerts": 0, "audit": 0}
        if days <= 0:
            return deleted
        cutoff = utcnow() - dt.timedelta(days=days)
        targets = {
            "check_results": (check_results, check_results.c.checked_at < cutoff),
            "freshness": (freshness, freshness.c.observed_at < cutoff),
            "alerts": (
                alerts,
                and_(
                    alerts.c.created_at < cutoff,
                    or_(alerts.c.resolved_at.is_not(None), alerts.c.acknowledged_at.is_not(None)),
                ),
            ),
            "audit": (audit, audit.c.at < cutoff),
        }
        for name, (table, condition) in targets.items():
            deleted[name] = self._delete_in_batches(table, condition)
        if any(deleted.values()):
            log.info("dataops results store: purged rows older than %s days: %s", days, deleted)
        return deleted

    def _delete_in_batches(self, table, condition) -> int:
        total = 0
        while True:
            with self.engine.begin() as conn:
                ids = conn.execute(select(table.c.id).where(condition).limit(PURGE_BATCH)).scalars().all()
                if ids:
                    conn.execute(delete(table).where(table.c.id.in_(ids)))
            total += len(ids)
            if len(ids) < PURGE_BATCH:
                return total
