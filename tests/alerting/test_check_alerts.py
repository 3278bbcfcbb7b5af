"""Check results become alerts: observed vs expected, no fatigue, one "recovered" message."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert

from airflow_dataops.alerting.dispatch import dispatch_check_results
from airflow_dataops.engine.result import CheckResult
from airflow_dataops.store import alerts as store_alerts
from airflow_dataops.store.schema import check_results
from tests.alerting.conftest import alerts_section

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _result(name: str, passed: bool, action: str = "warn", observed=5, expected=None) -> CheckResult:
    return CheckResult(name=name, check_type="null_count", action=action, passed=passed, observed=observed,
                       expected=expected or {"max": 0}, table="public.orders", columns=("customer_id",))


def _record(engine, ctx, run_id: str, day: int, *results: CheckResult) -> None:
    """What the check operator writes to the store before it dispatches alerts."""
    with engine.begin() as conn:
        for r in results:
            conn.execute(insert(check_results).values(
                pipeline=ctx["pipeline"], dag_id=ctx["dag_id"], run_id=run_id, task_id="check_orders",
                environment="production", check_name=r.name, check_type=r.check_type, action=r.action,
                status=r.status, passed=r.passed, checked_at=T0 + dt.timedelta(days=day),
                recorded_at=T0 + dt.timedelta(days=day)))


def _run(engine, ctx, alerts, run_id: str, day: int, *results: CheckResult):
    _record(engine, ctx, run_id, day, *results)
    run = {"pipeline": ctx["pipeline"], "dag_id": ctx["dag_id"], "run_id": run_id, "task_id": "check_orders",
           "environment": "production"}
    return dispatch_check_results(ctx, run, list(results), alerts, True, engine=engine)


def test_failed_check_message_has_observed_and_expected(connections, slack, store, ctx):
    sent = _run(store, ctx, alerts_section({"slack": "#data-alerts"}), "run1", 1,
                _result("orders_not_null", False, action="fail", observed=12, expected={"max": 0}),
                _result("orders_unique", True))
    assert sent == {"orders_not_null": {"slack:#data-alerts": "sent"}}
    [message] = slack.wait_for(1)
    assert "Check failed: orders_not_null" in message["text"]
    assert "observed 12, expected {'max': 0}" in message["text"] and "public.orders" in message["text"]
    assert "Severity: ERROR" in message["text"]


def test_a_check_that_keeps_warning_alerts_once_then_recovers_once(connections, slack, store, ctx):
    alerts = alerts_section({"slack": "#data-alerts"})
    _run(store, ctx, alerts, "run1", 1, _result("orders_nulls", False))
    _run(store, ctx, alerts, "run2", 2, _result("orders_nulls", False))
    _run(store, ctx, alerts, "run3", 3, _result("orders_nulls", False))
    assert len(slack.wait_for(1)) == 1
    assert store_alerts.open_alerts(store, ctx["dag_id"])[0]["event"] == "check_warned"

    _run(store, ctx, alerts, "run4", 4, _result("orders_nulls", True))
    _run(store, ctx, alerts, "run5", 5, _result("orders_nulls", True))
    messages = slack.wait_for(2)
    assert [m["text"].splitlines()[0] for m in messages] == [
        "[WARNING] Check warning: orders_nulls (%s, production)" % ctx["pipeline"],
        "[INFO] Recovered: orders_nulls (%s, production)" % ctx["pipeline"],
    ]
    assert store_alerts.open_alerts(store, ctx["dag_id"]) == []
    [row] = [r for r in store_alerts.alert_rows(store, ctx["dag_id"]) if r["event"] == "check_warned"]
    assert row["resolution"] == "recovered"


@pytest.mark.parametrize("repeat", [True, False])
def test_repeat_alerts_every_run(connections, slack, store, ctx, repeat):
    alerts = alerts_section({"slack": "#data-alerts"}, repeat=repeat)
    for day in (1, 2, 3):
        _run(store, ctx, alerts, f"run{day}", day, _result("orders_nulls", False))
    assert len(slack.wait_for(3, timeout=2 if not repeat else 10)) == (3 if repeat else 1)


def test_warning_to_failure_is_a_new_alert(connections, slack, store, ctx):
    alerts = alerts_section({"slack": "#data-alerts"})
    _run(store, ctx, alerts, "run1", 1, _result("orders_nulls", False))
    _run(store, ctx, alerts, "run2", 2, _result("orders_nulls", False, action="fail"))
    assert [m["text"].splitlines()[0].split("]")[0] for m in slack.wait_for(2)] == ["[WARNING", "[ERROR"]


def test_a_cleared_old_run_compares_with_the_run_before_it_not_a_later_one(connections, slack, store, ctx):
    """Run 2 is cleared and re-run after run 3 exists: its warning starts a new incident (run 1
    passed), whatever run 3 said."""
    alerts = alerts_section({"slack": "#data-alerts"})
    _run(store, ctx, alerts, "run1", 1, _result("orders_nulls", True))
    _record(store, ctx, "run3", 3, _result("orders_nulls", False))  # a later run already warned
    _run(store, ctx, alerts, "run2", 2, _result("orders_nulls", False))
    [message] = slack.wait_for(1)
    assert "Check warning: orders_nulls" in message["text"] and "\nRun: run2\n" in message["text"]
