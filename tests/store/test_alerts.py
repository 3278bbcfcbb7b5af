"""Alert state in a store shared by two environments whose runs have the same ids (scheduled run
ids repeat across deployments), on SQLite and real PostgreSQL."""

from __future__ import annotations

import datetime as dt

from airflow_dataops.engine.result import CheckResult
from airflow_dataops.store import alerts as store_alerts
from airflow_dataops.store.results import RunRef

RUN = "scheduled__2026-03-01T05:00:00+00:00"
T0 = dt.datetime(2026, 3, 1, 5, 0, tzinfo=dt.timezone.utc)
CHANNEL = "slack:#orders-alerts"


def alert(environment: str, *, run_id: str = RUN, event: str = "check_failed", subject: str = "row_count") -> dict:
    return {"pipeline": "orders", "dag_id": "orders", "run_id": run_id, "environment": environment, "event": event,
            "subject": subject, "tier": 0, "severity": "error", "summary": f"{subject} failed in {environment}"}


def record(store, environment: str, run_id: str, status: str, at: dt.datetime, *, map_index: int = -1) -> None:
    result = CheckResult(name="row_count", check_type="row_count", action="fail", passed=status == "passed",
                         observed=1, expected={"min": 1}, checked_at=at,
                         error="boom" if status == "error" else None)
    if status == "warned":
        result = CheckResult(name="row_count", check_type="row_count", action="warn", passed=False, observed=1,
                             expected={"min": 1}, checked_at=at)
    store.record_results(RunRef("orders", "orders", run_id, "quality_checks", environment, map_index=map_index), [result])


def test_the_same_alert_of_two_environments_is_claimed_once_in_each(store):
    engine = store.engine

    production = store_alerts.claim_many(engine, [alert("production")], CHANNEL)
    staging = store_alerts.claim_many(engine, [alert("staging")], CHANNEL)
    again = store_alerts.claim_many(engine, [alert("staging")], CHANNEL)

    assert len(production) == 1 and len(staging) == 1, "neither environment's alert is the other's duplicate"
    assert again == []
    rows = store_alerts.alert_rows(engine, "orders", RUN)
    assert sorted((r["environment"], r["message"]) for r in rows) == [
        ("production", "row_count failed in production"), ("staging", "row_count failed in staging")]


def test_suppressed_and_unrouted_alerts_are_kept_per_environment(store):
    engine = store.engine

    assert store_alerts.record_suppressed(engine, alert("development"), CHANNEL, "notifications are off")
    assert store_alerts.record_suppressed(engine, alert("staging"), CHANNEL, "notifications are off")
    assert store_alerts.record_unrouted(engine, alert("production", event="sla_miss", subject="sla"), "no channel")
    assert store_alerts.record_unrouted(engine, alert("staging", event="sla_miss", subject="sla"), "no channel")
    assert not store_alerts.record_suppressed(engine, alert("staging"), CHANNEL, "notifications are off")

    rows = {(r["environment"], r["event"]): r["status"] for r in store_alerts.alert_rows(engine, "orders")}
    assert rows == {("development", "check_failed"): "suppressed", ("staging", "check_failed"): "suppressed",
                    ("production", "sla_miss"): "recorded", ("staging", "sla_miss"): "recorded"}
    audit = {(r["environment"], r["kind"]) for r in store_alerts.audit_rows(engine, "orders")}
    assert audit == {("development", "suppressed"), ("staging", "suppressed"), ("production", "alert"),
                     ("staging", "alert")}


