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

from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue

from airflow_dataops.compat import AirflowException, AirflowSensorTimeout, AirflowSkipException
from airflow_dataops.config.types import check_identifier, format_duration, parse_duration
from airflow_dataops.timeutil import human_duration, utcnow

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_dataops.triggers.freshness import Observation

#: Extra time the scheduler waits past the trigger's own deadline before failing the deferral
#: itself (only matters when no triggerer runs at all; a restarted one fires the deadline).
DEFERRAL_GRACE_S = 300.0

ON_TIMEOUT = ("fail", "skip")
#: XCom key a sensor that skipped on its timeout leaves behind: the alert watch reads it to tell
#: "this run skipped its work because data was late" (proves nothing) from an ordinary branch skip.
TIMED_OUT_XCOM_KEY = "dataops_timed_out"


def _seconds(value: dt.timedelta | float | str | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise ValueError(f"`{name}`: {exc}") from None


class _FreshnessBase(BaseSensorOperator):
    """What both sensors share: timeout policy, the results-store record, the alert."""

    def __init__(
        self,
        *,
        max_age: dt.timedelta | str | float,
        timeout: dt.timedelta | float | str | None = None,
        soft_fail: bool = False,
        on_timeout: str | None = None,
        pipeline: str | None = None,
        environment: str | None = None,
        alerts: dict | None = None,
        notifications: bool = True,
        source_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if on_timeout is not None and on_timeout not in ON_TIMEOUT:
            raise ValueError(f"`on_timeout` must be 'fail' or 'skip', got {on_timeout!r}")
        # Airflow's soft_fail skips on *any* error (BaseSensorOperator.resume_execution and poke's
        # AirflowFailException path): a dropped table would skip the pipeline silently. So Airflow
        # gets soft_fail=False and the timeout handlers below skip only on a timeout.
        # No timeout given: leave it out, so Airflow applies [sensors] default_timeout (Airflow 3.1
        # refuses timeout=None; 3.2+ reads None as that default).
        if timeout is not None:
            kwargs["timeout"] = _seconds(timeout, "timeout")
        super().__init__(soft_fail=False, **kwargs)
        self.skip_on_timeout = bool(soft_fail) or on_timeout == "skip"
        self.on_timeout = "skip" if self.skip_on_timeout else "fail"
        self.max_age_s = _seconds(max_age, "max_age")
        if not self.max_age_s or self.max_age_s <= 0:
            raise ValueError(f"`max_age` must be longer than zero, got {max_age!r}")
        self.pipeline = pipeline
        self.environment = environment
        self.alerts = alerts
        self.notifications = notifications
        self.source_name = source_name
        if alerts and not self.on_failure_callback:
            # An error (not a timeout) fails the task; after its last try this says so on the
            # channels. DAGs from the factory (and dag_alerting_kwargs) already carry one.
            from airflow_dataops.alerting.callbacks import TaskFailureNotifier

            self.on_failure_callback = [TaskFailureNotifier(
                ctx={"pipeline": pipeline, "environment": environment, "owner": getattr(self, "owner", None)},
                alerts=alerts, notifications=notifications,
            )]

    # ---------------------------------------------------------------- helpers
    def _run_ref(self, context: Context):
        from airflow_dataops import settings
        from airflow_dataops.store.results import RunRef

        ti = context["ti"]
        return RunRef(
            pipeline=self.pipeline or ti.dag_id,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            environment=self.environment or settings.get("environment"),
            map_index=getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1,
            try_number=getattr(ti, "try_number", 1) or 1,
        )

    def _subject(self) -> str:
        return self.source_name or self.task_id

    def _record(self, context: Context, *, table: str, column: str, obs: Observation) -> None:
        """Upsert the final observation; a store outage is logged, never changes the outcome."""
        try:
            from airflow_dataops.store.results import ResultsStore

            ResultsStore.default().record_freshness(
                self._run_ref(context),
                source="sensor",
                table=table,
                column=column,
                newest=obs.newest,
                observed_at=obs.observed_at,
                max_age_s=obs.max_age_s,
                fresh=obs.fresh,
            )
        except Exception:  # noqa: BLE001
            self.log.exception("could not record the freshness observation in the results store")

    def _alert(self, context: Context, message: str, details: dict[str, Any]) -> None:
        if not self.alerts:
            return
        try:
            from airflow_dataops.alerting.dispatch import dispatch_event
        except ImportError:
            self.log.warning("alerting is not available: no freshness_timeout alert sent")
            return
        run = self._run_ref(context)
        ctx = {
            "pipeline": run.pipeline,
            "dag_id": run.dag_id,
            "environment": run.environment,
            "owner": getattr(self, "owner", None),
            "notifications": self.notifications,
            "ui_base_url": None,
        }
        try:
            dispatch_event(
                ctx, run, "freshness_timeout", self._subject(), message, details, self.alerts, self.notifications
            )
        except Exception:  # noqa: BLE001 - alerting must never change the task outcome
            self.log.exception("sending the freshness_timeout alert failed")

    def _timed_out(self, context: Context, message: str, details: dict[str, Any]):
        """Log, alert, then skip (on_timeout=skip) or fail without retry."""
        self.log.error("%s", message)
        self._alert(context, message, details)
        if self.skip_on_timeout:
            ti = context.get("ti") if hasattr(context, "get") else None
            try:
                ti.xcom_push(key=TIMED_OUT_XCOM_KEY, value=message)
            except Exception:  # noqa: BLE001 - a marker for the alert watch, never the outcome
                self.log.warning("could not leave the timed-out marker for the alert watch")
            raise AirflowSkipException(f"{message} (on_timeout=skip: downstream tasks are skipped)")
        raise AirflowSensorTimeout(message)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context):
        # BaseSensorOperator turns the scheduler's deferral timeout (no triggerer answered in time)
        # into AirflowSensorTimeout: that is a timeout too, so it gets the same message, alert and
        # on_timeout policy. Everything else (our own timeout or skip, real errors) passes through.
        from airflow_dataops.compat import TaskDeferralTimeout

        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout as exc:
            if not isinstance(exc.__cause__, TaskDeferralTimeout):
                raise
            self._deferral_timed_out(context)
            raise

    def _deferral_timed_out(self, context: Context) -> None:
        self._timed_out(
            context,
            f"{self._subject()}: the triggerer did not report within the sensor's timeout "
            f"({human_duration(self.timeout)}) plus {human_duration(DEFERRAL_GRACE_S)}: is a triggerer running?",
            {},
        )


class FreshnessSensor(_FreshnessBase):
    """Wait until the newest ``timestamp_column`` of ``table`` is at most ``max_age`` old.

    :param conn_id: Airflow connection of the database (any common-sql connection).
    :param table: table, optionally schema-qualified (``analytics.orders``).
    :param timestamp_column: column whose maximum is the newest row's time.
    :param max_age: ``timedelta``, seconds, or a duration like ``"2 hours"``.
    :param where: optional filter, one SQL condition (templated), e.g. ``"region = 'eu'"``.
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

    Returns (XCom) ``{"table", "newest", "lag_s", "max_age_s", "observed_at", "fresh"}``.
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
        self._raw_where = where  # before templating: does it refer to the run's data interval?
        self.timezone = timezone
        self.deferrable = deferrable
        self._last: Observation | None = None

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
        return {"table": self.table, **obs.to_payload(), "fresh": obs.fresh}

    def _succeed(self, context: Context, obs: Observation) -> dict[str, Any]:
        self._record(context, table=self.table, column=self.timestamp_column, obs=obs)
        return self._result(obs)

    def timeout_message(self, obs: Observation | None, waited_s: float | None = None, reason: str | None = None) -> str:
        """What the timeout found. ``obs`` None: nothing could be observed (``reason`` says why)."""
        where = f" where ({self.where})" if self.where else ""
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
        from airflow_dataops.engine.run_window import filter_cannot_apply

        why = filter_cannot_apply(self._raw_where, context)
        if why:
            self.log.warning("`where` dropped: this run %s (manual or asset-triggered), so the newest row of the "
                             "whole table counts (filter was %r)", why, self._raw_where)
            self.where = None
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
