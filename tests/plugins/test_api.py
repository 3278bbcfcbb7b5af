"""The Data Quality JSON API and pages inside Airflow's real app, with real simple-auth-manager tokens."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from airflow_dataops.store.schema import alerts, audit

from tests.plugins.conftest import auth
from tests.plugins.seeding import clear_dag_runs, demo_store


@pytest.fixture(autouse=True)
def _deployment_is_production(production):
    pass


@pytest.fixture()
def world(store, airflow_api):
    facts = demo_store(store)
    clear_dag_runs(facts["visible"] + facts["hidden"])
    return facts


def test_plugin_is_registered_with_the_ui_menu_and_destinations(airflow_api, tokens):
    response = airflow_api.get("/api/v2/plugins", headers=auth(tokens["admin"]))
    assert response.status_code == 200, response.text
    plugin = next(p for p in response.json()["plugins"] if p["name"] == "airflow_dataops")
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/dataops"]
    views = {v["destination"]: v for v in plugin["external_views"]}
    assert views["nav"]["category"] == "browse" and views["nav"]["name"] == "Data Quality"
    assert views["nav"]["href"] == "dataops/" and views["nav"]["url_route"] == "data-quality"
    assert views["dag"]["href"] == "dataops/pipelines/{DAG_ID}"
    assert views["dag_run"]["href"] == "dataops/pipelines/{DAG_ID}?run_id={RUN_ID}"
    # The Task page (dags/:dagId/tasks/:taskId) has no run: {RUN_ID} would stay literal there.
    assert views["task"]["href"] == "dataops/pipelines/{DAG_ID}?task_id={TASK_ID}"
    assert views["task_instance"]["href"] == "dataops/pipelines/{DAG_ID}?run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"
    assert len({v["url_route"] for v in plugin["external_views"]}) == len(plugin["external_views"])


@pytest.mark.parametrize(
    "path",
    ["/dataops/", "/dataops/api/pipelines", "/dataops/pipelines/orders_daily", "/dataops/api/pipelines/orders_daily/alerts",
     "/dataops/openapi.json", "/dataops/docs", "/dataops/static/dataops.js", "/dataops/pipelines/secret_pipeline"],
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
    history = airflow_api.get(f"{base}/checks/history?check=row_count", headers=headers).json()
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
    incidents = airflow_api.get(f"{base}/incidents", headers=headers).json()
    assert incidents["total"] == 3  # three (run, event, subject): the open one, the acked SLA miss, the resolved one
    first = incidents["items"][0]
    assert (first["open"], first["event"], first["escalated"]) == (True, "check_failed", True)
    assert {(m["tier"], m["channel"]) for m in first["messages"]} == {
        (0, "email"), (0, "slack:#orders-alerts"), (1, "connection:data-oncall")}
    acked = next(i for i in incidents["items"] if i["event"] == "sla_miss")
    assert acked["acknowledged_by"] == "alice" and not acked["open"]
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
    assert 'href="/dataops/pipelines/orders_daily?environment=production"' in full


def test_pipelines_airflow_does_not_know_are_never_listed(airflow_api, tokens, world):
    """secret_pipeline has results in the store, but no DAG in Airflow: the auth manager's
    authorized DAG ids do not contain it, so no list (page or API) shows it, even to an admin."""
    for user in ("admin", "viewer"):
        listed = airflow_api.get("/dataops/api/pipelines?search=secret", headers=auth(tokens[user])).json()
        assert listed == {"total": 0, "limit": 50, "offset": 0, "items": []}
        page = airflow_api.get("/dataops/", headers=auth(tokens[user])).text
        assert "secret_pipeline" not in page and "orders_daily" in page


def test_openapi_documents_the_api_and_its_paths_work_from_the_served_base(airflow_api, tokens, world):
    headers = auth(tokens["viewer"])
    schema = airflow_api.get("/dataops/openapi.json", headers=headers).json()
    paths = schema["paths"]
    assert "/api/pipelines" in paths and "/api/pipelines/{dag_id}/acknowledge" in paths
    params = {p["name"] for p in paths["/api/pipelines"]["get"]["parameters"]}
    assert {"limit", "offset", "search"} <= params
    assert schema["servers"] == [{"url": "/dataops"}]
    # A client joins servers[0].url and a path: every GET path must answer there.
    for path, item in paths.items():
        if "get" in item:
            url = schema["servers"][0]["url"] + path.replace("{dag_id}", "orders_daily")
            response = airflow_api.get(url, headers=headers, params={"check": "row_count"})
            assert response.status_code == 200, (url, response.text)
    responses = paths["/api/pipelines/{dag_id}/runs"]["get"]["responses"]
    assert {"200", "401", "403", "404", "503"} <= set(responses)


def test_the_api_reference_page_is_served_offline(airflow_api, tokens):
    page = airflow_api.get("/dataops/docs", headers=auth(tokens["viewer"]))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "/dataops/api/pipelines/{dag_id}/acknowledge" in html and "/dataops/openapi.json" in html
    assert "subject" in html  # the acknowledge body's fields
    import re

    external = re.findall(r'(?:src|href)="(https?:)?//', html)
    assert external == []  # no CDN: scripts, styles and links all come from this app


def test_hostile_names_from_the_store_are_escaped_in_the_pages(airflow_api, tokens, store):
    import datetime as dt

    from tests.plugins.seeding import register_dags, seed
    from tests.plugins.seeding import result as make_result

    evil = '<img src=x onerror="alert(1)">'
    script = "<script>alert(1)</script>"
    register_dags(["orders_daily"])
    now = dt.datetime.now(dt.timezone.utc)
    seed(
        store,
        results=[
            make_result("orders_daily", evil, evil, "failed", now, message=evil, observed={evil: 1}, failing_rows=[{evil: evil}]),
            # A check name and observed value with a script tag, charted: the value is a number-like string.
            make_result("orders_daily", evil, script, "failed", now, check_type="row_count", observed=script,
                        expected={"min": script}, message=script),
            make_result("orders_daily", "r2" + script, script, "failed", now + dt.timedelta(seconds=1),
                        check_type="row_count", observed=5, expected={"min": 10}, message=script),
        ],
        fresh=[{"pipeline": "orders_daily", "dag_id": "orders_daily", "run_id": script, "task_id": "t",
                "environment": "production", "source": "check",
                "table_name": script, "column_name": evil, "newest": now, "observed_at": now, "lag_seconds": 5.0,
                "max_age_seconds": 60.0, "fresh": True}],
    )
    for path in ("/dataops/", "/dataops/pipelines/orders_daily", f"/dataops/pipelines/orders_daily?check={script}"):
        html = airflow_api.get(path, headers=auth(tokens["viewer"])).text
        assert "<img src=x" not in html and "<script>alert" not in html, path
    assert "&lt;img src=x" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<svg") == 3  # the value chart (for the script-named check) and the freshness chart were drawn


DETAIL_PATHS = [
    "/dataops/pipelines/{d}", "/dataops/api/pipelines/{d}", "/dataops/api/pipelines/{d}/runs",
    "/dataops/api/pipelines/{d}/checks", "/dataops/api/pipelines/{d}/checks/history?check=row_count",
    "/dataops/api/pipelines/{d}/results", "/dataops/api/pipelines/{d}/freshness", "/dataops/api/pipelines/{d}/alerts",
    "/dataops/api/pipelines/{d}/incidents", "/dataops/api/pipelines/{d}/audit",
]


@pytest.mark.parametrize("dag_id", ["secret_pipeline", "no_such_dag"])
def test_detail_routes_of_dags_the_list_hides_are_404_for_everyone(airflow_api, tokens, world, store, dag_id):
    """secret_pipeline has rows in the store but Airflow does not know its DAG: the simple auth
    manager's per-DAG check would let any viewer through, so the routes check the readable set."""
    for user in ("admin", "viewer"):
        for path in DETAIL_PATHS:
            response = airflow_api.get(path.format(d=dag_id), headers=auth(tokens[user]))
            assert response.status_code == 404, (user, path, response.text)
    page = airflow_api.get(f"/dataops/pipelines/{dag_id}", headers=auth(tokens["viewer"]))
    assert page.headers["content-type"].startswith("text/html") and "may read" in page.text
    ack = airflow_api.post(f"/dataops/api/pipelines/{dag_id}/acknowledge", json={}, headers=auth(tokens["admin"]))
    assert ack.status_code == 404
    with store.connect() as conn:
        assert conn.execute(select(alerts.c.id).where(alerts.c.acknowledged_by == "admin")).all() == []


