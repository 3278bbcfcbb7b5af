"""Finding pipeline files: every .yaml/.yml under a folder, honouring ``.airflowignore`` the way the
dag-processor does, whose top level has a ``pipeline`` key. No Airflow import (the CLI stays fast).

Deciding "is this a pipeline file" runs on every parse of every YAML file, so it is a cheap regex
first: a ``pipeline:`` key at the start of a line (quoted or not, after a byte-order mark) settles
it; a file that never mentions ``pipeline`` is not one. Only the rest (flow style
``{pipeline: ...}``, a ``pipeline`` that is not at the start of a line) is parsed to look at its
top-level keys, and the loader caches that answer by file content.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from airflow_dataops.compat import file_discovery
from airflow_dataops.config.limits import MAX_BYTES

HEAD_BYTES = 64 * 1024  # of an oversized file: enough to tell whether it is a pipeline file

PIPELINE_KEY = re.compile(rb"^(?:\xef\xbb\xbf)?([\"']?)pipeline\1[ \t]*:", re.MULTILINE)
# In a file YAML cannot parse: a flow-style `{pipeline:` (or `, pipeline:`) still marks a pipeline file.
_FLOW_PIPELINE_KEY = re.compile(rb"[{,][ \t\r\n]*([\"']?)pipeline\1[ \t]*:")


def pipeline_file_hint(content: bytes) -> bool | None:
    """True or False when a regex can tell whether ``content`` is a pipeline file; None when only
    parsing can (``has_pipeline_key``)."""
    if PIPELINE_KEY.search(content):
        return True
    if b"pipeline" not in content:
        return False
    return None


def has_pipeline_key(content: bytes) -> bool:
    """Whether the top-level mapping of ``content`` has a ``pipeline`` key (parses the YAML)."""
    from airflow_dataops.config.yaml_loader import load_yaml

    try:
        loaded = load_yaml(content)
    except Exception:  # pragma: no cover - load_yaml reports problems, it does not raise
        return True  # let validation say what is wrong with it
    if isinstance(loaded.data, dict):
        return "pipeline" in loaded.data
    return loaded.data is None and bool(loaded.issues) and bool(_FLOW_PIPELINE_KEY.search(content))


def is_pipeline_file(content: bytes) -> bool:
    hint = pipeline_file_hint(content)
    return hint if hint is not None else has_pipeline_key(content)


def find_pipeline_files(root: Path) -> list[Path]:
    """Every ``.yaml``/``.yml`` under ``root`` not excluded by ``.airflowignore`` (sorted)."""
    from airflow_dataops.settings import airflow_cfg_value

    syntax = airflow_cfg_value("core", "dag_ignore_file_syntax") or "glob"
    find_path_from_directory = file_discovery().find_path_from_directory
    found = [Path(p) for p in find_path_from_directory(str(root), ".airflowignore", syntax)]
    return sorted(p for p in found if p.suffix in (".yaml", ".yml") and p.is_file())


class FileProblem(NamedTuple):
    """Why a file gives no content: ``message`` for a person (without a position); ``error`` when
    the file could not be read at all."""

    message: str
    error: OSError | None = None


def read_pipeline_file(path: Path, *, explicit: bool = False) -> bytes | FileProblem | None:
    """The file's bytes; its problem when it cannot be read, or when it is over the size limit
    (checked before reading it whole) and a pipeline file (by its first ``HEAD_BYTES``, unless
    ``explicit``: named as one); None for an oversized file that is not a pipeline file. The DAG
    loader and the CLI read pipeline files with this."""
    try:
        size = path.stat().st_size
        if size <= MAX_BYTES:
            return path.read_bytes()
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        return FileProblem(f"cannot read the file: {exc.strerror or exc}", exc)
    if not explicit and not pipeline_file_hint(head):
        return None
    from airflow_dataops.config.yaml_loader import oversize_issue

    return FileProblem(oversize_issue("", size).message)
