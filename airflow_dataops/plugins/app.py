"""The Data Quality FastAPI app mounted by Airflow's api-server under ``/dataops``.

A plugin app gets no authentication from Airflow by itself, so the whole app requires an
authenticated user allowed to see plugin views (Airflow's own security dependencies: anonymous
401, bad token 403). Lists show only the DAGs the auth manager lets the user read; a pipeline route
answers 404 for any other DAG id (one Airflow does not know, or one the user may not read: the
simple auth manager's per-DAG check ignores the id), then requires read access to that DAG;
acknowledging needs edit access to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
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


def readable_dag(dag_id: str, readable: ReadableDep) -> str:
    """The path's ``dag_id`` if the user may read that DAG, else 404 (the same set the lists show)."""
    if dag_id not in readable:
        raise HTTPException(404, f"No DAG {dag_id!r} that you may read is known to Airflow.")
    return dag_id


ReadableDagDep = Depends(readable_dag)


def airflow_runs(session: SessionDep):
    """Airflow's own runs of the given DAGs due since a moment, from its ``dag_run`` table: the
    api-server may read its metadata database (tasks may not), so the on-time rate sees runs that
    failed before recording anything (``queries.AirflowRuns``)."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun

    def fetch(dag_ids, since):
        if not dag_ids:
            return []
        stmt = select(DagRun.dag_id, DagRun.run_id, DagRun.state).where(
            DagRun.dag_id.in_(list(dag_ids)), DagRun.run_after >= since
        )
        return [(d, r, str(s) if s is not None else None) for d, r, s in session.execute(stmt)]

    return fetch


AirflowRunsDep = Annotated[Callable, Depends(airflow_runs)]


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


def _wants_json(request: Request) -> bool:
    """The JSON API, the OpenAPI document and static files answer errors in JSON; pages in HTML."""
    path = request.url.path.removeprefix(request.scope.get("root_path", "").rstrip("/"))
    return path.startswith(("/api/", "/static/")) or path.endswith(".json")


def _error_page(request: Request, status_code: int, detail: str, headers=None) -> HTMLResponse:
    from html import escape

    hint = _ERROR_HINTS.get(status_code, "")
    css = escape(request.scope.get("root_path", "").rstrip("/") + "/static/dataops.css")
    body = (
        f"<!doctype html><meta charset=utf-8><title>Data Quality: {status_code}</title>"
        f'<link rel="stylesheet" href="{css}"><body class="error-page"><h1>Data Quality</h1>'
        f"<p><b>{status_code}</b>: {escape(detail)}</p><p>{escape(hint)}</p></body>"
    )
    return HTMLResponse(body, status_code=status_code, headers=headers)


async def _page_errors_as_html(request: Request, exc: StarletteHTTPException) -> Response:
    """JSON for the API (FastAPI's default), a readable page for the HTML routes inside the UI."""
    from fastapi.exception_handlers import http_exception_handler

    if _wants_json(request):
        return await http_exception_handler(request, exc)
    return _error_page(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """422 in JSON for the API; on a page, which parameter was wrong, in words."""
    from fastapi.exception_handlers import request_validation_exception_handler

    if _wants_json(request):
        return await request_validation_exception_handler(request, exc)
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}" for e in exc.errors())
    return _error_page(request, 422, f"This address has an invalid parameter ({problems}).")


# Pages and charts come from this app only, and only the Airflow UI (same origin) may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def openapi_document(app: FastAPI, request: Request) -> dict:
    """The app's OpenAPI document with ``servers`` set to where it is mounted (``/dataops`` behind
    the api-server, with any ``[api] base_url`` path), so its ``/api/...`` paths resolve as served."""
    document = dict(app.openapi())
    document["servers"] = [{"url": request.scope.get("root_path", "").rstrip("/") or "/"}]
    return document


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
    app.add_exception_handler(StarletteHTTPException, _page_errors_as_html)
    app.add_exception_handler(RequestValidationError, _invalid_request)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.include_router(api.router)
    app.include_router(pages.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> dict:
        return openapi_document(app, request)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or path.suffix not in _STATIC_TYPES or not path.is_file():
            raise HTTPException(404, f"no static file {name!r}")
        return Response(
            path.read_bytes(), media_type=_STATIC_TYPES[path.suffix], headers={"Cache-Control": "private, max-age=300"}
        )

    return app
