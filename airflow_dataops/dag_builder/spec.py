"""A validated ``PipelineConfig`` -> a plain JSON "DAG spec": everything the builder needs, nothing more.

The spec is what the parse cache stores. Building a DAG from it needs neither pydantic models nor
the YAML: the dag-processor and every worker parse fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow_dataops.config.model import DEFAULT_START_DATE, PipelineConfig
from airflow_dataops.config.semantics import contained_path, effective_checks
from airflow_dataops.config.types import is_script_file, is_sql_file

SPEC_VERSION = 2
# Airflow takes a templated value ending in one of these for the path of a template file
# (BaseOperator.template_ext of SQLExecuteQueryOperator and BashOperator; the check is case-sensitive).
SQL_TEMPLATE_EXT = (".sql", ".json")
BASH_TEMPLATE_EXT = (".sh", ".bash")
CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def schedule_spec(config: PipelineConfig) -> dict[str, Any]:
    value = config.schedule
    if value is None or value == "manual":
        return {"kind": "none"}
    if isinstance(value, list) or "://" in value:
        return {"kind": "assets", "uris": value if isinstance(value, list) else [value]}
    if value in ("@once", "@continuous"):
        return {"kind": "preset", "value": value}
    return {
        "kind": "cron",
        "cron": CRON_PRESETS.get(value, value),
        "timezone": config.pipeline.timezone,
        "data_interval": config.pipeline.data_interval,
    }


def _start_date(config: PipelineConfig) -> str:
    start = config.pipeline.start_date
    if start is None:
        return DEFAULT_START_DATE.isoformat()
    if not isinstance(start, dt.datetime):
        start = dt.datetime(start.year, start.month, start.day)
    if start.tzinfo is None:
        from zoneinfo import ZoneInfo

        start = start.replace(tzinfo=ZoneInfo(config.pipeline.timezone))
    return start.isoformat()


def _doc_md(config: PipelineConfig, checks: list) -> str:
    lines = [config.pipeline.description or f"Pipeline `{config.name}`", "",
             f"*airflow-dataops pipeline from `{config.source_file}`, environment `{config.environment}`, "
             f"notifications {'on' if config.notifications else 'off'}.*", ""]
    dataset = config.dataset
    lines.append(f"**Dataset:** `{dataset.table}` on connection `{dataset.conn_id}` (freshness column `{dataset.timestamp_column}`)")
    if checks:
        lines += ["", "**Quality checks:**", ""]
        lines += [f"- `{c.check_name}` ({c.type}, {c.action})" for c in checks]
    if config.sla and config.sla.freshness:
        lines += ["", f"**SLA:** data never older than {config.sla.freshness} (a run not succeeded within that of being queued is an SLA miss)."]
    return "\n".join(lines)


def build_spec(config: PipelineConfig, base_dir: Path, root: Path | None = None) -> dict[str, Any]:
    """The JSON-able description of the DAG ``config`` becomes. ``base_dir`` is the folder of the
    pipeline file, ``root`` the dags folder (the loader's folder; default ``base_dir``)."""
    root = root if root is not None else base_dir
    checks = effective_checks(config)
    dataset = config.dataset
    sql_checks = [c for c in checks if not c.source_task]
    frame_checks: dict[str, list] = {}
    for check in checks:
        if check.source_task:
            frame_checks.setdefault(check.source_task, []).append(check)
    meta = config.pipeline
    ctx = {
        "pipeline": config.name,
        "dag_id": config.name,
        "environment": config.environment,
        "owner": meta.owner,
        "notifications": config.notifications,
        "ui_base_url": None,
    }

    def dump(check) -> dict[str, Any]:
        # The effective name travels with the check: one identity in the store, alerts and the UI.
        return {**check.model_dump(mode="json", exclude_none=True), "name": check.check_name}

    return {
        "spec_version": SPEC_VERSION,
        "dag_id": config.name,
        "file": config.source_file,
        "line": config.source_line,
        "environment": config.environment,
        "notifications": config.notifications,
        "schedule": schedule_spec(config),
        "start_date": _start_date(config),
        "catchup": meta.catchup,
        "tags": list(dict.fromkeys(["dataops", f"env:{config.environment}", *meta.tags])),
        "description": (meta.description or f"airflow-dataops pipeline {config.name}").splitlines()[0][:200],
        "doc_md": _doc_md(config, checks),
        "max_active_runs": meta.max_active_runs,
        "default_args": {
            "owner": meta.owner,
            "retries": meta.retries,
            "retry_delay_s": meta.retry_delay.total_seconds(),
            "pool": meta.pool,
        },
        # Airflow searches the DAG's folder (the loader's) first, then these: files are named
        # relative to the dags folder, so that a subfolder's sql/load.sql is never the root's.
        "template_searchpath": list(dict.fromkeys([str(root), str(base_dir)])),
        "ctx": ctx,
        "sla": {
            "freshness": config.sla.freshness.total_seconds() if config.sla and config.sla.freshness else None,
        } if config.sla else None,
        "alerts": config.alerts.to_runtime() if config.alerts else None,
        "sources": [_source_spec(s, config) for s in config.sources],
        "tasks": [_task_spec(t, config, index, base_dir, root) for index, t in enumerate(config.tasks)],
        "checks": {
            "conn_id": dataset.conn_id,
            "table": dataset.table,
            "timestamp_column": dataset.timestamp_column,
            "timezone": dataset.timezone,
            "asset": config.asset_uri,
            "items": [dump(c) for c in sql_checks],
            "frames": {task: [dump(c) for c in items] for task, items in frame_checks.items()},
            "base_dir": str(base_dir),
        },
    }


def _in_dags_folder(value: str, base_dir: Path, root: Path) -> str:
    relative = contained_path(value, base_dir, root)
    if relative is None:  # validation refuses this; never let a spec point outside the dags folder
        raise ValueError(f"{value!r} is outside the dags folder {root}")
    return relative


def _not_a_template_path(value: str, extensions: tuple[str, ...]) -> str:
    """A command or statement that happens to end like a template file name (``... deploy.sh``):
    a trailing space keeps Airflow from looking for a file of that name (Airflow's documented fix)."""
    return value + " " if value.endswith(extensions) else value


def _task_spec(task, config: PipelineConfig, index: int, base_dir: Path, root: Path) -> dict[str, Any]:
    if task.depends_on is not None:
        upstream = list(task.depends_on)
    else:
        upstream = [config.tasks[index - 1].id] if index > 0 else []
    spec: dict[str, Any] = {"id": task.id, "kind": task.kind, "upstream": upstream, "retries": task.retries}
    if task.kind == "sql":
        if is_sql_file(task.sql):
            spec["sql_file"] = _in_dags_folder(task.sql, base_dir, root)
        else:
            spec["sql"] = _not_a_template_path(task.sql, SQL_TEMPLATE_EXT)
        spec["conn_id"] = task.conn_id or config.dataset.conn_id
    elif task.kind == "python":
        spec["callable"] = task.python
    elif is_script_file(task.bash):
        spec["bash_file"] = _in_dags_folder(task.bash, base_dir, root)
    else:
        spec["bash"] = _not_a_template_path(task.bash, BASH_TEMPLATE_EXT)
    return spec


def _source_spec(source, config: PipelineConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": source.source_name,
        "max_age_s": source.max_age.total_seconds(),
        "timeout_s": source.timeout.total_seconds() if source.timeout else 6 * 3600.0,
        "poke_interval_s": source.poke_interval.total_seconds() if source.poke_interval else 60.0,
        "on_timeout": source.on_timeout,
        "mode": "reschedule" if source.asset and source.mode == "deferrable" else source.mode,
    }
    if source.asset:
        spec["asset"] = source.asset
    else:
        spec.update(
            conn_id=source.conn_id or config.dataset.conn_id,
            table=source.table,
            timestamp_column=source.timestamp_column or config.dataset.timestamp_column,
            where=source.where,
            timezone=config.dataset.timezone,
        )
    return spec
