"""What both freshness sensors share (``FreshnessSensor``, ``AssetFreshnessSensor``): the timeout
policy (fail, or skip on the timeout only), the results-store record, the alerts.

Imports cheaply (DAG parsing): the store and alerting load inside methods.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from airflow_dataops.compat import AirflowSensorTimeout, AirflowSkipException
from airflow_dataops.config.types import parse_duration
from airflow_dataops.timeutil import human_duration

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
                ctx={"pipeline": pipeline, "environment": self._environment(), "owner": getattr(self, "owner", None)},
                alerts=alerts, notifications=notifications,
            )]

    # ---------------------------------------------------------------- helpers
    def _environment(self) -> str:
        """The environment this sensor records and alerts under: its own, or ``[dataops] environment``."""
        from airflow_dataops import settings

        return self.environment or settings.get("environment")

    def _run_ref(self, context: Context):
        from airflow_dataops.store.results import RunRef

        ti = context["ti"]
        return RunRef(
            pipeline=self.pipeline or ti.dag_id,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            environment=self._environment(),
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
