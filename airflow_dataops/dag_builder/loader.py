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
from typing import Any, Callable

from airflow_dataops.config.errors import ConfigIssue, duplicate_name_issues, error_text, unexpected_issue
from airflow_dataops.dag_builder.build import INVALID_PREFIX, build_dag, build_invalid_dag
from airflow_dataops.dag_builder.cache import SpecCache, default_cache_dir
from airflow_dataops.dag_builder.discovery import (
    FileProblem, find_pipeline_files, has_pipeline_key, pipeline_file_hint, read_pipeline_file,
)

log = logging.getLogger(__name__)


class PipelineWarning(UserWarning):
    """A pipeline file problem (kept in DagBag.captured_warnings with the loader's file and line)."""


@dataclass
class Loaded:
    """What one scan produced: DAG specs by id, errors by file, and the last valid versions."""

    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)  # relative file -> messages
    files: dict[str, str] = field(default_factory=dict)  # dag_id -> relative file
    sources: dict[str, str] = field(default_factory=dict)  # relative file -> source id of its valid content
    previous: dict[str, str] = field(default_factory=dict)  # the index's last valid sources, as read
    last_valid: dict[str, str] = field(default_factory=dict)  # relative file -> source id, to write back
    last_valid_specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # broken file -> its last valid spec

    def fall_back(self, relative: str, spec_of: Callable[[str, bytes], dict], cache: SpecCache, *,
                  not_source: str | None = None) -> None:
        """A broken file keeps its last valid version, if there is one: its content as kept by the
        cache, validated by this code (``spec_of``: a cache hit unless the code changed since)."""
        source_id = self.previous.get(relative)
        content = cache.get_source(source_id) if isinstance(source_id, str) and source_id != not_source else None
        entry = spec_of(relative, content) if content is not None else None
        if entry is not None and "spec" in entry:
            self.last_valid_specs[relative] = entry["spec"]
            self.last_valid[relative] = source_id
        else:
            self.last_valid.pop(relative, None)
            self.last_valid_specs.pop(relative, None)


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
               root: Path, key: str | None = None) -> dict:
    """The cached {"spec": ...} or {"errors": [...]} for one file, validating on a miss. Never raises:
    whatever goes wrong with one file becomes that file's errors."""
    key = key or cache.key(path, content)
    entry = cache.get(key)
    if entry is not None:
        return entry
    from airflow_dataops.config.errors import ConfigError
    from airflow_dataops.config.resolve import resolve
    from airflow_dataops.dag_builder.spec import build_spec

    try:
        config = resolve(content, relative, environment, defaults, base_dir=path.parent, root=root)
        entry = {"spec": build_spec(config, path.parent, root)}
    except ConfigError as exc:
        # Not cached: an error may depend on more than this file (a .sql file that arrives later).
        # Broken files are rare; re-validating them each parse costs little.
        return {"errors": [str(issue) for issue in exc.issues]}
    except Exception as exc:  # a bug must cost one file, never every pipeline of the folder
        log.exception("dataops: validating %s failed unexpectedly", relative)
        return {"errors": [str(unexpected_issue(relative, exc))]}
    cache.put(key, entry)
    cache.put_source(content)  # what the last valid version is rebuilt from, should the code change
    return entry


def _read(path: Path, relative: str) -> bytes | list[str] | None:
    """The file's bytes; its error when it is a pipeline file over the size limit; None when it
    cannot be read (logged) or is not a pipeline file."""
    content = read_pipeline_file(path)
    if not isinstance(content, FileProblem):
        return content
    if content.error is not None:
        log.warning("dataops: cannot read %s: %s", path, content.error)
        return None
    return [str(ConfigIssue(relative, 1, 1, (), content.message))]


def scan(root: Path, cache: SpecCache, environment: str, defaults) -> tuple[Loaded, Callable[[str, bytes], dict]]:
    """Every pipeline file under ``root``: its spec or its errors (and its last valid version); and
    how to validate a file's content (for the last valid versions of files that fail later)."""
    loaded = Loaded(previous=dict(cache.get_index(root).get("last_valid", {})))

    def spec_of(relative: str, content: bytes) -> dict:
        return _entry_for(root / relative, content, relative, cache, environment, defaults, root)

    valid: dict[str, list[tuple[str, int, dict]]] = {}
    for path in find_pipeline_files(root):
        relative = path.relative_to(root).as_posix()
        content = _read(path, relative)
        if content is None:
            continue
        if isinstance(content, list):
            loaded.errors[relative] = content
            loaded.fall_back(relative, spec_of, cache)
            continue
        hint = pipeline_file_hint(content)
        if hint is False:
            continue
        key = cache.key(path, content)
        entry = cache.get(key)
        if entry is None and hint is None and not has_pipeline_key(content):
            entry = {"skip": True}  # mentions "pipeline", but not as a top-level key: remember that
            cache.put(key, entry)
        if entry is None:
            entry = _entry_for(path, content, relative, cache, environment, defaults, root, key)
        if entry.get("skip"):
            continue
        if "errors" in entry:
            loaded.errors[relative] = entry["errors"]
            loaded.fall_back(relative, spec_of, cache)
            continue
        loaded.sources[relative] = loaded.last_valid[relative] = cache.source_id(content)
        valid.setdefault(entry["spec"]["dag_id"], []).append((relative, entry["spec"].get("line", 1), entry["spec"]))
    names = {dag_id: [(relative, line, 1) for relative, line, _ in defined] for dag_id, defined in valid.items()}
    for issue in duplicate_name_issues(names):
        loaded.errors[issue.file] = [str(issue)]
    for dag_id, defined in valid.items():
        if len(defined) > 1:
            continue
        relative, _, spec = defined[0]
        loaded.specs[dag_id] = spec
        loaded.files[dag_id] = relative
    return loaded, spec_of


