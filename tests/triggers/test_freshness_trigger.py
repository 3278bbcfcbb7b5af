"""FreshnessTrigger against real SQLite and real PostgreSQL, run the way a triggerer runs it:
the ``run()`` async generator inside an event loop, first event only."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time

import pytest
import sqlalchemy as sa

from airflow_dataops.triggers.freshness import MAX_CONNECTIONS_PER_CONN_ID, FreshnessTrigger

UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def make_trigger(src, *, max_age_s=60.0, deadline_in=5.0, poke_interval=0.2, where_sql=None, **overrides):
    kwargs = dict(
        conn_id=src.conn_id,
        table=src.table,
        timestamp_column=src.column,
        max_age_s=max_age_s,
        where_sql=where_sql,
        timezone=None,
        poke_interval=poke_interval,
        deadline=(utcnow() + dt.timedelta(seconds=deadline_in)).isoformat(),
    )
    kwargs.update(overrides)
    return FreshnessTrigger(**kwargs)


async def first_event(trigger):
    return await anext(trigger.run())


def run_first_event(trigger):
    return asyncio.run(first_event(trigger)).payload


# ------------------------------------------------------------------------------ serialisation


def test_serialize_round_trips_losslessly_through_airflow_trigger_storage():
    from airflow.models.trigger import Trigger
    from tests.support.compat import import_string

    original = FreshnessTrigger(
        conn_id="warehouse",
        table="analytics.orders",
        timestamp_column="updated_at",
        max_age_s=7200,
        where_sql="region = 'eu' AND note = 'a:b'",
        timezone="Europe/Berlin",
        poke_interval=30,
        deadline="2026-01-02T03:04:05.123456+00:00",
        not_before="2026-01-02T02:04:15.123456+00:00",
    )
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_dataops.triggers.freshness.FreshnessTrigger"
    # What the triggerer does: store the kwargs (serde-encoded, encrypted) then rebuild the trigger.
    row = Trigger.from_object(original)
    rebuilt = import_string(row.classpath)(**row.kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert rebuilt.deadline == "2026-01-02T03:04:05.123456+00:00"
    assert rebuilt.where_sql == "region = 'eu' AND note = 'a:b'"
    assert rebuilt.not_before == "2026-01-02T02:04:15.123456+00:00"


def test_a_deadline_given_in_another_offset_is_kept_as_the_same_utc_moment():
    trigger = FreshnessTrigger("c", "t", "ts", 60, deadline="2026-01-02T05:04:05+02:00")
    assert trigger.deadline == "2026-01-02T03:04:05+00:00"
    with pytest.raises(ValueError, match="deadline"):
        FreshnessTrigger("c", "t", "ts", 60)


# ------------------------------------------------------------------------------ outcomes


def test_fresh_data_fires_at_once(source):
    newest = source.insert_age(10)
    payload = run_first_event(make_trigger(source, max_age_s=60))
    assert payload["status"] == "fresh"
    assert payload["polls"] == 1
    assert abs(dt.datetime.fromisoformat(payload["newest"]) - newest) < dt.timedelta(milliseconds=1)
    assert 10 <= payload["lag_s"] < 15


def test_an_event_known_before_not_before_is_held_until_then(source):
    """The sensor's deferral settles first (triggers.settle): a fresh result seen at once waits."""
    source.insert_age(10)
    hold_s = 1.5
    started = time.monotonic()
    payload = run_first_event(make_trigger(source, not_before=(utcnow() + dt.timedelta(seconds=hold_s)).isoformat()))
    waited = time.monotonic() - started
    assert payload["status"] == "fresh" and payload["polls"] == 1
    assert hold_s - 0.1 <= waited < hold_s + 2, waited
    # a moment already past (a trigger restarted after its triggerer died) holds nothing
    started = time.monotonic()
    assert run_first_event(make_trigger(source, not_before=(utcnow() - dt.timedelta(seconds=30)).isoformat()))["status"] == "fresh"
    assert time.monotonic() - started < 1.0


