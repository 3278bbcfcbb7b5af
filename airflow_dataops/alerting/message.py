"""One message builder for every channel: an alert (a plain JSON-able dict) becomes Slack blocks with
a plain-text fallback, an email with text and HTML parts, and a generic JSON payload.

An alert dict holds: event, subject, severity, tier, title, summary, pipeline, dag_id, run_id,
environment, owner, run_url, details (observed/expected and friends), escalated_from (tier > 0).

``combine`` makes one message of several subjects' alerts of one (run, event, tier): five failing
checks are one Slack post listing them (observed vs expected, the first ``MAX_LISTED``), not five.
"""

from __future__ import annotations

import html
import json
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

SEVERITY = {
    "check_failed": "error",
    "check_warned": "warning",
    "task_failed": "error",
    "freshness_timeout": "error",
    "sla_miss": "error",
    "recovered": "info",
}
EMOJI = {"info": ":large_green_circle:", "warning": ":warning:", "error": ":red_circle:", "critical": ":rotating_light:"}
#: Subjects listed one per line in a combined message; the rest are counted ("and 7 more").
MAX_LISTED = 10
#: Subjects named in a combined message's title (it is an email subject and a Slack header).
MAX_IN_TITLE = 3
_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}
#: Title of a combined message: how many of what.
DIGEST_LABEL = {
    "check_failed": "{n} checks failed",
    "check_warned": "{n} checks warned",
    "task_failed": "{n} tasks failed",
    "freshness_timeout": "{n} sources not fresh",
    "sla_miss": "{n} SLA misses",
    "recovered": "Recovered: {n} alerts",
}
EVENT_LABEL = {
    "check_failed": "Check failed",
    "check_warned": "Check warning",
    "task_failed": "Task failed",
    "freshness_timeout": "Data not fresh",
    "sla_miss": "SLA missed",
    "recovered": "Recovered",
}


def run_url(dag_id: str, run_id: str, base_url: str | None = None) -> str | None:
    """Link to the run in the Airflow UI: ``[api] base_url`` + ``/dags/{dag_id}/runs/{run_id}``."""
    if not base_url:
        try:
            from airflow.configuration import conf

            base_url = conf.get("api", "base_url", fallback=None)
        except Exception:  # pragma: no cover - outside Airflow
            base_url = None
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def environment_of(ctx: dict[str, Any] | None) -> str:
    """The environment an alert of ``ctx`` belongs to: its own, else this deployment's
    ``[dataops] environment`` (every component of a deployment sees the same value)."""
    from airflow_dataops import settings

    return (ctx or {}).get("environment") or settings.get("environment")


def make_alert(
    ctx: dict[str, Any],
    run_id: str,
    event: str,
    subject: str,
    summary: str,
    details: dict[str, Any] | None = None,
    *,
    title: str | None = None,
    severity: str | None = None,
    tier: int = 0,
) -> dict[str, Any]:
    """The alert dict for one event of one run of the pipeline described by ``ctx``."""
    dag_id = ctx.get("dag_id") or ctx["pipeline"]
    return {
        "event": event,
        "subject": subject,
        "severity": severity or ("critical" if tier else SEVERITY.get(event, "error")),
        "tier": tier,
        "title": title or f"{EVENT_LABEL.get(event, event)}: {subject}",
        "summary": summary,
        "pipeline": ctx.get("pipeline") or dag_id,
        "dag_id": dag_id,
        "run_id": run_id,
        "environment": environment_of(ctx),
        "owner": ctx.get("owner") or "unknown",
        "run_url": run_url(dag_id, run_id, ctx.get("ui_base_url")),
        "details": details or {},
    }


def ack_command(dag_id: str, run_id: str, environment: str, event: str | None = None, subject: str | None = None) -> str:
    """The shell command that acknowledges what a message is about: one run's alerts, narrowed to
    one event, and to one subject when the message is about one alert."""
    words = ["airflow-dataops", "ack", dag_id, "--run", run_id]
    words += ["--event", event] if event else []
    words += ["--subject", subject] if subject else []
    return " ".join(shlex.quote(word) for word in [*words, "--env", environment])


def _names(subjects: list[str], limit: int) -> str:
    shown = ", ".join(subjects[:limit])
    return f"{shown} and {len(subjects) - limit} more" if len(subjects) > limit else shown


