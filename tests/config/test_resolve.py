"""The pipeline config: the seed example loads unchanged, environments merge as documented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from airflow_dataops.config.errors import ConfigError
from airflow_dataops.config.resolve import Defaults, resolve, validate_text
from airflow_dataops.config.semantics import effective_checks
from airflow_dataops.dag_builder.spec import build_spec

REPO = Path(__file__).resolve().parents[2]
SEED = (REPO / "dags" / "orders_daily.yaml").read_text()


def test_seed_example_loads_unchanged_in_every_environment():
    assert validate_text(SEED, "orders_daily.yaml") == []
    prod = resolve(SEED, "orders_daily.yaml", "production")
    dev = resolve(SEED, "orders_daily.yaml", "development")
    staging = resolve(SEED, "orders_daily.yaml", "staging")
    assert (prod.schedule, prod.notifications) == ("0 5 * * *", True)
    assert (dev.schedule, dev.notifications) == ("manual", False)
    assert staging.schedule == "30 7 * * *"
    assert prod.sla.freshness == dt.timedelta(hours=2)
    assert prod.alerts.escalation.after == dt.timedelta(minutes=15)
    assert prod.alerts.escalation.to == "analytics-oncall"


def test_documented_dataset_defaults_apply_when_the_file_names_none():
    config = resolve(SEED, "orders_daily.yaml", "production", Defaults("warehouse", "loaded_at"))
    assert (config.dataset.conn_id, config.dataset.table, config.dataset.timestamp_column) == (
        "warehouse", "orders_daily", "loaded_at")


def test_sla_completeness_becomes_a_fail_check_over_the_null_check_columns():
    config = resolve(SEED, "orders_daily.yaml", "production")
    derived = [c for c in effective_checks(config) if c.name == "sla_completeness"]
    assert len(derived) == 1
    assert derived[0].action == "fail" and derived[0].min_pct == 99.0
    assert derived[0].columns == ["order_id", "customer_id"]


OVERRIDES = """
pipeline:
  name: orders
  schedule: "@daily"
  tags: [base]
dataset:
  conn_id: warehouse
  table: analytics.orders
  timestamp_column: loaded_at
alerts:
  channels:
    - slack: "#base"
quality_checks:
  - type: row_count
    name: rows
    min: 1000
  - type: null_check
    columns: [id]
environments:
  - name: development
    schedule: manual
    notifications: false
    dataset:
      table: dev.orders
    quality_checks:
      - type: row_count
        name: rows
        min: 1
      - type: unique
        columns: [id]
    alerts:
      channels:
        - email: dev@example.com
  - name: production
