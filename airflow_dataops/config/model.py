"""The pipeline config: what one YAML file means once its active environment is applied.

``PipelineFile`` is the shape users write (the JSON Schema for editors comes from it);
``PipelineConfig`` is one pipeline resolved for one environment, the only thing the DAG builder sees.
Both are frozen. No Airflow imports here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from airflow_dataops.config.alerts import AlertsConfig
from airflow_dataops.config.checks import Check, StrictModel
from airflow_dataops.config.errors import shown
from airflow_dataops.config.types import (
    AssetUri, ColumnName, Duration, Percent, PlainText, TableName, Tag, check_asset_uri, check_tag,
)

DAG_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,249}$")
PRESETS = {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually"}
DEFAULT_START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{shown(value)} is not an IANA time zone: use a name like UTC or Europe/Berlin") from None
    return value


def _check_schedule(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) and "://" in v for v in value):
            raise ValueError("a schedule list names Airflow Assets by URI, like [\"dataops://warehouse/orders\"]")
        return [check_asset_uri(v) for v in value]
    if not isinstance(value, str):
        raise ValueError(f"{shown(value)} is not a schedule: use \"manual\", a cron string, a preset like @daily, or asset URIs")
    text = value.strip()
    if text == "manual" or text in PRESETS:
        return text
    if "://" in text:
        return check_asset_uri(text)
    if "{{" in text:
        raise ValueError("a schedule cannot be templated")
    from croniter import croniter

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"{shown(value)} is not a valid cron expression: use five fields like \"0 5 * * *\", "
            "a preset like @daily, or \"manual\""
        )
    return text


Schedule = Annotated[Union[str, list[str], None], Field(description=(
    '"manual" (no schedule), a cron string ("0 5 * * *"), an Airflow preset (@daily), or Asset URIs '
    "(a string or a list) to run when those assets are updated."
))]


class SlaCompleteness(StrictModel):
    min_pct: Percent
    columns: list[ColumnName] | None = Field(None, description="Default: the columns of the pipeline's null checks.")


class SlaConfig(StrictModel):
    freshness: Duration | None = Field(
        None, description="The pipeline's data is never older than this: a run not succeeded within this "
        "time of being queued is an SLA miss (an Airflow Deadline Alert).",
    )
    completeness: Percent | SlaCompleteness | None = Field(
        None, description='"99.5%", or {min_pct, columns}: becomes a `completeness` check with action fail.',
    )


class DatasetConfig(StrictModel):
    conn_id: PlainText | None = Field(None, description="Airflow connection. Default: [dataops] default_conn_id.")
    table: TableName | None = Field(None, description="Table (optionally schema.table). Default: the pipeline name.")
    timestamp_column: ColumnName | None = Field(None, description="For freshness. Default: [dataops] default_timestamp_column.")
    timezone: PlainText | None = Field(None, description="Zone of naive timestamps in the table (default UTC).")
    asset: AssetUri | None = Field(
        None, description="URI of the Asset published when the fail checks pass. Default: dataops://<conn_id>/<table>.",
    )

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_timezone(v)))


class TaskConfig(StrictModel):
    id: str = Field(description="Task id, unique in the pipeline.")
    sql: str | None = Field(None, description="Inline SQL or a .sql file relative to the YAML file (templated).")
    python: PlainText | None = Field(None, description="A callable as package.module:function.")
    bash: str | None = Field(None, description="A shell command (templated).")
    conn_id: PlainText | None = Field(None, description="Connection for `sql` (default: the dataset's).")
    depends_on: list[PlainText] | None = Field(None, description="Upstream task ids. Default: the task written before.")
    retries: int | None = Field(None, ge=0)

    @field_validator("id")
    @classmethod
    def _task_id(cls, value: str) -> str:
        if not TASK_ID_RE.match(value):
            raise ValueError(f"{shown(value)} is not a valid task id: use letters, digits, '_' and '-' (at most 250)")
        return value

    @field_validator("python")
    @classmethod
    def _callable_path(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
            raise ValueError(f"{shown(value)} is not a callable path: write package.module:function")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> TaskConfig:
        kinds = [k for k in ("sql", "python", "bash") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"task {self.id!r} needs exactly one of `sql`, `python` or `bash` (got {kinds or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("sql", "python", "bash") if getattr(self, k) is not None)


class SourceConfig(StrictModel):
    name: PlainText | None = Field(None, description="Sensor task id suffix. Default: the table or asset name.")
    conn_id: PlainText | None = None
    table: TableName | None = None
    timestamp_column: ColumnName | None = None
    where: str | None = Field(None, description="Templated SQL condition.")
    asset: AssetUri | None = Field(None, description="An Airflow Asset URI instead of a table.")
    max_age: Duration
    timeout: Duration | None = Field(None, description="Give up after this long (default 6 hours).")
    poke_interval: Duration | None = Field(None, description="How often to look (default 60s).")
    on_timeout: Literal["fail", "skip"] = "fail"
    mode: Literal["deferrable", "reschedule", "poke"] = Field(
        "deferrable", description="deferrable holds no worker slot while waiting (asset sources use reschedule).",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_task_id_part(cls, value: str | None) -> str | None:
        if value is not None and not TASK_ID_RE.match(value):
            raise ValueError(f"{shown(value)} cannot name a task (wait_for_<name>): use letters, digits, '_' and '-'")
        return value

    @model_validator(mode="after")
    def _table_or_asset(self) -> SourceConfig:
        if (self.table is None) == (self.asset is None):
            raise ValueError("a source names either a `table` (with `conn_id`, `timestamp_column`) or an `asset`")
        return self

    @property
    def source_name(self) -> str:
        if self.name:
            return self.name
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.table or self.asset.split("://", 1)[1])


class PipelineMeta(StrictModel):
    name: str = Field(description="The DAG id.")
    owner: PlainText = "airflow"
    description: PlainText | None = Field(None, description="Shown as the DAG's docs (Markdown; not templated).")
    schedule: Schedule = Field(None, description="Default schedule for environments that set none.")
    data_interval: bool = Field(
        False, description="true: cron schedules get data intervals (CronDataIntervalTimetable, runs after the "
        "interval ends); false (Airflow 3's default): runs at the cron time with a zero-width interval.",
    )
    timezone: PlainText = Field("UTC", description="Zone of the cron schedule.")
    start_date: dt.datetime | dt.date | None = Field(None, description="Default 2024-01-01 (fixed, never 'now').")
    catchup: bool = False
    tags: list[Tag] = Field(default_factory=list, description="DAG tags (at most 100 characters each).")
    retries: int = Field(0, ge=0)
    retry_delay: Duration = Field(dt.timedelta(minutes=5))
    max_active_runs: int = Field(1, ge=1, description="1 with `@continuous`.")
    pool: PlainText | None = None
    sla: SlaConfig | None = None

    _name = field_validator("name")(classmethod(lambda cls, v: _dag_id(v)))
    _schedule = field_validator("schedule", mode="before")(classmethod(lambda cls, v: _check_schedule(v)))
    _tz = field_validator("timezone")(classmethod(lambda cls, v: _check_timezone(v)))

    @field_validator("start_date", mode="before")
    @classmethod
    def _parse_start(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{shown(value)} is not an ISO date: write it like 2024-01-31") from None
        if isinstance(value, (dt.date, dt.datetime)) or value is None:
            return value
        raise ValueError(f"expected an ISO date, got {shown(value)}: write it like 2024-01-31 (or 2024-01-31T06:00:00)")


def _dag_id(value: str) -> str:
    if not isinstance(value, str) or not DAG_ID_RE.match(value):
        raise ValueError(f"{shown(value)} is not a valid pipeline name (the DAG id): use letters, digits, '_', '.' "
                         "and '-' (at most 250)")
    return value


SECTIONS = ("dataset", "tasks", "sources", "quality_checks", "sla", "alerts")


class EnvironmentConfig(StrictModel):
    """One environment; may override any top-level section (mappings merge, lists replace)."""

    name: PlainText = Field(description="Matched against [dataops] environment; becomes the DAG tag env:<name>.")
    schedule: Schedule = None
    notifications: bool = True
    dataset: DatasetConfig | None = None
    tasks: list[TaskConfig] | None = None
    sources: list[SourceConfig] | None = None
    quality_checks: list[Check] | None = None
    sla: SlaConfig | None = None
    alerts: AlertsConfig | None = None

    _schedule = field_validator("schedule", mode="before")(classmethod(lambda cls, v: _check_schedule(v)))

    @field_validator("name")
    @classmethod
    def _name_fits_a_tag(cls, value: str) -> str:
        check_tag(f"env:{value}")
        return value


class PipelineFile(StrictModel):
    """The shape of a pipeline YAML file (its JSON Schema is `airflow-dataops schema`)."""

    version: Literal[1] = Field(1, description="Format version.")
    pipeline: PipelineMeta
    environments: list[EnvironmentConfig] | None = Field(
        None, description="Per-environment schedule, notifications and overrides. Without it the pipeline "
        "runs in every environment with the pipeline's schedule.",
    )
    dataset: DatasetConfig | None = None
    tasks: list[TaskConfig] = Field(default_factory=list)
    sources: list[SourceConfig] = Field(default_factory=list)
    quality_checks: list[Check] = Field(default_factory=list)
    alerts: AlertsConfig | None = None


class PipelineConfig(StrictModel):
    """One pipeline resolved for one environment: what the DAG builder turns into a DAG."""

    version: Literal[1] = 1
    pipeline: PipelineMeta
    environment: str
    schedule: Schedule = None
    notifications: bool = True
    dataset: DatasetConfig
    tasks: list[TaskConfig] = Field(default_factory=list)
    sources: list[SourceConfig] = Field(default_factory=list)
    quality_checks: list[Check] = Field(default_factory=list)
    sla: SlaConfig | None = None
    alerts: AlertsConfig | None = None
    source_file: str = ""
    source_line: int = Field(1, description="Line of `pipeline.name` in the source file.")

    @property
    def name(self) -> str:
        return self.pipeline.name

    @property
    def asset_uri(self) -> str:
        return self.dataset.asset or f"dataops://{self.dataset.conn_id}/{self.dataset.table}"
