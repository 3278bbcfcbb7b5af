"""The parse cache: validated pipelines as plain JSON specs, keyed by file content.

Validating YAML costs more than building a small DAG, and the dag-processor re-parses every 30 s
(and each worker before every task). Each entry is one small JSON file named by the hash of
(file content, path, environment, defaults, package version and a fingerprint of the code that
validates and builds specs), written atomically, so every
dag-processor run and every worker on the machine reuses it. The dag_id index lets a worker build
just the DAG it runs without reading the other pipeline files. The index is rewritten only when it
changes: a steady-state parse writes nothing.

Per path, the index remembers the last valid version of the file, so that a file broken by an edit
keeps it scheduled. It names the file's content (kept as a source file of the cache), not a spec:
the index is keyed by the dags folder, environment and defaults but not by the code, so an upgrade
(a new code fingerprint) keeps the last valid versions and validates them again with the new code;
only the specs, which the code made, are keyed by the code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from airflow_dataops import __version__

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    from airflow_dataops import settings

    configured = settings.get("pipelines_cache_dir")
    if configured:
        return Path(configured)
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / "dataops_cache"


_CODE_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """A hash of the name, size and modification time of each source file of ``config/`` and
    ``dag_builder/`` (the code that turns YAML into a spec), computed once per process: an upgrade,
    or an edit of an editable install, never reuses specs built by other code. Stat only (about
    0.2 ms; hashing the contents costs several times that, on every worker's task start)."""
    global _CODE_FINGERPRINT
    if _CODE_FINGERPRINT is None:
        package = Path(__file__).resolve().parents[1]
        h = hashlib.blake2b(digest_size=12)
        for folder in ("config", "dag_builder"):
            with os.scandir(package / folder) as entries:
                for entry in sorted((e for e in entries if e.name.endswith(".py")), key=lambda e: e.name):
                    stat = entry.stat()
                    h.update(f"{folder}/{entry.name}|{stat.st_size}|{stat.st_mtime_ns}\0".encode())
        _CODE_FINGERPRINT = h.hexdigest()
    return _CODE_FINGERPRINT


def _digest(*parts: str | bytes) -> str:
    h = hashlib.blake2b(digest_size=20)
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()


class SpecCache:
    def __init__(self, directory: Path, environment: str, defaults_key: str):
        self.directory = directory
        self.environment = environment
        self.defaults_key = defaults_key
        self.salt = f"{__version__}|{code_fingerprint()}|{environment}|{defaults_key}"
        self._writable = True

    # -- entries ------------------------------------------------------------------------------
    def key(self, path: Path, content: bytes) -> str:
        return _digest(self.salt, str(path), content)

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self.directory / f"{key}.json", "rb") as handle:
                return json.loads(handle.read())
        except (OSError, ValueError):
            return None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        self._write(self.directory / f"{key}.json", entry)

    # -- sources: the content of last valid versions ------------------------------------------
    @staticmethod
    def source_id(content: bytes) -> str:
        return _digest("source", content)

    def put_source(self, content: bytes) -> None:
        """Keep ``content`` (a file that validated) under its ``source_id``, once."""
        target = self.directory / f"source-{self.source_id(content)}.yaml"
        if not target.exists():
            self._write(target, content)

    def get_source(self, source_id: str) -> bytes | None:
        try:
            return (self.directory / f"source-{source_id}.yaml").read_bytes()
        except (OSError, ValueError):
            return None

    # -- dag_id -> file index -----------------------------------------------------------------
    def _index_path(self, root: Path) -> Path:
        # Not keyed by the code: the last valid versions must survive an upgrade. Only facts that
        # do not depend on the code are in it (dag ids are checked against the spec when used).
        return self.directory / f"index-v2-{_digest(self.environment, self.defaults_key, str(root))}.json"

    def get_index(self, root: Path) -> dict[str, Any]:
        """``{"dags": {dag_id: relative file}, "last_valid": {relative file: source id}}``."""
        try:
            with open(self._index_path(root), "rb") as handle:
                index = json.loads(handle.read())
        except (OSError, ValueError):
            return {"dags": {}, "last_valid": {}}
        return index if isinstance(index, dict) and "dags" in index else {"dags": {}, "last_valid": {}}

    def put_index(self, root: Path, index: dict[str, Any]) -> None:
        if index != self.get_index(root):
            self._write(self._index_path(root), index)

    def _write(self, target: Path, payload: Any) -> None:
        """``payload`` as JSON (bytes as they are), atomically."""
        if not self._writable:
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode())
            os.replace(tmp, target)
        except OSError as exc:
            self._writable = False
            log.warning("dataops: pipeline cache %s is not writable (%s): parsing stays correct but slower; "
                        "set [dataops] pipelines_cache_dir to a writable directory", self.directory, exc)
