"""Fixtures for the Data Quality plugin: Airflow's real FastAPI app with the simple auth manager.

Users (simple auth manager, username:role): admin:admin, viewer:viewer, with known passwords
written to the passwords file. Tokens come from the real ``POST /auth/token``.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import entry_points

import pytest

PASSWORDS = {"admin": "admin-pass", "viewer": "viewer-pass"}
SHIM = "from airflow_dataops.plugins.dataops_plugin import DataOpsPlugin  # noqa: F401  (test shim)\n"


def plugin_installed() -> bool:
    return any(ep.value.startswith("airflow_dataops.plugins.dataops_plugin") for ep in entry_points(group="airflow.plugins"))


def ensure_plugin_discoverable(plugins_folder) -> None:
    """Without the package installed (its entry point), put a one-line plugin file in the plugins folder."""
    if plugin_installed():
        return
    os.makedirs(plugins_folder, exist_ok=True)
    with open(os.path.join(plugins_folder, "dataops_plugin_shim.py"), "w") as handle:
        handle.write(SHIM)


@pytest.fixture(scope="session")
def auth_env(airflow_home):
    path = airflow_home / "simple_auth_passwords.json"
    path.write_text(json.dumps(PASSWORDS))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__AUTH_MANAGER", "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(path))
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "plugin-tests-jwt-secret-0123456789abcdef")
        yield


@pytest.fixture(scope="session")
def airflow_api(airflow_db, auth_env):
    """Airflow's real api-server app (``create_app``) with our plugin mounted, as a test client."""
    from fastapi.testclient import TestClient

    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import create_app, purge_cached_app

    from tests.plugins.seeding import register_dags

    ensure_plugin_discoverable(settings.PLUGINS_FOLDER)
    # another test may have loaded plugins before the shim existed: load them again
    if hasattr(plugins_manager, "_get_plugins"):
        plugins_manager._get_plugins.cache_clear()
        plugins_manager.get_fastapi_plugins.cache_clear()
    else:  # Airflow 3.1 keeps them in module globals
        for name in ("plugins", "fastapi_apps", "fastapi_root_middlewares", "external_views", "react_apps"):
            setattr(plugins_manager, name, None)
        plugins_manager.loaded_plugins.clear()  # else a second load skips what the first one loaded
    register_dags(["orders_daily", "customers_hourly", "inventory_sync", "new_pipeline"])
    app = create_app()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
    purge_cached_app()


@pytest.fixture()
def production(monkeypatch):
    """This deployment is production, the seeded world's environment: Airflow's own runs count
    where the page shows this deployment's environment."""
    monkeypatch.setenv("AIRFLOW__DATAOPS__ENVIRONMENT", "production")


@pytest.fixture(scope="session")
def tokens(airflow_api):
    out = {}
    for user, password in PASSWORDS.items():
        response = airflow_api.post("/auth/token", json={"username": user, "password": password})
        assert response.status_code == 201, response.text
        out[user] = response.json()["access_token"]
    return out


@pytest.fixture()
def store(tmp_path):
    """A fresh SQLite results store wired into the plugin app for one test."""
    from airflow_dataops.plugins import dataops_plugin
    from airflow_dataops.plugins.app import StoreHandle
    from airflow_dataops.store.base import sqlite_engine

    engine = sqlite_engine(tmp_path / "results.db")
    previous = dataops_plugin.app.state.store
    dataops_plugin.app.state.store = StoreHandle(lambda: (engine, f"test store {tmp_path}"))
    yield engine
    dataops_plugin.app.state.store = previous
    engine.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
