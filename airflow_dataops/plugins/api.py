"""The JSON API behind the Data Quality page, documented by FastAPI's OpenAPI and usable on its own.

Everything lives under ``/dataops/api``; lists are paginated (``limit``, ``offset``, ``total``). The
OpenAPI document is served at ``/dataops/openapi.json`` (``servers`` names the mount point) and
rendered, offline, at ``/dataops/docs``. A ``{dag_id}`` the caller may not read is a 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

from airflow_dataops.plugins import history, queries
from airflow_dataops.plugins.app import AirflowRunsDep, ReadableDagDep, ReadableDep, StoreDep, user_name
from airflow_dataops.store.alerts import acknowledge as store_acknowledge


class Problem(BaseModel):
    detail: str = Field(description="What went wrong, for a person.")


router = APIRouter(
    prefix="/api",
    tags=["Data Quality"],
    responses={
        401: {"model": Problem, "description": "Not signed in: no token or cookie, or it expired."},
        403: {"model": Problem, "description": "Invalid token, or the user lacks plugin or DAG permission."},
        503: {"model": Problem, "description": "The results store is unreachable."},
    },
)
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip.")]
NOT_FOUND = {404: {"model": Problem, "description": "No DAG of that id that you may read is known to Airflow."}}
Env = Annotated[str | None, Query(
    description="The environment to read (run ids repeat across environments sharing a store). Default: this "
    "deployment's `[dataops] environment` when the store has anything of it for the pipeline, else the one with "
    "the newest row.",
)]
ReadDag = [ReadableDagDep, Depends(requires_access_dag("GET"))]


class Counts(BaseModel):
    passed: int = 0
    warned: int = 0
    failed: int = 0
    error: int = 0


class Freshness(BaseModel):
    dag_id: str
    run_id: str
    environment: str
    task_id: str
    source: str
    table_name: str | None
    column_name: str | None
    newest: dt.datetime | None = Field(description="Newest timestamp in the data when observed.")
    observed_at: dt.datetime
    lag_seconds: float | None = Field(description="Age of the data when observed.")
    max_age_seconds: float | None = Field(description="The freshness SLA.")
    fresh: bool | None
    current_lag_seconds: float | None = Field(None, description="Age of the data now, from the stored newest timestamp.")


class PipelineSummary(BaseModel):
    dag_id: str
    pipeline: str
    environment: str = Field(description="The environment everything of this summary is about.")
    last_run_id: str | None = Field(description="The newest run with check results.")
    last_seen_run_id: str | None = Field(
        None, description="Without check results: the run of the newest freshness observation."
    )
    last_checked_at: dt.datetime | None = Field(description="When that run was checked (or observed).")
    counts: Counts = Field(description="Check results of the last run, by status.")
    freshness: Freshness | None = Field(description="The stalest dataset of the pipeline, from the latest observation.")
    open_alerts: int = Field(description="Unacknowledged, unresolved alerts (one per run, event and subject).")
    open_escalations: int
    on_time_rate: float | None = Field(
        description="Share of the runs of the last 30 days that succeeded, had no SLA miss and passed their fail checks "
        "(runs as Airflow knows them, plus runs only the store still knows; unfinished runs once already late or failing)."
    )
    on_time_runs: int
    runs_30d: int = Field(description="Runs counted in the on-time rate.")
    health: Literal["healthy", "warning", "stale", "failing", "no_results"]


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class PipelinePage(Page):
    items: list[PipelineSummary]


class RunCounts(BaseModel):
    run_id: str
    checked_at: dt.datetime | None
    counts: Counts


class RunPage(Page):
    items: list[RunCounts]


class CheckInfo(BaseModel):
    check_name: str
    check_type: str
    action: str
    status: str
    checked_at: dt.datetime | None


class CheckResultOut(BaseModel):
    run_id: str
    task_id: str
    map_index: int
    environment: str
    table_name: str | None
    check_name: str
    check_type: str
    action: str
    status: str
    observed: Any
    expected: Any
    message: str | None
    error: str | None
    duration_ms: float | None
    checked_at: dt.datetime | None
    failing_rows: Any = Field(None, description="Sample of failing rows, only when [dataops] failing_rows_sample > 0.")


class ResultPage(Page):
    items: list[CheckResultOut]


class FreshnessPage(Page):
    items: list[Freshness]


class Alert(BaseModel):
    id: int
    run_id: str
    environment: str
    event: str
    subject: str
    tier: int
    channel: str
    severity: str
    status: str
    message: str | None
    error: str | None
    created_at: dt.datetime | None
    sent_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    resolved_at: dt.datetime | None
    resolution: str | None
    open: bool


class AlertPage(Page):
    items: list[Alert]


class AuditEntry(BaseModel):
    id: int
    run_id: str | None
    kind: str
    event: str | None
    channel: str | None
    outcome: str | None
    actor: str | None
    detail: str | None
    error: str | None
    at: dt.datetime | None


class AuditPage(Page):
    items: list[AuditEntry]


class Message(BaseModel):
    tier: int = Field(description="0: the first alert; 1..: escalation tiers.")
    channel: str
    status: str
    error: str | None
    sent_at: dt.datetime | None
    message: str | None


class Incident(BaseModel):
    """One alert as people see it: a (run, event, subject), whatever channels and tiers it went to."""

    run_id: str
    event: str
    subject: str
    environment: str | None
    severity: str
    open: bool = Field(description="Neither acknowledged nor resolved.")
    escalated: bool
    created_at: dt.datetime | None
    last_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    resolved_at: dt.datetime | None
    resolution: str | None
    messages: list[Message]


class IncidentPage(Page):
    items: list[Incident]


class AckRequest(BaseModel):
    environment: str | None = Field(None, description="Only this environment's open alerts; null: every environment.")
    run_id: str | None = Field(None, description="Only this run's open alerts; null: every run.")
    event: str | None = Field(None, description="Only this event (e.g. check_failed); null: every event.")
    subject: str | None = Field(None, description="Only this subject (check name, task id, source or sla); null: any.")


class AckResponse(BaseModel):
    dag_id: str
    environment: str | None = None
    run_id: str | None
    event: str | None = None
    subject: str | None = None
    acknowledged: int = Field(description="Alert rows (channels and tiers) acknowledged by this call.")
    by: str


def same_origin(request: Request) -> None:
    """Refuse a state change a browser sent from another site or a sibling subdomain (defence in
    depth: the login cookie is SameSite=Lax and the body must be JSON, which a cross-site form
    cannot send). Browsers set ``Sec-Fetch-Site``; scripts and tools send none and pass. No
    Origin/Host comparison: a reverse proxy may rewrite Host."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise HTTPException(403, f"A {site} request cannot acknowledge alerts: use the Data Quality page itself.")
    # Only a JSON body, whatever FastAPI version parses it: older ones read a body sent with no
    # Content-Type as JSON, and a cross-site fetch can send one without a preflight.
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(422, "The request body must be JSON (Content-Type: application/json).")


