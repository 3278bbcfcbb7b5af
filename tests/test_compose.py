"""docker-compose.yaml and the Dockerfile: the topology Airflow 3 expects, checked without Docker.

The file is parsed as YAML (anchors and merge keys resolved, as compose does); every `airflow ...`
command in it is parsed by the installed Airflow CLI in a separate process, exactly as
`airflow <command> --help` would, so a renamed subcommand or option fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

import airflow

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (REPO / "Dockerfile").read_text()

AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
AIRFLOW_SERVICES = [*AIRFLOW_COMMANDS, "airflow-init"]
ALWAYS_ON = [name for name, svc in SERVICES.items() if "profiles" not in svc and name != "airflow-init"]


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def test_services_of_the_airflow_3_topology():
    assert set(ALWAYS_ON) | {"airflow-init"} == {"postgres", "redis", *AIRFLOW_SERVICES}
    for service, command in AIRFLOW_COMMANDS.items():
        assert SERVICES[service]["command"] == command, service
    assert SERVICES["airflow-apiserver"]["ports"] == ["8080:8080"]


def test_every_airflow_service_runs_the_image_built_from_the_dockerfile():
    for service in AIRFLOW_SERVICES:
        assert SERVICES[service]["build"] == ".", service
        assert SERVICES[service]["image"] == SERVICES["airflow-apiserver"]["image"], service


def test_celery_executor_with_redis_and_postgres():
    common = env("airflow-scheduler")
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379" in common["AIRFLOW__CELERY__BROKER_URL"]
    assert common["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert re.match(r"postgresql\+psycopg2://\w+:\w+@postgres/airflow$", common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    postgres = SERVICES["postgres"]["environment"]
    assert postgres["POSTGRES_DB"] == "airflow"


def test_execution_api_points_at_the_api_server():
    url = env("airflow-worker")["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == "http://airflow-apiserver:8080/execution/"
    assert "airflow-apiserver" in SERVICES


def test_every_airflow_component_shares_environment_and_jwt_secret():
    keys = [
        "AIRFLOW__DATAOPS__ENVIRONMENT",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW_CONN_DATAOPS_DEFAULT",
        "AIRFLOW_CONN_DATAOPS_RESULTS",
    ]
    reference = env("airflow-apiserver")
    for service in [s for s in SERVICES if s.startswith("airflow-") or s == "flower"]:
        for key in keys:
            assert env(service).get(key) == reference[key], f"{service}: {key}"
    assert reference["AIRFLOW__DATAOPS__ENVIRONMENT"] == "${DATAOPS_ENVIRONMENT:-development}"
    # A secret every component must share cannot be left to each process to invent.
    assert reference["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?")


def test_results_store_and_warehouse_are_postgresql_databases_of_their_own():
    common = env("airflow-scheduler")
    default, results = common["AIRFLOW_CONN_DATAOPS_DEFAULT"], common["AIRFLOW_CONN_DATAOPS_RESULTS"]
    dbs = {url.rsplit("/", 1)[1] for url in (default, results)}
    assert all(url.startswith("postgresql://") and "@postgres:5432/" in url for url in (default, results))
    assert dbs == {"warehouse", "dataops"}
    init_sql = (REPO / "docker" / "postgres-init.sql").read_text()
    for db in dbs:
        assert f"CREATE DATABASE {db} " in init_sql
    mounts = SERVICES["postgres"]["volumes"]
    assert "./docker/postgres-init.sql:/docker-entrypoint-initdb.d/10-dataops.sql:ro" in mounts
    # airflow-init seeds the warehouse that the default connection points at.
    init = SERVICES["airflow-init"]
    assert "python -m airflow_dataops.demo.seed" in init["command"][1]
    assert init["environment"]["DATAOPS_WAREHOUSE_URL"].endswith("@postgres:5432/warehouse")
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


def test_healthchecks_as_in_airflows_compose_file():
    def check(service):
        test = SERVICES[service]["healthcheck"]["test"]
        return " ".join(test)

    for service in ALWAYS_ON:
        assert "healthcheck" in SERVICES[service], f"{service} has no healthcheck"
    assert check("postgres") == "CMD pg_isready -U airflow"
    assert check("redis") == "CMD redis-cli ping"
    assert check("airflow-apiserver") == "CMD curl --fail http://localhost:8080/api/v2/version"
    assert check("airflow-scheduler") == "CMD curl --fail http://localhost:8974/health"
    assert env("airflow-scheduler")["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "airflow jobs check --job-type DagProcessorJob" in check("airflow-dag-processor")
    assert "airflow jobs check --job-type TriggererJob" in check("airflow-triggerer")
    assert "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping" in check("airflow-worker")


def test_start_order_follows_health_and_the_init_service():
    for service in AIRFLOW_SERVICES:
        deps = SERVICES[service]["depends_on"]
        assert deps["postgres"] == {"condition": "service_healthy"}, service
        assert deps["redis"] == {"condition": "service_healthy"}, service
        if service != "airflow-init":
            assert deps["airflow-init"] == {"condition": "service_completed_successfully"}, service
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}
    assert SERVICES["airflow-worker"]["environment"]["DUMB_INIT_SETSID"] == "0"


def test_dags_folder_is_mounted_into_every_airflow_container():
    for service in AIRFLOW_SERVICES:
        assert "${AIRFLOW_PROJ_DIR:-.}/dags:/opt/airflow/dags" in SERVICES[service]["volumes"], service
    assert "postgres-db-volume" in COMPOSE["volumes"]


def _locked(name: str) -> str:
    """The version constraints.txt pins (what `make venv` and the image install)."""
    pins = dict(
        line.split("==", 1) for line in (REPO / "constraints.txt").read_text().splitlines() if re.match(r"^[A-Za-z0-9].*==", line)
    )
    return pins[name]


def test_dockerfile_installs_the_package_and_the_celery_provider_with_the_lock():
    locked = _locked("apache-airflow")
    from_line = re.search(r"^ARG AIRFLOW_IMAGE=(\S+)$", DOCKERFILE, re.M).group(1)
    assert from_line == f"apache/airflow:slim-{locked}-python3.11"
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\}$", DOCKERFILE, re.M)
    assert f"ARG AIRFLOW_VERSION={locked}" in DOCKERFILE
    assert "COPY --chown=airflow:0 pyproject.toml README.md constraints.txt ./" in DOCKERFILE
    assert "COPY --chown=airflow:0 airflow_dataops ./airflow_dataops" in DOCKERFILE
    install = re.search(r"RUN pip install (.*?)(?:\n\n|\Z)", DOCKERFILE, re.S).group(1)
    args = shlex.split(install.replace("\\\n", " "))
    assert args[:3] == ["--no-cache-dir", "-c", "constraints.txt"]
    assert '.[postgres]' in args and "apache-airflow-providers-celery" in args
    assert "apache-airflow==${AIRFLOW_VERSION}" in args
    assert "pip check" in install


def test_lock_pins_what_the_image_installs():
    pins = dict(
        line.split("==", 1) for line in (REPO / "constraints.txt").read_text().splitlines() if re.match(r"^[A-Za-z0-9].*==", line)
    )
    assert "apache-airflow-providers-postgres" in pins
    assert "apache-airflow-providers-celery" in pins, (
        "constraints.txt does not pin the Celery provider the image installs: add it to an extra in "
        "pyproject.toml (e.g. `celery`) and run `make lock`"
    )


def _airflow_commands() -> list[list[str]]:
    """Every `airflow ...` invocation in the compose file, as argv after `airflow`."""
    found: list[list[str]] = []
    for name, service in SERVICES.items():
        command = service.get("command")
        if name in AIRFLOW_COMMANDS or name == "flower":
            found.append(shlex.split(command))
        for text in [*(service.get("healthcheck", {}).get("test", [])), *(command if isinstance(command, list) else [])]:
            for line in str(text).splitlines():
                for match in re.finditer(r"(?:^|\s|/entrypoint )airflow ((?:[^|;&]+))", line):
                    found.append(shlex.split(match.group(1).replace("$${HOSTNAME}", "worker-1")))
    return found


# The parser `airflow` itself uses; parse_args(argv + ["--help"]) is `airflow <argv> --help`.
_CLI_CHECK = r"""
import json, sys, contextlib, io
from airflow.cli import cli_parser
results = {}
for argv in json.loads(sys.argv[1]):
    parser = cli_parser.get_parser()
    out = io.StringIO()
    for probe in (argv + ["--help"], argv):
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                parser.parse_args(probe)
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        if code:
            break
    results[" ".join(argv)] = [code, out.getvalue()[-600:]]