def _build(spec: dict[str, Any]) -> tuple[Any, str | None]:
    """(the DAG, None), or (None, the error) when Airflow or an operator refuses the spec."""
    try:
        return build_dag(spec), None
    except Exception as exc:
        log.exception("dataops: building DAG %s failed", spec.get("dag_id"))
        return None, error_text(exc)


def _one(root: Path, cache: SpecCache, environment: str, defaults, dag_id: str) -> dict[str, Any] | None:
    """Build just ``dag_id`` (a worker starting a task): the index names its file. None sends the
    caller to a full scan (which also knows the last valid versions)."""
    relative = cache.get_index(root)["dags"].get(dag_id)
    if relative is None or dag_id.startswith(INVALID_PREFIX):
        return None
    path = root / relative
    content = _read(path, relative)
    if not isinstance(content, bytes):
        return None
    entry = _entry_for(path, content, relative, cache, environment, defaults, root)
    spec = entry.get("spec")
    if spec is None or spec["dag_id"] != dag_id:
        return None
    dag, error = _build(spec)
    return {dag_id: dag} if error is None else None


def load_pipelines(namespace: dict[str, Any], loader_file: str, *, root: str | Path | None = None,
                   cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the DAGs of every pipeline file under the loader file's folder into ``namespace``.

    Never raises for a pipeline file: whatever is wrong with one (its YAML, its config, a bug, a DAG
    Airflow refuses) becomes its stand-in DAG, while its last valid version stays scheduled."""
    # The folder the loader file is in, as Airflow sees it: a symlinked loader scans where it is
    # linked, not where its target lives.
    root = Path(root) if root is not None else Path(loader_file).absolute().parent
    environment, defaults, defaults_key = _settings()
    cache = SpecCache(Path(cache_dir) if cache_dir else default_cache_dir(), environment, defaults_key)

    from airflow.sdk import get_parsing_context

    wanted = get_parsing_context().dag_id
    if wanted:
        dags = _one(root, cache, environment, defaults, wanted)
        if dags is not None:
            namespace.update(dags)
            return dags

    loaded, spec_of = scan(root, cache, environment, defaults)
    dags: dict[str, Any] = {}
    for dag_id, spec in list(loaded.specs.items()):
        if wanted and wanted != dag_id:
            continue
        dag, error = _build(spec)
        if error is None:
            dags[dag_id] = dag
            continue
        # Airflow refused what validation let through: the same as a validation error.
        relative = loaded.files.pop(dag_id)
        del loaded.specs[dag_id]
        loaded.errors[relative] = [f"{relative}:{spec.get('line', 1)}:1: (top level): building DAG {dag_id!r} failed: {error}"]
        loaded.fall_back(relative, spec_of, cache, not_source=loaded.sources.get(relative))
    for relative, errors in loaded.errors.items():
        standin = invalid_dag_id(relative)
        loaded.files[standin] = relative
        last = loaded.last_valid_specs.get(relative)
        last_id = last["dag_id"] if last and last["dag_id"] not in loaded.specs and last["dag_id"] not in dags else None
        if last_id and (not wanted or wanted == last_id):
            dag, error = _build(last)
            if error is None:
                dags[last_id] = dag
            else:
                last_id = None
                loaded.last_valid.pop(relative, None)
        if not wanted or wanted == standin:
            try:
                dags[standin] = build_invalid_dag(standin, relative, errors, last_valid=last_id)
            except Exception:  # pragma: no cover - the stand-in is plain; never let it take the others down
                log.exception("dataops: building the stand-in DAG for %s failed", relative)
        warnings.warn(f"invalid pipeline file {relative}:\n" + "\n".join(errors), PipelineWarning, stacklevel=2)
    cache.put_index(root, {"dags": loaded.files, "last_valid": loaded.last_valid})
    namespace.update(dags)
    return dags
