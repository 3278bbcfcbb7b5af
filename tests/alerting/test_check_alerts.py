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
    return _dispatch(engine, ctx, alerts, run_id, *results)


def _dispatch(engine, ctx, alerts, run_id: str, *results: CheckResult):
    """The check operator's alerting step alone (a retry of a task whose results are stored)."""
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


def test_several_failing_checks_are_one_message_per_channel(connections, slack, smtp, store, ctx):
    """Issue 5: one message per (run, event, tier). Four checks start failing in one run: Slack gets
    one post and email one message, each listing all four with observed vs expected; the store still
    has a row per check and channel, so each can be resolved (and the UI counts them) on its own."""
    alerts = alerts_section({"slack": "#data-alerts"}, {"email": "team@example.com"})
    failing = [_result(f"orders_check_{i}", False, action="fail", observed=i, expected={"max": 0}) for i in range(4)]
    sent = _run(store, ctx, alerts, "run1", 1, *failing, _result("orders_fine", True))

    assert set(sent) == {f"orders_check_{i}" for i in range(4)}
    assert all(outcome == {"slack:#data-alerts": "sent", "email:team@example.com": "sent"} for outcome in sent.values())
    [post] = slack.wait_for(2, timeout=2)
    [mail] = smtp.wait_for(2, timeout=2)
    assert post["text"].splitlines()[0] == (
        f"[ERROR] 4 checks failed: orders_check_0, orders_check_1, orders_check_2 and 1 more ({ctx['pipeline']}, production)")
    for i in range(4):
        assert f"Check orders_check_{i} (null_count) on public.orders failed: observed {i}, expected {{'max': 0}}" in post["text"]
    assert "4 checks failed" in mail["message"]["Subject"]
    assert "orders_check_3" in mail["message"].get_body(("plain",)).get_content()
    assert "orders_check_3" in mail["message"].get_body(("html",)).get_content()
    rows = store_alerts.alert_rows(store, ctx["dag_id"])
    assert sorted((r["subject"], r["channel"]) for r in rows) == sorted(
        (f"orders_check_{i}", channel) for i in range(4) for channel in ("slack:#data-alerts", "email:team@example.com"))
    assert all(r["message"].startswith(f"Check {r['subject']} ") for r in rows)  # each row keeps its own words
    assert len(store_alerts.audit_rows(store, ctx["dag_id"])) == 2  # one per message sent

    # Run 2: two of them pass again, two keep failing: one "recovered" message for both, nothing else.
    _run(store, ctx, alerts, "run2", 2, *failing[2:],
         *[_result(f"orders_check_{i}", True, action="fail") for i in range(2)])
    posts = slack.wait_for(3, timeout=2)
    assert len(posts) == 2 and posts[1]["text"].startswith("[INFO] Recovered: 2 alerts: orders_check_0, orders_check_1")
    assert {a["subject"] for a in store_alerts.open_alerts(store, ctx["dag_id"])} == {"orders_check_2", "orders_check_3"}


def test_a_long_list_is_capped_and_says_how_many_more(connections, slack, store, ctx):
    from airflow_dataops.alerting.message import MAX_LISTED

    alerts = alerts_section({"slack": "#data-alerts"})
    many = [_result(f"c{i:02d}", False, action="fail") for i in range(MAX_LISTED + 3)]
    _run(store, ctx, alerts, "run1", 1, *many)
    [post] = slack.wait_for(2, timeout=2)
    assert f"Check c{MAX_LISTED - 1:02d} " in post["text"] and f"Check c{MAX_LISTED:02d} " not in post["text"]
    assert "... and 3 more: see the Data Quality page" in post["text"]
    assert len(store_alerts.alert_rows(store, ctx["dag_id"])) == MAX_LISTED + 3


def test_warnings_and_failures_of_one_run_are_one_message_each(connections, slack, store, ctx):
    alerts = alerts_section({"slack": "#data-alerts"})
    _run(store, ctx, alerts, "run1", 1, _result("w1", False), _result("w2", False),
         _result("f1", False, action="fail"), _result("f2", False, action="fail"))
    heads = sorted(m["text"].splitlines()[0].split(" (")[0] for m in slack.wait_for(3, timeout=2))
    assert heads == ["[ERROR] 2 checks failed: f1, f2", "[WARNING] 2 checks warned: w1, w2"]


def test_a_retry_sends_only_what_is_new(connections, slack, store, ctx):
    """The task's retry alerts the same checks again: nothing goes out, except a check that only
    started failing in the retry (one message about it alone)."""
    alerts = alerts_section({"slack": "#data-alerts"})
    first = [_result("a", False, action="fail"), _result("b", False, action="fail")]
    _run(store, ctx, alerts, "run1", 1, *first)
    again = _dispatch(store, ctx, alerts, "run1", *first)
    assert again == {"a": {"slack:#data-alerts": "duplicate"}, "b": {"slack:#data-alerts": "duplicate"}}
    _dispatch(store, ctx, alerts, "run1", *first, _result("c", False, action="fail"))
    posts = slack.wait_for(3, timeout=2)
    assert [p["text"].splitlines()[0].split(" (")[0] for p in posts] == [
        "[ERROR] 2 checks failed: a, b", "[ERROR] Check failed: c"]


def test_concurrent_senders_of_one_digest_send_it_once_with_every_check(connections, slack, store, ctx):
    """Eight duplicate senders of the same three failing checks (retries, several workers): one
    message, carrying all three: the claim of the whole message is atomic."""
    import threading

    alerts = alerts_section({"slack": "#data-alerts"})
    results = [_result(name, False, action="fail") for name in ("a", "b", "c")]
    _record(store, ctx, "run1", 1, *results)
    run = {"pipeline": ctx["pipeline"], "dag_id": ctx["dag_id"], "run_id": "run1", "task_id": "check_orders"}
    barrier = threading.Barrier(8)

    def send():
        barrier.wait()
        dispatch_check_results(ctx, run, list(results), alerts, True, engine=store)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [post] = slack.wait_for(2, timeout=2)
    assert "3 checks failed: a, b, c" in post["text"]
