"""Rules that span fields: unique names, task references, ids the DAG builder generates, files that
must exist, schedules Airflow refuses, derived checks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from airflow_dataops.config.checks import BaseCheck, CompletenessCheck, NullCheck
from airflow_dataops.config.errors import ConfigIssue, shown
from airflow_dataops.config.messages import origin_of
from airflow_dataops.config.types import IDENTIFIER_HELP, check_identifier, is_script_file, is_sql_file

if TYPE_CHECKING:
    from airflow_dataops.config.model import PipelineConfig
    from airflow_dataops.config.yaml_loader import LoadedYaml, Path_

SLA_COMPLETENESS_NAME = "sla_completeness"
# Task ids the DAG builder adds (see dag_builder/build.py); a pipeline task may not take them.
CHECKS_TASK = "quality_checks"
ALERT_WATCH_TASK = "dataops_alert_watch"
MAX_TASK_ID = 250


@dataclass(frozen=True)
class Partial:
    """A config validated without the parts that failed (``_partial`` in resolve): rules over it must
    not report what the dropped parts would have satisfied."""

    config: PipelineConfig
    index_map: dict[str, list[int]] = field(default_factory=dict)  # section -> original index of each kept item
    dropped: dict[str, list[Any]] = field(default_factory=dict)  # section -> raw items left out
    incomplete: set[str] = field(default_factory=set)  # sections ("dataset") and keys ("pipeline.retries") left out


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


def contained_path(value: str, base_dir: Path, root: Path) -> str | None:
    """``value`` (relative to ``base_dir``) as a POSIX path relative to ``root``, or None when it is
    absolute or leaves ``root``. Lexical (symlinks inside the dags folder are fine)."""
    text = value.strip()
    if Path(text).is_absolute() or text.startswith("~"):
        return None
    joined = os.path.normpath(os.path.join(os.path.abspath(base_dir), text))
    relative = os.path.relpath(joined, os.path.abspath(root))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return None
    return PurePosixPath(*Path(relative).parts).as_posix()


def semantic_issues(config: PipelineConfig, origin: dict, loaded: LoadedYaml, file: str,
                    base_dir: Path | None, root: Path | None = None, partial: Partial | None = None) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    index_map = partial.index_map if partial else {}
    dropped = partial.dropped if partial else {}
    incomplete = partial.incomplete if partial else set()

    def source_of(path: Path_) -> Path_:
        path = tuple(path)
        if len(path) > 1 and path[0] in index_map and isinstance(path[1], int):
            path = (path[0], index_map[path[0]][path[1]], *path[2:])
        return origin_of(path, origin)

    def add(path: Path_, message: str) -> None:
        source = source_of(path)
        line, column = loaded.position(source)
        issues.append(ConfigIssue(file, line, column, source, message))

    if "dataset" not in incomplete:
        try:
            check_identifier(config.dataset.table, dotted=True)
        except ValueError:
            add(("pipeline", "name"), f"the dataset table defaults to the pipeline name {config.name!r}, which is not a "
                f"table name ({IDENTIFIER_HELP}): set `dataset.table`")

    _schedule_issues(config, add, incomplete)
    _task_issues(config, add, base_dir, root, dropped)
    _check_issues(config, add, base_dir, root, dropped, incomplete, source_of)

    source_names = [source.source_name for source in config.sources]
    for index, source in enumerate(config.sources):
        if source_names.index(source.source_name) != index:
            add(("sources", index), f"two sources are named {source.source_name!r}: give one a distinct `name`")
        task_id = f"wait_for_{source.source_name}"
        if len(task_id) > MAX_TASK_ID:
            add(("sources", index), f"the sensor task id {shown(task_id, 40)} is over {MAX_TASK_ID} characters: "
                "give the source a short `name`")
    return issues


def _schedule_issues(config: PipelineConfig, add, incomplete: set[str]) -> None:
    if config.schedule == "@continuous" and config.pipeline.max_active_runs > 1 and "pipeline.max_active_runs" not in incomplete:
        add(("pipeline", "max_active_runs"), f"a `@continuous` schedule runs one run at a time: Airflow requires "
            f"max_active_runs: 1 (got {config.pipeline.max_active_runs})")


def _task_issues(config: PipelineConfig, add, base_dir: Path | None, root: Path | None, dropped: dict) -> None:
    task_ids = [task.id for task in config.tasks]
    # Ids of tasks that failed validation still count as existing: no "depends on a missing task" for them.
    known = set(task_ids) | {t.get("id") for t in dropped.get("tasks", []) if isinstance(t, dict)}
    generated = {CHECKS_TASK: "the task that runs the quality checks", ALERT_WATCH_TASK: "the alert watch task"}
    generated.update({f"quality_checks_{t}": f"the pandas checks of task {t!r}" for t in task_ids})
    generated.update({f"wait_for_{s.source_name}": "the sensor of a `sources` entry" for s in config.sources})
    for index, task in enumerate(config.tasks):
        if task_ids.index(task.id) != index:
            add(("tasks", index, "id"), f"task id {task.id!r} is used twice: task ids must be unique")
        if task.id in generated:
            add(("tasks", index, "id"), f"task id {task.id!r} is the id of {generated[task.id]}, which the pipeline "
                "adds itself: rename this task")
        for ref in task.depends_on or []:
            if ref not in known:
                add(("tasks", index, "depends_on"), f"depends on {shown(ref)}, which is not a task of this pipeline "
                    f"(tasks: {', '.join(task_ids) or 'none'})")
            elif ref == task.id:
                add(("tasks", index, "depends_on"), f"task {task.id!r} cannot depend on itself")
        if task.kind == "sql" and is_sql_file(task.sql):
            _check_file(task.sql, ("tasks", index, "sql"), "SQL file", base_dir, root, add)
        if task.kind == "bash" and is_script_file(task.bash):
            _check_file(task.bash, ("tasks", index, "bash"), "script", base_dir, root, add,
                        hint="; to run a command of that name, write its absolute path")
    if not dropped.get("tasks"):  # a left-out task may have carried the dependency that closes a cycle
        cycle = _find_cycle(config)
        if cycle:
            shown_cycle = cycle if len(cycle) <= 12 else [*cycle[:6], f"... ({len(cycle) - 9} more)", *cycle[-3:]]
            add(("tasks",), f"task dependencies form a cycle: {' -> '.join(shown_cycle)}")


def _check_issues(config: PipelineConfig, add, base_dir: Path | None, root: Path | None, dropped: dict,
                  incomplete: set[str], source_of) -> None:
    python_tasks = {task.id for task in config.tasks if task.kind == "python"}
    python_tasks |= {t.get("id") for t in dropped.get("tasks", []) if isinstance(t, dict) and "python" in t}
    names: dict[str, int] = {}
    for index, check in enumerate(config.quality_checks):
        path = ("quality_checks", index)
        if check.check_name in names:
            hint = "give one of them a distinct `name`"
            first = names[check.check_name]
            if source_of(path)[0] == "environments" and source_of(("quality_checks", first))[0] != "environments":
                hint = (f"to replace the base check instead, give this one `name: {check.check_name}` (unnamed "
                        "checks never replace a base check); or give it a distinct `name`")
            add((*path, "name"), f"check name {check.check_name!r} is used twice (also check #{first + 1}): {hint}")
        names.setdefault(check.check_name, index)
        if check.source_task is not None and check.source_task not in python_tasks:
            add((*path, "source_task"), f"{check.source_task!r} is not a `python` task of this pipeline "
                f"({', '.join(sorted(python_tasks)) or 'there are none'}): name the task that returns the DataFrame")
        if check.type == "sql" and is_sql_file(check.sql):
            _check_file(check.sql, (*path, "sql"), "SQL file", base_dir, root, add)
        if check.type == "referential" and "dataset" not in incomplete:
            child = check.conn_id or config.dataset.conn_id
            if check.parent_conn_id is not None and check.parent_conn_id != child:
                add((*path, "parent_conn_id"), f"parent_conn_id {check.parent_conn_id!r} differs from the checked "
                    f"table's connection {child!r}: a referential check runs as one query in one database")
    if config.sla is not None and config.sla.completeness is not None:
        if SLA_COMPLETENESS_NAME in names:
            add(("sla", "completeness"), f"a check is already named {SLA_COMPLETENESS_NAME!r}, the name of the SLA completeness check: rename it")
        elif sla_completeness_check(config) is None and not dropped.get("quality_checks") and "quality_checks" not in incomplete:
            add(("sla", "completeness"), "sla.completeness has no columns to check: add null checks, or write "
                "{min_pct: \"99%\", columns: [a, b]}")


def _check_file(value: str, path: Any, what: str, base_dir: Path | None, root: Path | None, add, hint: str = "") -> None:
    """A file a task or check names: relative to the pipeline file, inside the dags folder, existing."""
    if base_dir is None:
        return
    text = value.strip()
    if Path(text).is_absolute() or text.startswith("~"):
        add(path, f"{what} {shown(text)} is an absolute path: write it relative to the folder of the pipeline file{hint}")
        return
    if contained_path(text, base_dir, root or base_dir) is None:
        add(path, f"{what} {shown(text)} is outside the dags folder: keep it inside, relative to the pipeline file")
        return
    if not (base_dir / text).is_file():
        add(path, f"{what} {shown(text)} does not exist: paths are relative to the folder of the pipeline file{hint}")


def _find_cycle(config: PipelineConfig) -> list[str] | None:
    """One dependency cycle among the tasks (``a -> b -> a``), or None. Iterative: a long chain of
    tasks must not hit Python's recursion limit."""
    upstream: dict[str, list[str]] = {}
    previous = None
    for task in config.tasks:
        upstream.setdefault(task.id, list(task.depends_on) if task.depends_on is not None else ([previous] if previous else []))
        previous = task.id
    done: set[str] = set()
    for start in upstream:
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        pending = [iter(upstream[start])]
        while pending:
            parent = next(pending[-1], None)
            if parent is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                pending.pop()
                continue
            if parent not in upstream or parent in done or parent == path[-1]:
                continue  # a task depending on itself is reported as such, not as a cycle
            if parent in on_path:
                return path[path.index(parent):] + [parent]
            path.append(parent)
            on_path.add(parent)
            pending.append(iter(upstream[parent]))
    return None
