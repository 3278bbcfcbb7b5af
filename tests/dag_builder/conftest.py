from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOADER = REPO / "dags" / "dataops_pipelines.py"

PIPELINE = """\
pipeline:
  name: {name}
  owner: data-team
  schedule: "0 5 * * *"
dataset:
  conn_id: warehouse
  table: analytics.{name}
  timestamp_column: updated_at
quality_checks:
  - type: row_count
    threshold: 1
"""


@pytest.fixture()
def dags_folder(tmp_path, monkeypatch):
    """An empty dags folder with the loader file, and a private parse cache."""
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(LOADER, folder / "dataops_pipelines.py")
    monkeypatch.setenv("AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", "production")
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
    return folder


def write_pipeline(folder: Path, relative: str, name: str, extra: str = "") -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PIPELINE.format(name=name) + extra)
    return path


def dagbag(folder: Path):
    from tests.support.compat import DagBag

    return DagBag(dag_folder=str(folder), safe_mode=True)
