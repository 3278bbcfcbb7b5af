"""DataQualityOperator through dag.test(): warn never fails, fail raises AirflowFailException
(no retry), a check that cannot run is a retryable error, results are stored before raising."""

from __future__ import annotations

import pytest

DAG = """
import datetime as dt
from airflow.sdk import DAG, task
from airflow_dataops.operators.quality import DataQualityOperator

with DAG({dag_id!r}, schedule={schedule}, start_date=dt.datetime(2024, 1, 1), catchup=False):
    quality = DataQualityOperator(
        task_id="quality",
        conn_id={conn_id!r},
        table={table!r},
        timestamp_column="updated_at",
        checks={checks!r},
        retries={retries},
        {extra}
    )

    @task
    def after():
        return "ran"

    quality >> after()
"""


def quality_dag(load_dag, dag_id, conn_id, checks, *, table="orders", schedule=None, retries=0, extra=""):
    return load_dag(dag_id, DAG.format(dag_id=dag_id, conn_id=conn_id, table=table, checks=checks,
                                       schedule=repr(schedule), retries=retries, extra=extra))


def states(dr):
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def ti_of(dr, task_id="quality"):
    return next(t for t in dr.get_task_instances() if t.task_id == task_id)


PASSING = [
    {"type": "row_count", "min": 5},
    {"type": "null_check", "columns": ["id", "status"]},
    {"type": "accepted_values", "column": "status", "values": ["new", "paid", "shipped"]},
    {"type": "freshness", "max_age": "1 day"},
]


