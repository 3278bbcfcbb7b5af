"""The Data Quality FastAPI app mounted by Airflow's api-server under ``/dataops``.

A plugin app gets no authentication from Airflow by itself, so the whole app requires an
authenticated user allowed to see plugin views (Airflow's own security dependencies: anonymous
401, bad token 403), pipeline routes require read access to that DAG, lists show only the DAGs the
auth manager lets the user read, and acknowledging needs edit access to the DAG.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_view

log = logging.getLogger(__name__)


STATIC = Path(__file__).parent / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


class StoreHandle:
    """Resolves the results store once per process, lazily (the api-server may start before it exists)."""

    def __init__(self, factory: Callable[[], tuple[Engine, str]] | None = None) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._resolved: tuple[Engine, str] | None = None

    def get(self) -> tuple[Engine, str]:
        if self._resolved is None:
            with self._lock:
                if self._resolved is None:
                    from airflow_dataops.store.base import ensure_schema, resolve_engine

                    engine, where = (self._factory or resolve_engine)()
                    ensure_schema(engine)
                    self._resolved = (engine, where)
        return self._resolved


def store_engine(request: Request) -> Engine:
    try:
        return request.app.state.store.get()[0]
    except Exception as exc:  # the page must say what is wrong, not 500 with a stack trace
        log.exception("dataops: the results store is unreachable")
        raise HTTPException(
            503,
            f"The dataops results store is unreachable ({type(exc).__name__}). Check the connection named by "
            "[dataops] results_conn_id and that its database is up.",
        ) from exc


StoreDep = Annotated[Engine, Depends(store_engine)]


def readable_dag_ids(user: GetUserDep) -> set[str]:
    """DAG ids the auth manager lets this user read (DAGs Airflow knows about)."""
    return get_auth_manager().get_authorized_dag_ids(user=user, method="GET")


ReadableDep = Annotated[set[str], Depends(readable_dag_ids)]


def can_edit_dag(user, dag_id: str) -> bool:
    from airflow.models.dag import DagModel

    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    return get_auth_manager().is_authorized_dag(method="PUT", details=details, user=user)


def user_name(user) -> str:
    return user.get_name() if hasattr(user, "get_name") else str(user.get_id())


_ERROR_HINTS = {
    401: "You are not signed in (or your session expired): sign in to Airflow, then reload this page.",
    403: "Your Airflow role does not allow this. Ask an admin for access to this DAG or to plugin views.",
}


async def _page_errors_as_html(request: Request, exc: HTTPException) -> Response:
    """JSON for the API (FastAPI's default), a readable page for the HTML routes inside the UI."""
    from fastapi.exception_handlers import http_exception_handler

    if "/api/" in request.url.path or request.url.path.endswith(".json") or "/static/" in request.url.path:
        return await http_exception_handler(request, exc)
    from html import escape

    hint = _ERROR_HINTS.get(exc.status_code, "")
    body = (
        f"<!doctype html><meta charset=utf-8><title>Data Quality: {exc.status_code}</title>"
        f'<body style="font:14px system-ui,sans-serif;padding:24px"><h1>Data Quality</h1>'
        f"<p><b>{exc.status_code}</b>: {escape(str(exc.detail))}</p><p>{escape(hint)}</p></body>"
    )
    return HTMLResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def create_app(store_factory: Callable[[], tuple[Engine, str]] | None = None) -> FastAPI:
    """Build the app; ``store_factory`` overrides ``store.base.resolve_engine`` (benchmarks, tests)."""
    from airflow_dataops.plugins import api, pages

    app = FastAPI(
        title="airflow-dataops Data Quality",
        description=(
            "Quality-check results, freshness, alerts and acknowledgements from the airflow-dataops results "
            "store. Authenticate like the Airflow REST API: `Authorization: Bearer <token from POST "
            "/auth/token>` or the UI's login cookie. Lists contain only the DAGs you may read; acknowledging "
            "needs edit permission on the DAG."
        ),
        version="1",
        # FastAPI's own docs routes would skip the app's security dependencies: serve the schema ourselves
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
    )
    app.state.store = StoreHandle(store_factory)
    app.add_exception_handler(HTTPException, _page_errors_as_html)
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict:
        return app.openapi()

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or path.suffix not in _STATIC_TYPES or not path.is_file():
            raise HTTPException(404, f"no static file {name!r}")
        return Response(
            path.read_bytes(), media_type=_STATIC_TYPES[path.suffix], headers={"Cache-Control": "private, max-age=300"}
        )

    return app