def test_succeeds_when_the_data_becomes_fresh_while_waiting(source):
    source.insert_age(3600)  # an hour old, max age one minute

    async def scenario():
        trigger = make_trigger(source, max_age_s=60, deadline_in=10, poke_interval=0.25)
        task = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(0.8)
        assert not task.done(), "fired while the data was still an hour old"
        fresh_at = time.monotonic()
        await asyncio.to_thread(source.insert_age, 1)
        event = await task
        return event.payload, time.monotonic() - fresh_at

    payload, latency = asyncio.run(scenario())
    assert payload["status"] == "fresh"
    assert payload["polls"] >= 3
    assert latency < 0.25 + 0.5, f"fired {latency:.2f}s after the data turned fresh (poke interval 0.25s)"


def test_times_out_at_the_absolute_deadline_with_what_it_found(source):
    stale = source.insert_age(7200)
    trigger = make_trigger(source, max_age_s=600, deadline_in=1.2, poke_interval=0.5)
    deadline = dt.datetime.fromisoformat(trigger.deadline)
    payload = run_first_event(trigger)
    fired = utcnow()
    assert payload["status"] == "timeout"
    assert deadline <= fired < deadline + dt.timedelta(seconds=0.5), (fired - deadline)
    assert abs(dt.datetime.fromisoformat(payload["newest"]) - stale) < dt.timedelta(milliseconds=1)
    assert payload["lag_s"] > 7200 and payload["max_age_s"] == 600
    # polls at 0, then 0.25-0.5 (phase), then every 0.5 s, and one last look at the deadline itself
    assert payload["polls"] in (4, 5)
    assert dt.datetime.fromisoformat(payload["observed_at"]) >= deadline


def test_an_empty_table_times_out_with_no_newest_timestamp(source):
    payload = run_first_event(make_trigger(source, deadline_in=0.3, poke_interval=0.1))
    assert payload["status"] == "timeout"
    assert payload["newest"] is None and payload["lag_s"] is None


def test_where_filter_limits_which_rows_count(source):
    source.insert_age(5, region="us")
    source.insert_age(7200, region="eu")
    payload = run_first_event(make_trigger(source, max_age_s=60, deadline_in=0.3, poke_interval=0.1, where_sql="region = 'eu'"))
    assert payload["status"] == "timeout"
    assert payload["lag_s"] > 7200


def test_restarted_trigger_resumes_the_wait_instead_of_starting_over(source):
    """A triggerer restart rebuilds the trigger from its kwargs and calls run() again."""
    source.insert_age(7200)
    first = make_trigger(source, max_age_s=60, deadline_in=2.0, poke_interval=0.3)
    deadline = dt.datetime.fromisoformat(first.deadline)

    async def killed_after(seconds):
        task = asyncio.create_task(first_event(first))
        await asyncio.sleep(seconds)
        task.cancel()  # the triggerer dies mid-wait
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(killed_after(1.2))
    _, kwargs = first.serialize()
    payload = run_first_event(FreshnessTrigger(**kwargs))
    fired = utcnow()
    assert payload["status"] == "timeout"
    # A relative wait would end 2 s after the restart (about 3.2 s in); the absolute one ends at 2 s.
    assert deadline <= fired < deadline + dt.timedelta(seconds=0.5), (fired - deadline)


def test_a_deadline_already_past_fires_after_one_look(source):
    source.insert_age(7200)
    payload = run_first_event(make_trigger(source, max_age_s=60, deadline_in=-30))
    assert payload["status"] == "timeout" and payload["polls"] == 1


# ------------------------------------------------------------------------------ database errors


def test_missing_table_is_an_error_event_at_once_not_a_wait(source):
    started = time.monotonic()
    payload = run_first_event(make_trigger(source, table="no_such_table", deadline_in=30))
    assert payload["status"] == "error"
    assert payload["error_kind"] == "permanent"
    assert "no_such_table" in payload["error"]
    assert time.monotonic() - started < 5


