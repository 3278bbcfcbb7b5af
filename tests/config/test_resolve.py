"""The pipeline config: the seed example loads unchanged, environments merge as documented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

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

    loaded = load_yaml(f"v: {text}")
    value = loaded.data["v"]
    if text == "1.10":
        # A number, whose text is kept: a field wanting text refuses it and quotes it as written
        # (see the coercions golden file).
        assert value == 1.1 and loaded.texts[("v",)] == "1.10"
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


# -- environment overrides of quality_checks (the issue's contract) ------------------------------

BASE_CHECKS = """
pipeline:
  name: orders
quality_checks:
  - type: row_count
    threshold: 500
  - type: null_check
    columns: [order_id]
environments:
"""


def _checks(text: str, environment: str) -> list[tuple[str, Any]]:
    config = resolve(text, "o.yaml", environment)
    return [(c.check_name, getattr(c, "threshold", None) or c.action) for c in config.quality_checks]


def test_an_environment_list_without_matching_names_replaces_the_base_checks_whole():
    text = BASE_CHECKS + "  - name: development\n    quality_checks:\n      - type: row_count\n        threshold: 1\n"
    # An unnamed check like a base one does not patch it (nor collide with it): the list replaces.
    assert _checks(text, "development") == [("row_count", 1)]
    dropped = BASE_CHECKS + "  - name: development\n    quality_checks: []\n"
    assert _checks(dropped, "development") == []


def test_explicitly_named_checks_replace_base_checks_in_place_and_the_others_are_added():
    text = BASE_CHECKS + (
        "  - name: staging\n    quality_checks:\n"
        "      - type: unique\n        columns: [order_id]\n"
        "      - type: null_check\n        name: null_check_order_id\n        columns: [order_id]\n        action: warn\n"
        "  - name: production\n"
    )
    assert _checks(text, "staging") == [("row_count", 500), ("null_check_order_id", "warn"), ("unique_order_id", "fail")]
    assert _checks(text, "production") == [("row_count", 500), ("null_check_order_id", "fail")]


def test_an_unnamed_check_next_to_named_replacements_is_a_duplicate_with_the_fix():
    text = BASE_CHECKS + (
        "  - name: staging\n    quality_checks:\n"
        "      - type: null_check\n        name: null_check_order_id\n        columns: [order_id]\n"
        "      - type: row_count\n        threshold: 1\n"
        "  - name: production\n"
    )
    (issue,) = validate_text(text, "o.yaml")
    assert issue.path == ("environments", 0, "quality_checks", 1, "name")
    assert "give this one `name: row_count`" in issue.message and issue.environment == "staging"


def test_the_readme_override_example_does_what_the_readme_says():
    readme = (REPO / "README.md").read_text()
    section = readme.split("### `environments`", 1)[1].split("### ", 1)[0]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    text = "pipeline:\n  name: orders\n" + example
    assert validate_text(text, "o.yaml") == []
    assert _checks(text, "development") == [("row_count", 1)]
    assert _checks(text, "staging") == [("row_count", 50), ("null_check_order_id", "fail"), ("unique_order_id", "fail")]
    assert _checks(text, "production") == [("row_count", 500), ("null_check_order_id", "fail")]


# -- no silent coercions --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("fragment", "path", "wanted"),
    [
        ("pipeline:\n  name: p\n  catchup: 'yes'\n", ("pipeline", "catchup"), "expected true or false, got 'yes'"),
        ("pipeline:\n  name: p\n  retries: '3'\n", ("pipeline", "retries"), "got '3': remove the quotes"),
        ("pipeline:\n  name: p\n  start_date: 20240101\n", ("pipeline", "start_date"), "expected an ISO date, got 20240101"),
        ("pipeline:\n  name: p\nenvironments:\n  - name: dev\n    notifications: 'no'\n",
         ("environments", 0, "notifications"), "got 'no'"),
        ("pipeline:\n  name: p\nquality_checks:\n  - type: row_count\n    threshold: 500.0\n",
         ("quality_checks", 0, "threshold"), "got 500.0: write 500"),
        ("pipeline:\n  name: p\nquality_checks:\n  - type: volume_anomaly\n    max_stddev: '3'\n",
         ("quality_checks", 0, "max_stddev"), "expected a number, got '3'"),
        ("pipeline:\n  name: p\n  owner: 1.10\n", ("pipeline", "owner"), 'got 1.10: quote it ("1.10")'),
    ],
)
def test_values_of_the_wrong_type_are_errors_not_coerced(fragment, path, wanted):
    issues = validate_text(fragment, "p.yaml")
    assert [i.path for i in issues] == [path], issues
    assert wanted in issues[0].message


def test_iso_dates_durations_and_percentages_are_still_parsed_from_text():
    text = ("pipeline:\n  name: p\n  start_date: 2024-03-01\n  retry_delay: 90s\nquality_checks:\n"
            "  - type: completeness\n    columns: [a]\n    min_pct: '99.5%'\n"
            "  - type: range\n    column: d\n    min: 2024-01-01\n    max: 10\n")
    config = resolve(text, "p.yaml", "production")
    assert config.pipeline.start_date == dt.date(2024, 3, 1)
    assert config.pipeline.retry_delay == dt.timedelta(seconds=90)
    assert config.quality_checks[0].min_pct == 99.5
    assert (config.quality_checks[1].min, config.quality_checks[1].max) == (dt.date(2024, 1, 1), 10)


def test_accepted_values_keep_text_and_plain_numbers_but_refuse_numbers_that_read_differently():
    ok = "pipeline:\n  name: p\nquality_checks:\n  - type: accepted_values\n    column: v\n    values: ['1.10', '007', 3, 1.5, true]\n"
    assert resolve(ok, "p.yaml", "production").quality_checks[0].values == ["1.10", "007", 3, 1.5, True]
    issues = validate_text(ok.replace("'1.10', '007'", "1.10, 007"), "p.yaml")
    assert [i.path[-1] for i in issues] == [0, 1]
    assert 'quote it ("1.10")' in issues[0].message and 'quote it ("007")' in issues[1].message


# -- one bad file: every error, never an exception -----------------------------------------------

@pytest.mark.parametrize(
    ("content", "wanted"),
    [
        (b"pipeline:\n  name: caf\xe9\n", "p.yaml:2:12: (top level): the file is not UTF-8 text"),
        ("pipeline:\n  name: p\n  tags: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 50 levels"),
        ("pipeline:\n  name: p\n  tags: " + "[" * 200 + "]" * 200 + "\n", "p.yaml:3:58: pipeline.tags: the file is nested deeper"),
        ("pipeline:\n  name: a\x07b\n", "p.yaml:2:10: (top level): invalid YAML: the control character U+0007"),
        ("pipeline: [", "invalid YAML"),
        ("", "the file is empty"),
    ],
)
def test_hostile_files_become_errors_with_positions_never_exceptions(content, wanted):
    with pytest.raises(ConfigError) as exc:
        resolve(content, "p.yaml", "production")
    assert wanted in str(exc.value)
    assert all(":" in line for line in str(exc.value).splitlines())


def test_a_utf8_byte_order_mark_is_fine():
    config = resolve("\ufeffpipeline:\n  name: p\n".encode(), "p.yaml", "production")
    assert config.name == "p"


def test_huge_bad_values_are_cut_short_in_messages():
    text = f"pipeline:\n  name: p\n  schedule: \"{'x' * 5000}\"\n"
    (issue,) = validate_text(text, "p.yaml")
    assert len(issue.message) < 300 and "..." in issue.message


def test_did_you_mean_only_suggests_keys_valid_at_that_place():
    issues = validate_text("pipeline:\n  name: p\n  treshold: 3\n  schedul: manual\n", "p.yaml")
    messages = {i.path[-1]: i.message for i in issues}
    assert "did you mean" not in messages["treshold"]  # `threshold` is a check's key, not the pipeline's
    assert messages["schedul"].endswith("did you mean `schedule`?")
