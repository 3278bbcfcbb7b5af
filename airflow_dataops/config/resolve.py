"""One pipeline file + one environment -> a validated, frozen ``PipelineConfig``; or every problem.

Environment overrides: mappings merge key by key, lists are replaced whole, except that a
`quality_checks` entry whose `name` equals a base check's name (explicit or derived) replaces that
check in place; other entries are added. Every error keeps the file position of the value it is
about, wherever it came from (the base section or the environment's override).
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from airflow_dataops.config.alerts import SECRET_FIX, find_secret
from airflow_dataops.config.checks import CHECK_TYPES
from airflow_dataops.config.defaults import Defaults
from airflow_dataops.config.errors import ConfigError, ConfigIssue
from airflow_dataops.config.model import SECTIONS, PipelineConfig, PipelineFile
from airflow_dataops.config.semantics import semantic_issues
from airflow_dataops.config.yaml_loader import LoadedYaml, Path_, load_yaml


def _all_field_names() -> set[str]:
    from pydantic import BaseModel

    names: set[str] = set()
    seen: set[type] = set()

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        names.update(model.model_fields)
        for field in model.model_fields.values():
            for arg in _types_in(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    visit(arg)

    visit(PipelineFile)
    visit(PipelineConfig)
    for check in CHECK_TYPES.values():
        visit(check)
    return names


def _types_in(annotation: Any):
    yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _types_in(arg)
    for meta in getattr(annotation, "__metadata__", ()) or ():
        yield from _types_in(meta)


_FIELD_NAMES: set[str] | None = None


def _suggest(key: str) -> str:
    global _FIELD_NAMES
    if _FIELD_NAMES is None:
        _FIELD_NAMES = _all_field_names()
    close = difflib.get_close_matches(key, sorted(_FIELD_NAMES), n=1, cutoff=0.75)
    return f": did you mean `{close[0]}`?" if close else ": remove it (see `airflow-dataops schema` for the keys allowed here)"


def _data_path(data: Any, loc: tuple) -> Path_:
    """Pydantic's error location minus its union/discriminator labels, as a path into ``data``."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            path.append(part)
        elif isinstance(current, dict) and isinstance(part, str) and part.isidentifier() and part not in CHECK_TYPES:
            path.append(part)  # a missing key: keep it in the path, its parent has the position
            current = None
    return tuple(path)


def _message(error: dict[str, Any]) -> str:
    kind, loc, value = error["type"], error["loc"], error.get("input")
    if kind == "missing":
        return f"`{loc[-1]}` is required"
    if kind == "extra_forbidden":
        return f"unknown key `{loc[-1]}`{_suggest(str(loc[-1]))}"
    if kind == "union_tag_invalid":
        return f"unknown check type {error['ctx'].get('tag')!r}: use one of {', '.join(CHECK_TYPES)}"
    if kind == "union_tag_not_found":
        return f"a check needs `type`: one of {', '.join(CHECK_TYPES)}"
    if kind == "string_type":
        return f"expected text, got {value!r}: quote it (\"{value}\")"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"expected a whole number, got {value!r}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, got {value!r}"
    if kind in {"list_type", "dict_type", "model_type", "model_attributes_type"}:
        want = "a list" if kind == "list_type" else "a mapping"
        return f"expected {want}, got {value!r}"
    message = error["msg"].removeprefix("Value error, ")
    if kind != "value_error" and isinstance(value, str | int | float | bool) and not isinstance(value, dict):
        message = f"{message}, got {value!r}"
    return message


def issues_from_validation(exc: ValidationError, data: Any, loaded: LoadedYaml, file: str,
                           origin: dict[Path_, Path_] | None = None) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        path = _data_path(data, error["loc"])
        source = _origin_of(path, origin) if origin is not None else path
        line, column = loaded.position(source)
        issues.append(ConfigIssue(file, line, column, source, _message(error)))
    return issues


def _origin_of(path: Path_, origin: dict[Path_, Path_]) -> Path_:
    probe = path
    while probe:
        if probe in origin:
            return origin[probe] + path[len(probe):]
        probe = probe[:-1]
    return path


def _secret_issues(data: Any, loaded: LoadedYaml, file: str, path: Path_ = ()) -> list[ConfigIssue]:
    if isinstance(data, str):
        what = find_secret(data)
        if what:
            line, column = loaded.position(path)
            return [ConfigIssue(file, line, column, path, f"this looks like {what}: {SECRET_FIX}")]
        return []
    if isinstance(data, dict):
        return [i for k, v in data.items() for i in _secret_issues(v, loaded, file, (*path, k))]
    if isinstance(data, list):
        return [i for n, v in enumerate(data) for i in _secret_issues(v, loaded, file, (*path, n))]
    return []


def _graft(value: Any, src: Path_, dst: Path_, origin: dict[Path_, Path_]) -> Any:
    origin[dst] = src
    return copy.deepcopy(value)


