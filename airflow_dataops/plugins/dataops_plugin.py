"""The airflow-dataops Airflow plugin: the Data Quality page inside the Airflow UI.

Registered through the ``airflow.plugins`` entry point (pyproject). Airflow's api-server mounts the
FastAPI app at ``/dataops``; the UI shows it under Browse > Data Quality (an iframe at
``/plugin/data-quality``) and as a *Data Quality* tab on DAG, run, task and task-instance pages.

The UI fills ``{DAG_ID}``, ``{RUN_ID}``, ``{TASK_ID}`` and ``{MAP_INDEX}`` in a destination's href
only where its page has that value: the task page (``dags/:dagId/tasks/:taskId``) has no run, and
an unmapped task instance has no map index, so those placeholders would stay literal. Each href
therefore names only what its page has; the pipeline page also ignores a literal placeholder.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/dataops"
_PAGE = URL_PREFIX.lstrip("/")  # relative hrefs: they resolve against the UI's own base URL


class LazyApp:
    """An ASGI app that builds the real FastAPI app on its first request.

    Every Airflow process loads plugins (scheduler, dag-processor, each task's runner), but only
    the api-server serves this page: building it there alone keeps FastAPI and Airflow's API
    security modules out of the other processes' start-up.
    """

    def __init__(self) -> None:
        self._app = None
        self._lock = threading.Lock()

    @property
    def app(self):
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_dataops.plugins.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:  # app.state, app.openapi(), ... for tests and tools
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.app, name)

    def __repr__(self) -> str:
        return "airflow_dataops.plugins.app:create_app()"


app = LazyApp()


class DataOpsPlugin(AirflowPlugin):
    """The Data Quality page and its JSON API (OpenAPI at ``/dataops/openapi.json``, a readable
    reference at ``/dataops/docs``)."""

    name = "airflow_dataops"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Data Quality"}]
    external_views = [
        {
            "name": "Data Quality",
            "href": f"{_PAGE}/",
            "url_route": "data-quality",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Data Quality",
            "href": f"{_PAGE}/pipelines/{{DAG_ID}}",
            "url_route": "data-quality-dag",
            "destination": "dag",
        },
        {
            "name": "Data Quality",
            "href": f"{_PAGE}/pipelines/{{DAG_ID}}?run_id={{RUN_ID}}",
            "url_route": "data-quality-run",
            "destination": "dag_run",
        },
        {
            "name": "Data Quality",
            "href": f"{_PAGE}/pipelines/{{DAG_ID}}?task_id={{TASK_ID}}",
            "url_route": "data-quality-task",
            "destination": "task",
        },
        {
            "name": "Data Quality",
            "href": f"{_PAGE}/pipelines/{{DAG_ID}}?run_id={{RUN_ID}}&task_id={{TASK_ID}}&map_index={{MAP_INDEX}}",
            "url_route": "data-quality-task-instance",
            "destination": "task_instance",
        },
    ]
