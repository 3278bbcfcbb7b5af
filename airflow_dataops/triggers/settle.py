"""Hold a trigger's event until a few seconds after its task deferred.

Airflow 3.3 can fail a deferrable task that resumes within seconds of deferring. The worker that
deferred reports "success" to the executor when it exits, and that report can reach the scheduler
several seconds late (measured: 0.4 to 6 s on 2 busy cores). If the trigger has fired and the task
was requeued meanwhile, the scheduler takes the stale report for an external kill and fails the
task (apache/airflow#72716 and #71580: only the ``scheduled`` state is guarded in 3.3.2).

So our deferring tasks pass ``not_before`` (``[dataops] resume_settle_seconds`` after deferring)
and the trigger holds an early event until then. It costs latency only when the outcome is known
within those seconds; a trigger restarted later (triggerer restart) is past the moment already.

This is a mitigation that lowers the odds, not a guarantee:

- How late the stale report arrives depends on the length of a scheduler loop and on the
  supervisor's teardown (up to ``[core] task_success_overtime``, 20 s); it has no upper bound, and
  10 s is "measured at most 6 s on 2 busy cores, plus a margin".
- ``not_before`` is taken from the worker's clock and compared with the triggerer's: clock skew
  between machines shortens or lengthens the hold.
- The race needs LocalExecutor's bookkeeping (its ``running`` set is never filled, so the scheduler
  cannot tell a stale report from a kill). CeleryExecutor re-adds the key to ``running`` and
  replaces the workload on resend, so the stale result is never read there: with Celery the hold
  only adds latency, and ``resume_settle_seconds = 0`` is the better setting.
- When the race still happens, the failure goes through the scheduler's "state mismatch" path;
  ``alerting.callbacks.TaskFailureNotifier`` then says in its ``task_failed`` alert that the
  scheduler, not the task, failed it.
- The real fix is upstream (apache/airflow#72767, or #73510; #68741 for the QUEUED variant, not in
  3.3.2): once a release carries it, pin to it and default ``resume_settle_seconds`` to 0.
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
