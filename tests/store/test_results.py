"""Writing and reading check results and freshness rows, on SQLite and real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from airflow_dataops.engine.result import CheckResult
from airflow_dataops.store.results import RunRef
from airflow_dataops.store.schema import alerts, audit, check_results, freshness

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def run(run_id: str = "scheduled__2026-03-01", *, try_number: int = 1, map_index: int = -1, dag_id: str = "orders") -> RunRef:
    return RunRef("orders", dag_id, run_id, "quality_checks", "production", map_index=map_index, try_number=try_number)


def result(name: str = "row_count", *, passed: bool | None = True, observed=1200, action="fail", at=T0, **extra) -> CheckResult:
    return CheckResult(
        name=name,
        check_type=extra.pop("check_type", "row_count"),
        action=action,
        passed=passed,
        observed=observed,
        expected=extra.pop("expected", {"min": 1000}),
        table="public.orders",
        columns=("id",),
        message=extra.pop("message", "1200 rows"),
        sql="SELECT count(*) FROM public.orders",
        duration_ms=12.5,
        checked_at=at,
        **extra,
    )


def count(store, table=check_results) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_a_result_round_trips_with_every_field(store):
    store.record_results(run(), [result(), result("null_email", passed=False, observed=3, action="warn", check_type="null_check", expected={"max_nulls": 0})])

    rows = {row["check_name"]: row for row in store.results_for_run("orders", "scheduled__2026-03-01")}

    assert set(rows) == {"row_count", "null_email"}
    row = rows["row_count"]
    assert (row["pipeline"], row["dag_id"], row["task_id"], row["environment"]) == ("orders", "orders", "quality_checks", "production")
    assert (row["map_index"], row["try_number"]) == (-1, 1)
    assert (row["table_name"], row["check_type"], row["action"], row["status"], row["passed"]) == ("public.orders", "row_count", "fail", "passed", True)
    assert row["observed"] == 1200 and row["expected"] == {"min": 1000}
    assert row["sql"] == "SELECT count(*) FROM public.orders" and row["duration_ms"] == 12.5
    assert row["checked_at"] == T0 and row["checked_at"].tzinfo is not None
    assert row["recorded_at"].tzinfo is not None
    assert rows["null_email"]["status"] == "warned" and rows["null_email"]["passed"] is False


def test_datetimes_are_stored_as_utc_and_read_back_aware(store):
    berlin = dt.timezone(dt.timedelta(hours=1))
    store.record_results(run(), [result(at=dt.datetime(2026, 3, 1, 7, 0, tzinfo=berlin))])
    store.record_results(run("naive-run"), [result(at=dt.datetime(2026, 3, 1, 6, 0))])  # naive = UTC

    (row,) = store.results_for_run("orders", "scheduled__2026-03-01")
    (naive,) = store.results_for_run("orders", "naive-run")

    assert row["checked_at"] == T0 and row["checked_at"].utcoffset() == dt.timedelta(0)
    assert naive["checked_at"] == T0 and naive["checked_at"].utcoffset() == dt.timedelta(0)


def test_a_retry_replaces_its_earlier_try_and_never_double_counts(store):
    store.record_results(run(try_number=1), [result(passed=False, observed=10, message="try 1")])
    store.record_results(run(try_number=1), [result(passed=False, observed=10, message="try 1")])  # duplicate
    store.record_results(run(try_number=2), [result(passed=True, observed=1500, message="try 2")])

    rows = store.results_for_run("orders", "scheduled__2026-03-01")

    assert count(store) == 1
    assert [(r["try_number"], r["status"], r["observed"], r["message"]) for r in rows] == [(2, "passed", 1500, "try 2")]


def test_a_late_duplicate_of_an_older_try_does_not_overwrite_the_newer_one(store):
    store.record_results(run(try_number=3), [result(observed=1500, message="try 3")])
    store.record_results(run(try_number=2), [result(passed=False, observed=10, message="try 2")])

    (row,) = store.results_for_run("orders", "scheduled__2026-03-01")
    assert (row["try_number"], row["message"], row["status"]) == (3, "try 3", "passed")


def test_mapped_task_instances_keep_one_row_each(store):
    for index in range(3):
        store.record_results(run(map_index=index), [result(observed=index)])
    store.record_results(run(map_index=1, try_number=2), [result(observed=99)])

    rows = store.results_for_run("orders", "scheduled__2026-03-01")
    assert [(r["map_index"], r["observed"]) for r in rows] == [(0, 0), (1, 99), (2, 2)]


def test_the_portable_upsert_path_is_idempotent_too(store):
    """The update-then-insert path used on databases without a native upsert."""
    store._generic_upserts = True
    store.record_results(run(try_number=1), [result(observed=10), result("unique_id", observed=0)])
    store.record_results(run(try_number=2), [result(observed=20), result("unique_id", observed=0)])
    store.record_results(run(try_number=1), [result(observed=30)])  # late duplicate of try 1

    rows = {r["check_name"]: r for r in store.results_for_run("orders", "scheduled__2026-03-01")}
    assert count(store) == 2
    assert (rows["row_count"]["try_number"], rows["row_count"]["observed"]) == (2, 20)


def test_failing_row_samples_are_kept_only_when_sampling_is_on(store, monkeypatch):
    sample = tuple({"id": i, "email": None} for i in range(50))
    monkeypatch.setenv("AIRFLOW__DATAOPS__FAILING_ROWS_SAMPLE", "0")
    store.record_results(run("off"), [result(passed=False, failing_rows=sample)])
    monkeypatch.setenv("AIRFLOW__DATAOPS__FAILING_ROWS_SAMPLE", "5")
    store.record_results(run("on"), [result(passed=False, failing_rows=sample)])

    assert store.results_for_run("orders", "off")[0]["failing_rows"] is None
    assert store.results_for_run("orders", "on")[0]["failing_rows"] == [{"id": i, "email": None} for i in range(5)]


def test_observed_history_is_newest_first_limited_and_skips_failed_errored_and_excluded_runs(store):
    statuses = {3: False, 5: None}  # run 3 failed, run 5 errored
    for day in range(1, 9):
        passed = statuses.get(day, True)
        store.record_results(
            run(f"run{day}"),
            [result(passed=passed, observed=day * 100, at=T0 + dt.timedelta(days=day), error="boom" if passed is None else None)],
        )
    store.record_results(run("run9"), [result(passed=False, action="warn", observed=900, at=T0 + dt.timedelta(days=9))])
    store.record_results(run("run4", map_index=0), [result(observed=444, at=T0 + dt.timedelta(days=4, hours=1))])
    store.record_results(RunRef("other", "other", "run1", "t", "production"), [result(observed=1, at=T0 + dt.timedelta(days=20))])
    store.record_results(run("run6"), [result("null_email", observed=7, at=T0 + dt.timedelta(days=30))])

    assert store.observed_history("orders", "row_count", 4) == [900.0, 800.0, 700.0, 600.0]  # warned counts
    assert store.observed_history("orders", "row_count", 4, exclude_run_id="run9") == [800.0, 700.0, 600.0, 444.0]
    # runs 5 (error) and 3 (failed) are skipped; run4's newest row stands for run4 once
    assert store.observed_history("orders", "row_count", 100) == [900.0, 800.0, 700.0, 600.0, 444.0, 200.0, 100.0]
    assert store.observed_history("orders", "row_count", 0) == []
    assert store.observed_history("orders", "no_such_check", 5) == []


def test_observed_history_is_per_environment(store):
    """Scheduled run ids repeat across environments: staging's counts never feed production's history."""
    for day, (prod, staging) in enumerate([(100, 5), (110, 6), (90, 7)], start=1):
        at = T0 + dt.timedelta(days=day)
        store.record_results(RunRef("orders", "orders", f"scheduled__{day}", "q", "production"), [result("vol", observed=prod, at=at)])
        store.record_results(RunRef("orders", "orders", f"scheduled__{day}", "q", "staging"), [result("vol", observed=staging, at=at)])

    assert store.observed_history("orders", "vol", 14, environment="production") == [90.0, 110.0, 100.0]
    assert store.observed_history("orders", "vol", 14, environment="staging") == [7.0, 6.0, 5.0]
    assert len(store.results_for_run("orders", "scheduled__1")) == 2, "the same run id in two environments: two rows"


def test_observed_history_keeps_filtered_and_whole_table_counts_apart(store):
    """A run without a data interval drops the `where` and counts the whole table: that count must not
    become the baseline of the filtered daily counts, and the other way round."""
    def vol(observed, applied, **extra):
        return result("vol", observed=observed, check_type="volume_anomaly", expected={"max_change_pct": 50, "where_applied": applied}, **extra)

    store.record_results(run("d1"), [vol(100, True, at=T0 + dt.timedelta(days=1))])
    store.record_results(run("manual1"), [vol(50_000, False, at=T0 + dt.timedelta(days=2))])
    store.record_results(run("d2"), [vol(120, True, at=T0 + dt.timedelta(days=3))])
    # A row written before results recorded `where_applied`: its message says the filter was dropped.
    store.record_results(run("old_manual"), [result("vol", observed=49_000, check_type="volume_anomaly", expected={"max_change_pct": 50},
                                                    message="49000 rows; `where` dropped: this run has no data interval", at=T0)])
    store.record_results(run("old"), [result("vol", observed=90, check_type="volume_anomaly", expected={"max_change_pct": 50},
                                             message="90 rows", at=T0 - dt.timedelta(days=1))])

    assert store.observed_history("orders", "vol", 14, where_applied=True) == [120.0, 100.0, 90.0]
    assert store.observed_history("orders", "vol", 14, where_applied=False) == [50_000.0, 49_000.0, 90.0]
    assert store.observed_history("orders", "vol", 14) == [120.0, 50_000.0, 100.0, 49_000.0, 90.0]


def test_observed_history_ignores_values_that_are_not_numbers(store):
    store.record_results(run("a"), [result(observed=5, at=T0)])
    store.record_results(run("b"), [result(observed={"nulls": 3}, at=T0 + dt.timedelta(days=1))])
    store.record_results(run("c"), [result(observed=True, at=T0 + dt.timedelta(days=2))])

    assert store.observed_history("orders", "row_count", 5) == [5.0]


def test_latest_results_gives_the_newest_row_of_each_check(store):
    store.record_results(run("r1"), [result(observed=1, at=T0), result("unique_id", observed=0, at=T0)])
    store.record_results(run("r2"), [result(observed=2, at=T0 + dt.timedelta(hours=1))])
    store.record_results(run("x", dag_id="another"), [result(observed=3, at=T0 + dt.timedelta(hours=2))])

    latest = store.latest_results("orders")

    assert [(r["check_name"], r["run_id"], r["observed"]) for r in latest] == [("row_count", "r2", 2), ("unique_id", "r1", 0)]
    assert store.latest_results("nobody") == []


def test_freshness_round_trips_and_the_latest_poke_wins(store):
    newest = T0 - dt.timedelta(hours=2)
    ref = run()
    store.record_freshness(ref, source="sensor", table="public.orders", column="updated_at", newest=newest,
                           observed_at=T0, max_age_s=3600.0, fresh=False)
    store.record_freshness(ref, source="sensor", table="public.orders", column="updated_at", newest=newest,
                           observed_at=T0 + dt.timedelta(minutes=30), max_age_s=3600.0, fresh=False)
    store.record_freshness(run("empty"), source="check", table="public.orders", column="updated_at", newest=None,
                           observed_at=T0, max_age_s=None, fresh=None)

    assert count(store, freshness) == 2
    with store.engine.connect() as conn:
        rows = {r.run_id: r for r in conn.execute(sa.select(freshness))}
    row = rows["scheduled__2026-03-01"]
    assert row.observed_at == T0 + dt.timedelta(minutes=30) and row.newest == newest
    assert row.lag_seconds == 2.5 * 3600 and row.max_age_seconds == 3600.0 and row.fresh is False
    assert rows["empty"].newest is None and rows["empty"].lag_seconds is None and rows["empty"].fresh is None
    assert store.latest_freshness("orders")["run_id"] == "scheduled__2026-03-01"


def test_purge_removes_only_rows_older_than_the_retention(store, monkeypatch):
    now = dt.datetime.now(UTC)
    old, recent = now - dt.timedelta(days=40), now - dt.timedelta(days=5)
    store.record_results(run("old"), [result(at=old), result("unique_id", at=old)])
    store.record_results(run("recent"), [result(at=recent)])
    store.record_freshness(run("old"), source="check", table="t", column="c", newest=old, observed_at=old, max_age_s=1, fresh=True)
    store.record_freshness(run("recent"), source="check", table="t", column="c", newest=recent, observed_at=recent, max_age_s=1, fresh=True)
    alert = dict(pipeline="orders", dag_id="orders", environment="production", event="check_failed", subject="row_count",
                 tier=0, severity="error", status="sent", created_at=old, channel="slack:#a",
                 resolved_at=None, acknowledged_at=None)
    with store.engine.begin() as conn:
        conn.execute(sa.insert(alerts), [
            {**alert, "run_id": "old-resolved", "resolved_at": old},
            {**alert, "run_id": "old-acked", "acknowledged_at": old},
            {**alert, "run_id": "old-open"},
            {**alert, "run_id": "recent-resolved", "created_at": recent, "resolved_at": recent},
        ])
        conn.execute(sa.insert(audit), [
            {"pipeline": "orders", "dag_id": "orders", "kind": "alert", "at": old},
            {"pipeline": "orders", "dag_id": "orders", "kind": "alert", "at": recent},
        ])
    monkeypatch.setattr("airflow_dataops.store.results.PURGE_BATCH", 1)  # several batches
    monkeypatch.setenv("AIRFLOW__DATAOPS__RESULTS_RETENTION_DAYS", "30")

    assert store.purge() == {"check_results": 2, "freshness": 1, "alerts": 2, "audit": 1}

    assert [r["run_id"] for r in store.latest_results("orders")] == ["recent"]
    with store.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(alerts.c.run_id)).scalars()) == ["old-open", "recent-resolved"]
        assert conn.execute(sa.select(freshness.c.run_id)).scalars().all() == ["recent"]
        assert conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar() == 1
    assert store.purge(retention_days=0) == {"check_results": 0, "freshness": 0, "alerts": 0, "audit": 0}
    assert store.purge(retention_days=1)["check_results"] == 1


def test_the_same_check_twice_in_one_call_keeps_the_last(store):
    store.record_results(run(), [result(observed=1), result("unique_id", observed=0), result(observed=2)])

    rows = {r["check_name"]: r["observed"] for r in store.results_for_run("orders", "scheduled__2026-03-01")}
    assert rows == {"row_count": 2, "unique_id": 0}


def test_a_large_call_is_written_in_several_statements_and_completely(store):
    many = [result(f"check_{n:04d}", observed=n) for n in range(450)]  # more than one batch of 200

    store.record_results(run(), many)
    store.record_results(run(try_number=2), many[:10])

    rows = store.results_for_run("orders", "scheduled__2026-03-01")
    assert len(rows) == 450 and [r["observed"] for r in rows] == list(range(450))
    assert sum(r["try_number"] == 2 for r in rows) == 10
