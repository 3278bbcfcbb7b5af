"""Wait until an Airflow Asset has an event newer than ``max_age`` (the asset form of the freshness
sensor). Triggers cannot read asset events in Airflow 3.3, so it reschedules instead of deferring."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.sensor import PokeReturnValue

from airflow_dataops.compat import AirflowSensorTimeout, newest_asset_event_timestamp
from airflow_dataops.config.types import format_duration
from airflow_dataops.sensors.freshness_base import _FreshnessBase
from airflow_dataops.timeutil import human_duration, parse_utc, utcnow

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

    from airflow_dataops.triggers.freshness import Observation


class AssetFreshnessSensor(_FreshnessBase):
    """Wait until an Airflow Asset has an event newer than ``max_age``.

    Reads the asset's newest event through the Task SDK from the worker (triggers cannot read asset
    events in Airflow 3.3), so it runs in ``mode="reschedule"`` by default.

    :param asset: the ``Asset`` or its URI.
    :param max_age: the newest event may be at most this old (``timedelta``, seconds, or text).
    Other parameters as for :class:`FreshnessSensor`.
    """

    ui_color = "#d9e8f0"

    def __init__(
        self,
        *,
        asset: str | Asset,
        max_age: dt.timedelta | str | float,
        mode: str = "reschedule",
        poke_interval: dt.timedelta | float = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_age=max_age, mode=mode, poke_interval=poke_interval, **kwargs)
        if isinstance(asset, str):
            self.asset_name, self.asset_uri = None, asset
        else:
            self.asset_name, self.asset_uri = asset.name, asset.uri
        self._last: Observation | None = None

    def _observe(self) -> Observation:
        from airflow_dataops.triggers.freshness import Observation

        timestamp = newest_asset_event_timestamp(self.asset_name, self.asset_uri)
        now = utcnow()
        newest = parse_utc(timestamp) if timestamp is not None else None
        obs = Observation(
            newest=newest,
            observed_at=now,
            lag_s=None if newest is None else (now - newest).total_seconds(),
            max_age_s=self.max_age_s,
        )
        self._last = obs
        self.log.info("asset %s newest event=%s fresh=%s", self.asset_uri, newest, obs.fresh)
        return obs

    def poke(self, context: Context) -> bool | PokeReturnValue:
        obs = self._observe()
        return PokeReturnValue(True, {"asset": self.asset_uri, **obs.to_payload(), "fresh": True}) if obs.fresh else False

    def execute(self, context: Context) -> Any:
        try:
            result = super().execute(context)
        except AirflowSensorTimeout:
            obs = self._last
            if obs is not None:
                self._record(context, table=f"asset:{self.asset_uri}", column="event", obs=obs)
            allowed = format_duration(dt.timedelta(seconds=self.max_age_s))
            if obs is None or obs.newest is None:
                message = f"{self._subject()}: asset {self.asset_uri} has no events; allowed age {allowed}."
            else:
                message = (
                    f"{self._subject()}: asset {self.asset_uri} is stale: newest event {obs.newest.isoformat()} "
                    f"is {human_duration(obs.lag_s)} old, {human_duration(obs.late_by_s)} late (allowed age {allowed})."
                )
            self._timed_out(context, message, {"asset": self.asset_uri, **(obs.to_payload() if obs else {})})
        if self._last is not None:
            self._record(context, table=f"asset:{self.asset_uri}", column="event", obs=self._last)
        return result
