"""DAG spec (plain JSON) -> an Airflow DAG. Pure wiring: no validation, no I/O, no heavy imports.

Shape of every pipeline DAG:

    wait_for_<source> ...  (one freshness sensor per `sources` entry)
        -> the pipeline's `tasks` (their own dependencies)
            -> quality_checks_<python task>  (pandas checks on a task's DataFrame, if any)
                -> quality_checks  (all SQL checks; publishes the dataset Asset only when it passes)
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from airflow.sdk import DAG, Asset

INVALID_PREFIX = "dataops_invalid__"


def _schedule(spec: dict[str, Any]) -> Any:
    schedule = spec["schedule"]
    kind = schedule["kind"]
    if kind == "none":
        return None
    if kind == "preset":
        return schedule["value"]
    if kind == "assets":
        return [Asset(uri) for uri in schedule["uris"]]
    from airflow_dataops.compat import cron_timetables

    CronDataIntervalTimetable, CronTriggerTimetable = cron_timetables()

    timetable = CronDataIntervalTimetable if schedule["data_interval"] else CronTriggerTimetable
    return timetable(schedule["cron"], timezone=schedule["timezone"])


def _dag_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    defaults = spec["default_args"]
    default_args: dict[str, Any] = {
        "owner": defaults["owner"],
        "retries": defaults["retries"],
        "retry_delay": dt.timedelta(seconds=defaults["retry_delay_s"]),
    }
    if defaults.get("pool"):
        default_args["pool"] = defaults["pool"]
    kwargs: dict[str, Any] = {
        "dag_id": spec["dag_id"],
        "schedule": _schedule(spec),
        "start_date": dt.datetime.fromisoformat(spec["start_date"]),
        "catchup": spec["catchup"],
        "tags": spec["tags"],
        "description": spec["description"],
        "doc_md": spec["doc_md"],
        "max_active_runs": spec["max_active_runs"],
        "template_searchpath": list(spec["template_searchpath"]),
        "default_args": default_args,
        "params": {},
    }
    if spec.get("sla") or spec.get("alerts"):
        from airflow_dataops.alerting.wiring import dag_alerting_kwargs

        from airflow_dataops import settings

        extra = dag_alerting_kwargs(spec["ctx"], spec.get("sla"), spec.get("alerts"))
        if not settings.get_bool("deadline_alerts"):
            extra.pop("deadline", None)
        default_args.update(extra.pop("default_args", {}))
        kwargs.update(extra)
    return kwargs


def _sensor(source: dict[str, Any], spec: dict[str, Any]):
    common = {
        "task_id": f"wait_for_{source['name']}",
        "max_age": dt.timedelta(seconds=source["max_age_s"]),
        "timeout": source["timeout_s"],
        "poke_interval": source["poke_interval_s"],
        "soft_fail": source["on_timeout"] == "skip",
        "pipeline": spec["dag_id"],
        "environment": spec["environment"],
        "alerts": spec.get("alerts"),
        "notifications": spec["notifications"],
    }
    if "asset" in source:
        from airflow_dataops.sensors.asset_freshness import AssetFreshnessSensor

        return AssetFreshnessSensor(asset=source["asset"], mode="reschedule" if source["mode"] != "poke" else "poke",
                                    source_name=source["name"], **common)
    from airflow_dataops.sensors.freshness import FreshnessSensor

    deferrable = source["mode"] == "deferrable"
    return FreshnessSensor(
        conn_id=source["conn_id"], table=source["table"], timestamp_column=source["timestamp_column"],
        where=source.get("where"), timezone=source.get("timezone"), source_name=source["name"],
        deferrable=deferrable, mode="poke" if deferrable else source["mode"], **common,
    )


def _include(relative: str) -> str:
    """A template that renders the file at ``relative`` (to the dags folder, which is on the DAG's
    template search path). Unlike Airflow's "value ending in .sql is a file" rule, it cannot pick a
    same-named file next to the loader, and works for any file name (``LOAD.SQL``)."""
    return "{% include " + json.dumps(relative, ensure_ascii=False) + " %}"


def _task(task: dict[str, Any]):
    extra = {"retries": task["retries"]} if task.get("retries") is not None else {}
    if task["kind"] == "sql":
        from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

        sql = _include(task["sql_file"]) if "sql_file" in task else task["sql"]
        return SQLExecuteQueryOperator(task_id=task["id"], conn_id=task["conn_id"], sql=sql,
                                       split_statements=True, **extra)
    if task["kind"] == "bash":
        from airflow.providers.standard.operators.bash import BashOperator

        command = _include(task["bash_file"]) if "bash_file" in task else task["bash"]
        return BashOperator(task_id=task["id"], bash_command=command, **extra)
    from airflow.providers.standard.operators.python import PythonOperator

    from airflow_dataops.operators.callable_path import CallableByPath

    return PythonOperator(task_id=task["id"], python_callable=CallableByPath(task["callable"]), **extra)


def _check_task(spec: dict[str, Any], task_id: str, checks: list[dict], *, source_task: str | None = None,
                outlets: list | None = None):
    from airflow_dataops.operators.quality import DataQualityOperator

    c = spec["checks"]
    kwargs: dict[str, Any] = {}
    if source_task is not None:
        kwargs["source_task"] = source_task
    return DataQualityOperator(
        task_id=task_id, conn_id=c["conn_id"], table=c["table"], checks=checks,
        timestamp_column=c["timestamp_column"], timezone=c.get("timezone"), pipeline=spec["dag_id"],
        environment=spec["environment"], alerts=spec.get("alerts"), notifications=spec["notifications"],
        owner=spec["default_args"]["owner"], outlets=outlets or [], base_dir=c.get("base_dir"), **kwargs,
    )


def build_dag(spec: dict[str, Any]) -> DAG:
    """The DAG a pipeline spec describes."""
    with DAG(**_dag_kwargs(spec)) as dag:
        sensors = [_sensor(source, spec) for source in spec["sources"]]
        tasks = {task["id"]: _task(task) for task in spec["tasks"]}
        for task in spec["tasks"]:
            for upstream in task["upstream"]:
                tasks[upstream] >> tasks[task["id"]]
        roots = [tasks[t["id"]] for t in spec["tasks"] if not t["upstream"]]
        for sensor in sensors:
            sensor >> roots
        leaves = [op for op in tasks.values() if not op.downstream_list] or sensors

        checks = spec["checks"]
        frame_tasks = []
        for source, items in checks["frames"].items():
            frame_task = _check_task(spec, f"quality_checks_{source}", items, source_task=source)
            tasks[source] >> frame_task
            frame_tasks.append(frame_task)
        asset = [Asset(checks["asset"])]
        if checks["items"] or frame_tasks:
            final = _check_task(spec, "quality_checks", checks["items"], outlets=asset) if checks["items"] else None
            if final is not None:
                final << (leaves + frame_tasks)
            else:  # only DataFrame checks: publish once all of them passed
                publish_after = frame_tasks[-1]
                for frame_task in frame_tasks[:-1]:
                    frame_task >> publish_after
                publish_after.outlets = asset
        else:
            for leaf in leaves:
                leaf.outlets = list(leaf.outlets or []) + asset
        if spec.get("alerts"):
            # Resolves this run's alerts on success ("recovered"), escalates unacknowledged failures.
            from airflow_dataops.alerting.wiring import escalation_task

            ends = [task for task in dag.tasks if not task.downstream_list]
            watcher = escalation_task(spec["ctx"], spec["alerts"])
            if watcher is not None:
                ends >> watcher
    return dag


def build_invalid_dag(dag_id: str, file: str, errors: list[str], *, last_valid: str | None = None) -> DAG:
    """A stand-in DAG that shows a broken pipeline file's errors and fails with them when run."""
    from airflow_dataops.operators.invalid_pipeline import InvalidPipelineOperator

    doc = [f"## Invalid pipeline file `{file}`", "",
           "This DAG stands in for a pipeline file that does not validate. Fix the file (run "
           f"`airflow-dataops validate {file}`); this DAG disappears once it is valid.", ""]
    if last_valid:
        doc += [f"Meanwhile the last valid version of pipeline `{last_valid}` stays scheduled.", ""]
    doc += ["```", *errors, "```"]
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        tags=["dataops", "dataops-invalid"],
        description=f"INVALID pipeline file {file}: {len(errors)} error(s)",
        doc_md="\n".join(doc),
    ) as dag:
        InvalidPipelineOperator(task_id="report_errors", file=file, errors=errors)
    return dag
