"""Server-rendered HTML pages: the overview of every pipeline and one pipeline's view.

They read the store through ``queries`` (the same functions as the JSON API) and link back into
the Airflow UI. URLs are built from the request's ``root_path`` so the page works under a
``[api] base_url`` with a path and inside the UI's iframe.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

from airflow_dataops.plugins import charts, queries
from airflow_dataops.plugins.app import ReadableDep, StoreDep, can_edit_dag, user_name
from airflow_dataops.plugins.dataops_plugin import URL_PREFIX

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _ago(value: dt.datetime | None) -> str:
    if value is None:
        return "never"
    return f"{_duration((dt.datetime.now(dt.timezone.utc) - value).total_seconds())} ago"


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, default=str)


_env.filters.update(duration=_duration, ago=_ago, show=_show, utc=lambda v: v.strftime("%Y-%m-%d %H:%M UTC") if v else "-")


class Links:
    """URLs of this app and of the Airflow UI, relative to the request's mount point."""

    def __init__(self, request: Request) -> None:
        self.base = request.scope.get("root_path", "").rstrip("/")
        self.airflow = self.base.removesuffix(URL_PREFIX)

    def static(self, name: str) -> str:
        return f"{self.base}/static/{name}"

    def overview(self, **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v not in (None, "", 0)})
        return f"{self.base}/" + (f"?{query}" if query else "")

    def pipeline(self, dag_id: str, **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return f"{self.base}/pipelines/{quote(dag_id, safe='')}" + (f"?{query}" if query else "")

    def api(self, path: str) -> str:
        return f"{self.base}/api/{path}"

    def dag(self, dag_id: str) -> str:
        return f"{self.airflow}/dags/{quote(dag_id, safe='')}"

    def run(self, dag_id: str, run_id: str) -> str:
        return f"{self.dag(dag_id)}/runs/{quote(run_id, safe='')}"

    def task(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"{self.run(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"


def _render(name: str, request: Request, user, **context: Any) -> HTMLResponse:
    where = request.app.state.store.get()[1]
    html = _env.get_template(name).render(
        links=Links(request), user=user_name(user), store_where=where, embedded="embedded" in where, **context
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request, engine: StoreDep, readable: ReadableDep, user: GetUserDep,
    page: Annotated[int, Query(ge=1)] = 1, search: str | None = None,
):
    with engine.connect() as conn:
        data = queries.overview(conn, readable, search=search, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max(1, -(-data["total"] // PAGE_SIZE))
    return _render("overview.html", request, user, data=data, page=page, pages=pages, search=search or "")


@router.get("/pipelines/{dag_id}", response_class=HTMLResponse, dependencies=[Depends(requires_access_dag("GET"))])
def pipeline_page(
    request: Request, dag_id: str, engine: StoreDep, user: GetUserDep,
    check: str | None = None, run_id: str | None = None, task_id: str | None = None,
    runs: Annotated[int, Query(ge=5, le=200)] = 30,
):
    links = Links(request)
    with engine.connect() as conn:
        summary = queries.summaries(conn, [dag_id])[0]
        history = queries.run_history(conn, dag_id, limit=runs)
        checks = queries.check_names(conn, dag_id)
        shown_run = run_id or summary["last_run_id"]
        results = queries.run_results(conn, dag_id, shown_run, limit=200) if shown_run else None
        if not check and checks:
            worst_first = {"failed": 0, "error": 1, "warned": 2}
            check = min(checks, key=lambda c: worst_first.get(c["status"], 3))["check_name"]
        check_series = queries.check_history(conn, dag_id, check, limit=runs) if check else []
        fresh = queries.freshness_history(conn, dag_id, limit=runs)
        alert_page = queries.alert_list(conn, dag_id, limit=50)
        audit_page = queries.audit_trail(conn, dag_id, limit=50)
    if task_id and results:
        results["items"] = [r for r in results["items"] if r["task_id"] == task_id] or results["items"]
    oldest_first = list(reversed(history["items"]))
    return _render(
        "pipeline.html", request, user,
        dag_id=dag_id, summary=summary, history=history, checks=checks, check=check,
        shown_run=shown_run, task_id=task_id, results=results, check_series=check_series,
        fresh=fresh, alerts=alert_page, audit=audit_page, can_edit=can_edit_dag(user, dag_id), runs=runs,
        run_chart=Markup(charts.run_bars(
            oldest_first, lambda r: links.pipeline(dag_id, run_id=r, check=check), selected=shown_run
        )),
        value_chart=Markup(charts.value_line(check_series)),
        fresh_chart=Markup(charts.freshness_line(list(reversed(fresh["items"])))),
        bounds=charts.bounds(check_series[-1]["expected"]) if check_series else {},
    )