def test_a_success_in_one_environment_resolves_nothing_of_another(store):
    engine = store.engine
    for environment in ("production", "staging"):
        store_alerts.claim_many(engine, [alert(environment)], CHANNEL)
        store_alerts.claim_many(engine, [alert(environment, event="task_failed", subject="load")], CHANNEL)

    resolved = store_alerts.resolve(engine, "orders", "same_run_succeeded", environment="staging", run_ids=[RUN])
    later = store_alerts.resolve(engine, "orders", "later_run_succeeded", environment="staging",
                                 created_before=dt.datetime.now(dt.timezone.utc))

    assert sorted(r["event"] for r in resolved) == ["check_failed", "task_failed"] and later == []
    assert {a["environment"] for a in store_alerts.open_alerts(engine, "orders")} == {"production"}
    assert store_alerts.incident(engine, "orders", RUN, "check_failed", "row_count", environment="staging")["resolved"] \
        == "same_run_succeeded"
    production = store_alerts.incident(engine, "orders", RUN, "check_failed", "row_count", environment="production")
    assert production["resolved"] is None and not production["acknowledged"]
    assert store_alerts.incident(engine, "orders", RUN, "check_failed", "row_count", environment="development") is None
    assert [i["event"] for i in store_alerts.run_incidents(engine, "orders", RUN, ["check_failed", "task_failed"],
                                                           environment="production")] == ["check_failed", "task_failed"]
    assert store_alerts.run_incidents(engine, "orders", RUN, ["check_failed"], environment="development") == []
    recovered = [r for r in store_alerts.audit_rows(engine, "orders") if r["kind"] == "recovered"]
    assert {r["environment"] for r in recovered} == {"staging"} and len(recovered) == 2


def test_acknowledging_one_environment_leaves_the_other_escalating(store):
    engine = store.engine
    for environment in ("production", "staging"):
        store_alerts.claim_many(engine, [alert(environment), alert(environment, subject="unique_id")], CHANNEL)

    assert store_alerts.acknowledge(engine, "orders", RUN, "alice", environment="staging", event="check_failed",
                                    subject="row_count") == 1
    assert store_alerts.acknowledge(engine, "orders", RUN, "bob", environment="production") == 2

    still_open = {(a["environment"], a["subject"]) for a in store_alerts.open_alerts(engine, "orders")}
    assert still_open == {("staging", "unique_id")}
    acks = {(r["environment"], r["actor"], r["detail"]) for r in store_alerts.audit_rows(engine, "orders") if r["kind"] == "ack"}
    assert acks == {("staging", "alice", "acknowledged check_failed row_count"),
                    ("production", "bob", "acknowledged check_failed row_count"),
                    ("production", "bob", "acknowledged check_failed unique_id")}


def test_previous_check_status_looks_only_at_the_same_environment(store):
    """Anti-fatigue asks what the check did in the run before: another environment's run of the
    same id, or one between in time, is not it."""
    hour = dt.timedelta(hours=1)
    record(store, "production", "r1", "failed", T0)
    record(store, "staging", "r1", "passed", T0 + hour)
    record(store, "production", "r2", "failed", T0 + 2 * hour)
    record(store, "staging", "r2", "warned", T0 + 2 * hour)
    record(store, "production", "r3", "passed", T0 + 3 * hour, map_index=0)
    record(store, "production", "r3", "error", T0 + 3 * hour, map_index=1)
    record(store, "production", "r4", "passed", T0 + 4 * hour)

    def previous(environment: str, run_id: str) -> str | None:
        return store_alerts.previous_check_status(store.engine, "orders", "row_count", run_id, environment=environment)

    assert previous("production", "r1") is None
    assert previous("production", "r2") == "failed", "staging's pass in between does not count"
    assert previous("staging", "r2") == "passed"
    assert previous("staging", "r1") is None, "production's failure of r1 is not staging's history"
    assert previous("production", "r4") == "error", "the worst mapped instance of the run before"
    assert previous("production", "not-yet-recorded") == "passed", "a run that recorded nothing: the newest run"
    assert previous("development", "r2") is None


def test_task_had_failed_checks_is_asked_of_one_environment(store):
    record(store, "production", RUN, "failed", T0)
    record(store, "staging", RUN, "passed", T0)

    assert store_alerts.task_had_failed_checks(store.engine, "orders", RUN, "quality_checks", environment="production")
    assert not store_alerts.task_had_failed_checks(store.engine, "orders", RUN, "quality_checks", environment="staging")