def test_warn_does_not_fail_and_everything_is_recorded(load_dag, dag_id, warehouse, stored, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DATAOPS__FAILING_ROWS_SAMPLE", "3")
    checks = PASSING + [{"type": "unique", "columns": ["id"], "action": "warn"}]
    dr = quality_dag(load_dag, dag_id, warehouse, checks).test()
    assert states(dr) == {"quality": "success", "after": "success"}
    xcom = ti_of(dr).xcom_pull(task_ids="quality")
    assert [(r["name"], r["status"]) for r in xcom] == [
        ("row_count", "passed"), ("null_check_id_status", "passed"), ("accepted_values_status", "passed"),
        ("freshness", "passed"), ("unique_id", "warned")]
    assert all("failing_rows" not in r and "sql" not in r for r in xcom)
    rows = stored(dag_id, dr.run_id)
    assert rows["unique_id"]["status"] == "warned" and rows["unique_id"]["pipeline"] == dag_id
    assert [r["id"] for r in rows["unique_id"]["failing_rows"]] == [4, 4]  # samples go to the store only
    assert rows["row_count"]["observed"] == 5 and rows["row_count"]["checked_at"] == rows["freshness"]["checked_at"]


def test_fail_raises_airflow_fail_exception_after_storing(load_dag, dag_id, warehouse, stored, capfd):
    checks = PASSING + [{"type": "null_check", "columns": ["customer_id"]},
                        {"type": "accepted_values", "column": "status", "values": ["new"], "name": "only_new"},
                        {"type": "unique", "columns": ["id"], "action": "warn"}]
    dr = quality_dag(load_dag, dag_id, warehouse, checks, retries=3).test()
    assert states(dr) == {"quality": "failed", "after": "upstream_failed"}
    assert ti_of(dr).try_number == 1  # AirflowFailException: no retry for a data failure
    text = "".join(capfd.readouterr())
    assert "AirflowFailException" in text
    assert "2 of 7 data-quality checks failed (1 warned):" in text
    assert "null_check_customer_id (null_check) on orders: observed {'customer_id': 1}, expected {'max_nulls': 0}" in text
    assert "only_new (accepted_values) on orders: observed 3" in text
    assert "Full results: results store (" in text and f"dag {dag_id}, run {dr.run_id}, task quality" in text
    rows = stored(dag_id, dr.run_id)
    assert {n: r["status"] for n, r in rows.items()} == {
        "row_count": "passed", "null_check_id_status": "passed", "accepted_values_status": "passed", "freshness": "passed",
        "null_check_customer_id": "failed", "only_new": "failed", "unique_id": "warned"}


def test_missing_table_is_a_retryable_error_naming_the_check(load_dag, dag_id, warehouse, stored, capfd):
    dr = quality_dag(load_dag, dag_id, warehouse, [{"type": "row_count", "min": 1}], table="no_such_table").test()
    assert states(dr)["quality"] == "failed"
    text = "".join(capfd.readouterr())
    assert "CheckExecutionError" in text and "AirflowFailException" not in text
    assert "row_count on no_such_table: table no_such_table does not exist" in text
    assert stored(dag_id, dr.run_id)["row_count"]["status"] == "error"


def test_missing_connection_is_a_retryable_error(load_dag, dag_id, capfd, airflow_db):
    dr = quality_dag(load_dag, dag_id, "no_such_conn", [{"type": "row_count", "min": 1}]).test()
    assert states(dr)["quality"] == "failed"
    text = "".join(capfd.readouterr())
    assert "CheckExecutionError" in text and "no_such_conn" in text


def test_where_with_data_interval_is_dropped_on_a_manual_run(load_dag, dag_id, warehouse, stored):
    checks = [{"type": "row_count", "min": 5, "where": "updated_at >= '{{ data_interval_start }}'", "name": "interval_rows"},
              {"type": "row_count", "min": 2, "where": "status = 'paid'", "name": "paid_rows"}]
    dr = quality_dag(load_dag, dag_id, warehouse, checks).test()
    assert states(dr)["quality"] == "success"
    interval, paid = ti_of(dr).xcom_pull(task_ids="quality")
    assert interval["observed"] == 5 and "`where` dropped: this run has no data interval" in interval["message"]
    assert paid["observed"] == 2 and "dropped" not in paid["message"]


def test_where_reading_the_interval_through_dag_run_follows_the_same_rule(load_dag, dag_id, warehouse, stored):
    """`{{ dag_run.data_interval_start }}` on a manual run is dropped like `{{ data_interval_start }}`,
    with the note the results store recognises (DROPPED_FILTER_NOTE); a guarded one renders and applies."""
    from airflow_dataops.store.results import DROPPED_FILTER_NOTE

    checks = [{"type": "row_count", "min": 5, "name": "interval_rows", "where": "updated_at >= '{{ dag_run.data_interval_start }}'"},
              {"type": "row_count", "min": 4, "max": 4, "name": "guarded",
               "where": "{% if dag_run.data_interval_start %}updated_at >= '{{ dag_run.data_interval_start }}'"
                        "{% else %}status <> 'shipped'{% endif %}"}]
    dr = quality_dag(load_dag, dag_id, warehouse, checks).test()
    assert states(dr)["quality"] == "success"
    interval, guarded = ti_of(dr).xcom_pull(task_ids="quality")
    note = (f"{DROPPED_FILTER_NOTE}: this run has no data interval (the template uses dag_run.data_interval_start), "
            "so the check ran over all rows")
    assert interval["observed"] == 5 and note in interval["message"]
    assert note in stored(dag_id, dr.run_id)["interval_rows"]["message"]
    assert (guarded["status"], guarded["observed"]) == ("passed", 4) and DROPPED_FILTER_NOTE not in guarded["message"]


def test_where_with_data_interval_applies_on_a_scheduled_run(load_dag, dag_id, warehouse):
    import datetime as dt

    checks = [{"type": "row_count", "min": 0, "max": 0, "name": "in_interval",
               "where": "updated_at >= '{{ data_interval_start | ts }}' AND updated_at < '{{ data_interval_end | ts }}'"}]
    dag = quality_dag(load_dag, dag_id, warehouse, checks, schedule="@daily")
    dr = dag.test(logical_date=dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc))
    (result,) = ti_of(dr).xcom_pull(task_ids="quality")
    assert result["status"] == "passed" and result["observed"] == 0 and "dropped" not in result["message"]


