"""The Data Quality JSON API and pages inside Airflow's real app, with real simple-auth-manager tokens."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from airflow_dataops.store.schema import alerts, audit

from tests.plugins.conftest import auth
from tests.plugins.seeding import demo_store


@pytest.fixture()
def world(store):
    return demo_store(store)


def test_plugin_is_registered_with_the_ui_menu_and_destinations(airflow_api, tokens):
    response = airflow_api.get("/api/v2/plugins", headers=auth(tokens["admin"]))
    assert response.status_code == 200, response.text
    plugin = next(p for p in response.json()["plugins"] if p["name"] == "airflow_dataops")
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/dataops"]
    views = {v["destination"]: v for v in plugin["external_views"]}
    assert views["nav"]["category"] == "browse" and views["nav"]["name"] == "Data Quality"
    assert views["nav"]["href"] == "dataops/" and views["nav"]["url_route"] == "data-quality"
    assert views["dag"]["href"] == "dataops/pipelines/{DAG_ID}"
    assert "{RUN_ID}" in views["dag_run"]["href"] and "{TASK_ID}" in views["task"]["href"]


@pytest.mark.parametrize(
    "path",
    ["/dataops/", "/dataops/api/pipelines", "/dataops/pipelines/orders_daily", "/dataops/api/pipelines/orders_daily/alerts",
     "/dataops/openapi.json", "/dataops/static/dataops.js"],
)
def test_anonymous_gets_401_and_a_bad_token_403(airflow_api, world, path):
    assert airflow_api.get(path).status_code == 401
    assert airflow_api.get(path, headers=auth("not-a-jwt")).status_code == 403
    forged = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"
    assert airflow_api.get(path, headers=auth(forged)).status_code == 403


def test_pages_explain_auth_errors_in_html_and_the_api_answers_json(airflow_api, world):
    page = airflow_api.get("/dataops/pipelines/orders_daily")
    assert page.status_code == 401 and "sign in to Airflow" in page.text
    assert page.headers["content-type"].startswith("text/html")
    api = airflow_api.get("/dataops/api/pipelines")
    assert api.status_code == 401 and api.json() == {"detail": "Not authenticated"}


def test_ack_without_a_user_is_401_and_changes_nothing(airflow_api, world, store):
    response = airflow_api.post("/dataops/api/pipelines/orders_daily/acknowledge", json={"run_id": None})
    assert response.status_code == 401
    with store.connect() as conn:
        assert conn.execute(select(alerts.c.id).where(alerts.c.acknowledged_by.is_not(None))).all() == [(4,)]


def test_overview_lists_only_dags_the_user_may_read_with_summaries(airflow_api, tokens, world):
    for user in ("admin", "viewer"):
        response = airflow_api.get("/dataops/api/pipelines", headers=auth(tokens[user]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert [p["dag_id"] for p in body["items"]] == world["visible"]  # secret_pipeline: unknown to Airflow
        assert body["total"] == 3
    orders = body["items"][2]
    assert orders["environment"] == "production"
    assert orders["last_run_id"] == world["latest_run"]
    assert orders["counts"] == {"passed": 1, "warned": 1, "failed": 1, "error": 0}
    assert orders["health"] == "failing"
    assert orders["open_alerts"] == 1 and orders["open_escalations"] == 1  # slack+email+escalation = one alert
    assert (orders["on_time_runs"], orders["runs_30d"]) == world["orders_on_time"]
    assert orders["on_time_rate"] == 0.8
    assert orders["freshness"]["max_age_seconds"] == 6 * 3600
    assert orders["freshness"]["current_lag_seconds"] >= 30 * 3600  # newest row is 30 h old
    customers = body["items"][0]
    assert customers["health"] == "healthy" and customers["environment"] == "staging"
    assert customers["on_time_rate"] == 1.0
    assert body["items"][1]["health"] == "warning"


def test_overview_paginates_and_searches(airflow_api, tokens, world):
    headers = auth(tokens["viewer"])
    first = airflow_api.get("/dataops/api/pipelines?limit=2", headers=headers).json()
    second = airflow_api.get("/dataops/api/pipelines?limit=2&offset=2", headers=headers).json()
    assert [p["dag_id"] for p in first["items"] + second["items"]] == world["visible"]
    assert first["total"] == second["total"] == 3
    found = airflow_api.get("/dataops/api/pipelines?search=ORDERS", headers=headers).json()
    assert [p["dag_id"] for p in found["items"]] == ["orders_daily"]
    assert airflow_api.get("/dataops/api/pipelines?limit=0", headers=headers).status_code == 422


def test_pipeline_endpoints_answer_for_a_reader(airflow_api, tokens, world):
    headers = auth(tokens["viewer"])
    base = "/dataops/api/pipelines/orders_daily"
    runs = airflow_api.get(f"{base}/runs?limit=3", headers=headers).json()
    assert runs["total"] == 10 and len(runs["items"]) == 3
    assert runs["items"][0]["run_id"] == world["latest_run"]
    assert runs["items"][0]["counts"] == {"passed": 1, "warned": 1, "failed": 1, "error": 0}
    checks = {c["check_name"]: c["status"] for c in airflow_api.get(f"{base}/checks", headers=headers).json()}
    assert checks == {"row_count": "failed", "null_check__customer_id": "passed", "accepted_values__status": "warned"}
    history = airflow_api.get(f"{base}/checks/row_count/history", headers=headers).json()
    assert [h["observed"] for h in history][-2:] == [1296, 120]  # oldest first, newest last
    assert history[-1]["expected"] == {"min": 1000}
    results = airflow_api.get(f"{base}/results?status=failed&status=warned", headers=headers).json()
    assert [r["check_name"] for r in results["items"]] == ["row_count", "accepted_values__status"]
    assert results["items"][1]["failing_rows"] == [{"id": 17, "status": "lost"}, {"id": 23, "status": "??"}]
    fresh = airflow_api.get(f"{base}/freshness?limit=2", headers=headers).json()
    assert fresh["total"] == 10 and fresh["items"][0]["fresh"] is False
    open_alerts = airflow_api.get(f"{base}/alerts?open_only=true", headers=headers).json()
    assert {(a["event"], a["tier"], a["channel"]) for a in open_alerts["items"]} == {
        ("check_failed", 0, "slack:#orders-alerts"), ("check_failed", 0, "email")}
    trail = airflow_api.get(f"{base}/audit", headers=headers).json()
    assert [e["kind"] for e in trail["items"]] == ["escalation", "alert", "ack"]


def test_unknown_pipeline_is_empty_not_an_error(airflow_api, tokens, world):
    body = airflow_api.get("/dataops/api/pipelines/new_pipeline", headers=auth(tokens["viewer"])).json()
    assert body["health"] == "no_results" and body["last_run_id"] is None
    page = airflow_api.get("/dataops/pipelines/new_pipeline", headers=auth(tokens["viewer"]))
    assert page.status_code == 200 and "No results yet: trigger a run" in page.text


def test_viewer_cannot_acknowledge(airflow_api, tokens, world, store):
    response = airflow_api.post(
        "/dataops/api/pipelines/orders_daily/acknowledge", json={"run_id": world["latest_run"]},
        headers=auth(tokens["viewer"]),
    )
    assert response.status_code == 403
    with store.connect() as conn:
        acked = conn.execute(select(alerts.c.run_id).where(alerts.c.acknowledged_at.is_not(None))).all()
    assert world["latest_run"] not in {r for (r,) in acked}


def test_admin_acknowledges_and_the_user_is_recorded(airflow_api, tokens, world, store):
    pytest.importorskip("airflow_dataops.store.alerts", reason="store.alerts.acknowledge ships with the alerting work")
    response = airflow_api.post(
        "/dataops/api/pipelines/orders_daily/acknowledge", json={"run_id": world["latest_run"]},
        headers=auth(tokens["admin"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["by"] == "admin" and response.json()["acknowledged"] >= 1
    with store.connect() as conn:
        by = conn.execute(
            select(alerts.c.acknowledged_by).where(alerts.c.run_id == world["latest_run"], alerts.c.tier == 0)
        ).scalars().all()
        kinds = conn.execute(select(audit.c.kind, audit.c.actor).where(audit.c.kind == "ack")).all()
    assert set(by) == {"admin"}
    assert ("ack", "admin") in kinds
    body = airflow_api.get("/dataops/api/pipelines/orders_daily", headers=auth(tokens["admin"])).json()
    assert body["open_alerts"] == 0


def test_pipeline_page_renders_charts_and_links_back_to_airflow(airflow_api, tokens, world):
    page = airflow_api.get("/dataops/pipelines/orders_daily", headers=auth(tokens["viewer"]))
    assert page.status_code == 200
    html = page.text
    assert html.count("<svg") == 3  # runs, observed value, freshness
    assert 'class="bar-failed"' in html and "min 1000" in html
    assert 'href="/dags/orders_daily"' in html and 'target="_top"' in html
    assert "/dags/orders_daily/runs/scheduled__" in html
    assert "lost" in html  # failing-row sample
    assert "disabled" in html  # a viewer sees the Acknowledge button, disabled
    admin = airflow_api.get("/dataops/pipelines/orders_daily", headers=auth(tokens["admin"])).text
    assert 'title="You need edit permission' not in admin


def test_overview_page_and_empty_state(airflow_api, tokens, store):
    empty = airflow_api.get("/dataops/", headers=auth(tokens["viewer"]))
    assert empty.status_code == 200 and "No results yet: trigger a run" in empty.text
    demo_store(store)
    full = airflow_api.get("/dataops/", headers=auth(tokens["viewer"])).text
    assert "orders_daily" in full and "customers_hourly" in full and "secret_pipeline" not in full
    assert 'href="/dataops/pipelines/orders_daily"' in full


def test_pipelines_airflow_does_not_know_are_never_listed(airflow_api, tokens, world):
    """secret_pipeline has results in the store, but no DAG in Airflow: the auth manager's
    authorized DAG ids do not contain it, so no list (page or API) shows it, even to an admin."""
    for user in ("admin", "viewer"):
        listed = airflow_api.get("/dataops/api/pipelines?search=secret", headers=auth(tokens[user])).json()
        assert listed == {"total": 0, "limit": 50, "offset": 0, "items": []}
        page = airflow_api.get("/dataops/", headers=auth(tokens[user])).text
        assert "secret_pipeline" not in page and "orders_daily" in page


def test_openapi_documents_the_api(airflow_api, tokens):
    schema = airflow_api.get("/dataops/openapi.json", headers=auth(tokens["viewer"])).json()
    paths = schema["paths"]
    assert "/api/pipelines" in paths and "/api/pipelines/{dag_id}/acknowledge" in paths
    params = {p["name"] for p in paths["/api/pipelines"]["get"]["parameters"]}
    assert {"limit", "offset", "search"} <= params


def test_hostile_names_from_the_store_are_escaped_in_the_pages(airflow_api, tokens, store):
    import datetime as dt

    from tests.plugins.seeding import register_dags, seed
    from tests.plugins.seeding import result as make_result

    evil = '<img src=x onerror="alert(1)">'
    register_dags(["orders_daily"])
    seed(store, results=[make_result("orders_daily", evil, evil, "failed", dt.datetime.now(dt.timezone.utc),
                                     message=evil, observed={evil: 1}, failing_rows=[{evil: evil}])])
    for path in ("/dataops/", "/dataops/pipelines/orders_daily"):
        html = airflow_api.get(path, headers=auth(tokens["viewer"])).text
        assert "<img src=x" not in html
    assert "&lt;img src=x" in html