def test_unreachable_database_is_retried_until_the_deadline_then_an_error(tmp_path):
    import os
    import uuid

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn_id = f"down_{uuid.uuid4().hex[:8]}"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = f"postgres://postgres@127.0.0.1:{port}/nothing"
    try:
        trigger = FreshnessTrigger(conn_id, "events", "updated_at", 60, poke_interval=0.5,
                                   deadline=(utcnow() + dt.timedelta(seconds=2)).isoformat())
        deadline = dt.datetime.fromisoformat(trigger.deadline)
        payload = run_first_event(trigger)
    finally:
        os.environ.pop(f"AIRFLOW_CONN_{conn_id.upper()}")
    assert payload["status"] == "error" and payload["error_kind"] == "unreachable"
    assert payload["polls"] >= 3, "a transient error must be retried, not reported at once"
    assert "OperationalError" in payload["error"] and "password" not in payload["error"].lower()
    assert utcnow() >= deadline


@pytest.mark.integration
def test_database_that_comes_back_lets_the_trigger_succeed(pg_source):
    """Transient outage: a loopback proxy in front of PostgreSQL refuses, then starts forwarding."""
    import os

    pg_source.insert_age(5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = pg_source.url.rsplit("/", 1)[1]
    os.environ[f"AIRFLOW_CONN_{pg_source.conn_id.upper()}"] = f"postgres://postgres@127.0.0.1:{port}/{db}"

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def forward(client_r, client_w):
        server_r, server_w = await asyncio.open_connection("127.0.0.1", 5432)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w), return_exceptions=True)

    async def scenario():
        trigger = make_trigger(pg_source, max_age_s=60, deadline_in=20, poke_interval=0.5)
        task = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(1.5)
        assert not task.done()
        server = await asyncio.start_server(forward, "127.0.0.1", port)
        try:
            return (await asyncio.wait_for(task, 10)).payload
        finally:
            server.close()

    payload = asyncio.run(scenario())
    assert payload["status"] == "fresh" and payload["polls"] >= 2


# ------------------------------------------------------------------------------ duplicates, sharing


def test_two_copies_at_once_reach_the_same_outcome(source):
    source.insert_age(3600)
    trigger = make_trigger(source, max_age_s=60, deadline_in=10, poke_interval=0.2)
    _, kwargs = trigger.serialize()

    async def scenario():
        copies = [asyncio.create_task(first_event(FreshnessTrigger(**kwargs))) for _ in range(2)]
        await asyncio.sleep(0.5)
        await asyncio.to_thread(source.insert_age, 2)
        return [t.payload for t in await asyncio.gather(*copies)]

    one, two = asyncio.run(scenario())
    assert one["status"] == two["status"] == "fresh"
    assert one["newest"] == two["newest"]


@pytest.mark.integration
def test_polls_do_not_block_the_event_loop(pg_source):
    """A slow query (pg_sleep) must not stall the loop other triggers share."""
    pg_source.insert_age(7200)
    gaps = []

    async def ticker(stop):
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def scenario():
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        trigger = make_trigger(pg_source, max_age_s=60, deadline_in=0.1, where_sql="pg_sleep(1.0) IS NOT NULL")
        event = await first_event(trigger)
        stop.set()
        await tick
        return event.payload

    payload = asyncio.run(scenario())
    assert payload["status"] == "timeout"
    assert len(gaps) > 30 and max(gaps) < 0.25, f"event loop stalled {max(gaps):.2f}s"


@pytest.mark.integration
def test_a_poll_stuck_behind_a_lock_still_fires_the_timeout_at_the_deadline(pg_source):
    """A migration holding ACCESS EXCLUSIVE must not hold the trigger (or its pool thread) past the
    deadline: the poll carries a statement timeout bounded by the time left."""
    pg_source.insert_age(7200)
    locker = sa.create_engine(pg_source.url).connect()
    locker.exec_driver_sql(f"LOCK TABLE {pg_source.table} IN ACCESS EXCLUSIVE MODE")
    try:
        started = time.monotonic()
        event = asyncio.run(first_event(make_trigger(pg_source, max_age_s=60, deadline_in=2.0, poke_interval=0.5)))
        waited = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert event.payload["status"] == "timeout", event.payload
    assert waited < 10, f"the trigger fired {waited:.1f}s after starting, its deadline was 2s"


