"""Rendering the templates of ``DataQualityOperator``'s checks for one run.

Only a check's ``where`` and ``sql`` (inline, or the text of its ``.sql`` file) are templates: the
other strings of ``checks`` (an expectation's ``kwargs``, names, values) stay text, so a
password-shaped ``{{ conn.x.password }}`` is never rendered. Each template renders through
``engine.run_window.render_guarded`` (the rule the freshness sensor's ``where`` follows too): a
``where`` that uses a run value this run lacks is dropped, and the check's result says so; a ``sql``
that does cannot be cut down, so that check does not run and its error says how to guard it.

Imports cheaply (DAG parsing): the config and engine modules load when a run renders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_dataops.config.checks import BaseCheck

log = logging.getLogger(__name__)

#: ``render(text, context)``: the task's own Jinja rendering (``BaseOperator.render_template``).
Render = Callable[[str, Mapping[str, Any]], Any]


@dataclass
class RenderedChecks:
    checks: list[dict[str, Any]]
    notes: dict[int, str] = field(default_factory=dict)  # check index -> why its `where` was dropped
    errors: dict[int, str] = field(default_factory=dict)  # check index -> why it cannot run


def dropped_filter_note(why: str, consequence: str) -> str:
    """The note a result (or a sensor's log) carries when its ``where`` could not apply; the results
    store recognises it (``DROPPED_FILTER_NOTE``) to keep filtered and whole-table counts apart."""
    from airflow_dataops.store.results import DROPPED_FILTER_NOTE

    return f"{DROPPED_FILTER_NOTE}: {why}, so {consequence}"


def cannot_template(why: str) -> str:
    from airflow_dataops.engine.outcome import CONFIG_ERROR

    return (CONFIG_ERROR + f"the check's SQL cannot run: {why}. Guard that part of the template with "
            "{% if data_interval_start %}...{% endif %} (or the value it uses), or run it on a run that has the value")


def render_checks(render: Render, checks: list[dict[str, Any]], context: Mapping[str, Any]) -> RenderedChecks:
    """``checks`` with their ``where`` and inline ``sql`` rendered for this run."""
    from airflow_dataops.config.types import is_sql_file
    from airflow_dataops.engine.run_window import render_guarded

    out = RenderedChecks(checks=[])
    for i, check in enumerate(checks):
        check = dict(check)
        where = check.get("where")
        if isinstance(where, str):
            rendered, why = render_guarded(render, where, context)
            if why:
                out.notes[i] = dropped_filter_note(why, "the check ran over all rows")
                log.warning("check %s: %s (filter was %r)", check.get("name") or check.get("type"), out.notes[i], where)
                check["where"] = None
            else:
                check["where"] = rendered
        sql = check.get("sql")
        if check.get("type") == "sql" and isinstance(sql, str) and not is_sql_file(sql):
            rendered, why = render_guarded(render, sql, context)
            if why:
                out.errors[i] = cannot_template(why)
            else:
                check["sql"] = rendered
        out.checks.append(check)
    return out


def resolve_sql_files(render: Render, checks: list[BaseCheck], context: Mapping[str, Any], base: Path | None,
                      errors: dict[int, str]) -> list[BaseCheck]:
    """Reads each ``.sql`` file (relative to ``base``: ``base_dir`` or the DAG file's folder) and
    renders it; a file that cannot be read, or whose template cannot apply, becomes that check's
    entry in ``errors`` (with the real reason)."""
    from airflow_dataops.config.types import is_sql_file
    from airflow_dataops.engine.outcome import CONFIG_ERROR
    from airflow_dataops.engine.run_window import render_guarded
    from airflow_dataops.engine.sql_separate import CheckConfigError, load_sql

    out = []
    for i, check in enumerate(checks):
        sql = getattr(check, "sql", None)
        if check.type == "sql" and is_sql_file(sql) and i not in errors:
            try:
                rendered, why = render_guarded(render, load_sql(check, base), context)
            except CheckConfigError as exc:
                errors[i] = CONFIG_ERROR + str(exc)
            else:
                if why:
                    errors[i] = cannot_template(why)
                else:
                    check = check.model_copy(update={"sql": rendered})
        out.append(check)
    return out