def test_a_check_name_with_a_slash_has_a_history(airflow_api, tokens, store):
    import datetime as dt

    from tests.plugins.seeding import result, seed

    at = dt.datetime.now(dt.timezone.utc)
    name = "sql/orders by day"
    seed(store, results=[result("orders_daily", f"r{i}", name, "passed", at + dt.timedelta(hours=i), check_type="sql",
                                observed=i, expected=0) for i in range(3)])
    history = airflow_api.get("/dataops/api/pipelines/orders_daily/checks/history", params={"check": name},
                              headers=auth(tokens["viewer"]))
    assert history.status_code == 200 and [h["observed"] for h in history.json()] == [0, 1, 2]
    page = airflow_api.get("/dataops/pipelines/orders_daily", params={"check": name}, headers=auth(tokens["viewer"]))
    assert page.status_code == 200 and 'id="value-chart"' in page.text


def test_a_run_without_results_is_not_reported_as_all_passed(airflow_api, tokens, world):
    page = airflow_api.get("/dataops/pipelines/orders_daily?run_id=manual__failed_before_checks", headers=auth(tokens["viewer"]))
    assert page.status_code == 200
    assert "Every check" not in page.text
    assert "No check results for this run yet" in page.text
    assert "/dags/orders_daily/runs/manual__failed_before_checks" in page.text


