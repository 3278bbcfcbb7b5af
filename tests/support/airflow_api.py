"""REST API v2 helpers of ``AirflowCluster`` (see ``airflow_processes``): token, requests, runs, logs."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowClusterError(RuntimeError):
    """The cluster did not start, a component died, or the API answered unexpectedly."""


class AirflowApiMixin:
    """Needs ``_http`` (an httpx.Client on the api-server), ``passwords``, ``_tokens`` ``logs_tail()`` and ``component_lines()``."""

    _http: httpx.Client
    passwords: dict[str, str]
    _tokens: dict[str, str]

    def logs_tail(self, lines: int = 60) -> str:  # pragma: no cover - provided by AirflowCluster
        raise NotImplementedError

    def component_lines(self, component: str, needle: str, limit: int = 60) -> str:  # pragma: no cover
        raise NotImplementedError

    def password(self, user: str = "admin") -> str:
        return self.passwords[user]

    def token(self, user: str = "admin") -> str:
        """A JWT for ``user`` from the simple auth manager's ``POST /auth/token`` (cached)."""
        if user not in self._tokens:
            resp = self._http.post("/auth/token", json={"username": user, "password": self.passwords[user]})
            if resp.status_code != 201:
                raise AirflowClusterError(f"POST /auth/token for {user!r} answered {resp.status_code}: {resp.text}")
            self._tokens[user] = resp.json()["access_token"]
        return self._tokens[user]

    def api(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        user: str | None = "admin",
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request to the api-server; ``path`` like ``/api/v2/dags``; ``user=None`` sends no token."""
        all_headers = dict(headers or {})
        if user is not None:
            all_headers["Authorization"] = f"Bearer {self.token(user)}"
        return self._http.request(method, path, json=json, params=params, headers=all_headers)

    def _ok(self, resp: httpx.Response, what: str) -> Any:
        if resp.status_code >= 400:
            raise AirflowClusterError(f"{what}: {resp.request.method} {resp.request.url} answered {resp.status_code}: {resp.text[:2000]}")
        return resp.json() if resp.content else None

    def wait_dag(self, dag_id: str, timeout: float = 90) -> dict:
        """Wait until the dag-processor has parsed ``dag_id``; returns the DAG record. On timeout the
        error lists the import errors and the component logs."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.api("GET", f"/api/v2/dags/{dag_id}")
            if resp.status_code == 200:
                return resp.json()
            if time.monotonic() > deadline:
                errors = self.import_errors()
                raise AirflowClusterError(
                    f"DAG {dag_id!r} not parsed after {timeout:.0f}s; import errors: {errors}\n{self.logs_tail(30)}"
                )
            time.sleep(1)

    def import_errors(self) -> list[dict]:
        return self._ok(self.api("GET", "/api/v2/importErrors"), "list import errors")["import_errors"]

    def unpause(self, dag_id: str, timeout: float = 90) -> None:
        """Unpause ``dag_id``, first waiting until it has been parsed."""
        self.wait_dag(dag_id, timeout)
        self._ok(self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}), f"unpause {dag_id}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Create a manual run now (``logical_date`` null); returns its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return self._ok(self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body), f"trigger {dag_id}")["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self._ok(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"), "get run")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        resp = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return self._ok(resp, "list task instances")["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}`` (mapped tasks as ``task_id[i]``)."""
        out = {}
        for ti in self.task_instances(dag_id, run_id):
            key = ti["task_id"] if ti.get("map_index", -1) == -1 else f"{ti['task_id']}[{ti['map_index']}]"
            out[key] = ti["state"]
        return out

    def wait_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], timeout: float = 120
    ) -> str:
        """Poll until ``task_id`` is in one of ``states`` (e.g. ``{"deferred"}``); returns the state."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.task_states(dag_id, run_id).get(task_id)
            if state in wanted:
                return state
            time.sleep(0.5)
        raise AirflowClusterError(
            f"task {dag_id}/{run_id}/{task_id} is {state!r}, not one of {sorted(wanted)}, after {timeout:.0f}s\n"
            f"{self.logs_tail(40)}"
        )

    def wait_task_log(
        self, dag_id: str, run_id: str, task_id: str, text: str, timeout: float = 120, try_number: int = 1
    ) -> str:
        """Poll the task's log (task and trigger parts) until it contains ``text``; returns the log."""
        deadline = time.monotonic() + timeout
        log = ""
        while time.monotonic() < deadline:
            resp = self._log_response(dag_id, run_id, task_id, try_number, -1)
            if resp.status_code == 200:
                log = "\n".join(_log_line(entry) for entry in resp.json()["content"])
                if text in log:
                    return log
            time.sleep(1)
        raise AirflowClusterError(f"{text!r} not in the log of {dag_id}/{run_id}/{task_id} after {timeout:.0f}s:\n{log[-3000:]}")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        """Poll until the run is success/failed; returns that state. Raises with task states and
        component log tails on timeout."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_RUN_STATES:
                return state
            time.sleep(1)
        raise AirflowClusterError(
            f"run {dag_id}/{run_id} still {state!r} after {timeout:.0f}s; tasks: {self.task_states(dag_id, run_id)}\n"
            f"{self.logs_tail(40)}"
        )

    def describe_run(self, dag_id: str, run_id: str) -> str:
        """Task states plus the log of every task that did not succeed: a useful assertion message."""
        states = self.task_states(dag_id, run_id)
        parts = [f"run {dag_id}/{run_id}: {states}"]
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] != "success" and ti.get("try_number"):
                log = self.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti.get("map_index", -1))
                parts.append(f"--- log of {ti['task_id']} try {ti['try_number']}\n{log[-4000:]}")
        if any(state not in ("success", "skipped") for state in states.values()):
            # A task that dies without logging (killed, executor failure) shows only here.
            parts.append(self.component_lines("scheduler", dag_id, limit=60))
        return "\n".join(parts)

    def state_mismatches(self, dag_id: str, run_id: str) -> list[dict]:
        """Airflow's own "state mismatch" audit events for the run: the scheduler failed a task because
        its executor reported an attempt finished while the task said it was queued or running.

        Airflow 3.3.2 does this to a deferrable task resumed soon after it deferred, when the stale
        "success" of the deferring attempt is drained late (apache/airflow#72716, #71580): a scheduler
        race no task code can prevent, told apart from our own failures by this event."""
        data = self._ok(
            self.api("GET", "/api/v2/eventLogs", params={"dag_id": dag_id, "run_id": run_id, "event": "state mismatch"}),
            f"event log of {dag_id}/{run_id}",
        )
        return data["event_logs"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The task's log as text, one line per record (``level event key=value...``)."""
        content = self._ok(self._log_response(dag_id, run_id, task_id, try_number, map_index), f"log of {task_id}")["content"]
        return "\n".join(_log_line(entry) for entry in content)

    def _log_response(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int) -> httpx.Response:
        # The JSON form: the plain-text default of this endpoint is a streamed, harder-to-read format.
        return self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
            headers={"Accept": "application/json"},
        )


def _log_line(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    rest = {k: v for k, v in entry.items() if k not in ("event", "timestamp", "level", "logger")}
    extras = " ".join(f"{k}={v}" for k, v in rest.items())
    level = entry.get("level") or ""
    return " ".join(part for part in (str(entry.get("timestamp") or ""), level, str(entry.get("event", "")), extras) if part)
