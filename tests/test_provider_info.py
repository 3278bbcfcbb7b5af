"""The provider metadata: schema-valid, derived from one place, and seen by the Airflow CLI."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import airflow
import airflow_dataops
from airflow_dataops import settings
from airflow_dataops.get_provider_info import get_provider_info

AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))


def test_provider_info_validates_against_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_package_name_and_version_come_from_the_distribution():
    info = get_provider_info()
    dist = importlib.metadata.distribution("airflow-dataops")
    assert info["package-name"] == dist.metadata["Name"] == "airflow-dataops"
    assert info["versions"][0] == airflow_dataops.__version__ == dist.version


def test_entry_point_points_at_get_provider_info():
    (entry,) = [ep for ep in importlib.metadata.entry_points(group="apache_airflow_provider") if ep.dist.name == "airflow-dataops"]
    assert entry.load() is get_provider_info


def test_config_section_documents_every_dataops_option():
    section = get_provider_info()["config"]["dataops"]
    assert list(section["options"]) == [option.name for option in settings.OPTIONS]
    for option in settings.OPTIONS:
        documented = section["options"][option.name]
        assert documented["default"] == option.default
        assert documented["type"] == option.type
        assert documented["description"].strip(), f"[dataops] {option.name} has no description"
        assert documented["version_added"]


def test_every_listed_module_and_class_imports():
    info = get_provider_info()
    modules = [m for key in ("operators", "sensors", "triggers") for item in info[key] for m in item["python-modules"]]
    for module in modules:
        importlib.import_module(module)
    for dotted in info["notifications"]:
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name), f"{dotted} does not exist"


def _airflow(tmp_path, *args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "home"), AIRFLOW__CORE__LOAD_EXAMPLES="False", **env_overrides)
    proc = subprocess.run([AIRFLOW_BIN, *args], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_airflow_providers_list_shows_the_package(tmp_path):
    out = _airflow(tmp_path, "providers", "list", "--output", "json")
    providers = {p["package_name"]: p for p in json.loads(out)}
    assert "airflow-dataops" in providers, f"installed providers: {sorted(providers)}"
    assert providers["airflow-dataops"]["version"] == airflow_dataops.__version__


@pytest.mark.parametrize(("env", "expected"), [({}, "development"), ({"AIRFLOW__DATAOPS__ENVIRONMENT": "production"}, "production")])
def test_airflow_config_knows_the_dataops_section(tmp_path, env, expected):
    assert _airflow(tmp_path, "config", "get-value", "dataops", "environment", **env).strip() == expected
