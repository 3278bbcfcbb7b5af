"""Finding pipeline files: every .yaml/.yml under a folder, honouring ``.airflowignore`` the way the
dag-processor does, whose top level has a ``pipeline`` key. No Airflow import (the CLI stays fast).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

PIPELINE_KEY = re.compile(rb"^pipeline[ \t]*:", re.MULTILINE)


def _airflow_file_discovery():
    """Airflow's own ``.airflowignore`` walker (same semantics as the dag-processor). When Airflow is
    not imported yet (the CLI), load that one module by path: importing Airflow costs seconds."""
    name = "airflow._shared.module_loading.file_discovery"
    if "airflow" in sys.modules:
        return importlib.import_module(name)
    cached = sys.modules.get("_dataops_airflow_file_discovery")
    if cached is not None:
        return cached
    spec = importlib.util.find_spec("airflow")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "_shared" / "module_loading" / "file_discovery.py"
        if candidate.is_file():
            module_spec = importlib.util.spec_from_file_location("_dataops_airflow_file_discovery", candidate)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
            return module
    return importlib.import_module(name)  # pragma: no cover - unexpected layout


def find_pipeline_files(root: Path) -> list[Path]:
    """Every ``.yaml``/``.yml`` under ``root`` not excluded by ``.airflowignore`` (sorted)."""
    from airflow_dataops.settings import airflow_cfg_value

    syntax = airflow_cfg_value("core", "dag_ignore_file_syntax") or "glob"
    find_path_from_directory = _airflow_file_discovery().find_path_from_directory
    found = [Path(p) for p in find_path_from_directory(str(root), ".airflowignore", syntax)]
    return sorted(p for p in found if p.suffix in (".yaml", ".yml") and p.is_file())


