"""Loading the plugin must stay cheap: every Airflow process (scheduler, each task runner) loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_loading_the_plugin_does_not_build_the_web_app():
    code = (
        "import sys; from airflow_dataops.plugins.dataops_plugin import DataOpsPlugin; "
        "heavy = [m for m in ('fastapi', 'airflow.api_fastapi.core_api.security', 'airflow_dataops.plugins.app') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_app_is_built_on_first_use_and_serves_its_routes():
    from airflow_dataops.plugins.dataops_plugin import DataOpsPlugin

    app = DataOpsPlugin.fastapi_apps[0]["app"]
    paths = {route.path for route in app.routes}
    assert {"/", "/pipelines/{dag_id}", "/api/pipelines", "/api/pipelines/{dag_id}/acknowledge", "/openapi.json", "/docs"} <= paths
    # FastAPI's own docs routes would bypass the app's security (and load Swagger UI from a CDN):
    # /docs is our own page, behind the app's dependencies like every other route.
    assert app.docs_url is None and app.redoc_url is None and app.openapi_url is None
    assert "/redoc" not in paths and "/docs/oauth2-redirect" not in paths
