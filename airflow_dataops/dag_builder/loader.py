"""Turn every pipeline YAML under a dags folder into a DAG. Called from a tiny loader ``.py`` file:

    from airflow_dataops.dag_builder.loader import load_pipelines
    load_pipelines(globals(), __file__)

- Scans relative to the loader file's own folder (works in any Airflow 3 DAG bundle), recursively,
  honouring ``.airflowignore``. A pipeline file is a ``.yaml``/``.yml`` whose top level has a
  ``pipeline`` key; other YAML is left alone.
- When Airflow parses for one task (``get_parsing_context().dag_id``), only that pipeline's file is
  read and built, found through the cache's dag_id index.
- A broken file never hides the others: it becomes a stand-in DAG ``dataops_invalid__<path>`` that
  shows its errors and fails with them when run; its last valid version stays scheduled meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_dataops.dag_builder.build import INVALID_PREFIX, build_dag, build_invalid_dag
from airflow_dataops.dag_builder.cache import SpecCache, default_cache_dir
from airflow_dataops.dag_builder.discovery import PIPELINE_KEY, find_pipeline_files

log = logging.getLogger(__name__)

_NAME_LINE = re.compile(rb"^[ \t]+name[ \t]*:[ \t]*[\"']?([A-Za-z0-9_.-]+)", re.MULTILINE)


class PipelineWarning(UserWarning):
    """A pipeline file problem (kept in DagBag.captured_warnings with the loader's file and line)."""


@dataclass
class Loaded:
    """What one scan produced: DAG specs by id, and errors by file."""

    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # relative file -> messages
    last_valid: dict[str, dict[str, Any]] = field(default_factory=dict)  # relative file -> spec
    files: dict[str, str] = field(default_factory=dict)  # dag_id -> relative file


def invalid_dag_id(relative: str) -> str:
    """``dataops_invalid__<path>``, one per file and never two files alike: DAG ids allow letters,
    digits, ``_``, ``.`` and ``-``, so ``orders.yaml`` stays as it is; when a character had to be
    replaced (``/`` of a subfolder, a space) or the id cut to 250, a hash of the path is appended,
    so ``team/orders.yaml`` and ``team.orders.yaml`` keep stand-ins of their own."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", ".", relative)
    dag_id = INVALID_PREFIX + readable
    if readable == relative and len(dag_id) <= 250:
        return dag_id
    digest = hashlib.sha1(relative.encode()).hexdigest()[:8]
    return f"{dag_id[:241]}-{digest}"


def _settings() -> tuple[str, Any, str]:
    from airflow_dataops import settings
    from airflow_dataops.config.defaults import Defaults

    defaults = Defaults(settings.get("default_conn_id"), settings.get("default_timestamp_column"))
    return settings.get("environment"), defaults, f"{defaults.conn_id}|{defaults.timestamp_column}"


def _entry_for(path: Path, content: bytes, relative: str, cache: SpecCache, environment: str, defaults,
               key: str | None = None) -> dict:
    """The cached {"spec": ...} or {"errors": [...]} for one file, validating on a miss."""
    key = key or cache.key(path, content)
    entry = cache.get(key)
    if entry is not None:
        return entry
    from airflow_dataops.config.errors import ConfigError
    from airflow_dataops.config.resolve import resolve
    from airflow_dataops.dag_builder.spec import build_spec

    try:
        config = resolve(content, relative, environment, defaults, base_dir=path.parent)
        entry = {"spec": build_spec(config, path.parent)}
    except ConfigError as exc:
        # Not cached: an error may depend on more than this file (a .sql file that arrives later).
        # Broken files are rare; re-validating them each parse costs little.
        return {"errors": [str(issue) for issue in exc.issues]}
    cache.put(key, entry)
    return entry


def scan(root: Path, cache: SpecCache, environment: str, defaults) -> Loaded:
    loaded = Loaded()
    previous_last_valid: dict[str, str] = cache.get_index(root).get("last_valid", {})
    last_valid: dict[str, str] = {}
    valid: dict[str, list[tuple[str, int, Path, dict]]] = {}
    for path in find_pipeline_files(root):
        try:
            content = path.read_bytes()
        except OSError as exc:
            log.warning("dataops: cannot read %s: %s", path, exc)
            continue
        if not PIPELINE_KEY.search(content):
            continue
        relative = path.relative_to(root).as_posix()
        key = cache.key(path, content)
        entry = _entry_for(path, content, relative, cache, environment, defaults, key)
        if "errors" in entry:
            loaded.errors[relative] = entry["errors"]
            last_key = previous_last_valid.get(relative)
            last = cache.get(last_key) if last_key else None
            if last is not None and "spec" in last:
                loaded.last_valid[relative] = last["spec"]
                last_valid[relative] = last_key
            continue
        last_valid[relative] = key
        match = _NAME_LINE.search(content)
        line = content[: match.start(1)].count(b"\n") + 1 if match else 1
        valid.setdefault(entry["spec"]["dag_id"], []).append((relative, line, path, entry["spec"]))
    for dag_id, defined in valid.items():
        if len(defined) > 1:
            for relative, line, _, _ in defined:
                others = ", ".join(f"{r}:{n}" for r, n, _, _ in defined if r != relative)
                loaded.errors[relative] = [
                    f"{relative}:{line}:1: pipeline.name: {dag_id!r} is also the name of {others}: pipeline names "
                    "must be unique (the DAG id): rename one"
                ]
            continue
        relative, _, path, spec = defined[0]
        loaded.specs[dag_id] = spec
        loaded.files[dag_id] = relative
    for relative, errors in loaded.errors.items():
        loaded.files[invalid_dag_id(relative)] = relative
        warnings.warn(f"invalid pipeline file {relative}:\n" + "\n".join(errors), PipelineWarning, stacklevel=3)
    cache.put_index(root, {"dags": loaded.files, "last_valid": last_valid})
    return loaded


def _one(root: Path, cache: SpecCache, environment: str, defaults, dag_id: str) -> dict[str, Any] | None:
    """Build just ``dag_id`` (a worker starting a task): the index names its file."""
    relative = cache.get_index(root)["dags"].get(dag_id)
    if relative is None or dag_id.startswith(INVALID_PREFIX):
        return None
    path = root / relative
    try:
        content = path.read_bytes()
    except OSError:
        return None
    entry = _entry_for(path, content, relative, cache, environment, defaults)
    spec = entry.get("spec")
    if spec is None or spec["dag_id"] != dag_id:
        return None
    return {dag_id: build_dag(spec)}


def load_pipelines(namespace: dict[str, Any], loader_file: str, *, root: str | Path | None = None,
                   cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the DAGs of every pipeline file under the loader file's folder into ``namespace``."""
    root = Path(root) if root is not None else Path(loader_file).resolve().parent
    environment, defaults, defaults_key = _settings()
    cache = SpecCache(Path(cache_dir) if cache_dir else default_cache_dir(), environment, defaults_key)

    from airflow.sdk import get_parsing_context

    wanted = get_parsing_context().dag_id
    if wanted:
        dags = _one(root, cache, environment, defaults, wanted)
        if dags is not None:
            namespace.update(dags)
            return dags

    loaded = scan(root, cache, environment, defaults)
    dags: dict[str, Any] = {}

    def add(spec: dict[str, Any]) -> None:
        try:
            dags[spec["dag_id"]] = build_dag(spec)
        except Exception as exc:  # a bug, or an operator refusing its arguments: one stand-in, not an import error
            log.exception("dataops: building DAG %s failed", spec["dag_id"])
            relative = loaded.files.get(spec["dag_id"], spec.get("file", spec["dag_id"]))
            standin = invalid_dag_id(relative)
            dags[standin] = build_invalid_dag(standin, relative, [f"{relative}:1:1: building the DAG failed: {exc}"])

    for dag_id, spec in loaded.specs.items():
        if not wanted or wanted == dag_id:
            add(spec)
    for relative, errors in loaded.errors.items():
        standin = invalid_dag_id(relative)
        last = loaded.last_valid.get(relative)
        last_id = last["dag_id"] if last and last["dag_id"] not in loaded.specs and last["dag_id"] not in dags else None
        if not wanted or wanted == standin:
            dags[standin] = build_invalid_dag(standin, relative, errors, last_valid=last_id)
        if last_id and (not wanted or wanted == last_id):
            add(last)
    namespace.update(dags)
    return dags
