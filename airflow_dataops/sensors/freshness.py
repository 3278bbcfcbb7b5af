"""Freshness sensors: wait until upstream data is young enough, or stop the run with a reason.

``FreshnessSensor`` waits for ``max(timestamp_column)`` of a table to be within ``max_age`` of
now. It defers to :class:`~airflow_dataops.triggers.freshness.FreshnessTrigger` by default
(no worker slot while waiting); ``deferrable=False`` uses the classic ``mode="poke"`` or
``mode="reschedule"``. ``AssetFreshnessSensor`` waits for an Airflow Asset event newer than
``max_age`` (reschedule mode: triggers cannot read asset events in Airflow 3.3).

On timeout both fail with a message giving the newest timestamp found and how late it is
(``AirflowSensorTimeout``: not retried), or skip when ``on_timeout="skip"`` (or ``soft_fail=True``).
The skip is for the timeout only: a real error (missing table or column, bad filter, permanent
query error, a database unreachable until the deadline) fails the task in every mode, so Airflow's
retries apply and, after the last one, the ``task_failed`` alert goes out. (Airflow's own
``soft_fail`` would turn every error into a silent skip; these sensors never hand it to Airflow.)
The final observation (success or timeout) is written to the results store from the worker, and
a ``freshness_timeout`` alert is dispatched when ``alerts`` are configured.

This module imports cheaply: SQLAlchemy, the trigger and the store load inside methods.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.sensor import PokeReturnValue

from airflow_dataops.compat import AirflowException, AirflowSensorTimeout
from airflow_dataops.config.types import check_identifier, format_duration
from airflow_dataops.sensors.freshness_base import (  # noqa: F401 - TIMED_OUT_XCOM_KEY: imported from here too
    DEFERRAL_GRACE_S,
    TIMED_OUT_XCOM_KEY,
    _FreshnessBase,
)
from airflow_dataops.timeutil import human_duration, utcnow

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_dataops.triggers.freshness import Observation


class FreshnessSensor(_FreshnessBase):
    """Wait until the newest ``timestamp_column`` of ``table`` is at most ``max_age`` old.

    :param conn_id: Airflow connection of the database (any common-sql connection).
    :param table: table, optionally schema-qualified (``analytics.orders``).
    :param timestamp_column: column whose maximum is the newest row's time.
    :param max_age: ``timedelta``, seconds, or a duration like ``"2 hours"``.
    :param where: optional filter, one SQL condition (templated), e.g. ``"region = 'eu'"``. One that
        uses a run value the run lacks (the data interval of a manual run, read directly or through
        ``dag_run``) is dropped, as in the check operator; the log and the result's ``note`` say so.
    :param timezone: IANA zone of naive timestamps (default UTC).
    :param deferrable: wait in the triggerer (the default unless ``mode`` is given). ``False`` uses
        ``mode`` (default ``"poke"``) instead.
    :param mode: ``"poke"`` or ``"reschedule"``: passing it (without ``deferrable``) means
        ``deferrable=False`` and that mode, as for any Airflow sensor. ``deferrable=True`` together
        with ``mode="reschedule"`` is refused (it cannot do both).
    :param timeout: how long to wait (timedelta, seconds, or duration text) before giving up.
    :param soft_fail: skip instead of fail on timeout (same as ``on_timeout="skip"``). Only the
        timeout skips: errors still fail the task.
    :param on_timeout: ``"fail"`` (default) or ``"skip"``.
    :param pipeline: pipeline name for the results store (default: the DAG id).
    :param environment: environment for the results store and alerts (default ``[dataops] environment``).
    :param alerts: the pipeline's ``alerts`` section; when given a timeout sends ``freshness_timeout``,
        and an error (after the last try) ``task_failed`` (a ``TaskFailureNotifier`` is set as
        ``on_failure_callback`` unless the task has one).
    :param notifications: False silences alerts for this environment.
    :param source_name: name of this source in alerts and the UI (default: the task id).

    Returns (XCom) ``{"table", "newest", "lag_s", "max_age_s", "observed_at", "fresh"}``, and ``"note"``
    when the ``where`` was dropped.
    """

    template_fields = ("where",)
    ui_color = "#d9f0e3"

    def __init__(
        self,
        *,
        conn_id: str,
        table: str,
        timestamp_column: str,
        max_age: dt.timedelta | str | float,
        where: str | None = None,
        timezone: str | None = None,
        deferrable: bool | None = None,
        poke_interval: dt.timedelta | float = 60,
        timeout: dt.timedelta | float | str | None = None,
        soft_fail: bool = False,
        on_timeout: str | None = None,
        mode: str | None = None,
        pipeline: str | None = None,
        environment: str | None = None,
        alerts: dict | None = None,
        notifications: bool = True,
        source_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if deferrable is None:
            deferrable = mode is None  # asking for a mode means that mode, not a deferral
        elif deferrable and mode == "reschedule":
            raise ValueError(
                "FreshnessSensor: deferrable=True and mode='reschedule' contradict each other: pass "
                "deferrable=False to reschedule, or leave mode out to defer (no worker slot either way)"
            )
        mode = mode or "poke"
        super().__init__(
            max_age=max_age,
            timeout=timeout,
            soft_fail=soft_fail,
            on_timeout=on_timeout,
            pipeline=pipeline,
            environment=environment,
            alerts=alerts,
            notifications=notifications,
            source_name=source_name,
            poke_interval=poke_interval,
            mode=mode,
            **kwargs,
        )
        self.conn_id = conn_id
        self.table = check_identifier(table, dotted=True)
        self.timestamp_column = check_identifier(timestamp_column)
        self.where = where
        self._raw_where = where  # the template, rendered for each run (``_do_render_template_fields``)
        self._where_note: str | None = None  # why this run's `where` was dropped (set when rendering)
        self.timezone = timezone
        self.deferrable = deferrable
        self._last: Observation | None = None

    # ------------------------------------------------------------- rendering
    def _do_render_template_fields(self, parent: Any, template_fields: Any, context: Context, jinja_env: Any,
                                   seen_oids: set[int]) -> None:
        """``where`` renders by the check operator's rule (``engine.run_window.render_guarded``): a
        filter that uses a run value this run lacks (``{{ data_interval_start }}`` or
        ``{{ dag_run.data_interval_start }}`` on a manual run, a zero-width interval) is dropped,
        and the log and the result say so."""
        if parent is not self or "where" not in template_fields or not isinstance(self._raw_where, str):
            super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
            return
        rest = [f for f in template_fields if f != "where"]
        if rest:
            super()._do_render_template_fields(parent, rest, context, jinja_env, seen_oids)
        from airflow_dataops.engine.run_window import render_guarded
        from airflow_dataops.operators.rendering import dropped_filter_note

        self.where, why = render_guarded(lambda text, ctx: self.render_template(text, ctx, jinja_env), self._raw_where, context)
        self._where_note = dropped_filter_note(why, "the newest row of the whole table counts") if why else None

    # ------------------------------------------------------------- observing
    def _where_sql(self) -> str | None:
        from airflow_dataops.engine.sql_objects import validate_where

        if self.where is None or not str(self.where).strip():
            return None
        return validate_where(str(self.where))

    def _observe(self) -> Observation:
        from airflow_dataops.triggers.freshness import observe_freshness

        from airflow_dataops import settings

        obs = observe_freshness(
            self.conn_id, self.table, self.timestamp_column, self.max_age_s, self._where_sql(), self.timezone,
            timeout_s=float(settings.get_int("statement_timeout")),
        )
        self._last = obs
        self.log.info(
            "%s.%s newest=%s lag=%s max_age=%s fresh=%s",
            self.table,
            self.timestamp_column,
            obs.newest.isoformat() if obs.newest else None,
            human_duration(obs.lag_s) if obs.lag_s is not None else None,
            format_duration(dt.timedelta(seconds=self.max_age_s)),
            obs.fresh,
        )
        return obs

    def _result(self, obs: Observation) -> dict[str, Any]:
        result = {"table": self.table, **obs.to_payload(), "fresh": obs.fresh}
        if self._where_note:
            result["note"] = self._where_note
        return result

    def _succeed(self, context: Context, obs: Observation) -> dict[str, Any]:
        self._record(context, table=self.table, column=self.timestamp_column, obs=obs)
        return self._result(obs)

    def timeout_message(self, obs: Observation | None, waited_s: float | None = None, reason: str | None = None) -> str:
        """What the timeout found. ``obs`` None: nothing could be observed (``reason`` says why)."""
        where = f" where ({self.where})" if self.where else (f" ({self._where_note})" if self._where_note else "")
        head = f"{self._subject()}: {self.table}.{self.timestamp_column}{where} on connection {self.conn_id!r}"
        allowed = format_duration(dt.timedelta(seconds=self.max_age_s))
        waited = f" after waiting {human_duration(waited_s)}" if waited_s is not None else ""
        if obs is None:
            why = f": {reason}" if reason else ""
            return f"{head} could not be checked before the timeout{waited}{why}; allowed age {allowed}."
        latest = f" The latest poll gave no answer: {reason}." if reason else ""
        if obs.newest is None:
            return f"{head} is stale{waited}: no row has a timestamp (max is NULL); allowed age {allowed}.{latest}"
        return (
            f"{head} is stale{waited}: newest timestamp {obs.newest.isoformat()} is {human_duration(obs.lag_s)} old, "
            f"{human_duration(obs.late_by_s)} late (allowed age {allowed}, checked at {obs.observed_at.isoformat()}).{latest}"
        )

    def _fail_timeout(self, context: Context, obs: Observation | None, waited_s: float | None, reason: str | None = None):
        """Record what was observed (nothing when nothing was: no made-up NULL row), alert, skip or fail."""
        if obs is not None:
            self._record(context, table=self.table, column=self.timestamp_column, obs=obs)
        details = {"table": self.table, "column": self.timestamp_column, "conn_id": self.conn_id}
        if obs is not None:
            details |= self._result(obs)
        else:
            details |= {"observed": False, "reason": reason}
        self._timed_out(context, self.timeout_message(obs, waited_s, reason), details)

    # -------------------------------------------------------------- running
    def poke(self, context: Context) -> bool | PokeReturnValue:
        obs = self._observe()
        return PokeReturnValue(True, self._result(obs)) if obs.fresh else False

    def execute(self, context: Context) -> Any:
        if self._where_note:
            self.log.warning("%s (filter was %r)", self._where_note, self._raw_where)
        if not self.deferrable:
            try:
                result = super().execute(context)
            except AirflowSensorTimeout:
                # BaseSensorOperator's timeout (poke or reschedule clock): say what was found.
                self._fail_timeout(context, self._last, self.timeout)
            if self._last is not None:
                self._record(context, table=self.table, column=self.timestamp_column, obs=self._last)
            return result
        return self._defer_or_finish(context)

    def _defer_or_finish(self, context: Context) -> Any:
        from airflow_dataops.triggers.freshness import FreshnessTrigger, describe_error, is_transient
        from airflow_dataops.triggers.settle import not_before

        started = utcnow()
        try:
            obs = self._observe()
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.log.warning("database unreachable (%s): deferring, the trigger retries", describe_error(exc))
        else:
            if obs.fresh:  # fresh already: no trigger needed
                return self._succeed(context, obs)
        deadline = started + dt.timedelta(seconds=self.timeout)
        if self.timeout <= 0:
            self._fail_timeout(context, self._last, 0.0)
        self.defer(
            trigger=FreshnessTrigger(
                conn_id=self.conn_id,
                table=self.table,
                timestamp_column=self.timestamp_column,
                max_age_s=self.max_age_s,
                where_sql=self._where_sql(),
                timezone=self.timezone,
                poke_interval=self.poke_interval,
                deadline=deadline.isoformat(),
                not_before=not_before(),
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout + DEFERRAL_GRACE_S + self.poke_interval),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger. Idempotent: a repeated event gives the same outcome and row."""
        from airflow_dataops.triggers.freshness import Observation

        if not event or "status" not in event:
            raise AirflowException(f"{self._subject()}: the freshness trigger returned no event ({event!r})")
        status = event["status"]
        self.log.info(
            "freshness trigger event: status=%s polls=%s observed_at=%s deadline=%s",
            status, event.get("polls"), event.get("observed_at"), event.get("deadline"),
        )
        observed = event.get("observed", True) and event.get("observed_at")  # events of older versions: observed
        obs = Observation.from_payload(event) if observed and status != "error" else None
        if status == "fresh" and obs is not None:
            self.log.info("%s is fresh after %s poll(s) in the triggerer", self.table, event.get("polls"))
            return {**self._succeed(context, obs), "polls": event.get("polls")}
        if status == "timeout":
            self._fail_timeout(context, obs, self.timeout, event.get("error"))
        kind = event.get("error_kind")
        how = "was unreachable until the deadline" if kind == "unreachable" else "could not be checked"
        raise AirflowException(
            f"{self._subject()}: freshness of {self.table}.{self.timestamp_column} on connection "
            f"{self.conn_id!r} {how}: {event.get('error')}"
        )


def __getattr__(name: str):
    # The asset form lives in its own module; this keeps `from ...sensors.freshness import
    # AssetFreshnessSensor` working.
    if name == "AssetFreshnessSensor":
        from airflow_dataops.sensors.asset_freshness import AssetFreshnessSensor

        return AssetFreshnessSensor
    raise AttributeError(name)
