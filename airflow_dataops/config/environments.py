"""Environment overrides: one environment's raw document, and where each of its values came from.

Mappings merge key by key and lists are replaced whole. `quality_checks` follows one more rule: an
environment's list replaces the base list whole, unless some of its checks carry an explicit `name`
equal to a base check's name (explicit or derived); then each of those replaces that base check in
place, and the environment's other checks are added after the base ones. Unnamed checks never
match by their derived name (so an unnamed check like a base one, in a list that also patches by
name, is a duplicate: name it to replace).
"""

from __future__ import annotations

import copy
from typing import Any

from airflow_dataops.config.defaults import Defaults
from airflow_dataops.config.errors import ConfigIssue, shown
from airflow_dataops.config.model import SECTIONS
from airflow_dataops.config.yaml_loader import LoadedYaml, Path_


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
    columns = [c.get("name") if isinstance(c, dict) else c for c in columns] if isinstance(columns, list) else []
    return "_".join(str(part) for part in (check.get("type"), *columns))


def _merge_checks(base: list, base_src: Path_, over: list, over_src: Path_, dst: Path_,
                  origin: dict[Path_, Path_]) -> list:
    """The rule of the module docstring: replace whole, unless explicitly named checks patch the base."""
    base = base if isinstance(base, list) else []
    names = [raw_check_name(c) for c in base]
    explicit = [isinstance(c, dict) and isinstance(c.get("name"), str) and c["name"] in names for c in over]
    if not any(explicit):
        return _graft(over, over_src, dst, origin)
    merged = [copy.deepcopy(check) for check in base]
    sources: list[Path_] = [(*base_src, index) for index in range(len(base))]
    for index, check in enumerate(over):
        if explicit[index]:
            slot = names.index(check["name"])
            merged[slot] = copy.deepcopy(check)
            sources[slot] = (*over_src, index)
        else:
            merged.append(copy.deepcopy(check))
            sources.append((*over_src, index))
    origin[dst] = over_src
    for slot, src in enumerate(sources):
        origin[(*dst, slot)] = src
    return merged


def environment_names(data: dict) -> list[str]:
    envs = data.get("environments")
    if not isinstance(envs, list):
        return []
    return list(dict.fromkeys(e["name"] for e in envs if isinstance(e, dict) and isinstance(e.get("name"), str)))


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


def fill_dataset_defaults(doc: dict, defaults: Defaults) -> None:
    dataset = doc.get("dataset")
    dataset = dict(dataset) if isinstance(dataset, dict) else {}
    name = doc["pipeline"].get("name") if isinstance(doc.get("pipeline"), dict) else None
    dataset.setdefault("conn_id", defaults.conn_id)
    dataset.setdefault("table", name)
    dataset.setdefault("timestamp_column", defaults.timestamp_column)
    doc["dataset"] = dataset


def environment_issues(data: dict, loaded: LoadedYaml, file: str) -> list[ConfigIssue]:
    """Environment names are unique, and `environments`, when given, lists at least one."""
    if "environments" not in data:
        return []
    envs = data["environments"]
    if envs is None or envs == []:
        line, column = loaded.position(("environments",))
        return [ConfigIssue(file, line, column, ("environments",), "`environments` lists no environment: add "
                            "entries like `- name: production`, or remove the key to run the pipeline in every environment")]
    issues = []
    first: dict[str, int] = {}
    for index, env in enumerate(envs if isinstance(envs, list) else []):
        name = env.get("name") if isinstance(env, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            path = ("environments", index, "name")
            line, column = loaded.position(path)
            issues.append(ConfigIssue(file, line, column, path, f"environment {shown(name)} is defined twice (also "
                                      f"environments[{first[name]}]): merge the two entries"))
        first.setdefault(name, index)
    return issues
