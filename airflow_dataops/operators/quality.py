"""``DataQualityOperator``: run data-quality checks on a table (or a task's DataFrame) in a DAG.

Usable in any Python DAG (the YAML factory builds the same operator)::

    DataQualityOperator(task_id="orders_quality", conn_id="warehouse", table="analytics.orders",
                        timestamp_column="updated_at",
                        checks=[{"type": "row_count", "threshold": 1000},
                                {"type": "null_check", "columns": ["order_id"], "action": "warn"},
                                {"type": "row_count", "min": 1, "name": "todays_rows",
                                 "where": "created_at >= '{{ data_interval_start }}'"}])

Outcome: every result is written to the results store first. ``warn`` results never fail the task;
any ``fail`` result raises ``AirflowFailException`` (no retry: the data will not change by
retrying); a check that could not run (missing table or column, query error, timeout) raises a
retryable ``CheckExecutionError``. When both happen in one run the data failure wins (no retry) and
the message says which checks could not run. The XCom return value is the list of results (names,
observed and expected values; never row samples).

Only a check's ``where`` and ``sql`` are templated (and ``table``): other strings in ``checks``
(``kwargs`` of an expectation, names, values) are never rendered.

Runs without a data interval (manual or asset-triggered runs) or with a zero-width one: a check's
``where`` that uses ``data_interval_*`` (or ``logical_date``/``ds``/``ts`` when the run has no
logical date, or a ``prev_*_success`` value on a first run) is dropped, the check runs over the
whole table, and the result message says so. A ``sql`` check cannot be cut down like that: when its
SQL uses such a value it does not run and its result says how to guard the template.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_dataops.operators import rendering

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_dataops.config.checks import BaseCheck
    from airflow_dataops.engine.result import CheckResult

log = logging.getLogger(__name__)

MAX_LISTED = 10
MAX_VALUE_CHARS = 200  # per observed / expected value in the failure message
MAX_TEXT_CHARS = 400  # per error or verdict message in the failure message


class CheckExecutionError(RuntimeError):
    """A check could not run (missing table/column, query error, timeout): retryable, not a data failure."""


def _as_dict(check: Any) -> dict[str, Any]:
    if isinstance(check, dict):
        return dict(check)
    return check.model_dump(mode="json", exclude_unset=True)


class DataQualityOperator(BaseOperator):
    """Run ``checks`` against ``table`` on connection ``conn_id`` and record every result.

    :param conn_id: Airflow connection of the table (any SQLAlchemy-capable SQL connection).
    :param table: table name, optionally ``schema.table``. Templated.
    :param checks: check definitions (dicts or check models). Templated (``where``, ``sql``).
    :param timestamp_column: default column of ``freshness`` checks.
    :param timezone: zone of naive timestamps (default UTC).
    :param pipeline: pipeline name in the results store and alerts (default: the DAG id).
    :param environment: default ``[dataops] environment``.
    :param source_task: run every check on the DataFrame returned by this task (pandas engine).
    :param alerts: the pipeline's ``alerts`` section; when set, warned/failed checks are alerted.
    :param notifications: False records alerts as suppressed instead of sending them.
    :param base_dir: directory of relative ``.sql`` files of ``sql`` checks (default: the DAG file's).
    """

    template_fields: Sequence[str] = ("table", "checks")
    template_fields_renderers = {"checks": "json"}
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        conn_id: str,
        table: str,
        checks: list[dict[str, Any] | BaseCheck],
        timestamp_column: str | None = None,
        timezone: str | None = None,
        pipeline: str | None = None,
        environment: str | None = None,
        source_task: str | None = None,
        alerts: dict[str, Any] | None = None,
        notifications: bool = True,
        owner: str | None = None,
        base_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        if owner is not None:
            kwargs["owner"] = owner
        super().__init__(**kwargs)
        from airflow_dataops.config.checks import parse_checks

        self.conn_id = conn_id
        self.table = table
        self.checks = [_as_dict(c) for c in checks]
        parsed = parse_checks(self.checks)  # configuration errors surface when the DAG is parsed
        names = [c.check_name for c in parsed]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{self.task_id}: check names must be unique, {duplicates} repeat: give the checks distinct `name`s")
        self._run_notes: dict[int, str] = {}  # check index -> why its `where` was dropped (set when rendering)
        self._run_errors: dict[int, str] = {}  # check index -> why it cannot run (set when rendering)
        self.timestamp_column = timestamp_column
        self.timezone = timezone
        self.pipeline = pipeline
        self.environment = environment
        self.source_task = source_task
        self.alerts = alerts
        self.notifications = notifications
        self.base_dir = base_dir

    # ------------------------------------------------------------------ rendering
    def _do_render_template_fields(self, parent: Any, template_fields: Any, context: Context, jinja_env: Any,
                                   seen_oids: set[int]) -> None:
        """Airflow renders every string of a templated field; in ``checks`` only ``where`` and
        ``sql`` are templates (``operators.rendering``). Mapped tasks come through here too."""
        if parent is not self or "checks" not in template_fields:
            super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
            return
        rest = [f for f in template_fields if f != "checks"]
        if rest:
            super()._do_render_template_fields(parent, rest, context, jinja_env, seen_oids)
        rendered = rendering.render_checks(self._renderer(jinja_env), self.checks, context)
        self.checks, self._run_notes, self._run_errors = rendered.checks, rendered.notes, rendered.errors

    def _renderer(self, jinja_env: Any) -> rendering.Render:
        return lambda text, ctx: self.render_template(text, ctx, jinja_env)

    def _base_dir(self) -> Path | None:
        """Where relative ``.sql`` files are: ``base_dir``, or the DAG file's folder."""
        if self.base_dir:
            return Path(self.base_dir)
        if self.has_dag() and self.dag.fileloc:
            return Path(self.dag.fileloc).parent
        return None

    # ------------------------------------------------------------------ running
    def _frame(self, context: Context, task_id: str) -> Any:
        import pandas as pd

        value = context["ti"].xcom_pull(task_ids=task_id)
        if isinstance(value, pd.DataFrame):
            return value
        if isinstance(value, list | dict):
            return pd.DataFrame(value)
        raise TypeError(f"task {task_id!r} returned {type(value).__name__}, not a DataFrame (or list of records)")

    def _run(self, context: Context, checks: list[BaseCheck], now: dt.datetime, history) -> list[CheckResult]:
        from airflow_dataops import settings
        from airflow_dataops.engine.outcome import error_result
        from airflow_dataops.engine.pandas_runner import run_checks_on_frame
        from airflow_dataops.engine.sql_runner import run_checks
        from airflow_dataops.hooks.sql import get_engine

        timeout_s = settings.get_int("statement_timeout")
        samples = max(settings.get_int("failing_rows_sample"), 0)
        groups: dict[tuple[str, str, str | None], list[int]] = {}
        out: dict[int, CheckResult] = {}
        for i, check in enumerate(checks):
            if i in self._run_errors:
                out[i] = error_result(check, self._run_errors[i], table=check.table or self.table, engine="sql", now=now)
                continue
            source = check.source_task or self.source_task
            groups.setdefault((check.conn_id or self.conn_id, check.table or self.table, source), []).append(i)
        for (conn_id, table, source), indexes in groups.items():
            group = [checks[i] for i in indexes]
            try:
                if source:
                    label = f"DataFrame returned by task {source}"
                    frame_checks = [c.model_copy(update={"engine": None}) if c.engine == "sql" else c for c in group]
                    results = run_checks_on_frame(self._frame(context, source), frame_checks, now=now,
                                                  timestamp_column=self.timestamp_column, timezone=self.timezone,
                                                  failing_rows_sample=samples, history=history, source=label)
                else:
                    results = run_checks(get_engine(conn_id), table, group, now=now, timestamp_column=self.timestamp_column,
                                         timezone=self.timezone, statement_timeout_s=timeout_s, failing_rows_sample=samples,
                                         history=history, base_dir=Path(self.base_dir) if self.base_dir else None, conn_id=conn_id)
            except Exception as exc:  # connection missing, database unreachable, bad XCom
                text = f"{type(exc).__name__}: {exc}".splitlines()[0][:400]
                results = [error_result(c, text, table=(f"task {source}" if source else f"{table} (connection {conn_id})"),
                                        engine="pandas" if source else "sql", now=now) for c in group]
            out.update(zip(indexes, results, strict=True))
        return [out[i] for i in range(len(checks))]

    # ------------------------------------------------------------------ execute
    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_dataops import settings
        from airflow_dataops.config.checks import parse_checks
        from airflow_dataops.store.results import ResultsStore, RunRef

        now = dt.datetime.now(dt.timezone.utc)  # one "now" for every check of this run
        ti = context["ti"]
        dag_id = ti.dag_id
        pipeline = self.pipeline or dag_id
        environment = self.environment or settings.get("environment")
        run = RunRef(pipeline=pipeline, dag_id=dag_id, run_id=context["run_id"], task_id=ti.task_id, environment=environment,
                     map_index=getattr(ti, "map_index", -1) if getattr(ti, "map_index", -1) is not None else -1,
                     try_number=getattr(ti, "try_number", 1) or 1)
        from airflow_dataops.compat import AirflowFailException

        from airflow_dataops.engine.sql_objects import check_identifier

        try:
            check_identifier(self.table, dotted=True)
            checks = parse_checks(self.checks)
        except ValueError as exc:  # a rendered value that is not valid: retrying will not fix it
            raise AirflowFailException(f"{self.task_id}: invalid check configuration after rendering: {exc}") from None
        checks = rendering.resolve_sql_files(self._renderer(self.get_template_env()), checks, context, self._base_dir(),
                                             self._run_errors)
        notes = self._run_notes
        # volume_anomaly compares counts of the same rows only: filtered with filtered, whole table with whole table
        where_applied = {c.check_name: c.where is not None for c in checks}

        store, store_error = None, None
        try:
            store = ResultsStore.default()
        except Exception as exc:
            store_error = f"results store unavailable: {type(exc).__name__}: {exc}"
            log.error("%s", store_error)

        def history(check_name: str, lookback: int) -> list[float]:
            if store is None:
                return []
            return store.observed_history(pipeline, check_name, lookback, environment=environment,
                                          where_applied=where_applied.get(check_name), exclude_run_id=run.run_id)

        results = self._run(context, checks, now, history)
        results = [_with_note(r, notes[i]) if i in notes else r for i, r in enumerate(results)]
        for r in results:
            log.log(logging.INFO if r.status == "passed" else logging.WARNING, "[%s] %s on %s: %s", r.status.upper(), r.name, r.table, r.message)

        if store is not None:
            try:
                store.record_results(run, results)
                self._record_freshness(store, run, results, now)
            except Exception as exc:
                store_error = f"could not write results to the store ({store.description}): {type(exc).__name__}: {exc}"
                log.error("%s", store_error)
        where = (f"results store ({_store_label(store)}), dag {dag_id}, run {run.run_id}, task {run.task_id}"
                 if store is not None else "this task's log and XCom (the results store was unavailable)")
        if self.alerts:
            self._alert(run, pipeline, environment, results)
        self._raise_for(results, where, store_error)
        return [r.to_xcom() for r in results]

    @staticmethod
    def _record_freshness(store: Any, run: Any, results: list[CheckResult], now: dt.datetime) -> None:
        """Freshness checks also feed the store's freshness history (shared with the sensors)."""
        for r in results:
            if r.check_type != "freshness" or r.status == "error" or not r.columns:
                continue
            age = r.observed if isinstance(r.observed, int | float) else None
            limits = r.expected if isinstance(r.expected, dict) else {}
            store.record_freshness(
                run, source="check", table=r.table or "", column=r.columns[0],
                newest=(now - dt.timedelta(seconds=age)) if age is not None else None, observed_at=now,
                max_age_s=limits.get("max_age_s") or limits.get("error_after_s") or limits.get("warn_after_s"),
                fresh=r.passed,
            )

    def _alert(self, run: Any, pipeline: str, environment: str, results: list[CheckResult]) -> None:
        try:
            from airflow_dataops.alerting.dispatch import dispatch_check_results
        except ImportError as exc:
            log.warning("alerting is not available (%s): results recorded, no alerts sent", exc)
            return
        ctx = {"pipeline": pipeline, "dag_id": run.dag_id, "environment": environment, "owner": self.owner,
               "notifications": self.notifications, "ui_base_url": None}
        try:
            dispatch_check_results(ctx, run, results, self.alerts, self.notifications)
        except Exception:
            log.exception("alerting failed; the task outcome does not depend on it")

    @staticmethod
    def _raise_for(results: list[CheckResult], where: str, store_error: str | None) -> None:
        from airflow_dataops.compat import AirflowFailException

        from airflow_dataops.engine.outcome import CONFIG_ERROR

        failed = [r for r in results if r.status == "failed"]
        errors = [r for r in results if r.status == "error"]
        config_errors = [r for r in errors if (r.error or "").startswith(CONFIG_ERROR)]
        retryable = [r for r in errors if r not in config_errors]
        warned = sum(r.status == "warned" for r in results)
        if failed or (config_errors and not retryable):
            bad = failed + config_errors
            lines = [f"{len(failed)} of {len(results)} data-quality checks failed" + (f", {len(config_errors)} are misconfigured" if config_errors else "")
                     + (f" ({warned} warned)" if warned else "") + ":"]
            lines += [f"  - {_describe(r)}" for r in bad[:MAX_LISTED]]
            if len(bad) > MAX_LISTED:
                lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
            if retryable:
                names = ", ".join(r.name for r in retryable[:MAX_LISTED]) + (" ..." if len(retryable) > MAX_LISTED else "")
                lines.append(f"  {len(retryable)} other checks could not run ({names}): the task is not retried because of "
                             "the failed checks, so clear it once the cause is fixed to run them again")
            lines.append(f"Full results: {where}; also this task's XCom return value.")
            if store_error:
                lines.append(store_error)
            raise AirflowFailException("\n".join(lines))
        if retryable:
            lines = [f"{len(retryable)} of {len(results)} checks could not run (not a data failure; retrying may help):"]
            lines += [f"  - {r.name} on {r.table}: {_capped(r.error, MAX_TEXT_CHARS)}" for r in retryable[:MAX_LISTED]]
            if len(retryable) > MAX_LISTED:
                lines.append(f"  ... and {len(retryable) - MAX_LISTED} more")
            lines.append(f"Full results: {where}.")
            raise CheckExecutionError("\n".join(lines))
        if store_error:
            raise CheckExecutionError(f"checks ran ({len(results)}, none failed) but {store_error}")


def _capped(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``value`` as text of at most ``limit`` characters, saying how much was left out."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _describe(result: CheckResult) -> str:
    from airflow_dataops.engine.result import _jsonable

    if result.status == "error":
        return f"{result.name} on {result.table}: {_capped(result.error, MAX_TEXT_CHARS)}"
    return (f"{result.name} ({result.check_type}) on {result.table}: observed {_capped(_jsonable(result.observed))}, "
            f"expected {_capped(_jsonable(result.expected))}: {_capped(result.message, MAX_TEXT_CHARS)}")


def _store_label(store: Any) -> str:
    """``connection 'dataops_results' (postgresql)`` or ``embedded SQLite file /path`` (no advice)."""
    return str(store.description).split(", because ")[0]


def _with_note(result: CheckResult, note: str) -> CheckResult:
    import dataclasses

    return dataclasses.replace(result, message=f"{result.message}; {note}" if result.message else note)
