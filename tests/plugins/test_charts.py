"""Server-rendered SVG charts: numbers from stored values, thresholds, and escaping."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

from airflow_dataops.plugins import charts

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _point(i, observed, expected, status="passed", run_id=None):
    return {"run_id": run_id or f"run_{i}", "observed": observed, "expected": expected, "status": status,
            "checked_at": T0 + dt.timedelta(hours=i)}


def test_numbers_come_from_plain_values_and_per_column_dicts():
    assert charts.numeric(120) == 120.0
    assert charts.numeric({"email": 3, "customer_id": 7}) == 7.0  # the worst column
    assert charts.numeric("97.5%") == 97.5
    assert charts.numeric(["a"]) is None and charts.numeric("n/a") is None


def test_thresholds_from_expected_values():
    assert charts.bounds({"min": 1000}) == {"min": 1000.0}
    assert charts.bounds({"max_null_pct": 2.5, "min_pct": 99}) == {"max": 2.5, "min": 99.0}
    assert charts.bounds({"values": ["a", "b"]}) == {}
    assert charts.bounds(0) == {"expected": 0.0}


def test_value_chart_draws_the_series_thresholds_and_a_point_per_run():
    svg = charts.value_line([_point(i, 1000 + i, {"min": 1000}) for i in range(5)] + [_point(5, 120, {"min": 1000}, "failed")])
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}circle")) == 6
    assert len(root.findall(f"{ns}polyline")) == 1
    assert any("min 1000" in (t.text or "") for t in root.iter(f"{ns}text"))
    assert charts.COLORS["failed"] in svg


def test_hostile_names_are_escaped_in_every_chart():
    evil = '<script>alert(1)</script>"&'
    runs = [{"run_id": evil, "checked_at": T0, "counts": {"passed": 1, "warned": 0, "failed": 2, "error": 0}}]
    svg = charts.run_bars(runs, lambda r: f"?run_id={r}")
    svg += charts.value_line([_point(0, 5, {"max": 3}, "failed", run_id=evil)])
    fresh = [{"table_name": evil, "lag_seconds": 7200.0, "max_age_seconds": 3600.0, "fresh": False, "observed_at": T0}]
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