def test_task_tab_without_a_run_shows_that_tasks_latest_results(airflow_api, tokens, world):
    headers = auth(tokens["viewer"])
    # What the Airflow UI's Task page opens: no run id (an old bookmark may still carry the literal placeholder).
    for query in ("task_id=quality_checks", "run_id={RUN_ID}&task_id=quality_checks"):
        page = airflow_api.get(f"/dataops/pipelines/orders_daily?{query}", headers=headers).text
        assert "{RUN_ID}" not in page and "%7BRUN_ID%7D" not in page
        assert f"Run {world['latest_run']}, task quality_checks" in page
        assert 'id="failing-checks"' in page and "row_count" in page
    other = airflow_api.get("/dataops/pipelines/orders_daily?task_id=extract", headers=headers).text
    assert "No check results for task extract yet" in other and "Every check" not in other


def test_task_instance_tab_filters_by_map_index_and_links_to_the_mapped_instance(airflow_api, tokens, store):
    import datetime as dt

    from tests.plugins.seeding import result, seed

    at = dt.datetime.now(dt.timezone.utc)
    seed(store, results=[
        result("orders_daily", "r1", "row_count", "failed", at, task_id="checks", map_index=i, observed=i, expected={"min": 5})
        for i in range(3)
    ] + [result("orders_daily", "r1", "row_count", "failed", at, task_id="other", observed=1, expected={"min": 5})])
    headers = auth(tokens["viewer"])
    page = airflow_api.get("/dataops/pipelines/orders_daily?run_id=r1&task_id=checks&map_index=2", headers=headers).text
    assert "task checks[2]" in page
    assert page.count('/dags/orders_daily/runs/r1/tasks/checks/mapped/2"') == 1
    assert "/mapped/0" not in page and "/tasks/other" not in page
    # An unmapped task instance: the UI leaves {MAP_INDEX} unfilled.
    unmapped = airflow_api.get("/dataops/pipelines/orders_daily?run_id=r1&task_id=other&map_index={MAP_INDEX}", headers=headers)
    assert unmapped.status_code == 200 and '/dags/orders_daily/runs/r1/tasks/other"' in unmapped.text
    api = airflow_api.get("/dataops/api/pipelines/orders_daily/results?run_id=r1&task_id=checks&map_index=1", headers=headers).json()
    assert [(r["task_id"], r["map_index"]) for r in api["items"]] == [("checks", 1)]


