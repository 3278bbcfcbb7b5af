"""One pipeline file + one environment -> a validated, frozen ``PipelineConfig``; or every problem.

How environments override the base sections is in ``config.environments``. All problems of a file
are reported at once: the YAML's, the rules over the file as written (secrets, Jinja, ambiguous
numbers, environment names), schema validation in every environment, and the rules across fields
(``config.semantics``), which run on whatever part of the file did validate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from airflow_dataops.config.alerts import SECRET_FIX, find_secret
from airflow_dataops.config.defaults import Defaults
from airflow_dataops.config.environments import (
    environment_issues, environment_names, fill_dataset_defaults, merged_document, raw_check_name,
)
from airflow_dataops.config.errors import ConfigError, ConfigIssue, shown
from airflow_dataops.config.messages import issues_from_validation
from airflow_dataops.config.model import PipelineConfig, PipelineFile
from airflow_dataops.config.semantics import Partial, semantic_issues
from airflow_dataops.config.types import JINJA_HELP, has_jinja
from airflow_dataops.config.yaml_loader import LoadedYaml, Path_, load_yaml

__all__ = ["ConfigError", "Defaults", "environment_names", "raw_check_name", "resolve", "validate_loaded",
           "validate_text"]

LIST_SECTIONS = ("tasks", "sources", "quality_checks")


# -- rules over the file as written ------------------------------------------------------------

def _templated(path: Path_) -> bool:
    """Whether a value at ``path`` is rendered by Jinja: a check's `where`/`sql`, a source's
    `where`, a task's `sql`/`bash` (in the base sections or an environment's override)."""
    if len(path) >= 2 and path[0] == "environments" and isinstance(path[1], int):
        path = path[2:]
    if len(path) != 3 or not isinstance(path[1], int):
        return False
    section, key = path[0], path[2]
    return (section == "quality_checks" and key in ("where", "sql")) or (section == "sources" and key == "where") or (
        section == "tasks" and key in ("sql", "bash"))


def _ambiguous_number(path: Path_) -> bool:
    """A number in a field that takes text or numbers (`accepted_values.values`): ``1.10`` or ``007``
    would silently become 1.1 or 7 there."""
    return len(path) >= 4 and path[-4] == "quality_checks" and path[-2] == "values" and isinstance(path[-1], int)


def _walk_issues(data: Any, loaded: LoadedYaml, file: str) -> list[ConfigIssue]:
    """Secrets anywhere, Jinja outside the templated fields, and numbers that read differently from
    how they are written where text is equally valid."""
    issues: list[ConfigIssue] = []

    def add(path: Path_, message: str) -> None:
        line, column = loaded.position(path)
        issues.append(ConfigIssue(file, line, column, path, message))

    def visit(value: Any, path: Path_) -> None:
        if isinstance(value, str):
            what = find_secret(value)
            if what:
                add(path, f"this looks like {what}: {SECRET_FIX}")
            elif has_jinja(value) and not _templated(path):
                add(path, f"{shown(value)} contains Jinja, {JINJA_HELP}")
        elif isinstance(value, dict):
            for key, child in value.items():
                visit(child, (*path, key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                visit(child, (*path, index))

    visit(data, ())
    for path, text in loaded.texts.items():
        if _ambiguous_number(path):
            value = loaded_value(loaded.data, path)
            add(path, f"{text} would be read as the number {value!r}: write {value!r} for the number, or quote it "
                f"(\"{text}\") for the text")
    return issues


def loaded_value(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


# -- one file ----------------------------------------------------------------------------------

def load_pipeline_text(text: str | bytes, file: str) -> LoadedYaml:
    loaded = load_yaml(text, file)
    if loaded.data is not None and not isinstance(loaded.data, dict):
        loaded.issues.append(ConfigIssue(file, 1, 1, (), "a pipeline file is a mapping with a `pipeline` key"))
    return loaded


def _under(path: Path_, refused: list[Path_]) -> bool:
    return any(path[: len(r)] == r for r in refused)


def file_issues(loaded: LoadedYaml, file: str) -> tuple[list[ConfigIssue], list[Path_]]:
    """Problems of the file as written (the same in every environment), and the paths whose value
    was refused already (a YAML tag or alias, a secret, Jinja): validation errors there would say
    the same thing again (or echo a secret)."""
    issues = list(loaded.issues)
    if not isinstance(loaded.data, dict):
        return issues, []
    walked = _walk_issues(loaded.data, loaded, file)
    issues += walked + environment_issues(loaded.data, loaded, file)
    refused = [issue.path for issue in loaded.issues] + [issue.path for issue in walked]
    try:
        PipelineFile.model_validate(loaded.data)
    except ValidationError as exc:
        issues += [issue for issue in issues_from_validation(exc, loaded.data, loaded, file)
                   if not _under(issue.path, refused)]
    return issues, refused


def _partial(doc: dict, exc: ValidationError) -> Partial | None:
    """``doc`` without the parts that failed validation, validated: so that the rules across fields
    (references, names, files) still run on the rest and every error of a file is reported at once."""
    drop: dict[str, set[int]] = {section: set() for section in LIST_SECTIONS}
    keys: dict[str, set[str]] = {}  # pipeline / dataset -> keys left out (their defaults apply)
    whole: set[str] = set()
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if not loc:
            return None
        section = loc[0]
        if section in LIST_SECTIONS and len(loc) > 1 and isinstance(loc[1], int):
            drop[section].add(loc[1])
        elif section in ("pipeline", "dataset") and len(loc) > 1 and loc[1] != "name":
            keys.setdefault(section, set()).add(str(loc[1]))
        elif section in ("sla", "alerts", "schedule", "notifications") or section in LIST_SECTIONS:
            whole.add(section)
        else:
            return None
    trimmed = dict(doc)
    for section, left_out in keys.items():
        if isinstance(doc.get(section), dict):
            trimmed[section] = {k: v for k, v in doc[section].items() if k not in left_out}
    index_map: dict[str, list[int]] = {}
    dropped_items: dict[str, list[Any]] = {}
    for section in LIST_SECTIONS:
        items = doc.get(section)
        if section in whole or not isinstance(items, list):
            if section in whole:
                trimmed.pop(section, None)
            continue
        index_map[section] = [i for i in range(len(items)) if i not in drop[section]]
        trimmed[section] = [items[i] for i in index_map[section]]
        dropped_items[section] = [items[i] for i in sorted(drop[section]) if i < len(items)]
    for section in whole - set(LIST_SECTIONS):
        trimmed.pop(section, None)
    try:
        config = PipelineConfig.model_validate(trimmed)
    except ValidationError:
        return None
    incomplete = whole | set(keys) | {f"{section}.{key}" for section, left_out in keys.items() for key in left_out}
    return Partial(config, index_map, dropped_items, incomplete)


def resolve_environment(loaded: LoadedYaml, file: str, environment: str, defaults: Defaults,
                        base_dir: Path | None, root: Path | None = None) -> tuple[PipelineConfig | None, list[ConfigIssue]]:
    data = loaded.data
    names = environment_names(data)
    doc, origin, env_index = merged_document(data, environment)
    if isinstance(data.get("environments"), list) and data["environments"] and env_index is None:
        line, column = loaded.position(("environments",))
        name = doc["pipeline"].get("name", "?")
        have = ", ".join(names) or "none"
        return None, [ConfigIssue(
            file, line, column, ("environments",),
            f"pipeline {shown(name)} has no environment {environment!r} (it defines: {have}): add an "
            f"`environments` entry named {environment!r}, or set [dataops] environment to one of them",
        )]
    fill_dataset_defaults(doc, defaults)
    doc["source_file"] = file
    doc["source_line"] = loaded.position(("pipeline", "name"))[0]
    try:
        config = PipelineConfig.model_validate(doc)
    except ValidationError as exc:
        issues = issues_from_validation(exc, doc, loaded, file, origin, PipelineConfig)
        partial = _partial(doc, exc)
        if partial is not None:
            issues += semantic_issues(partial.config, origin, loaded, file, base_dir, root, partial)
        return None, issues
    issues = semantic_issues(config, origin, loaded, file, base_dir, root)
    if issues:
        return None, issues
    return config, []


def _environment_pass(loaded: LoadedYaml, file: str, environments: list[str], defaults: Defaults,
                      base_dir: Path | None, root: Path | None, known: list[ConfigIssue],
                      refused: list[Path_]) -> tuple[dict[str, PipelineConfig], list[tuple[ConfigIssue, list[str]]]]:
    """Resolve each environment; its problems not already in ``known``, with the environments they
    occur in."""
    seen = {str(issue) for issue in known}
    configs: dict[str, PipelineConfig] = {}
    by_message: dict[str, tuple[ConfigIssue, list[str]]] = {}
    for env in environments:
        config, found = resolve_environment(loaded, file, env, defaults, base_dir, root)
        if config is not None:
            configs[env] = config
        for issue in found:
            if str(issue) not in seen and not _under(issue.path, refused):
                by_message.setdefault(str(issue), (issue, []))[1].append(env)
    return configs, list(by_message.values())


def resolve(text: str | bytes, file: str, environment: str, defaults: Defaults = Defaults(),
            base_dir: Path | None = None, root: Path | None = None) -> PipelineConfig:
    """The pipeline of ``file`` in ``environment``; raises ``ConfigError`` with every problem.

    ``base_dir`` is the folder of the file (`.sql` paths are relative to it), ``root`` the dags
    folder no path may leave (default: ``base_dir``)."""
    loaded = load_pipeline_text(text, file)
    issues, refused = file_issues(loaded, file)
    if not isinstance(loaded.data, dict):
        raise ConfigError(issues or [ConfigIssue(file, 1, 1, (), "the file is empty: a pipeline file is a mapping with a `pipeline` key")])
    configs, found = _environment_pass(loaded, file, [environment], defaults, base_dir, root, issues, refused)
    issues += [_label(issue, environment) for issue, _ in found]
    if issues:
        raise ConfigError(issues)
    return configs[environment]


def _label(issue: ConfigIssue, environment: str | None) -> ConfigIssue:
    return ConfigIssue(issue.file, issue.line, issue.column, issue.path, issue.message, issue.value, environment)


def _label_environment(issue: ConfigIssue, data: Any) -> ConfigIssue:
    """An issue inside ``environments[i]`` names that environment."""
    path = issue.path
    if len(path) >= 2 and path[0] == "environments" and isinstance(path[1], int) and isinstance(data, dict):
        envs = data.get("environments")
        if isinstance(envs, list) and path[1] < len(envs) and isinstance(envs[path[1]], dict):
            name = envs[path[1]].get("name")
            if isinstance(name, str):
                return _label(issue, name)
    return issue


def validate_text(text: str | bytes, file: str, defaults: Defaults = Defaults(),
                  base_dir: Path | None = None, root: Path | None = None) -> list[ConfigIssue]:
    """Every problem of a pipeline file in every environment it defines (what CI should run)."""
    return validate_loaded(load_pipeline_text(text, file), file, defaults, base_dir, root)


def validate_loaded(loaded: LoadedYaml, file: str, defaults: Defaults = Defaults(),
                    base_dir: Path | None = None, root: Path | None = None) -> list[ConfigIssue]:
    """``validate_text`` of a file parsed already (``load_pipeline_text``), for callers that also
    need its data or positions: the file is parsed once."""
    issues, refused = file_issues(loaded, file)
    if not isinstance(loaded.data, dict):
        return issues
    out = [_label_environment(issue, loaded.data) for issue in issues]
    envs = environment_names(loaded.data)
    _, found = _environment_pass(loaded, file, envs or ["default"], defaults, base_dir, root, issues, refused)
    for issue, in_envs in found:
        out.append(_label(issue, None if not envs or len(in_envs) == len(envs) else ", ".join(in_envs)))
    return out