@pytest.mark.integration
def test_many_triggers_share_a_bounded_pool_of_connections(pg_source):
    pg_source.insert_age(7200)
    pg_source.engine.dispose()  # count only the triggers' connections
    db = pg_source.url.rsplit("/", 1)[1]
    admin = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    peak = 0

    async def watch(stop):
        nonlocal peak
        while not stop.is_set():
            count = await asyncio.to_thread(count_connections)
            peak = max(peak, count)
            await asyncio.sleep(0.05)

    def count_connections():
        with admin.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"), {"d": db}).scalar()

    async def scenario():
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(stop))
        # slow queries so that many polls overlap
        triggers = [make_trigger(pg_source, max_age_s=60, deadline_in=1.0, poke_interval=0.2,
                                 where_sql="pg_sleep(0.05) IS NOT NULL") for _ in range(60)]
        events = await asyncio.gather(*(first_event(t) for t in triggers))
        stop.set()
        await watcher
        return events

    events = asyncio.run(scenario())
    admin.dispose()
    assert all(e.payload["status"] == "timeout" for e in events)
    assert 1 <= peak <= MAX_CONNECTIONS_PER_CONN_ID, f"{peak} connections for 60 triggers"


# ------------------------------------------------------------------ the deadline holds, whatever the pool does


def test_the_deadline_fires_on_time_while_every_pool_thread_is_busy(source):
    """Other polls on the same connection id hold every thread of its pool (the real pool, held by
    blocking work): the trigger still fires its timeout at the deadline (plus the last look's
    allowance), says nothing was observed and why, and its queued poll never runs."""
    import threading

    from airflow_dataops.triggers.freshness import FINAL_LOOK_S, _executor_for

    source.insert_age(7200)
    release = threading.Event()
    pool = _executor_for(source.conn_id)
    blockers = [pool.submit(release.wait, 60) for _ in range(MAX_CONNECTIONS_PER_CONN_ID)]
    try:
        trigger = make_trigger(source, max_age_s=60, deadline_in=1.0, poke_interval=0.2)
        deadline = dt.datetime.fromisoformat(trigger.deadline)
        payload = run_first_event(trigger)
        fired = utcnow()
    finally:
        release.set()
        for blocker in blockers:
            blocker.result(timeout=10)
    assert payload["status"] == "timeout", payload
    assert deadline <= fired < deadline + dt.timedelta(seconds=FINAL_LOOK_S + 0.5), fired - deadline
    assert payload["observed"] is False and payload["newest"] is None and payload["observed_at"] is None
    assert "no connection was free" in payload["error"] and source.conn_id in payload["error"]
    assert trigger._poll_started is False  # the queued poll was cancelled, not run late


@pytest.mark.integration
def test_polls_stuck_behind_a_lock_do_not_delay_another_triggers_deadline(pg_source):
    """The review's case: four polls of a locked table (a migration) hold all four connections for
    their long deadlines; a fifth trigger on the same connection id, with a short deadline on another
    table, fires on time instead of waiting minutes for a thread."""
    from airflow_dataops.triggers.freshness import FINAL_LOOK_S

    pg_source.insert_age(7200)
    with pg_source.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE other_events (id serial primary key, updated_at timestamptz)")
        conn.exec_driver_sql("INSERT INTO other_events (updated_at) VALUES (now() - interval '2 hours')")
    locker = sa.create_engine(pg_source.url).connect()
    locker.exec_driver_sql(f"LOCK TABLE {pg_source.table} IN ACCESS EXCLUSIVE MODE")

    async def scenario():
        stuck = [asyncio.create_task(first_event(make_trigger(pg_source, deadline_in=30, poke_interval=0.5)))
                 for _ in range(MAX_CONNECTIONS_PER_CONN_ID)]
        await asyncio.sleep(0.5)  # they hold every connection now
        short = make_trigger(pg_source, table="other_events", deadline_in=1.5, poke_interval=0.5)
        started = time.monotonic()
        event = await first_event(short)
        waited = time.monotonic() - started
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        return event.payload, waited

    try:
        payload, waited = asyncio.run(scenario())
    finally:
        locker.rollback()
        locker.close()
    assert payload["status"] == "timeout", payload
    assert waited < 1.5 + FINAL_LOOK_S + 1.0, f"fired {waited:.1f}s after starting, its deadline was 1.5s"
    assert payload["observed"] is False and "no connection was free" in payload["error"]