print(json.dumps(results))
"""


def test_every_airflow_command_is_valid_for_the_installed_cli(tmp_path):
    import importlib.util

    assert importlib.util.find_spec("airflow.providers.celery"), (
        "apache-airflow-providers-celery is not installed, so `airflow celery ...` cannot be checked: "
        "it belongs in the `test` extra of pyproject.toml (the image installs it too)"
    )
    commands = _airflow_commands()
    seen = {" ".join(c) for c in commands}
    assert {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker", "celery flower", "version"} <= seen
    assert "jobs check --job-type DagProcessorJob --hostname worker-1" in seen
    assert "jobs check --job-type TriggererJob --hostname worker-1" in seen

    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    child_env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__EXECUTOR="CeleryExecutor", AIRFLOW__CORE__LOAD_EXAMPLES="False")
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_CHECK, json.dumps(commands)], env=child_env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = {cmd: out for cmd, (code, out) in results.items() if code != 0}
    assert not bad, f"not valid for Airflow {airflow.__version__}'s CLI: {bad}"


def test_the_cli_check_rejects_what_airflow_rejects(tmp_path):
    """The validity check above can fail: misspelt commands, bad choices and flags are caught."""
    wrong = [["celery", "wroker"], ["jobs", "check", "--job-type", "WorkerJob"], ["api-server", "--no-such-flag"]]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    child_env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_CHECK, json.dumps(wrong)], env=child_env, capture_output=True, text=True, timeout=300
    )
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {cmd: code != 0 for cmd, (code, _out) in results.items()} == {" ".join(argv): True for argv in wrong}
