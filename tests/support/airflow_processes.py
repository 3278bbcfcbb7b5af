"""Real Airflow 3 processes for end-to-end tests.

``AirflowCluster`` makes a fresh AIRFLOW_HOME with one ``airflow.cfg`` (one JWT secret shared by
every component), migrates the metadata database, starts api-server, scheduler, dag-processor and
triggerer each in its own process group, waits until ``/api/v2/monitor/health`` reports them
healthy, and talks to the REST API v2 with a bearer token from the simple auth manager::

    with AirflowCluster(tmp_path, dags_folder) as af:
        af.unpause("my_dag")
        run_id = af.trigger("my_dag")
        assert af.wait_run("my_dag", run_id, timeout=120) == "success", af.describe_run("my_dag", run_id)
        assert "hello" in af.task_log("my_dag", run_id, "say_hello")

Every component writes stdout+stderr to ``<home>/component-logs/<component>.log``; on an exception
inside the ``with`` block (and when a run times out) the tails of those logs are printed, so a
failing e2e test shows why. The parent test process's ``AIRFLOW*`` environment (tests/conftest.py
sets unit-test mode and its own database) is NOT passed on: the cluster sees only its airflow.cfg,
``extra_env`` and the rest of the environment.

Import it as ``from tests.support.airflow_processes import AirflowCluster`` (needs the repo root on
``sys.path``: ``python -m pytest`` / ``make test`` do that; plain ``pytest`` needs
``pythonpath = ["."]`` in the pytest config). Mark such tests ``integration`` and ``e2e``; run them
under ``nice``. Start-up (migrate + four healthy components) takes ~26 s on 2 cores for the first
cluster of a pytest process; later SQLite clusters copy a migrated database and save ~8 s.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.support.airflow_api import TERMINAL_RUN_STATES, AirflowApiMixin, AirflowClusterError

__all__ = ["AirflowCluster", "AirflowClusterError", "TERMINAL_RUN_STATES", "free_port"]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
ALL_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DEFAULT_USERS = {"admin": "admin", "viewer": "viewer"}

# The health payload key of each component that reports a heartbeat.
_HEALTH_KEYS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}

# A migrated empty SQLite metadata database, copied into every later cluster of this test process:
# `airflow db migrate` costs 6-9 s on this machine, the copy a few milliseconds.
_sqlite_template: Path | None = None
_template_lock = threading.Lock()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_QUIET_ACCESS = re.compile(r"\[http\.access\].*status_code=[23]\d\d")


def _tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines, without successful HTTP access-log lines (they bury the tracebacks)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    kept = [line for line in text.splitlines() if not _QUIET_ACCESS.search(line)]
    return "\n".join(kept[-lines:])


class AirflowCluster(AirflowApiMixin):
    """A throw-away Airflow deployment made of real processes on 127.0.0.1 (see module docstring).

    :param tmp_path: a directory owned by the test; the AIRFLOW_HOME is ``tmp_path / "airflow-home"``
        (``airflow-home-2``, ... for further clusters in the same directory).
    :param dags_folder: the DAGs folder the dag-processor parses.
    :param extra_env: extra environment for every component and for :meth:`cli` (wins over airflow.cfg,
        e.g. ``{"AIRFLOW__DATAOPS__ENVIRONMENT": "production", "AIRFLOW_CONN_X": "..."}``).
    :param executor: ``[core] executor``; LocalExecutor works on SQLite.
    :param metadata_db_url: SQLAlchemy URL of the metadata database (e.g. the ``pg_url`` fixture);
        default a SQLite file in the home.
    :param components: which components to start.
    :param users: simple-auth-manager users, ``{username: role}`` (roles: viewer, user, op, admin).
    :param start_timeout: seconds to wait for every component to be healthy.
    """

    def __init__(
        self,
        tmp_path: Path,
        dags_folder: Path,
        extra_env: Mapping[str, str] | None = None,
        executor: str = "LocalExecutor",
        metadata_db_url: str | None = None,
        components: Iterable[str] = ALL_COMPONENTS,
        users: Mapping[str, str] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.home = Path(tmp_path) / "airflow-home"
        suffix = 2
        while self.home.exists():  # a second cluster in the same test gets a home of its own
            self.home = Path(tmp_path) / f"airflow-home-{suffix}"
            suffix += 1
        self.dags_folder = Path(dags_folder)
        self.extra_env = dict(extra_env or {})
        self.executor = executor
        self.metadata_db_url = metadata_db_url or f"sqlite:///{self.home / 'airflow.db'}"
        self.components = tuple(components)
        unknown = set(self.components) - set(ALL_COMPONENTS)
        if unknown:
            raise ValueError(f"unknown Airflow components {sorted(unknown)}: choose from {ALL_COMPONENTS}")
        self.users = dict(users or DEFAULT_USERS)
        self.passwords = {name: f"{name}-{secrets.token_urlsafe(8)}" for name in self.users}
        self.start_timeout = start_timeout
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_dir = self.home / "component-logs"
        self.startup_seconds: float | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._log_files: dict[str, Any] = {}
        self._tokens: dict[str, str] = {}
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0)

    # ----------------------------------------------------------------- set-up and tear-down

    def __enter__(self) -> AirflowCluster:
        started = time.monotonic()
        try:
            self._write_home()
            self._migrate()
            for component in self.components:
                self.start(component)
            self.wait_healthy(self.start_timeout)
        except BaseException:
            self.print_logs()
            self.stop_all()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.print_logs()
        self.stop_all()
        self._http.close()

    def _write_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=False)
        self.log_dir.mkdir()
        passwords_file = self.home / "simple_auth_manager_passwords.json"
        # Known passwords instead of generated ones: the auth manager only adds missing users.
        passwords_file.write_text(json.dumps(self.passwords) + "\n")
        users = ",".join(f"{name}:{role}" for name, role in self.users.items())
        secret = secrets.token_urlsafe(32)
        cfg = f"""\
