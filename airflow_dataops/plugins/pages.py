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

from airflow_dataops.plugins import charts, history, queries
from airflow_dataops.plugins.app import (
    AirflowRunsDep,
    ReadableDagDep,
    ReadableDep,
    StoreDep,
    can_edit_dag,
    openapi_document,
    user_name,
)
from airflow_dataops.plugins.dataops_plugin import URL_PREFIX

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
ALERTS_PAGE_SIZE = 20
AUDIT_PAGE_SIZE = 50
Page = Annotated[int, Query(ge=1, le=100_000)]

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 0:  # a "newest" timestamp in the future: a clock or timezone error upstream
        return f"-{_duration(-seconds)} (in the future: check clocks and dataset.timezone)"
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

    def task(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        task = f"{self.run(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
        return f"{task}/mapped/{map_index}" if map_index is not None and map_index >= 0 else task


def _render(name: str, request: Request, user, **context: Any) -> HTMLResponse:
    where = request.app.state.store.get()[1]
    html = _env.get_template(name).render(
        links=Links(request), user=user_name(user), store_where=where, embedded="embedded" in where, **context
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


UNFILLED = {"{DAG_ID}", "{RUN_ID}", "{TASK_ID}", "{MAP_INDEX}"}


def _given(value: str | None) -> str | None:
    """A query value, or None when empty or a placeholder the Airflow UI left unfilled (its task
    page has no run, an unmapped task instance no map index; an old bookmark may carry one)."""
    if value is None or not value.strip() or value in UNFILLED:
        return None
    return value


def _map_index(value: str | None) -> int | None:
    value = _given(value)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request, engine: StoreDep, readable: ReadableDep, user: GetUserDep, runs: AirflowRunsDep,
    page: Page = 1, search: str | None = None,
):
    with engine.connect() as conn:
        data = queries.overview(
            conn, readable, search=search, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, airflow_runs=runs
        )
    pages = _pages(data["total"], PAGE_SIZE)
    return _render("overview.html", request, user, data=data, page=page, pages=pages, search=search or "",
                   own_environment=queries.own_environment())


COMMON_ERRORS = ("401", "403", "503")


@router.get("/docs", response_class=HTMLResponse)
def docs_page(request: Request, user: GetUserDep):
    """The JSON API's reference, rendered here from the OpenAPI document (no CDN, no script)."""
    document = openapi_document(request.app, request)
    schemas = document.get("components", {}).get("schemas", {})

    def body_fields(op: dict) -> dict[str, str]:
        ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        props = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        return {name: prop.get("description", "") for name, prop in props.items()}

    def answers(op: dict) -> dict[str, str]:
        out = {}
        for code, response in op.get("responses", {}).items():
            if code in COMMON_ERRORS:
                continue
            ref = response.get("content", {}).get("application/json", {}).get("schema", {})
            ref = ref.get("$ref") or ref.get("items", {}).get("$ref") or ""
            out[code] = ref.rsplit("/", 1)[-1] or response.get("description", "")
        return out

    operations = [
        {"method": method.upper(), "path": path, "body": body_fields(op), "answers": answers(op), **op}
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]
    first = operations[0]["responses"] if operations else {}
    common = {code: first[code]["description"] for code in COMMON_ERRORS if code in first}
    return _render(
        "docs.html", request, user, doc=document, operations=operations, common=common, base=document["servers"][0]["url"]
    )


@router.get("/pipelines/{dag_id}", response_class=HTMLResponse, dependencies=[ReadableDagDep, Depends(requires_access_dag("GET"))])
def pipeline_page(
    request: Request, dag_id: str, engine: StoreDep, user: GetUserDep, runs_source: AirflowRunsDep,
    check: str | None = None, run_id: str | None = None, task_id: str | None = None, map_index: str | None = None,
    runs: Annotated[int, Query(ge=5, le=200)] = 30, alerts_page: Page = 1, audit_page: Page = 1,
    environment: str | None = None,
):
    links = Links(request)
    run_id, task_id, shown_map_index = _given(run_id), _given(task_id), _map_index(map_index)
    with engine.connect() as conn:
        env = _given(environment) or queries.shown_environment(conn, dag_id)
        summary = queries.summaries(conn, [dag_id], airflow_runs=runs_source, environment=env)[0]
        run_page = history.run_history(conn, dag_id, environment=env, limit=runs)
        checks = history.check_names(conn, dag_id, environment=env)
        if run_id:
            shown_run = run_id
        elif task_id:
            shown_run = history.latest_task_run(conn, dag_id, task_id, environment=env)
        else:
            shown_run = summary["last_run_id"]
        results = (
            history.run_results(conn, dag_id, shown_run, environment=env, task_id=task_id, map_index=shown_map_index,
                                limit=200)
            if shown_run else None
        )
        if not check and checks:
            worst_first = {"failed": 0, "error": 1, "warned": 2}
            check = min(checks, key=lambda c: worst_first.get(c["status"], 3))["check_name"]
        check_series = history.check_history(conn, dag_id, check, environment=env, limit=runs) if check else []
        datasets = max(1, min(charts.MAX_SERIES, len(queries.latest_freshness(conn, [dag_id], {dag_id: env}))))
        fresh = history.freshness_history(conn, dag_id, environment=env, limit=runs * datasets)
        incidents = history.incidents(
            conn, dag_id, environment=env, limit=ALERTS_PAGE_SIZE, offset=(alerts_page - 1) * ALERTS_PAGE_SIZE
        )
        audit_trail = history.audit_trail(conn, dag_id, environment=env, limit=AUDIT_PAGE_SIZE,
                                          offset=(audit_page - 1) * AUDIT_PAGE_SIZE)
        others = [e for e in queries.environments(conn, dag_id) if e != env]
    oldest_first = list(reversed(run_page["items"]))
    check_info = next((c for c in checks if c["check_name"] == check), None)
    return _render(
        "pipeline.html", request, user,
        dag_id=dag_id, summary=summary, history=run_page, checks=checks, check=check, check_info=check_info,
        shown_run=shown_run, run_id=run_id, task_id=task_id, map_index=shown_map_index, results=results,
        check_series=check_series, fresh=fresh, incidents=incidents, audit=audit_trail,
        alerts_page=alerts_page, alerts_pages=_pages(incidents["total"], ALERTS_PAGE_SIZE),
        audit_page=audit_page, audit_pages=_pages(audit_trail["total"], AUDIT_PAGE_SIZE),
        can_edit=can_edit_dag(user, dag_id), runs=runs, environment=env, other_environments=others,
        # Airflow links lead to this deployment's runs: another environment's run of the same id is not it.
        local=env == queries.own_environment(),
        run_chart=Markup(charts.run_bars(
            oldest_first, lambda r: links.pipeline(dag_id, run_id=r, check=check, environment=env), selected=shown_run
        )),
        value_chart=Markup(charts.value_line(check_series)),
        plotted=charts.thresholds.spec(check_info["check_type"] if check_info else None).plotted,
        fresh_chart=Markup(charts.freshness_line(list(reversed(fresh["items"])))),
        bounds=charts.latest_limits(check_series),
    )
