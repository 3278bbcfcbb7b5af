"""Fixtures for alerting and notifier tests: a fake Slack, a real SMTP server, Airflow connections
pointing at them (environment variables), and a fresh results store per test."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.smtp_server import SmtpServer


@pytest.fixture()
def slack():
    with FakeSlack() as server:
        yield server


@pytest.fixture()
def smtp():
    with SmtpServer() as server:
        yield server


def _conn_env(monkeypatch, conn_id: str, conn: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.fixture()
def connections(monkeypatch, slack, smtp):
    """Slack API (default id), Slack webhook, SMTP (default id, extra `to`) and HTTP connections."""
    _conn_env(monkeypatch, "slack_api_default", {"conn_type": "slack", "password": slack.token,
                                                 "extra": {"base_url": slack.api_url, "timeout": 2}})
    _conn_env(monkeypatch, "oncall_slack", {"conn_type": "slack", "password": slack.token,
                                            "extra": {"base_url": slack.api_url, "channel": "#oncall", "timeout": 2}})
    _conn_env(monkeypatch, "oncall_webhook", {"conn_type": "slackwebhook", "password": slack.webhook_url,
                                              "extra": {"timeout": 2}})
    _conn_env(monkeypatch, "smtp_default", {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
                                            "extra": {"disable_ssl": True, "disable_tls": True,
                                                      "from_email": "dataops@example.com"}})
    _conn_env(monkeypatch, "oncall_email", {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
                                            "extra": {"disable_ssl": True, "disable_tls": True,
                                                      "to": ["oncall@example.com"]}})
    _conn_env(monkeypatch, "oncall_http", {"conn_type": "http", "host": "127.0.0.1", "port": slack.port,
                                           "schema": "http", "extra": {"endpoint": "/hook/oncall"}})
    return {"slack": slack, "smtp": smtp}


@pytest.fixture()
def store(tmp_path):
    from airflow_dataops.store.base import ensure_schema, sqlite_engine

    engine = sqlite_engine(tmp_path / "results.db")
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def ctx():
    name = f"orders_{uuid.uuid4().hex[:8]}"
    return {"pipeline": name, "dag_id": name, "environment": "production", "owner": "data-team",
            "notifications": True, "ui_base_url": "http://airflow.example.com"}


@pytest.fixture()
def default_store(tmp_path, monkeypatch):
    """The results store the code finds by itself (``[dataops] results_conn_id``), fresh per test."""
    from airflow_dataops.store.alerts import store_engine

    conn_id = f"results_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW__DATAOPS__RESULTS_CONN_ID", conn_id)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", f"sqlite:///{tmp_path / 'default-results.db'}")
    return store_engine()


def alerts_section(*channels, on=None, escalation=None, repeat=None):
    return {"channels": list(channels), "on": on, "escalation": escalation, "repeat": repeat}