@router.get("/pipelines", response_model=PipelinePage, summary="Every pipeline you may read, summarised")
def list_pipelines(
    engine: StoreDep, readable: ReadableDep, runs: AirflowRunsDep, limit: Limit = 50, offset: Offset = 0,
    search: Annotated[str | None, Query(description="Case-insensitive substring of the DAG id.")] = None,
):
    with engine.connect() as conn:
        return queries.overview(conn, readable, search=search, limit=limit, offset=offset, airflow_runs=runs)


@router.get(
    "/pipelines/{dag_id}", response_model=PipelineSummary, dependencies=ReadDag, responses=NOT_FOUND,
    summary="One pipeline, summarised",
)
def get_pipeline(dag_id: str, engine: StoreDep, runs: AirflowRunsDep, environment: Env = None):
    with engine.connect() as conn:
        return queries.summaries(conn, [dag_id], airflow_runs=runs, environment=environment)[0]


@router.get(
    "/pipelines/{dag_id}/runs", response_model=RunPage, dependencies=ReadDag, responses=NOT_FOUND,
    summary="Check counts per run",
)
def list_runs(dag_id: str, engine: StoreDep, environment: Env = None, limit: Limit = 30, offset: Offset = 0):
    with engine.connect() as conn:
        return history.run_history(conn, dag_id, environment=environment, limit=limit, offset=offset)


@router.get(
    "/pipelines/{dag_id}/checks", response_model=list[CheckInfo], dependencies=ReadDag, responses=NOT_FOUND,
    summary="Checks with results",
)
def list_checks(dag_id: str, engine: StoreDep, environment: Env = None):
    with engine.connect() as conn:
        return history.check_names(conn, dag_id, environment=environment)


@router.get(
    "/pipelines/{dag_id}/checks/history", response_model=list[CheckResultOut], dependencies=ReadDag,
    responses=NOT_FOUND, summary="Observed vs expected of one check over time (oldest first)",
)
def check_history(
    dag_id: str, engine: StoreDep,
    check: Annotated[str, Query(description="The check name (a query parameter: names may contain '/').")],
    environment: Env = None, limit: Limit = 60,
):
    with engine.connect() as conn:
        return history.check_history(conn, dag_id, check, environment=environment, limit=limit)