@pytest.mark.parametrize("returned", [
    '[{{"id": 1, "email": "a@x.io"}}, {{"id": 1, "email": None}}]',
    'pd.DataFrame({{"id": [1, 1], "email": ["a@x.io", None]}})',
])
def test_source_task_frame_runs_with_pandas(load_dag, dag_id, warehouse, returned):
    source = """
import datetime as dt
from airflow.sdk import DAG, task
from airflow_dataops.operators.quality import DataQualityOperator

with DAG({dag_id!r}, schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False):
    @task
    def extract():
        import pandas as pd

        return {returned}

    extract() >> DataQualityOperator(
        task_id="quality", conn_id={conn_id!r}, table="orders", source_task="extract",
        checks=[{{"type": "row_count", "min": 2}}, {{"type": "null_check", "columns": ["email"], "action": "warn"}}],
    )
""".replace("{returned}", returned).format(dag_id=dag_id, conn_id=warehouse)
    dr = load_dag(dag_id, source).test()
    assert states(dr) == {"extract": "success", "quality": "success"}
    results = ti_of(dr).xcom_pull(task_ids="quality")
    assert [(r["status"], r["engine"], r["table"]) for r in results] == [
        ("passed", "pandas", "DataFrame returned by task extract"), ("warned", "pandas", "DataFrame returned by task extract")]


def test_invalid_checks_fail_at_parse_time():
    from pydantic import ValidationError

    from airflow_dataops.operators.quality import DataQualityOperator

    with pytest.raises(ValidationError):
        DataQualityOperator(task_id="q", conn_id="c", table="t", checks=[{"type": "null_check", "columns": ["a; drop"]}])
    with pytest.raises(ValueError, match="repeat"):
        DataQualityOperator(task_id="q", conn_id="c", table="t", checks=[{"type": "row_count", "min": 1}] * 2)


