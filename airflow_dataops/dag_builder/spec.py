"""A validated ``PipelineConfig`` -> a plain JSON "DAG spec": everything the builder needs, nothing more.

The spec is what the parse cache stores. Building a DAG from it needs neither pydantic models nor
the YAML: the dag-processor and every worker parse fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow_dataops.config.model import DEFAULT_START_DATE, PipelineConfig
from airflow_dataops.config.semantics import effective_checks
from airflow_dataops.config.types import is_sql_file

SPEC_VERSION = 1
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


def build_spec(config: PipelineConfig, base_dir: Path) -> dict[str, Any]:
    """The JSON-able description of the DAG ``config`` becomes."""
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
        "template_searchpath": str(base_dir),
        "ctx": ctx,
        "sla": {
            "freshness": config.sla.freshness.total_seconds() if config.sla and config.sla.freshness else None,
        } if config.sla else None,
        "alerts": config.alerts.to_runtime() if config.alerts else None,
        "sources": [_source_spec(s, config) for s in config.sources],
        "tasks": [_task_spec(t, config, index) for index, t in enumerate(config.tasks)],
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


def _task_spec(task, config: PipelineConfig, index: int) -> dict[str, Any]:
    if task.depends_on is not None:
        upstream = list(task.depends_on)
    else:
        upstream = [config.tasks[index - 1].id] if index > 0 else []
    spec: dict[str, Any] = {"id": task.id, "kind": task.kind, "upstream": upstream, "retries": task.retries}
    if task.kind == "sql":
        spec["sql"] = task.sql.strip() if is_sql_file(task.sql) else task.sql
        spec["conn_id"] = task.conn_id or config.dataset.conn_id
    elif task.kind == "python":
        spec["callable"] = task.python
    else:
        spec["bash"] = task.bash
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