@pytest.mark.integration
def test_every_poll_cancelled_by_its_statement_timeout_is_unobserved_not_null(pg_source, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DATAOPS__STATEMENT_TIMEOUT", "1")
    pg_source.insert_age(7200)
    locker = sa.create_engine(pg_source.url).connect()
    locker.exec_driver_sql(f"LOCK TABLE {pg_source.table} IN ACCESS EXCLUSIVE MODE")
    try:
        payload = run_first_event(make_trigger(pg_source, deadline_in=3.0, poke_interval=0.3))
    finally:
        locker.rollback()
        locker.close()
    assert payload["status"] == "timeout" and payload["polls"] >= 2, payload
    assert payload["observed"] is False and payload["newest"] is None and payload["observed_at"] is None
    assert "statement timeout" in payload["error"]


def test_an_observation_is_reported_as_observed(source):
    source.insert_age(7200)
    payload = run_first_event(make_trigger(source, deadline_in=0.3, poke_interval=0.1))
    assert payload["status"] == "timeout" and payload["observed"] is True and payload["observed_at"]


# ------------------------------------------------------------------ no secrets in events, logs, errors


def test_error_text_is_scrubbed_of_dsns_and_passwords():
    from airflow_dataops.triggers.freshness import describe_error

    secret = "S3cr3tPassw0rd"
    for text in (f"could not connect to postgresql://analyst:{secret}@db.internal:5432/warehouse",
                 f"invalid dsn: host=db.internal user=analyst password={secret} dbname=warehouse",
                 f"invalid dsn: host=db.internal password='{secret}' dbname=warehouse"):
        described = describe_error(RuntimeError(text))
        assert secret not in described, described
        assert described.startswith("RuntimeError: ")


def test_a_trigger_error_event_never_carries_the_connection_password(source, monkeypatch, caplog):
    """A driver error that echoes the DSN with its password (psycopg2 does for a malformed DSN; no
    server here produces one on demand, so the poll raises that error): the event, which Airflow
    stores in its metadata database, the trigger's log and the error the sensor raises carry no
    password."""
    import json
    import logging

    from airflow_dataops.compat import AirflowException
    from sqlalchemy import exc as sa_exc

    from airflow_dataops.sensors.freshness import FreshnessSensor
    from airflow_dataops.triggers import freshness as trigger_mod

    secret = "S3cr3t-Pw-0001"

    def leaky_poll(*args, **kwargs):
        raise sa_exc.OperationalError("SELECT max(updated_at) FROM events", {}, Exception(
            f"could not connect to server: postgresql://analyst:{secret}@db.internal:5432/warehouse "
            f"(dsn: host=db.internal user=analyst password={secret})"))

    monkeypatch.setattr(trigger_mod, "observe_freshness", leaky_poll)
    with caplog.at_level(logging.INFO):
        payload = run_first_event(make_trigger(source, deadline_in=1.0, poke_interval=0.2))
    assert payload["status"] == "error" and payload["error_kind"] == "unreachable", payload
    assert "db.internal" in payload["error"]  # the error is still useful...
    assert secret not in json.dumps(payload) and secret not in caplog.text  # ...without the secret
    sensor = FreshnessSensor(task_id="t", conn_id=source.conn_id, table="events", timestamp_column="updated_at",
                             max_age="1 hour", timeout=60)
    import types

    ti = types.SimpleNamespace(dag_id="leaky", run_id="r", task_id="t", map_index=-1, try_number=1)
    with pytest.raises(AirflowException) as info:
        sensor.execute_complete({"ti": ti}, payload)
    assert "unreachable until the deadline" in str(info.value) and secret not in str(info.value)