@router.get(
    "/pipelines/{dag_id}/results", response_model=ResultPage, dependencies=ReadDag, responses=NOT_FOUND,
    summary="Results of one run (default: the latest), failures first",
)
def list_results(
    dag_id: str, engine: StoreDep, environment: Env = None, limit: Limit = 100, offset: Offset = 0,
    run_id: Annotated[str | None, Query(description="Default: the pipeline's latest run.")] = None,
    status: Annotated[list[str] | None, Query(description="Only these statuses (repeatable).")] = None,
    task_id: Annotated[str | None, Query(description="Only this task's results.")] = None,
    map_index: Annotated[int | None, Query(ge=-1, description="Only this mapped task instance (-1: not mapped).")] = None,
):
    with engine.connect() as conn:
        environment = environment or queries.shown_environment(conn, dag_id)
        if run_id is None:
            run_id = (
                history.latest_task_run(conn, dag_id, task_id, environment=environment) if task_id
                else queries.summaries(conn, [dag_id], environment=environment)[0]["last_run_id"]
            )
            if run_id is None:
                return {"total": 0, "limit": limit, "offset": offset, "items": []}
        return history.run_results(
            conn, dag_id, run_id, environment=environment, statuses=status, task_id=task_id, map_index=map_index,
            limit=limit, offset=offset,
        )


@router.get(
    "/pipelines/{dag_id}/freshness", response_model=FreshnessPage, dependencies=ReadDag, responses=NOT_FOUND,
    summary="Freshness over time",
)
def list_freshness(dag_id: str, engine: StoreDep, environment: Env = None, limit: Limit = 60, offset: Offset = 0):
    with engine.connect() as conn:
        return history.freshness_history(conn, dag_id, environment=environment, limit=limit, offset=offset)


@router.get(
    "/pipelines/{dag_id}/incidents", response_model=IncidentPage, dependencies=ReadDag, responses=NOT_FOUND,
    summary="Alerts, one per (run, event, subject) with the messages sent for it; open ones first",
)
def list_incidents(dag_id: str, engine: StoreDep, environment: Env = None, limit: Limit = 20, offset: Offset = 0,
                   open_only: bool = False):
    with engine.connect() as conn:
        return history.incidents(conn, dag_id, environment=environment, open_only=open_only, limit=limit, offset=offset)


@router.get(
    "/pipelines/{dag_id}/alerts", response_model=AlertPage, dependencies=ReadDag, responses=NOT_FOUND,
    summary="Alert messages: one per (run, event, subject, tier, channel), newest first",
)
def list_alerts(dag_id: str, engine: StoreDep, environment: Env = None, limit: Limit = 50, offset: Offset = 0,
                open_only: bool = False):
    with engine.connect() as conn:
        return history.alert_list(conn, dag_id, environment=environment, open_only=open_only, limit=limit, offset=offset)


@router.get(
    "/pipelines/{dag_id}/audit", response_model=AuditPage, dependencies=ReadDag, responses=NOT_FOUND,
    summary="Alerting audit trail",
)
def list_audit(dag_id: str, engine: StoreDep, environment: Env = None, limit: Limit = 50, offset: Offset = 0):
    with engine.connect() as conn:
        return history.audit_trail(conn, dag_id, environment=environment, limit=limit, offset=offset)


@router.post(
    "/pipelines/{dag_id}/acknowledge", response_model=AckResponse,
    dependencies=[Depends(same_origin), ReadableDagDep, Depends(requires_access_dag("PUT"))], responses=NOT_FOUND,
    summary="Acknowledge open alerts (stops their escalation); needs edit permission on the DAG",
    description="Send `{environment, run_id, event, subject}` for one alert; leave fields null to widen (all null: "
    "every open alert of the pipeline, in every environment). The body must be `application/json` (other content types are refused with 422), and "
    "a browser request from another site is refused (403): a cross-site form cannot acknowledge.",
)
def acknowledge(dag_id: str, engine: StoreDep, user: GetUserDep, body: Annotated[AckRequest, Body()]):
    by = user_name(user)
    count = store_acknowledge(engine, dag_id, body.run_id, by, event=body.event, subject=body.subject,
                              environment=body.environment)
    return {"dag_id": dag_id, "environment": body.environment, "run_id": body.run_id, "event": body.event,
            "subject": body.subject, "acknowledged": count, "by": by}
