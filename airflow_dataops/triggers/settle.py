"""Hold a trigger's event until a few seconds after its task deferred.

Airflow 3.3 can fail a deferrable task that resumes within seconds of deferring. The worker that
deferred reports "success" to the executor when it exits, and that report can reach the scheduler
several seconds late (measured: 0.4 to 6 s on 2 busy cores). If the trigger has fired and the task
was requeued meanwhile, the scheduler takes the stale report for an external kill and fails the
task (apache/airflow#72716 and #71580: only the ``scheduled`` state is guarded in 3.3.2).

So our deferring tasks pass ``not_before`` (``[dataops] resume_settle_seconds`` after deferring)
and the trigger holds an early event until then. It costs latency only when the outcome is known
within those seconds; a trigger restarted later (triggerer restart) is past the moment already.
"""

from __future__ import annotations

import asyncio
import datetime as dt


def not_before() -> str | None:
    """The ISO UTC moment before which a trigger deferred now must not fire (None: setting is 0)."""
    from airflow_dataops import settings

    seconds = settings.get_int("resume_settle_seconds")
    if seconds <= 0:
        return None
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).isoformat()


async def hold_until(moment: str | None) -> float:
    """Sleep until ``moment`` (ISO UTC) if it is still ahead; returns the seconds held."""
    if not moment:
        return 0.0
    wait = (dt.datetime.fromisoformat(moment) - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if wait <= 0:
        return 0.0
    await asyncio.sleep(wait)
    return wait