[core]
dags_folder = {self.dags_folder}
executor = {self.executor}
load_examples = False
parallelism = 8
execution_api_server_url = {self.base_url}/execution/
simple_auth_manager_users = {users}
simple_auth_manager_passwords_file = {passwords_file}

[database]
sql_alchemy_conn = {self.metadata_db_url}

[logging]
base_log_folder = {self.home / "logs"}

[api]
base_url = {self.base_url}/
host = 127.0.0.1
port = {self.port}
workers = 1
secret_key = {secret}

[api_auth]
jwt_secret = {secret}

[dag_processor]
refresh_interval = 5
"""
        (self.home / "airflow.cfg").write_text(cfg)

    @property
    def env(self) -> dict[str, str]:
        """The environment every component (and :meth:`cli`) runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env["AIRFLOW_HOME"] = str(self.home)
        env["PATH"] = f"{Path(AIRFLOW_BIN).parent}{os.pathsep}{env.get('PATH', '')}"
        # The package under test is importable even when it is not installed in the venv.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``airflow <args>`` against this cluster's home; returns the completed process (text)."""
        proc = subprocess.run(
            [AIRFLOW_BIN, *args], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AirflowClusterError(
                f"`airflow {' '.join(args)}` exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
                f"\n--- stderr\n{proc.stderr[-3000:]}"
            )
        return proc

    def _migrate(self) -> None:
        global _sqlite_template
        if not self.metadata_db_url.startswith("sqlite:"):
            self.cli("db", "migrate", timeout=300)
            return
        target = self.home / "airflow.db"
        with _template_lock:
            if _sqlite_template is None or not _sqlite_template.exists():
                self.cli("db", "migrate", timeout=300)
                cache = Path(os.environ.get("TMPDIR", "/tmp")) / f"dataops-airflow-template-{os.getpid()}.db"
                shutil.copyfile(target, cache)
                atexit.register(cache.unlink, missing_ok=True)
                _sqlite_template = cache
            else:
                shutil.copyfile(_sqlite_template, target)

    def _command(self, component: str) -> list[str]:
        if component == "api-server":
            return [AIRFLOW_BIN, "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        if component in ("scheduler", "triggerer"):
            # -s: no log server (it would bind 0.0.0.0); the api-server reads the logs from the shared home.
            return [AIRFLOW_BIN, component, "-s"]
        return [AIRFLOW_BIN, component]

    # ----------------------------------------------------------------- process control

    def start(self, component: str) -> None:
        """Start one component in its own process group (no-op if it is running)."""
        proc = self._procs.get(component)
        if proc is not None and proc.poll() is None:
            return
        log = open(self.log_dir / f"{component}.log", "ab")  # noqa: SIM115 - closed in _reap
        log.write(f"\n===== start {component} at {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self._log_files[component] = log
        self._procs[component] = subprocess.Popen(
            self._command(component),
            env=self.env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self, component: str) -> None:
        """SIGKILL the component's whole process group, as a crash would; it is not started again."""
        self._signal_and_reap(component, signal.SIGKILL, grace=10)

    def stop(self, component: str, grace: float = 30) -> None:
        """SIGTERM the component's process group; SIGKILL whatever is left after ``grace`` seconds."""
        self._signal_and_reap(component, signal.SIGTERM, grace=grace)

    def restart(self, component: str, sig: int = signal.SIGTERM, wait_healthy: bool = True) -> None:
        """Stop the component (``sig`` to its group: SIGTERM graceful, SIGKILL crash) and start it again."""
        self._signal_and_reap(component, sig, grace=30)
        restarted_at = time.time()
        self.start(component)
        if wait_healthy:
            self.wait_healthy(self.start_timeout, only=(component,), heartbeat_after=restarted_at)

    def is_running(self, component: str) -> bool:
        proc = self._procs.get(component)
        return proc is not None and proc.poll() is None

    def pid(self, component: str) -> int:
        return self._procs[component].pid

    def _signal_and_reap(self, component: str, sig: int, grace: float) -> None:
        proc = self._procs.get(component)
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the leader's pid is the group id
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        # Stragglers (task supervisors, uvicorn workers) left in the group once the leader is gone.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        log = self._log_files.pop(component, None)
        if log is not None:
            log.write(f"\n===== {component} ended ({signal.Signals(sig).name}), exit {proc.returncode} =====\n".encode())
            log.close()

    def stop_all(self) -> None:
        """SIGTERM every group at once, then wait for each (SIGKILL after 30 s)."""
        for proc in self._procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for component in list(self._procs):
            self._signal_and_reap(component, signal.SIGTERM, grace=30)
        self._procs.clear()

    # ----------------------------------------------------------------- health and logs

    def health(self) -> dict:
        return self._http.get("/api/v2/monitor/health").json()

    def wait_healthy(
        self, timeout: float = 120, only: Iterable[str] | None = None, heartbeat_after: float | None = None
    ) -> None:
        """Wait until the api-server answers and each started component reports a healthy heartbeat
        (one newer than ``heartbeat_after``, a ``time.time()``, if given: after a restart the killed
        process's last heartbeat still looks healthy for a while)."""
        wanted = [c for c in (only or self.components) if c in _HEALTH_KEYS]
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for component, proc in self._procs.items():
                if proc.poll() is not None:
                    raise AirflowClusterError(
                        f"Airflow {component} exited with {proc.returncode} while starting; its log:\n"
                        f"{_tail(self.log_dir / f'{component}.log')}"
                    )
            try:
                last = self.health()
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
            else:
                if last.get("metadatabase", {}).get("status") == "healthy" and all(
                    _healthy(last.get(_HEALTH_KEYS[c]), heartbeat_after) for c in wanted
                ):
                    return
            time.sleep(0.5)
        raise AirflowClusterError(f"Airflow components {wanted} not healthy after {timeout:.0f}s; last health: {last}")

    def print_logs(self, lines: int = 60) -> None:
        """Print the tail of every component log (pytest shows it for a failing test)."""
        print(self.logs_tail(lines))

    def component_lines(self, component: str, needle: str, limit: int = 60) -> str:
        """The last ``limit`` lines of a component's log that mention ``needle`` or an error."""
        path = self.log_dir / f"{component}.log"
        if not path.exists():
            return f"----- {path}: no such log"
        markers = (needle, "ERROR", "Traceback", "error", "Exception")
        text = path.read_text(errors="replace").splitlines()
        hits = [line for line in text if any(m in line for m in markers)]
        return f"----- {path} (lines about {needle!r} or errors, last {limit})\n" + "\n".join(hits[-limit:])

    def wait_executor_report(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1,
                             timeout: float = 60) -> str:
        """Wait until the scheduler has drained the executor's report of that attempt's process ending
        (``Received executor event with state ... for task instance TaskInstanceKey(...)``).

        A deferring task's process ends after the deferral is recorded, and Airflow 3.3.2 fails the
        task if that report is drained only after a trigger resumed it (apache/airflow#72716). A test
        that makes a trigger fire on purpose waits for this first, so it never races the scheduler."""
        path = self.log_dir / "scheduler.log"
        needles = ("Received executor event with state", f"dag_id='{dag_id}'", f"task_id='{task_id}'",
                   f"run_id='{run_id}'", f"try_number={try_number},")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = path.read_text(errors="replace") if path.exists() else ""
            for line in text.splitlines():
                if all(needle in line for needle in needles):
                    return line
            time.sleep(0.5)
        raise AirflowClusterError(
            f"the scheduler drained no executor event for {dag_id}/{run_id}/{task_id} try {try_number} within "
            f"{timeout:.0f}s\n{self.component_lines('scheduler', task_id)}"
        )

    def logs_tail(self, lines: int = 60) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            parts.append(f"----- {path} (last {lines} lines)\n{_tail(path, lines)}")
        return "\n".join(parts)


def _healthy(info: dict | None, heartbeat_after: float | None) -> bool:
    if not info or info.get("status") != "healthy":
        return False
    if heartbeat_after is None:
        return True
    beat = next((v for k, v in info.items() if k.startswith("latest_") and v), None)
    return beat is not None and datetime.fromisoformat(beat).timestamp() > heartbeat_after