def _merge_mapping(base: Any, base_src: Path_, over: Any, over_src: Path_, dst: Path_,
                   origin: dict[Path_, Path_]) -> Any:
    if not isinstance(base, dict) or not isinstance(over, dict):
        return _graft(over, over_src, dst, origin)
    merged = copy.deepcopy(base)
    origin[dst] = base_src
    for key, value in over.items():
        if key in base and isinstance(base[key], dict) and isinstance(value, dict):
            merged[key] = _merge_mapping(base[key], (*base_src, key), value, (*over_src, key), (*dst, key), origin)
        else:
            merged[key] = _graft(value, (*over_src, key), (*dst, key), origin)
    # Keys kept from the base keep their base origin.
    for key in base:
        if key not in over:
            origin[(*dst, key)] = (*base_src, key)
    return merged


def raw_check_name(check: Any) -> str | None:
    if not isinstance(check, dict):
        return None
    if isinstance(check.get("name"), str):
        return check["name"]
    columns = check.get("columns") or ([check["column"]] if check.get("column") else [])
    columns = [c.get("name") if isinstance(c, dict) else c for c in columns]
    return "_".join(str(part) for part in (check.get("type"), *columns))


def _merge_checks(base: list, base_src: Path_, over: list, over_src: Path_, dst: Path_,
                  origin: dict[Path_, Path_]) -> list:
    merged = []
    sources: list[Path_] = []
    for index, check in enumerate(base if isinstance(base, list) else []):
        merged.append(copy.deepcopy(check))
        sources.append((*base_src, index))
    names = [raw_check_name(c) for c in merged]
    for index, check in enumerate(over):
        name = check.get("name") if isinstance(check, dict) else None
        if name is not None and name in names:
            slot = names.index(name)
            merged[slot] = copy.deepcopy(check)
            sources[slot] = (*over_src, index)
        else:
            merged.append(copy.deepcopy(check))
            sources.append((*over_src, index))
            names.append(raw_check_name(check))
    origin[dst] = over_src
    for slot, src in enumerate(sources):
        origin[(*dst, slot)] = src
    return merged


def environment_names(data: dict) -> list[str]:
    envs = data.get("environments")
    if not isinstance(envs, list):
        return []
    return [e["name"] for e in envs if isinstance(e, dict) and isinstance(e.get("name"), str)]


def merged_document(data: dict, environment: str) -> tuple[dict, dict[Path_, Path_], int | None]:
    """The raw ``PipelineConfig`` document for one environment, and where each value came from."""
    origin: dict[Path_, Path_] = {}
    pipeline = data.get("pipeline") if isinstance(data.get("pipeline"), dict) else {}
    envs = data.get("environments") if isinstance(data.get("environments"), list) else []
    env_index = next(
        (i for i, e in enumerate(envs) if isinstance(e, dict) and e.get("name") == environment), None
    )
    env = envs[env_index] if env_index is not None else {}
    env_src: Path_ = ("environments", env_index) if env_index is not None else ()

    doc: dict[str, Any] = {"version": data.get("version", 1), "environment": environment}
    origin[("version",)] = ("version",)
    doc["pipeline"] = _graft({k: v for k, v in pipeline.items() if k != "sla"}, ("pipeline",), ("pipeline",), origin)
    base = {section: data.get(section) for section in SECTIONS if section != "sla" and section in data}
    if "sla" in pipeline:
        base["sla"] = pipeline["sla"]
    base_src = {section: (("pipeline", "sla") if section == "sla" else (section,)) for section in SECTIONS}
    for section in SECTIONS:
        have_base, have_over = section in base, isinstance(env, dict) and section in env
        if have_over and section == "quality_checks" and isinstance(env[section], list):
            doc[section] = _merge_checks(base.get(section) or [], base_src[section], env[section],
                                         (*env_src, section), (section,), origin)
        elif have_over and have_base:
            doc[section] = _merge_mapping(base[section], base_src[section], env[section],
                                          (*env_src, section), (section,), origin)
        elif have_over:
            doc[section] = _graft(env[section], (*env_src, section), (section,), origin)
        elif have_base:
            doc[section] = _graft(base[section], base_src[section], (section,), origin)
    schedule = env.get("schedule") if isinstance(env, dict) and env.get("schedule") is not None else pipeline.get("schedule")
    schedule_src = (*env_src, "schedule") if isinstance(env, dict) and env.get("schedule") is not None else ("pipeline", "schedule")
    doc["schedule"] = _graft(schedule, schedule_src, ("schedule",), origin)
    if isinstance(env, dict) and "notifications" in env:
        doc["notifications"] = _graft(env["notifications"], (*env_src, "notifications"), ("notifications",), origin)
    return doc, origin, env_index