def combine(items: list[dict[str, Any]], *, ctx: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
    """One message for several alerts of one (run, event, tier): the alert itself when there is one.

    Otherwise its title says how many and names the first ``MAX_IN_TITLE``; its summary lists the
    first ``MAX_LISTED`` alerts' own summaries (observed vs expected for checks) and counts the rest,
    which the Data Quality page lists. ``run_id`` (with ``ctx`` for the link): the run the message
    is about when the items belong to other runs (a successful run resolving earlier runs' alerts)."""
    if not items:
        raise ValueError("combine() needs at least one alert")
    if len(items) == 1:
        return items[0]
    first = items[0]
    subjects = [item["subject"] for item in items]
    count = len(items)
    label = DIGEST_LABEL.get(first["event"], "{n} alerts").format(n=count)
    lines = [f"- {item['summary']}" for item in items[:MAX_LISTED]]
    if count > MAX_LISTED:
        lines.append(f"- ... and {count - MAX_LISTED} more: see the Data Quality page (Browse > Data Quality) for every one.")
    shared = {key: value for key, value in (first.get("details") or {}).items()
              if key in {"table", "task"} and all((i.get("details") or {}).get(key) == value for i in items)}
    message = {
        **first,
        "subject": f"{count} {first['event']}",
        "severity": max((item["severity"] for item in items), key=lambda s: _RANK.get(s, 2)),
        "title": f"{label}: {_names(subjects, MAX_IN_TITLE)}",
        "summary": f"{label}:\n" + "\n".join(lines),
        "details": {**shared, "count": count, "subjects": _names(subjects, MAX_LISTED)},
    }
    if run_id is not None and run_id != first["run_id"]:
        message["run_id"] = run_id
        message["run_url"] = run_url(first["dag_id"], run_id, (ctx or {}).get("ui_base_url"))
    return message


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    blocks: list[dict[str, Any]]
    html: str
    payload: dict[str, Any]


def _facts(alert: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [
        ("Pipeline", alert["pipeline"]),
        ("Environment", alert["environment"]),
        ("Run", alert["run_id"]),
        ("Severity", alert["severity"].upper()),
        ("Owner", alert["owner"]),
    ]
    details = alert.get("details") or {}
    if "observed" in details or "expected" in details:
        facts.append(("Observed", _value(details.get("observed"))))
        facts.append(("Expected", _value(details.get("expected"))))
    for key, value in details.items():
        if key not in {"observed", "expected"} and value not in (None, "", [], {}):
            facts.append((key.replace("_", " ").capitalize(), _value(value)))
    return facts


def build(alert: dict[str, Any]) -> Message:
    """Render ``alert`` for every channel kind from the same facts."""
    severity = alert["severity"]
    prefix = "ESCALATION - " if alert.get("tier") else ""
    subject = f"[{severity.upper()}] {prefix}{alert['title']} ({alert['pipeline']}, {alert['environment']})"
    facts = _facts(alert)
    link = alert.get("run_url")
    text_lines = [subject, alert["summary"], ""] + [f"{k}: {v}" for k, v in facts]
    if link:
        text_lines.append(f"Open in Airflow: {link}")
    text = "\n".join(text_lines)

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{prefix}{alert['title']}"[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{EMOJI.get(severity, '')} *{severity.upper()}* {alert['summary']}"[:3000]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in facts[:10]]},
    ]
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open the run in Airflow>"}})

    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    link_html = f"<p><a href='{html.escape(link)}'>Open the run in Airflow</a></p>" if link else ""
    body_html = (
        f"<html><body><h2>{html.escape(prefix + alert['title'])}</h2>"
        f"<p><b>{html.escape(severity.upper())}</b> {html.escape(alert['summary']).replace(chr(10), '<br>')}</p>"
        f"<table>{rows}</table>{link_html}</body></html>"
    )
    payload = {key: alert.get(key) for key in (
        "event", "subject", "severity", "tier", "title", "summary", "pipeline", "dag_id", "run_id",
        "environment", "owner", "run_url", "details")}
    payload["text"] = text
    return Message(subject=subject, text=text, blocks=blocks, html=body_html, payload=payload)
