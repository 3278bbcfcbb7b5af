"""AssetFreshnessSensor with dag.test(): asset events are read through the Task SDK from the worker."""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc

DAG_TEMPLATE = """
import datetime as dt
from airflow.sdk import DAG, Asset, task
from airflow_dataops.sensors.asset_freshness import AssetFreshnessSensor

EVENTS = Asset("dataops://warehouse/{dag_id}")

with DAG({dag_id!r}, schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False):

    @task(outlets=[EVENTS])
    def produce():
        return 1

    wait = AssetFreshnessSensor(task_id="wait_for_asset", asset={asset}, max_age="1 hour",
                                poke_interval=0.5, timeout=1.5, {extra})

    @task
    def after():
        return "ran"

    {wiring}
    wait >> after()
"""


def states(dr):
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def test_succeeds_when_the_asset_has_a_recent_event(load_dag, dag_id, freshness_rows):
    dag = load_dag(dag_id, DAG_TEMPLATE.format(dag_id=dag_id, asset="EVENTS", extra="", wiring="produce() >> wait"))
    dr = dag.test()
    assert states(dr) == {"produce": "success", "wait_for_asset": "success", "after": "success"}
    ti = next(t for t in dr.get_task_instances() if t.task_id == "wait_for_asset")
    result = ti.xcom_pull(task_ids="wait_for_asset")
    assert result["asset"] == f"dataops://warehouse/{dag_id}" and result["lag_s"] < 600
    [row] = freshness_rows(dag_id)
    assert row["table_name"] == f"asset:dataops://warehouse/{dag_id}" and row["fresh"] is True


def test_an_asset_without_events_skips_on_timeout(load_dag, dag_id, capfd):
    dag = load_dag(dag_id, DAG_TEMPLATE.format(
        dag_id=dag_id, asset="'dataops://warehouse/never-produced'", extra="on_timeout='skip',", wiring="produce()"))
    dr = dag.test()
    assert states(dr)["wait_for_asset"] == "skipped" and states(dr)["after"] == "skipped"
    assert "asset dataops://warehouse/never-produced has no events" in capfd.readouterr().out


def test_a_stale_event_fails_with_its_timestamp(load_dag, dag_id, capfd):
    """Only an event three hours old exists: the sensor fails and says how late it is."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    uri = f"dataops://warehouse/{dag_id}"
    dag = load_dag(dag_id, DAG_TEMPLATE.format(dag_id=dag_id, asset="EVENTS", extra="", wiring="produce()"))
    old = dt.datetime.now(UTC) - dt.timedelta(hours=3)
    # dag.test() syncs the DAG (and its asset) first: run it once with the sensor's upstream
    # skipped is not possible, so register the asset ourselves the way the dag-processor would.
    from tests.support.compat import dagbag, sync_bag_to_db

    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()  # the dag table refers to the bundle (dag.test() does this too)
    bag = dagbag(str(dag.fileloc), bundle_name="dags-folder")
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        asset = session.query(AssetModel).filter(AssetModel.uri == uri).one()
        session.add(AssetEvent(asset_id=asset.id, timestamp=old))
    dr = dag.test(mark_success_pattern="produce")  # the producer does not emit a fresh event
    assert states(dr)["wait_for_asset"] == "failed"
    text = capfd.readouterr().out
    assert f"newest event {old.isoformat()[:19]}" in text and "is 3h 0m" in text and ", 2h 0m" in text