def test_operator_module_imports_cheaply():
    import subprocess
    import sys

    code = ("import sys, airflow_dataops.operators.quality; "
            "print(sorted(m for m in ('pandas', 'great_expectations', 'airflow_dataops.engine.sql_runner') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert "great_expectations" not in out and "airflow_dataops.engine.sql_runner" not in out


def test_warned_and_failed_checks_reach_alerting_without_changing_the_outcome(load_dag, dag_id, warehouse):
    import sqlalchemy as sa

    from airflow_dataops.store.results import ResultsStore
    from airflow_dataops.store.schema import alerts as alerts_table

    alerts = {"channels": [{"slack": {"channel": "#dq", "conn_id": None}}], "on": None, "escalation": None, "repeat": True}
    checks = [{"type": "row_count", "min": 1}, {"type": "unique", "columns": ["id"], "action": "warn"}]
    dr = quality_dag(load_dag, dag_id, warehouse, checks, extra=f"alerts={alerts!r}, notifications=False,").test()
    assert states(dr)["quality"] == "success"  # a suppressed alert never fails the task
    with ResultsStore.default().engine.connect() as conn:
        rows = conn.execute(sa.select(alerts_table.c.event, alerts_table.c.subject, alerts_table.c.channel, alerts_table.c.status)
                            .where(alerts_table.c.dag_id == dag_id)).all()
    assert [tuple(r) for r in rows] == [("check_warned", "unique_id", "slack:#dq", "suppressed")]


def test_a_rendered_where_that_adds_a_statement_fails_without_retry(load_dag, dag_id, warehouse, capfd):
    import os

    import sqlalchemy as sa

    checks = [{"type": "row_count", "min": 1, "where": "{{ params.filter }}", "name": "filtered"}]
    extra = "params={'filter': \"status = 'new'; DROP TABLE orders\"},"
    dr = quality_dag(load_dag, dag_id, warehouse, checks, retries=2, extra=extra).test()
    assert states(dr)["quality"] == "failed" and ti_of(dr).try_number == 1
    text = "".join(capfd.readouterr())
    assert "AirflowFailException" in text and "are misconfigured" in text and "contains a `;`" in text
    url = os.environ[f"AIRFLOW_CONN_{warehouse.upper()}"]
    with sa.create_engine(url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM orders").scalar_one() == 5


def test_only_where_and_sql_are_templated(load_dag, dag_id, warehouse):
    """Airflow would render every string of `checks`; a `{{ conn.<id>.password }}` in an expectation's
    kwargs must stay text, while `where` and `sql` render."""
    secret_template = "{{ conn.%s.password }}" % warehouse
    checks = [
        {"type": "expectation", "expectation": "expect_column_values_to_be_in_set", "name": "gx_set",
         "kwargs": {"column": "status", "value_set": ["new", "paid", "shipped", secret_template]}},
        {"type": "row_count", "min": 2, "max": 2, "name": "paid", "where": "status = '{{ params.status }}'"},
        {"type": "sql", "sql": "SELECT count(*) = {{ params.rows }} FROM orders", "expect": "truthy", "name": "rendered_sql"},
    ]
    extra = "params={'status': 'paid', 'rows': 5},"
    dr = quality_dag(load_dag, dag_id, warehouse, checks, extra=extra).test()
    assert states(dr)["quality"] == "success"
    gx_set, paid, rendered_sql = ti_of(dr).xcom_pull(task_ids="quality")
    assert gx_set["expected"]["value_set"][-1] == secret_template
    assert (paid["status"], paid["observed"]) == ("passed", 2)
    assert rendered_sql["status"] == "passed"


def test_guarded_templates_and_previous_run_values_on_a_manual_run(load_dag, dag_id, warehouse):
    checks = [
        {"type": "row_count", "min": 5, "name": "since_last_success",
         "where": "updated_at >= '{{ prev_data_interval_start_success }}'"},
        {"type": "sql", "name": "guarded", "expect": "truthy",
         "sql": "SELECT count(*) > 0 FROM orders {% if data_interval_start %}WHERE updated_at >= '{{ data_interval_start }}'{% endif %}"},
        {"type": "sql", "name": "unguarded", "expect": "truthy",
         "sql": "SELECT count(*) > 0 FROM orders WHERE updated_at >= '{{ data_interval_start }}'"},
    ]
    dr = quality_dag(load_dag, dag_id, warehouse, checks, retries=2).test()
    since, guarded, unguarded = _stored(dr)
    assert since["observed"] == 5 and "`where` dropped: this run has no prev_data_interval_start_success" in since["message"]
    assert guarded["status"] == "passed"
    assert unguarded["status"] == "error" and "this run has no data interval (the template uses data_interval_start)" in unguarded["error"]
    assert "{% if data_interval_start %}" in unguarded["error"]
    assert states(dr)["quality"] == "failed" and ti_of(dr).try_number == 1  # a manual run never gets an interval: no retry


def _stored(dr):
    from airflow_dataops.store.results import ResultsStore

    rows = {r["check_name"]: r for r in ResultsStore.default().results_for_run(dr.dag_id, dr.run_id)}
    return [{"status": r["status"], "observed": r["observed"], "message": r["message"], "error": r["error"]}
            for r in (rows["since_last_success"], rows["guarded"], rows["unguarded"])]


def test_a_missing_sql_file_next_to_the_dag_says_which_file(load_dag, dag_id, warehouse, stored, capfd):
    dr = quality_dag(load_dag, dag_id, warehouse, [{"type": "sql", "sql": "checks/orphans.sql", "name": "orphans"}]).test()
    assert states(dr)["quality"] == "failed"
    error = stored(dag_id, dr.run_id)["orphans"]["error"]
    assert error.startswith("configuration: sql check 'orphans': cannot read ") and error.endswith("checks/orphans.sql: No such file or directory")
    assert "no base directory" not in "".join(capfd.readouterr())


def test_a_sql_file_next_to_the_dag_is_rendered(load_dag, dag_id, warehouse, tmp_path):
    folder = tmp_path / "dags" / "checks"
    folder.mkdir(parents=True)
    (folder / "big.sql").write_text("-- big orders\nSELECT * FROM orders WHERE amount > {{ params.limit }};\n-- end\n")
    dr = quality_dag(load_dag, dag_id, warehouse, [{"type": "sql", "sql": "checks/big.sql", "name": "big"}],
                     extra="params={'limit': 1000},").test()
    (result,) = ti_of(dr).xcom_pull(task_ids="quality")
    assert (result["status"], result["observed"]) == ("passed", 0)


def test_the_failure_message_is_capped(load_dag, dag_id, warehouse, capfd):
    values = [f"status_{i:05d}" for i in range(3000)]
    checks = [{"type": "accepted_values", "column": "status", "values": values, "name": f"huge_{n}"} for n in range(12)]
    dr = quality_dag(load_dag, dag_id, warehouse, checks).test()
    assert states(dr)["quality"] == "failed"
    text = "".join(capfd.readouterr())
    message = text[text.index("12 of 12 data-quality checks failed"):]
    message = message[:message.index("also this task's XCom return value.") + 40]
    assert len(message) < 5000, len(message)
    assert "huge_0 (accepted_values) on orders: observed 5, expected {'invalid_rows': 0, 'values': ['status_00000'" in message
    assert "more characters)" in message and "... and 2 more" in message
    assert "Full results: results store (embedded SQLite file " in message and "This is for a single machine" not in message


def test_failed_and_retryable_in_one_run_says_why_there_is_no_retry(load_dag, dag_id, warehouse, capfd):
    checks = [{"type": "row_count", "min": 100}, {"type": "null_check", "columns": ["ghost"]}]
    dr = quality_dag(load_dag, dag_id, warehouse, checks, retries=2).test()
    assert states(dr)["quality"] == "failed" and ti_of(dr).try_number == 1
    text = "".join(capfd.readouterr())
    assert "1 other checks could not run (null_check_ghost): the task is not retried because of the failed checks" in text


def test_volume_history_is_per_environment_and_per_filter_state(load_dag, dag_id, warehouse):
    """The baseline of a check comes from its own environment and from runs that counted the same rows."""
    import datetime as dt

    from airflow_dataops.engine.result import CheckResult
    from airflow_dataops.store.results import ResultsStore, RunRef

    store = ResultsStore.default()
    base = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)
    for day in range(3):
        for environment, rows in (("production", 5), ("staging", 500)):
            store.record_results(RunRef(dag_id, dag_id, f"scheduled__{day}", "quality", environment), [CheckResult(
                name="volume", check_type="volume_anomaly", action="fail", passed=True, observed=rows,
                expected={"max_change_pct": 10, "where_applied": False}, checked_at=base + dt.timedelta(days=day))])
        # filtered counts of the same check (a run with a data interval): a different baseline
        store.record_results(RunRef(dag_id, dag_id, f"interval__{day}", "quality", "production"), [CheckResult(
            name="volume", check_type="volume_anomaly", action="fail", passed=True, observed=1,
            expected={"max_change_pct": 10, "where_applied": True}, checked_at=base + dt.timedelta(days=day, hours=1))])
    checks = [{"type": "volume_anomaly", "max_change_pct": "10%", "name": "volume",
               "where": "updated_at >= '{{ data_interval_start }}'"}]
    dr = quality_dag(load_dag, dag_id, warehouse, checks, extra="environment='production',").test()
    (result,) = ti_of(dr).xcom_pull(task_ids="quality")
    assert result["status"] == "passed", result  # 5 rows against production's whole-table mean of 5
    assert result["expected"]["mean"] == 5.0 and result["expected"]["where_applied"] is False
