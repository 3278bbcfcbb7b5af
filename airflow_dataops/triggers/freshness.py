"""FreshnessTrigger: wait in the triggerer until a table's newest row is young enough.

How it behaves (and why):

- **Absolute deadline.** ``deadline`` is an ISO UTC moment fixed by the sensor when it deferred.
  A triggerer that is killed or restarted runs ``run()`` again from the start; because the wait
  ends at the same absolute moment, it resumes rather than starting the timeout over. Polls are
  scheduled at absolute moments too (``min(next poll, deadline)``), so the last poll happens at
  the deadline itself, and the timeout event reports what was there at that moment. The first
  wait is shortened by a stable per-trigger fraction (``_phase``) so that many triggers deferred
  at once do not poll in lockstep.
- **No blocking in the event loop.** Each poll runs ``observe_freshness`` (SQLAlchemy, sync) in a
  small thread pool owned by this module, one pool per connection id, shared by every freshness
  trigger in the process. The pool size (``MAX_CONNECTIONS_PER_CONN_ID``) bounds both the
  threads and the database connections: 1,000 triggers on one connection id use at most that
  many connections, through the process-wide engine of ``hooks.sql.get_engine``.
- **The deadline holds even when the pool is busy.** A poll is awaited with ``asyncio.wait_for``
  for the time left until the deadline plus ``FINAL_LOOK_S`` (the last look, taken at the deadline
  itself, may take that long), whether it is still queued for a pool thread (other polls on the
  same connection id hold all of them, e.g. behind a locked table) or running. Its statement
  timeout, set when a thread starts it, is capped to the same moment. A poll given up on this way
  is cancelled if it never started; a running one ends at its statement timeout.
- **Nothing observed is not "max is NULL".** When no poll answered (every one hit its statement
  timeout, or none got a connection in time), the event says ``observed: false`` with the reason in
  ``error``; ``newest``/``observed_at`` are then None and the sensor records no observation.
- **Database errors.** Transient ones (connection refused or dropped, server restarting, pool
  timeout) are retried inside the trigger with a short backoff, never past the deadline; if the
  deadline passes while the database is still unreachable the trigger yields an ``error`` event
  (we could not tell whether the data is late). Permanent ones (missing table or column, bad
  filter, unknown connection, unreadable timestamp, failed login) yield an ``error`` event at
  once: waiting would not fix them. The sensor turns an ``error`` event into a task failure that
  Airflow's normal retries apply to.
- **Duplicates.** Airflow may run two copies of a trigger at once. Both poll the same data and
  yield the same kind of event; the sensor's ``execute_complete`` is idempotent (the results
  store write is an upsert keyed by the task instance), so the outcome downstream is one.

Event payload (a plain JSON dict): ``status`` (``fresh`` | ``timeout`` | ``error``), ``conn_id``,
``table``, ``timestamp_column``, ``observed`` (whether any poll answered), ``newest`` (ISO or
None), ``lag_s``, ``max_age_s``, ``observed_at`` (ISO of the observation reported, None when
nothing was observed), ``deadline``, ``polls``, ``error`` (scrubbed text or None: why the latest
poll failed), ``error_kind`` (``permanent`` | ``unreachable`` | None).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
import threading
import zlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_dataops.timeutil import parse_utc, utcnow
from airflow_dataops.triggers.settle import hold_until

log = logging.getLogger(__name__)

#: Threads (hence database connections) per connection id per process used by freshness polls.
MAX_CONNECTIONS_PER_CONN_ID = 4
#: How long a trigger reuses its connection lookup before asking Airflow again (a changed
#: connection, e.g. a rotated password, gets a new engine after at most this long).
CONNECTION_LOOKUP_TTL_S = 60.0
#: First retry delay after a transient database error; doubles up to the poke interval.
RETRY_BASE_S = 1.0
#: How long past the deadline the last look (taken at the deadline) may take before the trigger
#: gives up on it and fires the timeout with what it had.
FINAL_LOOK_S = 2.0

_EXECUTORS: dict[str, ThreadPoolExecutor] = {}
_EXECUTORS_LOCK = threading.Lock()

_PERMANENT_MARKERS = (
    "no such table",
    "no such column",
    "does not exist",
    "syntax error",
    "permission denied",
    "authentication failed",
    "unknown database",
)


@dataclass(frozen=True)
class Observation:
    """One look at a table: its newest timestamp, how old that is, and whether that is fresh."""

    newest: dt.datetime | None
    observed_at: dt.datetime
    lag_s: float | None
    max_age_s: float

    @property
    def fresh(self) -> bool:
        return self.lag_s is not None and self.lag_s <= self.max_age_s

    @property
    def late_by_s(self) -> float | None:
        """Seconds past ``max_age`` (None when the table has no timestamp at all)."""
        return None if self.lag_s is None else max(0.0, self.lag_s - self.max_age_s)

    def to_payload(self) -> dict[str, Any]:
        return {
            "newest": self.newest.isoformat() if self.newest else None,
            "lag_s": self.lag_s,
            "max_age_s": self.max_age_s,
            "observed_at": self.observed_at.isoformat(),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Observation:
        newest = payload.get("newest")
        return cls(
            newest=parse_utc(newest) if newest else None,
            observed_at=parse_utc(payload["observed_at"]),
            lag_s=payload.get("lag_s"),
            max_age_s=float(payload["max_age_s"]),
        )


def observe_freshness(
    conn_id: str,
    table: str,
    timestamp_column: str,
    max_age_s: float,
    where_sql: str | None = None,
    timezone: str | None = None,
    lookup_ttl_s: float = 0.0,
    stmt=None,
    timeout_s: float | None = None,
) -> Observation:
    """Query ``max(timestamp_column)`` now (blocking; worker side, or in a pool thread).

    ``lookup_ttl_s`` > 0 reuses the connection lookup that long (triggers: a lookup per poll would
    be a request to the API server per trigger per poll). ``stmt``: the prebuilt query (a trigger
    builds it once: rebuilding SQLAlchemy trees each poll is cyclic garbage, and with 1,000
    triggers the garbage collector's full passes stalled the event loop)."""
    from airflow_dataops.engine.freshness import as_aware_datetime, freshness_lag, newest_timestamp_stmt
    from airflow_dataops.hooks.sql import get_engine

    if stmt is None:
        stmt = newest_timestamp_stmt(table, timestamp_column, where_sql)
    from airflow_dataops.engine.sql_timeout import statement_timeout

    engine = get_engine(conn_id, lookup_ttl_s=lookup_ttl_s)
    with engine.connect() as conn, statement_timeout(conn, max(1, math.ceil(timeout_s)) if timeout_s else 0):
        newest = conn.execute(stmt).scalar()
    now = utcnow()
    lag = freshness_lag(newest, now, timezone)
    moment = as_aware_datetime(newest, timezone)
    return Observation(
        newest=moment.astimezone(dt.timezone.utc) if moment else None,
        observed_at=now,
        lag_s=None if lag is None else lag.total_seconds(),
        max_age_s=float(max_age_s),
    )


def _statement_timeout_s() -> float:
    from airflow_dataops import settings

    return float(settings.get_int("statement_timeout"))


def is_statement_timeout(exc: BaseException) -> bool:
    from airflow_dataops.engine.sql_timeout import is_timeout

    return is_timeout(exc)


def is_transient(exc: BaseException) -> bool:
    """True for database errors that waiting may fix (connection lost, server restarting, a poll
    cancelled by its statement timeout behind a lock)."""
    from sqlalchemy import exc as sa_exc

    if is_statement_timeout(exc):
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # pool exhausted
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            text = str(exc.orig).lower()
            return not any(marker in text for marker in _PERMANENT_MARKERS)
        return False
    return isinstance(exc, ConnectionError | TimeoutError)


def describe_error(exc: BaseException) -> str:
    """One line naming the error, without the SQL parameters SQLAlchemy would append, and scrubbed
    of secrets (a driver error may echo a DSN or URL with its password): the text goes into the
    trigger event (Airflow's metadata database), logs and the task's error."""
    from airflow_dataops.alerting.secrets import scrub

    orig = getattr(exc, "orig", None) or exc
    text = scrub(" ".join(str(orig).split()))
    return f"{type(orig).__name__}: {text[:500]}"


class PollNotAnswered(TimeoutError):
    """A poll gave no answer before the deadline (queued for a pool thread, or the database slow)."""


def _executor_for(conn_id: str) -> ThreadPoolExecutor:
    executor = _EXECUTORS.get(conn_id)
    if executor is None:
        with _EXECUTORS_LOCK:
            executor = _EXECUTORS.get(conn_id)
            if executor is None:
                executor = ThreadPoolExecutor(
                    max_workers=MAX_CONNECTIONS_PER_CONN_ID, thread_name_prefix=f"dataops-freshness-{conn_id}"
                )
                _EXECUTORS[conn_id] = executor
    return executor


class FreshnessTrigger(BaseTrigger):
    """Poll ``max(timestamp_column)`` of ``table`` until it is within ``max_age_s`` or ``deadline``.

    :param conn_id: Airflow connection of the database (any common-sql connection).
    :param table: table name, optionally schema-qualified (``analytics.orders``).
    :param timestamp_column: column whose maximum is the newest row's time.
    :param max_age_s: the newest row may be at most this many seconds old.
    :param where_sql: an already rendered filter (one SQL condition) or None.
    :param timezone: IANA zone of naive timestamps (None = UTC).
    :param poke_interval: seconds between polls.
    :param deadline: ISO UTC moment at which to give up with a ``timeout`` event.
    """

    def __init__(
        self,
        conn_id: str,
        table: str,
        timestamp_column: str,
        max_age_s: float,
        where_sql: str | None = None,
        timezone: str | None = None,
        poke_interval: float = 60.0,
        deadline: str | None = None,
        not_before: str | None = None,
    ) -> None:
        super().__init__()
        if deadline is None:
            raise ValueError("FreshnessTrigger needs an absolute `deadline` (ISO UTC datetime)")
        self.conn_id = conn_id
        self.table = table
        self.timestamp_column = timestamp_column
        self.max_age_s = float(max_age_s)
        self.where_sql = where_sql
        self.timezone = timezone
        self.poke_interval = max(float(poke_interval), 0.05)
        self.deadline = parse_utc(deadline).isoformat()
        self.not_before = not_before  # see triggers.settle: no event before this moment
        self._stmt = None  # built on the first poll, in the pool thread
        self._poll_started = False  # set by the pool thread when the current poll begins

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "table": self.table,
                "timestamp_column": self.timestamp_column,
                "max_age_s": self.max_age_s,
                "where_sql": self.where_sql,
                "timezone": self.timezone,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
                "not_before": self.not_before,
            },
        )

    def _phase(self) -> float:
        """A stable fraction in [0.5, 1) for the first wait: triggers deferred together (1,000 at
        a DAG run's start) spread their polls over half an interval instead of all querying at once."""
        key = f"{self.conn_id}|{self.table}|{self.where_sql}|{self.deadline}".encode()
        return 0.5 + (zlib.crc32(key) % 1000) / 2000

    def _poll(self, answer_by: dt.datetime) -> Observation:
        """One blocking poll, run in the connection's pool thread (one at a time per trigger)."""
        self._poll_started = True
        if self._stmt is None:
            from airflow_dataops.engine.freshness import newest_timestamp_stmt

            self._stmt = newest_timestamp_stmt(self.table, self.timestamp_column, self.where_sql)
        return observe_freshness(
            self.conn_id,
            self.table,
            self.timestamp_column,
            self.max_age_s,
            self.where_sql,
            self.timezone,
            lookup_ttl_s=CONNECTION_LOOKUP_TTL_S,
            stmt=self._stmt,
            # A poll never outlives the deadline (a locked table must not hold a pool thread past
            # it): its statement timeout ends when the trigger stops waiting for it.
            timeout_s=min(_statement_timeout_s(), max(1.0, (answer_by - utcnow()).total_seconds())),
        )

    async def _observe(self, deadline: dt.datetime) -> Observation:
        """One poll in the pool, awaited no longer than the deadline (plus the last look's time)."""
        answer_by = max(deadline, utcnow()) + dt.timedelta(seconds=FINAL_LOOK_S)
        self._poll_started = False
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(_executor_for(self.conn_id), functools.partial(self._poll, answer_by))
        try:
            return await asyncio.wait_for(future, max(0.0, (answer_by - utcnow()).total_seconds()))
        except asyncio.TimeoutError:
            if self._poll_started:
                why = "the database did not answer the poll before the deadline"
            else:
                why = (f"no connection was free for the poll before the deadline: all {MAX_CONNECTIONS_PER_CONN_ID} "
                       f"of connection {self.conn_id!r} in this triggerer were busy with other freshness polls")
            raise PollNotAnswered(why) from None

    def _event(self, status: str, obs: Observation | None, polls: int, error: str | None = None, kind: str | None = None):
        payload: dict[str, Any] = {
            "status": status,
            "conn_id": self.conn_id,
            "table": self.table,
            "timestamp_column": self.timestamp_column,
            "observed": obs is not None,
            "newest": None,
            "lag_s": None,
            "max_age_s": self.max_age_s,
            "observed_at": None,
            "deadline": self.deadline,
            "polls": polls,
            "error": error,
            "error_kind": kind,
        }
        if obs is not None:
            payload.update(obs.to_payload())
        return TriggerEvent(payload)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self._watch():
            held = await hold_until(self.not_before)
            if held:
                self.log.info("held the %s event %.1fs: the task resumes once its deferral has settled",
                              event.payload["status"], held)
            yield event

    async def _watch(self) -> AsyncIterator[TriggerEvent]:
        deadline = parse_utc(self.deadline)
        polls = 0
        failures = 0
        last_obs: Observation | None = None
        unreachable: str | None = None  # the latest transient error while the database is unreachable
        unanswered: str | None = None  # why the latest poll saw nothing (statement timeout)
        while True:
            started = utcnow()
            polls += 1
            try:
                last_obs = await self._observe(deadline)
            except PollNotAnswered as exc:
                # The deadline passed while the poll was queued or running: fire now with what we had.
                self.log.warning("freshness poll of %s gave no answer before the deadline: %s", self.table, exc)
                yield self._event("timeout", last_obs, polls, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - classified below, never swallowed silently
                error = describe_error(exc)
                if is_statement_timeout(exc):
                    # The poll outlived its statement timeout (a lock, a slow filter): the database is
                    # there, the data is just not known fresh. Keep polling; at the deadline: timeout.
                    self.log.warning("freshness poll of %s cancelled by its statement timeout", self.table)
                    failures, unreachable, unanswered = 0, None, f"the poll was cancelled by its statement timeout ({error})"
                    wait = self.poke_interval
                elif not is_transient(exc):
                    self.log.error("freshness of %s on %s cannot be checked: %s", self.table, self.conn_id, error)
                    yield self._event("error", last_obs, polls, error, "permanent")
                    return
                else:
                    failures += 1
                    unreachable, unanswered = error, None
                    self.log.warning("database %s unreachable (attempt %d), retrying: %s", self.conn_id, failures, error)
                    wait = min(self.poke_interval, RETRY_BASE_S * 2 ** (failures - 1))
            else:
                failures, unreachable, unanswered = 0, None, None
                if last_obs.fresh:
                    yield self._event("fresh", last_obs, polls)
                    return
                wait = self.poke_interval if polls > 1 else self.poke_interval * self._phase()
            if utcnow() >= deadline:
                if unreachable is not None:
                    yield self._event("error", last_obs, polls, unreachable, "unreachable")
                else:
                    yield self._event("timeout", last_obs, polls, unanswered)
                return
            wake = min(started + dt.timedelta(seconds=wait), deadline)
            await asyncio.sleep(max(0.0, (wake - utcnow()).total_seconds()))
