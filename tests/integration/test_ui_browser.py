"""The Data Quality page in a real browser (Debian chromium via Playwright) on a real api-server.

Log in through the simple auth manager's form, open Browse > Data Quality in the Airflow UI, see
the seeded pipelines, open one, see its charts, acknowledge an alert and see it recorded (page and
store). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("DATAOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture()
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (never `playwright install`)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def cluster(tmp_path):
    from tests.plugins.conftest import SHIM, plugin_installed
    from tests.support.airflow_processes import AirflowCluster

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    if not plugin_installed():
        (plugins / "dataops_plugin_shim.py").write_text(SHIM)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "pipelines.py").write_text(DAG_FILE)
    env = {"AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins)}
    with AirflowCluster(tmp_path, dags, components=("api-server", "dag-processor"), extra_env=env) as af:
        for dag_id in PIPELINES:
            af.wait_dag(dag_id)
        yield af


PIPELINES = ["orders_daily", "customers_hourly", "inventory_sync"]
# Real DAGs (parsed by a real dag-processor) so the Airflow UI's DAG pages exist and link to ours.
DAG_FILE = f"""
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

for dag_id in {PIPELINES!r}:
    with DAG(dag_id, schedule=None) as dag:
        EmptyOperator(task_id="quality_checks")
    globals()[dag_id] = dag
"""


def test_browse_data_quality_open_pipeline_and_acknowledge(cluster, browser):
    from airflow_dataops.store.base import sqlite_engine
    from airflow_dataops.store.schema import alerts, audit

    from tests.plugins.seeding import demo_store

    # The api-server has no results_conn_id connection: the page reads the embedded SQLite store.
    store = sqlite_engine(cluster.home / "dataops_results.db")
    world = demo_store(store)
    ARTIFACTS.mkdir(exist_ok=True)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(cluster.base_url + "/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(cluster.password("admin"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/" not in url)

    # Browse > Data Quality, from the Airflow UI's own navigation.
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Data Quality").click()
    page.wait_for_url("**/plugin/data-quality")
    frame = page.frame_locator("iframe")
    table = frame.locator("#pipelines")
    table.wait_for()
    for dag_id in world["visible"]:
        assert table.locator(f'tr[data-dag-id="{dag_id}"]').count() == 1
    assert frame.locator("text=secret_pipeline").count() == 0
    assert "embedded SQLite" in frame.locator("footer").inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-overview.png"), full_page=True)

    frame.locator('a.pipeline-link:has-text("orders_daily")').click()
    frame.locator("#run-chart svg").wait_for()
    assert frame.locator("#run-chart rect.bar-failed").count() >= 1
    assert frame.locator("#value-chart svg polyline").count() == 1
    assert frame.locator("#fresh-chart svg").count() == 1
    assert "row_count" in frame.locator("#failing-checks").inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-pipeline.png"), full_page=True)

    row = frame.locator("#alert-table tr.open").first
    row.get_by_role("button", name="Acknowledge").click()
    frame.locator("#alert-table td.acked:has-text('by admin')").first.wait_for()
    assert frame.locator("#alert-table tr.open").count() == 0
    assert "admin" in frame.locator("#audit-table tr.kind-ack").first.inner_text()
    frame.locator("#audit").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "ui-acknowledged.png"), full_page=True)

    with store.connect() as conn:
        acked_by = conn.execute(
            select(alerts.c.acknowledged_by).where(alerts.c.run_id == world["latest_run"], alerts.c.tier == 0)
        ).scalars().all()
        actors = conn.execute(select(audit.c.actor).where(audit.c.kind == "ack", audit.c.run_id == world["latest_run"])).scalars().all()
    assert set(acked_by) == {"admin"} and actors == ["admin"]
    store.dispose()

    # From the DAG's own page in the Airflow UI, the "Data Quality" tab opens this pipeline's view.
    page.goto(f"{cluster.base_url}/dags/orders_daily")
    page.get_by_role("link", name="Data Quality").click()
    page.wait_for_url("**/dags/orders_daily/plugin/data-quality-dag")
    heading = page.frame_locator("iframe").locator("h1")
    heading.wait_for()
    assert "orders_daily" in heading.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-dag-tab.png"), full_page=True)