def _alerts_for_ack(store, now):
    """orders_daily, run r_old: two open alerts (a failed check and a freshness timeout), then 60
    newer resolved alert rows that push them out of the newest 50 rows."""
    import datetime as dt

    from tests.plugins.seeding import _alert, seed

    rows = [
        _alert("orders_daily", "r_old", "check_failed", "row_count", 0, "slack:#a", now - dt.timedelta(days=3)),
        _alert("orders_daily", "r_old", "check_failed", "row_count", 0, "email", now - dt.timedelta(days=3)),
        _alert("orders_daily", "r_old", "freshness_timeout", "wait_for_raw", 0, "slack:#a", now - dt.timedelta(days=3)),
    ]
    rows += [
        _alert("orders_daily", f"r{i:02d}", "check_failed", "row_count", 0, "slack:#a", now - dt.timedelta(hours=i),
               resolved_at=now, resolution="later_run_succeeded")
        for i in range(60)
    ]
    seed(store, alert_rows=rows)


def test_an_old_open_alert_behind_many_resolved_ones_can_be_acknowledged(airflow_api, tokens, store):
    import datetime as dt

    _alerts_for_ack(store, dt.datetime.now(dt.timezone.utc))
    page = airflow_api.get("/dataops/pipelines/orders_daily", headers=auth(tokens["admin"])).text
    assert page.count('data-run-id="r_old"') == 2  # one button per open alert, not per channel
    assert 'data-event="freshness_timeout"' in page
    assert "Alerts page 1 of 4" in page  # 62 alerts, 20 a page, open ones first
    second = airflow_api.get("/dataops/pipelines/orders_daily?alerts_page=2", headers=auth(tokens["admin"])).text
    assert 'data-run-id="r_old"' not in second and "r20" in second


