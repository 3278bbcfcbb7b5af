"""Rules that span fields: unique names, task references, files that must exist, derived checks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_dataops.config.checks import BaseCheck, CompletenessCheck, NullCheck
from airflow_dataops.config.errors import ConfigIssue
from airflow_dataops.config.types import IDENTIFIER_HELP, check_identifier, is_sql_file

if TYPE_CHECKING:
    from airflow_dataops.config.model import PipelineConfig
    from airflow_dataops.config.yaml_loader import LoadedYaml, Path_

SLA_COMPLETENESS_NAME = "sla_completeness"


def sla_completeness_check(config: PipelineConfig) -> CompletenessCheck | None:
    """``sla.completeness`` as a `completeness` check (action fail) over the null checks' columns."""
    sla = config.sla
    if sla is None or sla.completeness is None:
        return None
    if isinstance(sla.completeness, float):
        min_pct, columns = sla.completeness, None
    else:
        min_pct, columns = sla.completeness.min_pct, sla.completeness.columns
    if not columns:
        columns = list(dict.fromkeys(c for check in config.quality_checks if isinstance(check, NullCheck) for c in check.columns))
    if not columns:
        return None
    return CompletenessCheck(type="completeness", name=SLA_COMPLETENESS_NAME, columns=columns,
                             min_pct=f"{min_pct:g}%", action="fail")


def effective_checks(config: PipelineConfig) -> list[BaseCheck]:
    """The checks a run performs: the configured ones plus the SLA completeness check."""
    checks = list(config.quality_checks)
    derived = sla_completeness_check(config)
    if derived is not None:
        checks.append(derived)
    return checks


def semantic_issues(config: PipelineConfig, doc: dict, origin: dict, loaded: LoadedYaml, file: str,
                    base_dir: Path | None) -> list[ConfigIssue]:
    from airflow_dataops.config.resolve import _origin_of

    issues: list[ConfigIssue] = []

    def add(path: Path_, message: str) -> None:
        source = _origin_of(tuple(path), origin)
        line, column = loaded.position(source)
        issues.append(ConfigIssue(file, line, column, source, message))

    try:
        check_identifier(config.dataset.table, dotted=True)
    except ValueError:
        add(("pipeline", "name"), f"the dataset table defaults to the pipeline name {config.name!r}, which is not a "
            f"table name ({IDENTIFIER_HELP}): set `dataset.table`")

    task_ids = [task.id for task in config.tasks]
    for index, task in enumerate(config.tasks):
        if task_ids.index(task.id) != index:
            add(("tasks", index, "id"), f"task id {task.id!r} is used twice: task ids must be unique")
        for ref in task.depends_on or []:
            if ref not in task_ids:
                add(("tasks", index, "depends_on"), f"depends on {ref!r}, which is not a task of this pipeline (tasks: {', '.join(task_ids)})")
            elif ref == task.id:
                add(("tasks", index, "depends_on"), f"task {task.id!r} cannot depend on itself")
        if task.kind == "sql":
            _check_sql_file(task.sql, ("tasks", index, "sql"), base_dir, add)
    cycle = _find_cycle(config)
    if cycle:
        add(("tasks",), f"task dependencies form a cycle: {' -> '.join(cycle)}")

    python_tasks = {task.id for task in config.tasks if task.kind == "python"}
    names: dict[str, int] = {}
    for index, check in enumerate(config.quality_checks):
        path = ("quality_checks", index)
        if check.check_name in names:
            add((*path, "name"), f"check name {check.check_name!r} is used twice (also check #{names[check.check_name] + 1}): "
                "give one of them a distinct `name`")
        names.setdefault(check.check_name, index)
        if check.source_task is not None and check.source_task not in python_tasks:
            add((*path, "source_task"), f"{check.source_task!r} is not a `python` task of this pipeline "
                f"({', '.join(sorted(python_tasks)) or 'there are none'}): name the task that returns the DataFrame")
        if check.type == "sql":
            _check_sql_file(check.sql, (*path, "sql"), base_dir, add)
        if check.type == "referential":
            child = check.conn_id or config.dataset.conn_id
            if check.parent_conn_id is not None and check.parent_conn_id != child:
                add((*path, "parent_conn_id"), f"parent_conn_id {check.parent_conn_id!r} differs from the checked "
                    f"table's connection {child!r}: a referential check runs as one query in one database")
    if config.sla is not None and config.sla.completeness is not None:
        if SLA_COMPLETENESS_NAME in names:
            add(("sla", "completeness"), f"a check is already named {SLA_COMPLETENESS_NAME!r}, the name of the SLA completeness check: rename it")
        elif sla_completeness_check(config) is None:
            add(("sla", "completeness"), "sla.completeness has no columns to check: add null checks, or write "
                "{min_pct: \"99%\", columns: [a, b]}")

    source_names = [source.source_name for source in config.sources]
    for index, source in enumerate(config.sources):
        if source_names.index(source.source_name) != index:
            add(("sources", index), f"two sources are named {source.source_name!r}: give one a distinct `name`")
    return issues


def _check_sql_file(sql: str, path: Any, base_dir: Path | None, add) -> None:
    if base_dir is None or not is_sql_file(sql):
        return
    target = (base_dir / sql.strip()).resolve()
    if not target.is_file():
        add(path, f"SQL file {sql.strip()!r} does not exist: paths are relative to the folder of the pipeline file")


def _find_cycle(config: PipelineConfig) -> list[str] | None:
    upstream = {}
    previous = None
    for task in config.tasks:
        upstream[task.id] = task.depends_on if task.depends_on is not None else ([previous] if previous else [])
        previous = task.id
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for parent in upstream.get(node, []):
            if parent not in upstream:
                continue
            if state.get(parent) == 1:
                return stack[stack.index(parent):] + [parent]
            if parent not in state:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for task_id in upstream:
        if task_id not in state:
            found = visit(task_id)
            if found:
                return found
    return None
