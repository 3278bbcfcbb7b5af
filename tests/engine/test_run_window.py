"""``render_guarded``: the one rule for "a template cannot apply on this run", shared by the check
operator (``where`` and ``sql``) and the freshness sensor (``where``). Rendered with real Jinja
environments of the kinds Airflow uses (sandboxed; native), no Airflow needed."""

from __future__ import annotations

import datetime as dt
import types

import jinja2
import jinja2.nativetypes
import jinja2.sandbox
import lazy_object_proxy
import pytest

from airflow_dataops.engine.run_window import render_guarded

UTC = dt.timezone.utc
START, END = dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 3, 2, tzinfo=UTC)
ENVIRONMENTS = {"sandboxed": jinja2.sandbox.SandboxedEnvironment(), "native": jinja2.nativetypes.NativeEnvironment()}


def _context(start, end, logical=START):
    dag_run = types.SimpleNamespace(run_id="manual__1", conf={"region": "eu"}, data_interval_start=start,
                                    data_interval_end=end, logical_date=logical)
    return {"data_interval_start": start, "data_interval_end": end, "logical_date": logical, "ds": "2024-03-01",
            "dag_run": dag_run, "params": {"region": "eu"}}


def _render(env_name):
    env = ENVIRONMENTS[env_name]
    return lambda text, ctx: env.from_string(text).render(**ctx)


MANUAL = {  # runs without a usable interval: none at all, a zero-width one, and Airflow's lazy proxies of None
    "none": _context(None, None, None),
    "zero-width": _context(START, START),
    "lazy None": _context(lazy_object_proxy.Proxy(lambda: None), lazy_object_proxy.Proxy(lambda: None)),
}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
@pytest.mark.parametrize("run", MANUAL)
@pytest.mark.parametrize("template,name", [
    ("updated_at >= '{{ data_interval_start }}'", "data_interval_start"),
    ("updated_at < '{{ dag_run.data_interval_end }}'", "dag_run.data_interval_end"),
    ("updated_at >= '{{ dag_run.data_interval_start | string }}'", "dag_run.data_interval_start"),
])
def test_a_template_using_a_missing_interval_cannot_apply(env_name, run, template, name):
    rendered, why = render_guarded(_render(env_name), template, MANUAL[run])
    assert rendered is None
    assert why == f"this run has no data interval (the template uses {name})"


def test_a_missing_logical_date_through_dag_run_cannot_apply():
    rendered, why = render_guarded(_render("sandboxed"), "d = '{{ dag_run.logical_date }}'", MANUAL["none"])
    assert (rendered, why) == (None, "this run has no logical date (the template uses dag_run.logical_date)")


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_a_run_with_an_interval_renders_both_spellings(env_name):
    text = "t >= '{{ data_interval_start }}' AND t < '{{ dag_run.data_interval_end }}'"
    rendered, why = render_guarded(_render(env_name), text, _context(START, END))
    assert why is None and rendered == f"t >= '{START}' AND t < '{END}'"


@pytest.mark.parametrize("run", MANUAL)
def test_a_guarded_template_renders_its_other_branch_and_other_dag_run_values_pass(run):
    text = ("{% if dag_run.data_interval_start %}t >= '{{ dag_run.data_interval_start }}'"
            "{% else %}region = '{{ dag_run.conf['region'] }}' AND r = '{{ dag_run.run_id }}'{% endif %}")
    rendered, why = render_guarded(_render("sandboxed"), text, MANUAL[run])
    assert (rendered, why) == ("region = 'eu' AND r = 'manual__1'", None)


def test_text_that_only_names_a_run_value_is_not_a_use_of_it():
    """No pattern matching on the text: a param or a literal that looks like the name is fine."""
    text = "kind = 'data_interval_start' AND region = '{{ params.region }}' {# data_interval_start #}"
    rendered, why = render_guarded(_render("sandboxed"), text, MANUAL["none"])
    assert (rendered, why) == ("kind = 'data_interval_start' AND region = 'eu' ", None)


def test_the_sandbox_still_hides_private_attributes_of_dag_run():
    """The stand-in for ``dag_run`` opens no way around Airflow's sandbox to the object it wraps."""
    rendered, why = render_guarded(_render("sandboxed"), "[{{ dag_run._dag_run }}{{ dag_run._missing }}]", MANUAL["none"])
    assert (rendered, why) == ("[]", None)
