"""The ``[dataops]`` configuration section: one table that is the single source for the option
names, their defaults and their documentation (``get_provider_info`` and the README derive from it).

Values are read from Airflow's configuration (``airflow.cfg`` or ``AIRFLOW__DATAOPS__<OPTION>``).
Reading never touches a database. Outside an Airflow installation (the CLI in a bare CI job) the
environment variables and the defaults still apply.
"""

from __future__ import annotations

import configparser
import os
import sys
from dataclasses import dataclass

SECTION = "dataops"


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    type: str  # "string" | "integer" | "boolean"
    description: str
    example: str | None = None


OPTIONS: tuple[Option, ...] = (
    Option(
        "environment",
        "development",
        "string",
        "The active environment of this deployment: each pipeline's `environments` entry of this "
        "name decides its schedule, notifications and overrides. Every Airflow component of a "
        "deployment (scheduler, dag-processor, workers, triggerer, api-server) must see the same value.",
        "production",
    ),
    Option(
        "default_conn_id",
        "dataops_default",
        "string",
        "Connection checked when a pipeline's `dataset` names no `conn_id`.",
    ),
    Option(
        "default_timestamp_column",
        "updated_at",
        "string",
        "Timestamp column used for freshness when a pipeline's `dataset` names none.",
    ),
    Option(
        "results_conn_id",
        "dataops_results",
        "string",
        "Connection of the results store (any SQLAlchemy database; PostgreSQL in production). "
        "When it does not exist, a SQLite file in $AIRFLOW_HOME is used: fine on one machine, "
        "wrong with several (each machine would write its own file).",
    ),
    Option(
        "results_retention_days",
        "90",
        "integer",
        "`airflow-dataops purge` deletes check results, freshness observations, audit rows and "
        "resolved alerts older than this (run it daily, e.g. from cron or a small DAG).",
    ),
    Option(
        "statement_timeout",
        "300",
        "integer",
        "Seconds a single check query may run before it is cancelled (a retryable task error).",
    ),
    Option(
        "failing_rows_sample",
        "0",
        "integer",
        "How many failing rows to keep per failed check, in the results store only (never in "
        "XCom or logs). 0 turns sampling off.",
        "20",
    ),
    Option(
        "slack_conn_id",
        "slack_api_default",
        "string",
        "Slack API connection used by `- slack: \"#channel\"` alert channels.",
    ),
    Option(
        "smtp_conn_id",
        "smtp_default",
        "string",
        "SMTP connection used by `- email: ...` alert channels.",
    ),
    Option(
        "alert_on_repeat",
        "False",
        "boolean",
        "When False, a check that keeps warning or failing run after run alerts only when it "
        "starts (and once more when it recovers). When True, every run alerts.",
    ),
    Option(
        "deadline_alerts",
        "True",
        "boolean",
        "Turn `sla.freshness` into Airflow Deadline Alerts. Set False only for `airflow dags test` / "
        "`dag.test()`: in Airflow 3.3.2 a successful test run of a DAG with Deadline Alerts crashes in "
        "`DagRun.update_state` (the test path serializes the DAG without deadline ids).",
    ),
    Option(
        "resume_settle_seconds",
        "10",
        "integer",
        "A deferred dataops task (freshness sensor, alert watch) never resumes sooner than this many "
        "seconds after deferring: Airflow 3.3 fails a task that resumes while the executor's report of "
        "its deferral is still in flight (apache/airflow#72716). 0 turns the hold off.",
    ),
    Option(
        "pipelines_cache_dir",
        "",
        "string",
        "Directory of the cache of validated pipeline configs (keyed by file content). Empty "
        "means `$AIRFLOW_HOME/dataops_cache`. Must be writable by the dag-processor.",
    ),
)

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


def airflow_cfg_value(section: str, name: str) -> str | None:
    """An option from Airflow's configuration without the cost of importing Airflow when it is not
    loaded yet (the CLI): environment variable, then ``$AIRFLOW_HOME/airflow.cfg``."""
    env = os.environ.get(f"AIRFLOW__{section.upper()}__{name.upper()}")
    if env is not None:
        return env
    if "airflow.configuration" in sys.modules:
        try:
            return sys.modules["airflow.configuration"].conf.get(section, name, fallback=None)
        except Exception:  # pragma: no cover - half-configured Airflow
            return None
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(os.path.join(home, "airflow.cfg"))
    except configparser.Error:  # pragma: no cover
        return None
    value = parser.get(section, name, fallback=None)
    return value.replace("{AIRFLOW_HOME}", home) if value is not None else None


def _from_airflow(name: str) -> str | None:
    return airflow_cfg_value(SECTION, name)


def get(name: str) -> str:
    """The raw string value of a ``[dataops]`` option."""
    option = OPTIONS_BY_NAME[name]
    value = _from_airflow(name)
    return option.default if value is None else value


def get_int(name: str) -> int:
    raw = get(name)
    try:
        return int(raw)
    except ValueError:
        raise ValueError(
            f"[{SECTION}] {name} must be a whole number, got {raw!r}: fix it in airflow.cfg or "
            f"AIRFLOW__{SECTION.upper()}__{name.upper()}"
        ) from None


def get_bool(name: str) -> bool:
    raw = get(name).strip().lower()
    if raw in {"true", "1", "yes", "on"}:
        return True
    if raw in {"false", "0", "no", "off", ""}:
        return False
    raise ValueError(
        f"[{SECTION}] {name} must be True or False, got {raw!r}: fix it in airflow.cfg or "
        f"AIRFLOW__{SECTION.upper()}__{name.upper()}"
    )