def test_acknowledging_one_alert_leaves_the_runs_other_alerts_open(airflow_api, tokens, store):
    import datetime as dt

    _alerts_for_ack(store, dt.datetime.now(dt.timezone.utc))
    response = airflow_api.post(
        "/dataops/api/pipelines/orders_daily/acknowledge",
        json={"run_id": "r_old", "event": "check_failed", "subject": "row_count"}, headers=auth(tokens["admin"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["acknowledged"] == 2 and response.json()["subject"] == "row_count"  # slack + email rows
    with store.connect() as conn:
        state = {(r.event, r.channel): r.acknowledged_by for r in conn.execute(
            select(alerts.c.event, alerts.c.channel, alerts.c.acknowledged_by).where(alerts.c.run_id == "r_old"))}
        trail = conn.execute(select(audit.c.event, audit.c.actor).where(audit.c.kind == "ack")).all()
    assert state == {("check_failed", "slack:#a"): "admin", ("check_failed", "email"): "admin",
                     ("freshness_timeout", "slack:#a"): None}
    assert trail == [("check_failed", "admin")]
    body = airflow_api.get("/dataops/api/pipelines/orders_daily", headers=auth(tokens["admin"])).json()
    assert body["open_alerts"] == 1


def test_a_cross_site_post_cannot_acknowledge(airflow_api, tokens, world, store):
    """What a hostile page can send with the victim's login cookie: a form or text/plain POST
    (no preflight), or a JSON fetch the browser marks cross-site. None may acknowledge."""
    url = "/dataops/api/pipelines/orders_daily/acknowledge"
    airflow_api.cookies.set("_token", tokens["admin"])
    try:
        as_text = airflow_api.post(url, content='{"run_id": null}', headers={"Content-Type": "text/plain"})
        as_form = airflow_api.post(url, data={"run_id": ""})
        no_type = airflow_api.post(url, content=b'{"run_id": null}')
        cross_site = airflow_api.post(url, json={"run_id": None}, headers={"Sec-Fetch-Site": "cross-site"})
        same_site = airflow_api.post(url, json={"run_id": None}, headers={"Sec-Fetch-Site": "same-site"})
    finally:
        airflow_api.cookies.clear()
    assert (as_text.status_code, as_form.status_code, no_type.status_code) == (422, 422, 422)
    assert (cross_site.status_code, same_site.status_code) == (403, 403)
    with store.connect() as conn:
        assert conn.execute(select(alerts.c.id).where(alerts.c.acknowledged_by == "admin")).all() == []
        assert conn.execute(select(audit.c.id).where(audit.c.actor == "admin")).all() == []
    # The page's own fetch (same origin, JSON) with the same cookie works.
    airflow_api.cookies.set("_token", tokens["admin"])
    try:
        ok = airflow_api.post(url, json={"run_id": world["latest_run"]}, headers={"Sec-Fetch-Site": "same-origin"})
    finally:
        airflow_api.cookies.clear()
    assert ok.status_code == 200 and ok.json()["by"] == "admin"


def test_pages_carry_a_csp_that_only_lets_airflow_frame_them(airflow_api, tokens, world):
    for path in ("/dataops/", "/dataops/pipelines/orders_daily", "/dataops/docs", "/dataops/api/pipelines"):
        csp = airflow_api.get(path, headers=auth(tokens["viewer"])).headers["content-security-policy"]
        assert "frame-ancestors 'self'" in csp and "script-src 'self'" in csp and "default-src 'self'" in csp
    html = airflow_api.get("/dataops/pipelines/orders_daily", headers=auth(tokens["viewer"])).text
    assert " style=" not in html and "<style" not in html and "<script>" not in html  # nothing the CSP would block


def test_bad_parameters_on_pages_answer_html_and_on_the_api_json(airflow_api, tokens, world):
    headers = auth(tokens["viewer"])
    page = airflow_api.get("/dataops/?page=0", headers=headers)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html") and "page" in page.text
    api = airflow_api.get("/dataops/api/pipelines?limit=0", headers=headers)
    assert api.status_code == 422 and api.headers["content-type"].startswith("application/json")
    missing = airflow_api.get("/dataops/no/such/page", headers=headers)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


def test_a_page_past_the_end_says_so(airflow_api, tokens, world):
    page = airflow_api.get("/dataops/?page=99", headers=auth(tokens["viewer"])).text
    assert "Page 99 is out of range" in page and "No results yet" not in page
    assert 'href="/dataops/?page=1"' in page


def test_on_time_rate_uses_airflows_own_runs(airflow_api, tokens, store):
    """A run that failed before any check ran has nothing in the store; Airflow's dag_run table
    knows it. A successful run without checks counts as on time; a running one not yet."""
    import datetime as dt

    from tests.plugins.seeding import _alert, add_dag_runs, register_dags, result, seed

    now = dt.datetime.now(dt.timezone.utc)
    register_dags(["ontime_pipeline"])
    add_dag_runs([
        ("ontime_pipeline", "ok_checked", "success", now - dt.timedelta(days=3)),
        ("ontime_pipeline", "ok_unchecked", "success", now - dt.timedelta(days=2)),
        ("ontime_pipeline", "failed_early", "failed", now - dt.timedelta(days=2)),
        ("ontime_pipeline", "late", "success", now - dt.timedelta(days=1)),
        ("ontime_pipeline", "running", "running", now),
        ("ontime_pipeline", "too_old", "failed", now - dt.timedelta(days=40)),
    ])
    seed(store, results=[result("ontime_pipeline", r, "row_count", "passed", now - dt.timedelta(days=d))
                         for r, d in (("ok_checked", 3), ("late", 1), ("running", 0))],
         alert_rows=[_alert("ontime_pipeline", "late", "sla_miss", "sla", 0, "none", now - dt.timedelta(hours=20))])
    body = airflow_api.get("/dataops/api/pipelines/ontime_pipeline", headers=auth(tokens["viewer"])).json()
    assert (body["on_time_runs"], body["runs_30d"]) == (2, 4)  # ok_checked, ok_unchecked / + failed_early, late
    listed = airflow_api.get("/dataops/api/pipelines?search=ontime", headers=auth(tokens["viewer"])).json()
    assert listed["items"][0]["on_time_rate"] == 0.5


def test_a_freshness_only_pipeline_shows_its_last_run_and_a_future_timestamp_is_flagged(airflow_api, tokens, store):
    import datetime as dt

    from tests.plugins.seeding import seed

    now = dt.datetime.now(dt.timezone.utc)
    seed(store, fresh=[{
        "pipeline": "new_pipeline", "dag_id": "new_pipeline", "run_id": "sensor_run", "task_id": "wait",
        "environment": "production", "source": "sensor",
        "table_name": "raw.t", "column_name": "loaded_at", "newest": now + dt.timedelta(hours=2), "observed_at": now,
        "lag_seconds": -7200.0, "max_age_seconds": 3600.0, "fresh": True,
    }])
    html = airflow_api.get("/dataops/", headers=auth(tokens["viewer"])).text
    assert "freshness only, no check results" in html and "/dags/new_pipeline/runs/sensor_run" in html
    assert "trigger a run" not in html
    assert "in the future" in html  # not shown as a positive lag