"""


def test_environment_overrides_merge_mappings_replace_lists_and_named_checks():
    dev = resolve(OVERRIDES, "o.yaml", "development")
    prod = resolve(OVERRIDES, "o.yaml", "production")
    # mapping merged key by key
    assert (dev.dataset.conn_id, dev.dataset.table, dev.dataset.timestamp_column) == ("warehouse", "dev.orders", "loaded_at")
    assert prod.dataset.table == "analytics.orders"
    # a named check replaces the base check of that name, in place; others are added
    assert [(c.check_name, getattr(c, "min", None)) for c in dev.quality_checks] == [
        ("rows", 1), ("null_check_id", None), ("unique_id", None)]
    assert [c.check_name for c in prod.quality_checks] == ["rows", "null_check_id"]
    # lists replaced whole
    assert [c.kind for c in dev.alerts.channels] == ["email"]
    assert [c.kind for c in prod.alerts.channels] == ["slack"]
    # the pipeline-level schedule is the default
    assert prod.schedule == "@daily" and dev.schedule == "manual"


def test_a_pipeline_without_the_active_environment_is_an_error_naming_both():
    with pytest.raises(ConfigError) as exc:
        resolve(OVERRIDES, "o.yaml", "staging")
    text = str(exc.value)
    assert "o.yaml:" in text and "'orders'" in text and "'staging'" in text and "development, production" in text


def test_errors_in_an_override_point_at_the_override_and_name_the_environment():
    bad = OVERRIDES.replace("        min: 1\n", "        min: -5\n")
    issues = validate_text(bad, "o.yaml")
    assert len(issues) == 1
    issue = issues[0]
    line = bad.splitlines()[issue.line - 1]
    assert "min: -5" in line
    assert issue.path == ("environments", 0, "quality_checks", 0, "min")
    assert issue.environment == "development"
    assert "got -5" in str(issue)


def test_all_errors_of_a_file_are_reported_at_once():
    bad = SEED.replace("threshold: 500", "threshold: many").replace('max_age: "2 hours"', 'max_age: "soon"')
    issues = validate_text(bad, "orders_daily.yaml")
    assert {i.path[-1] for i in issues} == {"threshold", "max_age"}


@pytest.mark.parametrize(
    ("schedule", "data_interval", "expected"),
    [
        ('"0 5 * * *"', "false", {"kind": "cron", "cron": "0 5 * * *", "data_interval": False}),
        ('"0 5 * * *"', "true", {"kind": "cron", "cron": "0 5 * * *", "data_interval": True}),
        ("'@daily'", "false", {"kind": "cron", "cron": "0 0 * * *", "data_interval": False}),
        ("manual", "false", {"kind": "none"}),
        ('"@once"', "false", {"kind": "preset", "value": "@once"}),
        ('["dataops://warehouse/raw_orders"]', "false", {"kind": "assets", "uris": ["dataops://warehouse/raw_orders"]}),
    ],
)
def test_schedule_becomes_an_explicit_timetable_spec(schedule, data_interval, expected, tmp_path):
    text = f"pipeline:\n  name: p\n  schedule: {schedule}\n  data_interval: {data_interval}\n  timezone: Europe/Berlin\n"
    spec = build_spec(resolve(text, "p.yaml", "production"), tmp_path)
    assert {k: spec["schedule"][k] for k in expected} == expected
    if expected["kind"] == "cron":
        assert spec["schedule"]["timezone"] == "Europe/Berlin"


def test_the_spec_is_deterministic_and_has_a_fixed_start_date(tmp_path):
    first = build_spec(resolve(SEED, "orders_daily.yaml", "production"), tmp_path)
    second = build_spec(resolve(SEED, "orders_daily.yaml", "production"), tmp_path)
    assert first == second
    assert first["start_date"] == "2024-01-01T00:00:00+00:00"


def test_models_are_frozen():
    config = resolve(SEED, "orders_daily.yaml", "production")
    with pytest.raises(Exception):
        config.pipeline.owner = "someone else"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["12:30", "NO", "1.10", "0o17", "2024-01-01"])
def test_yaml_scalars_are_never_silently_coerced(text):
    from airflow_dataops.config.yaml_loader import load_yaml

    value = load_yaml(f"v: {text}").data["v"]
    if text == "1.10":
        assert value == 1.1  # a number: a field wanting text refuses it (see the coercions golden file)
    else:
        assert value == text


def test_oversized_files_are_refused_before_parsing():
    from airflow_dataops.config.yaml_loader import MAX_BYTES, load_yaml

    loaded = load_yaml("a: " + "x" * MAX_BYTES, "big.yaml")
    assert loaded.data is None and "limit" in str(loaded.issues[0])


def test_alert_repeat_defaults_to_the_deployment_setting_unless_the_pipeline_sets_it():
    assert resolve(SEED, "orders_daily.yaml", "production").alerts.to_runtime()["repeat"] is None
    text = SEED.replace('    to: "analytics-oncall"', '    to: "analytics-oncall"\n  repeat: true')
    assert resolve(text, "orders_daily.yaml", "production").alerts.to_runtime()["repeat"] is True


def test_volume_change_may_exceed_100_percent_but_completeness_may_not():
    base = "pipeline:\n  name: p\nquality_checks:\n"
    ok = resolve(base + "  - type: volume_anomaly\n    max_change_pct: '150%'\n", "p.yaml", "production")
    assert ok.quality_checks[0].max_change_pct == 150.0
    issues = validate_text(base + "  - type: completeness\n    columns: [a]\n    min_pct: '150%'\n", "p.yaml")
    assert [i.path[-1] for i in issues] == ["min_pct"] and "over 100%" in issues[0].message