def _fill_dataset_defaults(doc: dict, defaults: Defaults) -> None:
    dataset = doc.get("dataset")
    dataset = dict(dataset) if isinstance(dataset, dict) else {}
    name = doc["pipeline"].get("name") if isinstance(doc.get("pipeline"), dict) else None
    dataset.setdefault("conn_id", defaults.conn_id)
    dataset.setdefault("table", name)
    dataset.setdefault("timestamp_column", defaults.timestamp_column)
    doc["dataset"] = dataset


def load_pipeline_text(text: str | bytes, file: str) -> LoadedYaml:
    loaded = load_yaml(text, file)
    if loaded.data is not None and not isinstance(loaded.data, dict):
        loaded.issues.append(ConfigIssue(file, 1, 1, (), "a pipeline file is a mapping with a `pipeline` key"))
    return loaded


def file_issues(loaded: LoadedYaml, file: str) -> list[ConfigIssue]:
    """Problems of the file as written (the same in every environment)."""
    issues = list(loaded.issues)
    if not isinstance(loaded.data, dict):
        return issues
    secrets = _secret_issues(loaded.data, loaded, file)
    issues += secrets
    try:
        PipelineFile.model_validate(loaded.data)
    except ValidationError as exc:
        # A value the YAML loader refused (a tag, an alias) is None now: don't report it twice; and a
        # value that looks like a secret is reported once, by the secret check, never echoed back.
        refused = [issue.path for issue in loaded.issues] + [issue.path for issue in secrets]
        issues += [
            issue for issue in issues_from_validation(exc, loaded.data, loaded, file)
            if not any(issue.path[: len(path)] == path for path in refused)
        ]
    return issues


def resolve_environment(loaded: LoadedYaml, file: str, environment: str, defaults: Defaults,
                        base_dir: Path | None) -> tuple[PipelineConfig | None, list[ConfigIssue]]:
    data = loaded.data
    names = environment_names(data)
    doc, origin, env_index = merged_document(data, environment)
    if "environments" in data and env_index is None:
        line, column = loaded.position(("environments",))
        name = doc["pipeline"].get("name", "?")
        have = ", ".join(names) or "none"
        return None, [ConfigIssue(
            file, line, column, ("environments",),
            f"pipeline {name!r} has no environment {environment!r} (it defines: {have}): add an "
            f"`environments` entry named {environment!r}, or set [dataops] environment to one of them",
        )]
    _fill_dataset_defaults(doc, defaults)
    doc["source_file"] = file
    try:
        config = PipelineConfig.model_validate(doc)
    except ValidationError as exc:
        return None, issues_from_validation(exc, doc, loaded, file, origin)
    issues = semantic_issues(config, doc, origin, loaded, file, base_dir)
    if issues:
        return None, issues
    return config, []


def resolve(text: str | bytes, file: str, environment: str, defaults: Defaults = Defaults(),
            base_dir: Path | None = None) -> PipelineConfig:
    """The pipeline of ``file`` in ``environment``; raises ``ConfigError`` with every problem."""
    loaded = load_pipeline_text(text, file)
    issues = file_issues(loaded, file)
    if issues:
        raise ConfigError(issues)
    config, issues = resolve_environment(loaded, file, environment, defaults, base_dir)
    if issues:
        raise ConfigError([ConfigIssue(i.file, i.line, i.column, i.path, i.message, i.value, environment) for i in issues])
    return config


def _label_environment(issue: ConfigIssue, data: Any) -> ConfigIssue:
    """An issue inside ``environments[i]`` names that environment."""
    path = issue.path
    if len(path) >= 2 and path[0] == "environments" and isinstance(path[1], int) and isinstance(data, dict):
        envs = data.get("environments")
        if isinstance(envs, list) and path[1] < len(envs) and isinstance(envs[path[1]], dict):
            name = envs[path[1]].get("name")
            if isinstance(name, str):
                return ConfigIssue(issue.file, issue.line, issue.column, path, issue.message, issue.value, name)
    return issue


def validate_text(text: str | bytes, file: str, defaults: Defaults = Defaults(),
                  base_dir: Path | None = None) -> list[ConfigIssue]:
    """Every problem of a pipeline file in every environment it defines (what CI should run)."""
    loaded = load_pipeline_text(text, file)
    issues = file_issues(loaded, file)
    if issues or not isinstance(loaded.data, dict):
        return [_label_environment(issue, loaded.data) for issue in issues]
    by_message: dict[str, tuple[ConfigIssue, list[str]]] = {}
    envs = environment_names(loaded.data) or [None]
    for env in envs:
        _, found = resolve_environment(loaded, file, env or "default", defaults, base_dir)
        for issue in found:
            by_message.setdefault(str(issue), (issue, []))[1].append(env or "")
    out = []
    for issue, in_envs in by_message.values():
        label = None if len(in_envs) == len(envs) or envs == [None] else ", ".join(in_envs)
        out.append(ConfigIssue(issue.file, issue.line, issue.column, issue.path, issue.message, issue.value, label))
    return out
