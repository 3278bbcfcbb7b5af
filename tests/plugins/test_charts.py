"""Server-rendered SVG charts: points and limit lines, NaN, one freshness series per table, escaping."""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from airflow_dataops.plugins import charts, thresholds

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
NS = "{http://www.w3.org/2000/svg}"


def _point(i, observed, expected, status="passed", run_id=None, check_type="row_count", message=""):
    return {"run_id": run_id or f"run_{i}", "observed": observed, "expected": expected, "status": status,
            "checked_at": T0 + dt.timedelta(hours=i), "check_type": check_type, "message": message}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "NaN", "inf", "-Infinity", float(Decimal("NaN"))])
def test_nan_and_infinity_are_not_plotted(bad):
    assert charts.numeric(bad) is None and thresholds.number(bad) is None
    assert charts.numeric({"a": bad, "b": 3}) == 3.0
    history = [_point(0, 5, {"min": 1}), _point(1, bad, {"min": bad}), _point(2, 7, {"min": 1})]
    svg = charts.value_line(history)
    root = ET.fromstring(svg)
    assert len(root.findall(f"{NS}circle")) == 2  # the NaN run is left out, not a 500
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    assert charts.value_line([_point(0, bad, {})]) == ""
    fresh = [{"table_name": "t", "column_name": "c", "lag_seconds": bad, "max_age_seconds": bad, "fresh": True, "observed_at": T0}]
    assert charts.freshness_line(fresh) == ""


def test_numbers_come_from_plain_values_and_per_column_dicts():
    assert charts.numeric(120) == 120.0
    assert charts.numeric({"email": 3, "customer_id": 7}) == 7.0  # the worst column
    assert charts.numeric("97.5%") == 97.5
    assert charts.numeric(["a"]) is None and charts.numeric("n/a") is None


def test_value_chart_draws_the_series_thresholds_and_a_point_per_run():
    svg = charts.value_line([_point(i, 1000 + i, {"min": 1000}) for i in range(5)] + [_point(5, 120, {"min": 1000}, "failed")])
    root = ET.fromstring(svg)  # well-formed XML
    assert len(root.findall(f"{NS}circle")) == 6
    assert len(root.findall(f"{NS}polyline")) == 1
    assert any("min 1000" in (t.text or "") for t in root.iter(f"{NS}text"))
    assert charts.COLORS["failed"] in svg
    assert charts.latest_limits([_point(0, 1, {"min": 1000})]) == {"min": 1000}


def test_limits_that_change_between_runs_are_drawn_as_steps():
    band = [_point(i, 1000, {"max_change_pct": 20, "mean": 900 + 50 * i}, check_type="volume_anomaly") for i in range(3)]
    root = ET.fromstring(charts.value_line(band))
    paths = [p.get("d") for p in root.iter(f"{NS}path") if p.get("class") == "threshold"]
    assert len(paths) == 2  # low and high
    ys = {seg.split(",")[1].split("H")[0] for seg in paths[0].split("M")[1:]}
    assert len(ys) == 3  # the band moved each run


def test_freshness_chart_draws_one_series_and_one_sla_per_table():
    rows = []
    for i in range(4):
        at = T0 + dt.timedelta(hours=i)
        rows.append({"table_name": "raw.orders", "column_name": "loaded_at", "lag_seconds": 1800.0 * i,
                     "max_age_seconds": 7200.0, "fresh": True, "observed_at": at})
        rows.append({"table_name": "raw.customers", "column_name": "updated_at", "lag_seconds": 36000.0,
                     "max_age_seconds": 86400.0, "fresh": True, "observed_at": at + dt.timedelta(minutes=5)})
    root = ET.fromstring(charts.freshness_line(rows))
    assert len(root.findall(f"{NS}polyline")) == 2
    labels = [t.text for t in root.iter(f"{NS}text") if "threshold-label" in (t.get("class") or "")]
    assert sorted(labels) == ["SLA 24h raw.customers.updated_at", "SLA 2h raw.orders.loaded_at"]
    legend = [t.text for t in root.iter(f"{NS}text") if "legend" in (t.get("class") or "")]
    assert sorted(legend) == ["raw.customers.updated_at", "raw.orders.loaded_at"]


def test_a_future_newest_timestamp_plots_below_zero():
    rows = [{"table_name": "t", "column_name": "c", "lag_seconds": -3600.0, "max_age_seconds": 7200.0, "fresh": True,
             "observed_at": T0}, {"table_name": "t", "column_name": "c", "lag_seconds": 1800.0, "max_age_seconds": 7200.0,
                                  "fresh": True, "observed_at": T0 + dt.timedelta(hours=1)}]
    root = ET.fromstring(charts.freshness_line(rows))
    assert any((t.text or "").startswith("-") for t in root.iter(f"{NS}text") if t.get("class") == "tick")


def test_hostile_names_are_escaped_in_every_chart():
    evil = '<script>alert(1)</script>"&'
    runs = [{"run_id": evil, "checked_at": T0, "counts": {"passed": 1, "warned": 0, "failed": 2, "error": 0}}]
    svg = charts.run_bars(runs, lambda r: f"?run_id={r}")
    svg += charts.value_line([_point(0, 5, {"max": 3}, "failed", run_id=evil)])
    fresh = [{"table_name": evil, "column_name": evil, "lag_seconds": 7200.0, "max_age_seconds": 3600.0, "fresh": False,
              "observed_at": T0}]
    svg += charts.freshness_line(fresh)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_nothing_numeric_means_no_chart():
    assert charts.value_line([_point(0, ["x"], None)]) == ""
    assert charts.run_bars([], str) == "" and charts.freshness_line([]) == ""


def test_the_selected_run_is_outlined_and_each_bar_links_to_its_run():
    runs = [{"run_id": f"r{i}", "checked_at": T0, "counts": {"passed": 2, "warned": 0, "failed": i, "error": 0}} for i in range(3)]
    svg = charts.run_bars(runs, lambda r: f"?run_id={r}", selected="r1")
    assert svg.count('class="selected-run"') == 1
    assert all(f'href="?run_id=r{i}"' in svg for i in range(3))
    ET.fromstring(svg)
