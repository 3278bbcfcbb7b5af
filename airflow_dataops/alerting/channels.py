"""Alert channels from a pipeline's ``alerts`` section, routing (``alerts.on``), and the notifier
for each channel. Channels are plain dicts ``{"kind", "target", "conn_id"}``; their ``key``
("slack:#x", "email:a@b.c", "connection:oncall") names them in the store and audit trail.
"""

from __future__ import annotations

from typing import Any

EVENTS = ("check_failed", "check_warned", "task_failed", "freshness_timeout", "sla_miss", "recovered")


def parse_channels(alerts: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``alerts.channels`` (long or short forms) as channel dicts."""
    channels = []
    for entry in (alerts or {}).get("channels") or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"an alert channel must be one of slack/email/connection, got {entry!r}")
        (kind, value), = entry.items()
        if kind == "slack":
            value = value if isinstance(value, dict) else {"channel": value}
            channels.append({"kind": "slack", "target": value["channel"], "conn_id": value.get("conn_id")})
        elif kind == "email":
            value = value if isinstance(value, dict) else {"to": value}
            to = value["to"] if isinstance(value["to"], list) else [value["to"]]
            channels.append({"kind": "email", "target": ",".join(to), "conn_id": value.get("conn_id")})
        elif kind == "connection":
            conn_id = value["conn_id"] if isinstance(value, dict) else value
            channels.append({"kind": "connection", "target": conn_id, "conn_id": conn_id})
        else:
            raise ValueError(f"unknown alert channel kind {kind!r}: use slack, email or connection")
    return channels


def key(channel: dict[str, Any]) -> str:
    return f"{channel['kind']}:{channel['target']}"


def _matches(channel: dict[str, Any], selector: str) -> bool:
    if selector == channel["kind"] or selector == channel["target"]:
        return True
    if channel["kind"] == "email" and selector in channel["target"].split(","):
        return True
    return bool(channel.get("conn_id")) and selector == channel["conn_id"]


def route(alerts: dict[str, Any] | None, event: str) -> list[dict[str, Any]]:
    """The channels ``event`` goes to: every channel, unless ``alerts.on`` lists the event."""
    channels = parse_channels(alerts)
    on = (alerts or {}).get("on")
    if not on or event not in on:
        return channels
    selectors = on[event] or []
    return [c for c in channels if any(_matches(c, s) for s in selectors)]


def escalation_channel(alerts: dict[str, Any] | None) -> dict[str, Any] | None:
    escalation = (alerts or {}).get("escalation")
    if not escalation or not escalation.get("to"):
        return None
    return {"kind": "connection", "target": escalation["to"], "conn_id": escalation["to"]}


def notifier_for(channel: dict[str, Any], alert: dict[str, Any]):
    """The notifier that delivers ``alert`` on ``channel`` (connection types are resolved now)."""
    if channel["kind"] == "slack":
        from airflow_dataops.notifications.slack import SlackApiNotifier

        return SlackApiNotifier(channel=channel["target"], slack_conn_id=channel.get("conn_id"), alert=alert)
    if channel["kind"] == "email":
        from airflow_dataops.notifications.smtp import SmtpNotifier

        return SmtpNotifier(to=channel["target"].split(","), smtp_conn_id=channel.get("conn_id"), alert=alert)
    from airflow_dataops.notifications.registry import notifier_for_connection

    return notifier_for_connection(channel["conn_id"], alert)
