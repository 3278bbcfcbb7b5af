"""What the observed-value chart plots for each check type, and its limit lines.

Golden values from the engine's own verdicts (``engine.evaluate``), stored as the store keeps them
(JSON): if an evaluator changes the shape of observed/expected, these fail.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_dataops.config.checks import CHECK_TYPES, parse_checks
from airflow_dataops.engine import evaluate
from airflow_dataops.engine.result import _jsonable
from airflow_dataops.plugins import thresholds

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def stored(check: dict, measures: dict, history=None) -> dict:
    """A result as the store keeps it: the engine's own verdict, through JSON."""
    model = parse_checks([check])[0]
    ctx = evaluate.EvalContext(now=T0, history=(lambda name, n: history) if history is not None else None)
    verdict = evaluate.evaluate(model, measures, ctx)
    return {"check_type": model.type, "observed": json.loads(json.dumps(_jsonable(verdict.observed))),
            "expected": json.loads(json.dumps(_jsonable(verdict.expected))), "message": verdict.message}


# (check, the engine's measures, plotted value, limit lines): derived from engine/evaluate.py's shapes.
GOLDEN = [
    ({"type": "row_count", "threshold": 500}, {"rows": 120}, 120, {"min": 500}),
    ({"type": "row_count", "min": 10, "max": 900}, {"rows": 950}, 950, {"min": 10, "max": 900}),
    ({"type": "null_check", "columns": ["a", "b"], "max_nulls": 2}, {"rows": 1000, "nulls": {"a": 1, "b": 5}}, 5, {"max": 2}),
    # Observed are counts; the limit is a share: 50 nulls in 1M rows is 0.005%, under a 1% limit.
    ({"type": "null_check", "columns": ["a"], "max_null_pct": "1%"}, {"rows": 1_000_000, "nulls": {"a": 50}}, 0.005, {"max": 1}),
    ({"type": "completeness", "columns": ["a", "b"], "min_pct": "99%"}, {"rows": 200, "non_null": {"a": 200, "b": 190}}, 95, {"min": 99}),
    ({"type": "unique", "columns": ["id"]}, {"duplicates": 3}, 3, {"max": 0}),
    ({"type": "accepted_values", "column": "s", "values": ["a", "b"]}, {"invalid": 4}, 4, {"max": 0}),
    # The value range (0..100) is not a limit on the invalid-row count.
    ({"type": "range", "column": "x", "min": 0, "max": 100}, {"invalid": 7}, 7, {"max": 0}),
    ({"type": "pattern", "column": "e", "regex": "^.+@.+$"}, {"invalid": 0}, 0, {"max": 0}),
    ({"type": "freshness", "column": "t", "max_age": "2 hours"}, {"newest": T0 - dt.timedelta(hours=3)}, 3, {"max age": 2}),
    ({"type": "freshness", "column": "t", "warn_after": "1 hour", "error_after": "4 hours"},
     {"newest": T0 - dt.timedelta(minutes=90)}, 1.5, {"warn after": 1, "error after": 4}),
]


@pytest.mark.parametrize(("check", "measures", "value", "limits"), GOLDEN, ids=[g[0]["type"] + str(i) for i, g in enumerate(GOLDEN)])
def test_each_check_type_plots_its_observed_value_against_its_own_limit(check, measures, value, limits):
    plotted, lines = thresholds.plot_point(stored(check, measures))
    assert plotted == pytest.approx(value)
    assert lines == pytest.approx(limits)


def test_volume_anomaly_draws_the_band_around_the_mean_not_the_percentage():
    pct = stored({"type": "volume_anomaly", "max_change_pct": "20%"}, {"rows": 1300}, history=[1000.0, 1000.0, 1000.0])
    assert thresholds.plot_point(pct) == (1300, pytest.approx({"low": 800, "high": 1200}))
    std = stored({"type": "volume_anomaly", "max_stddev": 3}, {"rows": 1000}, history=[90.0, 100.0, 110.0])
    value, band = thresholds.plot_point(std)
    assert value == 1000 and band["low"] == pytest.approx(100 - 3 * 8.165, abs=0.01)
    early = stored({"type": "volume_anomaly", "max_change_pct": "20%"}, {"rows": 5}, history=[])
    assert thresholds.plot_point(early) == (5, {})  # no history yet: no band


def test_schema_referential_sql_and_expectation_results():
    schema = {"check_type": "schema", "observed": {"missing": ["a"], "type_mismatch": {"b": "TEXT"}, "unexpected": []},
              "expected": {"columns": {"a": None}, "strict": False}}
    assert thresholds.plot_point(schema) == (2, {"max": 0})
    assert thresholds.plot_point({"check_type": "referential", "observed": 4, "expected": 0}) == (4, {"max": 0})
    assert thresholds.plot_point({"check_type": "sql", "observed": 2, "expected": 0}) == (2, {"max": 0})
    assert thresholds.plot_point({"check_type": "sql", "observed": 1, "expected": "truthy"}) == (1, {})
    # GX's min_value/max_value bound column values for map expectations, the metric for others: no line.
    gx = {"check_type": "expectation", "observed": 12, "expected": {"min_value": 0, "max_value": 10}}
    assert thresholds.plot_point(gx) == (12, {})


def test_every_check_type_has_a_chart_entry():
    assert set(CHECK_TYPES) <= set(thresholds.SPECS)
