"""The JSON API behind the Data Quality page, documented by FastAPI's OpenAPI and usable on its own.

Everything lives under ``/dataops/api``; lists are paginated (``limit``, ``offset``, ``total``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

from airflow_dataops.plugins import queries
from airflow_dataops.plugins.app import ReadableDep, StoreDep, user_name

router = APIRouter(prefix="/api", tags=["Data Quality"])
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip.")]
ReadDag = [Depends(requires_access_dag("GET"))]


class Counts(BaseModel):
    passed: int = 0
    warned: int = 0
    failed: int = 0
    error: int = 0


class Freshness(BaseModel):
    dag_id: str
    run_id: str
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
    environment: str | None
    last_run_id: str | None
    last_checked_at: dt.datetime | None
    counts: Counts = Field(description="Check results of the last run, by status.")
    freshness: Freshness | None = Field(description="The stalest dataset of the pipeline, from the latest observation.")
    open_alerts: int = Field(description="Unacknowledged, unresolved alerts (one per run, event and subject).")
    open_escalations: int
    on_time_rate: float | None = Field(description="Share of runs in 30 days that met their SLA and passed their fail checks.")
    on_time_runs: int
    runs_30d: int
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


class AckRequest(BaseModel):
    run_id: str | None = Field(None, description="Acknowledge this run's open alerts; null: every open alert of the pipeline.")


class AckResponse(BaseModel):
    dag_id: str
    run_id: str | None
    acknowledged: int = Field(description="Alert rows acknowledged by this call.")
    by: str


@router.get("/pipelines", response_model=PipelinePage, summary="Every pipeline you may read, summarised")
def list_pipelines(
    engine: StoreDep, readable: ReadableDep, limit: Limit = 50, offset: Offset = 0,
    search: Annotated[str | None, Query(description="Case-insensitive substring of the DAG id.")] = None,
):
    with engine.connect() as conn:
        return queries.overview(conn, readable, search=search, limit=limit, offset=offset)


@router.get("/pipelines/{dag_id}", response_model=PipelineSummary, dependencies=ReadDag, summary="One pipeline, summarised")
def get_pipeline(dag_id: str, engine: StoreDep):
    with engine.connect() as conn:
        return queries.summaries(conn, [dag_id])[0]


@router.get("/pipelines/{dag_id}/runs", response_model=RunPage, dependencies=ReadDag, summary="Check counts per run")
def list_runs(dag_id: str, engine: StoreDep, limit: Limit = 30, offset: Offset = 0):
    with engine.connect() as conn:
        return queries.run_history(conn, dag_id, limit=limit, offset=offset)


@router.get("/pipelines/{dag_id}/checks", response_model=list[CheckInfo], dependencies=ReadDag, summary="Checks with results")
def list_checks(dag_id: str, engine: StoreDep):
    with engine.connect() as conn:
        return queries.check_names(conn, dag_id)


@router.get(
    "/pipelines/{dag_id}/checks/{check_name}/history", response_model=list[CheckResultOut], dependencies=ReadDag,
    summary="Observed vs expected of one check over time (oldest first)",
)
def check_history(dag_id: str, check_name: str, engine: StoreDep, limit: Limit = 60):
    with engine.connect() as conn:
        return queries.check_history(conn, dag_id, check_name, limit=limit)


@router.get(
    "/pipelines/{dag_id}/results", response_model=ResultPage, dependencies=ReadDag,
    summary="Results of one run (default: the latest), failures first",
)
def list_results(
    dag_id: str, engine: StoreDep, limit: Limit = 100, offset: Offset = 0,
    run_id: Annotated[str | None, Query(description="Default: the pipeline's latest run.")] = None,
    status: Annotated[list[str] | None, Query(description="Only these statuses (repeatable).")] = None,
):
    with engine.connect() as conn:
        if run_id is None:
            run_id = queries.summaries(conn, [dag_id])[0]["last_run_id"]
            if run_id is None:
                return {"total": 0, "limit": limit, "offset": offset, "items": []}
        return queries.run_results(conn, dag_id, run_id, statuses=status, limit=limit, offset=offset)


@router.get("/pipelines/{dag_id}/freshness", response_model=FreshnessPage, dependencies=ReadDag, summary="Freshness over time")
def list_freshness(dag_id: str, engine: StoreDep, limit: Limit = 60, offset: Offset = 0):
    with engine.connect() as conn:
        return queries.freshness_history(conn, dag_id, limit=limit, offset=offset)


@router.get("/pipelines/{dag_id}/alerts", response_model=AlertPage, dependencies=ReadDag, summary="Alerts and escalations")
def list_alerts(dag_id: str, engine: StoreDep, limit: Limit = 50, offset: Offset = 0, open_only: bool = False):
    with engine.connect() as conn:
        return queries.alert_list(conn, dag_id, open_only=open_only, limit=limit, offset=offset)


@router.get("/pipelines/{dag_id}/audit", response_model=AuditPage, dependencies=ReadDag, summary="Alerting audit trail")
def list_audit(dag_id: str, engine: StoreDep, limit: Limit = 50, offset: Offset = 0):
    with engine.connect() as conn:
        return queries.audit_trail(conn, dag_id, limit=limit, offset=offset)


@router.post(
    "/pipelines/{dag_id}/acknowledge", response_model=AckResponse, dependencies=[Depends(requires_access_dag("PUT"))],
    summary="Acknowledge open alerts (stops their escalation); needs edit permission on the DAG",
)
def acknowledge(dag_id: str, engine: StoreDep, user: GetUserDep, body: Annotated[AckRequest, Body()]):
    try:
        from airflow_dataops.store.alerts import acknowledge as store_acknowledge
    except ImportError as exc:  # the alerting store ships separately; say so instead of a 500
        raise HTTPException(501, f"acknowledging needs airflow_dataops.store.alerts ({exc})") from exc
    by = user_name(user)
    count = store_acknowledge(engine, dag_id, body.run_id, by)
    return {"dag_id": dag_id, "run_id": body.run_id, "acknowledged": count, "by": by}
