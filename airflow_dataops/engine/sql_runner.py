"""Run checks against a table through SQLAlchemy: aggregates in one scan, the rest one by one.

``run_checks`` never reads a table into memory (only aggregates and bounded samples come back).
A check that cannot run (missing table or column, query error, timeout, unsafe filter) becomes a
``CheckResult`` with status ``error`` that names the check and the object; data failures are
``failed``/``warned``. No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import CompileError, NoSuchTableError, SQLAlchemyError

from airflow_dataops.config.checks import BaseCheck, ReferentialCheck, SchemaCheck, SqlCheck, UniqueCheck
from airflow_dataops.engine import sql_separate as sep
from airflow_dataops.engine.evaluate import EvalContext, evaluate
from airflow_dataops.engine.outcome import CONFIG_ERROR, error_result, from_verdict
from airflow_dataops.engine.result import CheckResult
from airflow_dataops.engine.sql_aggregates import MissingColumnName, build_scan, foldable, sample_statement
from airflow_dataops.engine.sql_objects import UnsafeFilterError, split_table, validate_where
from airflow_dataops.engine.sql_timeout import (
    describe_error,
    is_deterministic,
    is_timeout,
    prepare_connection,
    statement_timeout,
    with_hint,
)

log = logging.getLogger(__name__)

ENGINE = "sql"


class _Runner:
    def __init__(self, conn: sa.Connection, table: str, *, timeout_s: int, samples: int, ctx: EvalContext,
                 timestamp_column: str | None, base_dir: Path | None, conn_id: str | None):
        self.conn, self.table, self.timeout_s, self.samples, self.ctx = conn, table, timeout_s, samples, ctx
        self.timestamp_column, self.base_dir, self.conn_id = timestamp_column, base_dir, conn_id
        self.dialect = conn.dialect

    @property
    def dialect_name(self) -> str:
        return self.dialect.name

    # -- statements -------------------------------------------------------------------------------
    def sql_text(self, stmt: sa.ClauseElement) -> str:
        """The statement as it could be replayed (values inlined where the dialect can render them)."""
        plain = str(stmt.compile(dialect=self.dialect))  # CompileError: the dialect cannot express it
        try:
            text = str(stmt.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))
        except Exception:  # a value the dialect cannot inline: the statement with its markers
            return plain
        if self.dialect.paramstyle in ("pyformat", "format"):
            text = text.replace("%%", "%")  # no parameters are left: percent signs are literal
        return text

    def run(self, stmt: Any, fetch: Callable[[sa.CursorResult], Any], *, stream: bool = False) -> Any:
        """One statement in its own read-only transaction, under the statement timeout (on
        PostgreSQL a ``SET LOCAL`` in that transaction: one more statement, nothing left behind)."""
        if isinstance(stmt, sa.Select):
            stmt = with_hint(stmt, self.dialect.name, self.timeout_s)
        trans = self.conn.begin()
        try:
            with statement_timeout(self.conn, self.timeout_s):
                if stream:
                    result = self.conn.execute(stmt, execution_options={"stream_results": True, "max_row_buffer": 1})
                    try:
                        return fetch(result)
                    finally:
                        result.close()
                return fetch(self.conn.execute(stmt))
        finally:
            trans.rollback()

    def failure_text(self, exc: BaseException, what: str) -> str:
        if is_timeout(exc):
            return f"{what} timed out after {self.timeout_s}s ([dataops] statement_timeout): add a `where` filter or raise the timeout"
        text = f"{what} failed: {describe_error(exc)}"
        return CONFIG_ERROR + text if is_deterministic(exc) else text

    def reflect(self) -> dict[str, Any] | None:
        """Column name -> reflected type, or None when the table cannot be inspected."""
        schema, name = split_table(self.table)
        try:
            columns = sa.inspect(self.conn).get_columns(name, schema=schema)
        except SQLAlchemyError:
            return None
        finally:
            if self.conn.in_transaction():
                self.conn.rollback()
        return {c["name"]: c["type"] for c in columns}

    def diagnose(self, columns: Sequence[str]) -> tuple[bool, list[str]]:
        """(table exists, missing columns) after a failed statement."""
        schema, name = split_table(self.table)
        try:
            inspector = sa.inspect(self.conn)
            if not inspector.has_table(name, schema=schema):
                return False, []
            present = {c["name"].lower() for c in inspector.get_columns(name, schema=schema)}
        except SQLAlchemyError:
            return True, []
        finally:
            if self.conn.in_transaction():
                self.conn.rollback()
        return True, [c for c in columns if c.lower() not in present]

    def missing_table_text(self) -> str:
        return f"table {self.table} does not exist (or is not visible to this connection): check the name and schema"

    def samples_for(self, stmt: sa.Select | None) -> tuple[dict[str, Any], ...]:
        if stmt is None or self.samples <= 0:
            return ()
        try:
            return tuple(self.run(stmt, lambda r: [dict(row) for row in r.mappings().fetchmany(self.samples)]))
        except SQLAlchemyError as exc:
            log.warning("could not fetch failing rows from %s: %s", self.table, describe_error(exc))
            return ()

    def _error(self, check: BaseCheck, text: str, **kw: Any) -> CheckResult:
        return error_result(check, text, table=self.table, engine=ENGINE, now=self.ctx.now, **kw)

    # -- aggregate scan ---------------------------------------------------------------------------
    def scan(self, where: str | None, checks: list[tuple[int, BaseCheck]], out: dict[int, CheckResult]) -> None:
        """The checks sharing ``where`` as one statement. When it fails for another reason than a
        timeout, a missing table or column, the group is split in halves until the checks that
        cause the error are found: the others still get their results."""
        self._scan(where, checks, out, diagnosed=False, column_types=None)

    def _scan(self, where: str | None, checks: list[tuple[int, BaseCheck]], out: dict[int, CheckResult], *,
              diagnosed: bool, column_types: dict[str, Any] | None) -> None:
        try:
            plan = build_scan(self.table, where, [c for _, c in checks], timestamp_column=self.timestamp_column,
                              dialect=self.dialect_name, timezone=self.ctx.timezone, column_types=column_types)
            stmt = plan.statement()
        except (MissingColumnName, UnsafeFilterError) as exc:
            for i, check in checks:
                out[i] = self._error(check, CONFIG_ERROR + str(exc))
            return
        try:
            sql = self.sql_text(stmt)
        except CompileError as exc:  # e.g. regular expressions on a database without them
            self.uncompilable(where, checks, out, exc)
            return
        started = time.perf_counter()
        try:
            row = self.run(stmt, lambda r: r.one())
        except SQLAlchemyError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            if is_timeout(exc):
                text = self.failure_text(exc, "the aggregate query")
                for i, check in checks:
                    out[i] = self._error(check, text, sql=sql, duration_ms=elapsed)
                return
            if not diagnosed:
                exists, missing = self.diagnose([c for cp in plan.checks for c in cp.columns])
                if not exists:
                    for i, check in checks:
                        out[i] = self._error(check, self.missing_table_text(), sql=sql)
                    return
                if missing:
                    healthy = []
                    for (i, check), cp in zip(checks, plan.checks, strict=True):
                        gone = [c for c in cp.columns if c in missing]
                        if gone:
                            out[i] = self._error(check, f"column {', '.join(gone)} not found in table {self.table}", sql=sql)
                        else:
                            healthy.append((i, check))
                    if healthy:
                        self._scan(where, healthy, out, diagnosed=True, column_types=column_types)
                    return
            if len(checks) > 1:
                half = len(checks) // 2
                log.warning("the aggregate query on %s failed (%s): running its %s checks in smaller groups to find the cause",
                            self.table, describe_error(exc), len(checks))
                self._scan(where, checks[:half], out, diagnosed=True, column_types=column_types)
                self._scan(where, checks[half:], out, diagnosed=True, column_types=column_types)
                return
            ((i, check),) = checks
            if check.type == "accepted_values" and column_types is None:
                # The values may not be of the column's type (1 and "x" on an integer column):
                # bind them as the column's type and try once more.
                types = self.reflect()
                if types and check.column in types:
                    self._scan(where, checks, out, diagnosed=True, column_types=types)
                    return
            out[i] = self._error(check, self.failure_text(exc, f"the {check.type} check's query"), sql=sql, duration_ms=elapsed)
            return
        elapsed = (time.perf_counter() - started) * 1000
        measures = plan.measures(row)
        for (i, check), cp in zip(checks, plan.checks, strict=True):
            check_sql = sql
            try:
                refined = cp.refine(measures) if cp.refine else None
                if refined is not None:
                    check_sql = self.sql_text(refined)
                    found = cp.finish(measures, self.run(refined, lambda r: tuple(r.one())))
                else:
                    found = cp.finish(measures)
                verdict = evaluate(check, found, self.ctx)
            except ValueError as exc:  # e.g. an unreadable timestamp
                out[i] = self._error(check, str(exc), sql=check_sql)
                continue
            except SQLAlchemyError as exc:
                out[i] = self._error(check, self.failure_text(exc, f"the {check.type} check's query"), sql=check_sql)
                continue
            rows: tuple[dict[str, Any], ...] = ()
            if not verdict.passed and self.samples > 0:
                column_type = (column_types or {}).get(getattr(check, "column", None))
                rows = self.samples_for(sample_statement(self.table, where, check, self.samples, dialect=self.dialect_name,
                                                         timezone=self.ctx.timezone, column_type=column_type))
            out[i] = from_verdict(check, verdict, table=self.table, engine=ENGINE, now=self.ctx.now, sql=check_sql,
                                  duration_ms=elapsed, columns=cp.columns, failing_rows=rows)

    def uncompilable(self, where: str | None, checks: list[tuple[int, BaseCheck]], out: dict[int, CheckResult],
                     exc: CompileError) -> None:
        patterns = [(i, c) for i, c in checks if c.type == "pattern"]
        rest = [(i, c) for i, c in checks if c.type != "pattern"]
        if not patterns:
            for i, check in checks:
                out[i] = self._error(check, CONFIG_ERROR + f"cannot build the query for {self.dialect.name}: {exc}")
            return
        for i, check in patterns:
            out[i] = self._error(check, CONFIG_ERROR + f"{self.dialect.name} has no regular-expression support that "
                                 "SQLAlchemy can use: drop the pattern check or run it with `source_task` (pandas)")
        if rest:
            self.scan(where, rest, out)

    # -- separate checks --------------------------------------------------------------------------
    def separate(self, check: BaseCheck) -> CheckResult:
        now, started, sql = self.ctx.now, time.perf_counter(), None
        dialect = self.dialect_name
        try:
            if check.where is not None:
                validate_where(check.where, dialect)
            rows: tuple[dict[str, Any], ...] = ()
            if isinstance(check, SchemaCheck):
                trans = self.conn.begin()
                try:
                    verdict, sql = sep.schema_check(self.conn, self.table, check)
                finally:
                    trans.rollback()
            elif isinstance(check, ReferentialCheck):
                if check.parent_conn_id and self.conn_id and check.parent_conn_id != self.conn_id:
                    raise sep.CheckConfigError(
                        f"parent_conn_id {check.parent_conn_id!r} differs from the table's connection {self.conn_id!r}: "
                        "the parent must be reachable in the same database (one query)")
                stmt = sep.referential_stmt(self.table, check.where, check, dialect)
                sql = self.sql_text(stmt)
                verdict = sep.referential_verdict(check, self.run(stmt, lambda r: r.scalar_one()))
            elif isinstance(check, UniqueCheck):
                stmt = sep.combo_unique_stmt(self.table, check.where, check, dialect)
                sql = self.sql_text(stmt)
                verdict = evaluate(check, {"duplicates": self.run(stmt, lambda r: r.scalar_one())}, self.ctx)
                if not verdict.passed and self.samples > 0:
                    rows = self.samples_for(sample_statement(self.table, check.where, check, self.samples, dialect=dialect))
            elif isinstance(check, SqlCheck):
                text = sep.check_sql(sep.load_sql(check, self.base_dir), check, dialect)
                stmt = sep.sql_check_stmt(text, check)
                sql = text
                if check.expect == "truthy":  # streamed: only the first row is ever fetched
                    value = self.run(stmt, lambda r: (r.first() or (None,))[0], stream=True)
                else:
                    value = self.run(stmt, lambda r: r.scalar_one())
                verdict = sep.sql_check_verdict(check, value)
                if not verdict.passed and check.expect == "no_rows" and self.samples > 0:
                    rows = self.samples_for(sep.sql_check_sample(text, self.samples))
            else:
                raise sep.CheckConfigError(f"check type {check.type!r} cannot run with the SQL engine")
        except (sep.CheckConfigError, UnsafeFilterError) as exc:
            return error_result(check, CONFIG_ERROR + str(exc), table=self.table, engine=ENGINE, now=now, sql=sql)
        except NoSuchTableError:
            return error_result(check, self.missing_table_text(), table=self.table, engine=ENGINE, now=now, sql=sql)
        except SQLAlchemyError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            text = self.failure_text(exc, f"the {check.type} query")
            if not is_timeout(exc) and not isinstance(check, SqlCheck):
                exists, missing = self.diagnose(check.column_list())
                if not exists:
                    text = self.missing_table_text()
                elif missing:
                    text = f"column {', '.join(missing)} not found in table {self.table}"
                elif isinstance(check, ReferentialCheck):
                    text += f" (parent {check.parent_table}.{check.parent_column}: does it exist?)"
            return error_result(check, text, table=self.table, engine=ENGINE, now=now, sql=sql, duration_ms=elapsed)
        elapsed = (time.perf_counter() - started) * 1000
        return from_verdict(check, verdict, table=self.table, engine=ENGINE, now=now, sql=sql, duration_ms=elapsed, failing_rows=rows)


def run_checks(
    engine: sa.Engine,
    table: str,
    checks: Sequence[BaseCheck],
    *,
    now: dt.datetime,
    timestamp_column: str | None,
    timezone: str | None = None,
    statement_timeout_s: int = 300,
    failing_rows_sample: int = 0,
    history: Callable[[str, int], list[float]] | None = None,
    base_dir: Path | None = None,
    conn_id: str | None = None,
) -> list[CheckResult]:
    """Run ``checks`` on ``table``; one result per check, in the order given.

    Aggregate checks sharing a ``where`` run as one SELECT (one scan; on PostgreSQL preceded by
    ``SET LOCAL statement_timeout`` in the same transaction); schema, referential, sql and (except
    on PostgreSQL) multi-column unique checks run one statement each; ``engine: great_expectations`` and
    ``expectation`` checks go through Great Expectations. ``now`` must be timezone-aware and is
    stamped on every result.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (take it once with datetime.now(timezone.utc))")
    split_table(table)  # a name that is not a plain identifier never reaches SQL (ValueError)
    ctx = EvalContext(now=now, timezone=timezone, history=history)
    out: dict[int, CheckResult] = {}
    scans: dict[str | None, list[tuple[int, BaseCheck]]] = {}
    separate: list[tuple[int, BaseCheck]] = []
    via_gx: list[tuple[int, BaseCheck]] = []
    for i, check in enumerate(checks):
        chosen = check.effective_engine
        if chosen == "great_expectations":
            via_gx.append((i, check))
        elif chosen == "pandas":
            out[i] = error_result(check, CONFIG_ERROR + "this check runs on a DataFrame (engine pandas / source_task), "
                                  "not on a table: give it a `source_task`", table=table, engine=ENGINE, now=now)
        elif foldable(check, engine.dialect.name):
            scans.setdefault(check.where.strip() if check.where else None, []).append((i, check))
        else:
            separate.append((i, check))
    if scans or separate:
        with engine.connect() as conn:
            prepare_connection(conn)
            runner = _Runner(conn, table, timeout_s=statement_timeout_s, samples=failing_rows_sample, ctx=ctx,
                             timestamp_column=timestamp_column, base_dir=base_dir, conn_id=conn_id)
            for where, group in scans.items():
                runner.scan(where, group, out)
            for i, check in separate:
                out[i] = runner.separate(check)
    if via_gx:
        from airflow_dataops.engine.gx_runner import run_gx_on_table

        gx_results = run_gx_on_table(engine, table, [c for _, c in via_gx], now=now, timestamp_column=timestamp_column,
                                     timezone=timezone, history=history, statement_timeout_s=statement_timeout_s)
        for (i, _), result in zip(via_gx, gx_results, strict=True):
            out[i] = result
    return [out[i] for i in range(len(checks))]
