"""The ``alerts`` section: where alerts go, which events go where, and who hears when nobody acts.

Secrets never live here: channels name Airflow connections (or a Slack channel / an address sent
through the default connections). ``to_runtime()`` is the plain dict the notifiers receive.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from airflow_dataops.config.checks import StrictModel
from airflow_dataops.config.types import Duration, PlainText

EVENTS = ("check_failed", "check_warned", "task_failed", "freshness_timeout", "sla_miss", "recovered")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SLACK_CHANNEL_RE = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{8,})$")

# Things that must never be written into a pipeline file (checked over every string of the file).
SECRET_PATTERNS = (
    (re.compile(r"xox[a-z]-[A-Za-z0-9-]{6,}"), "a Slack token"),
    (re.compile(r"hooks\.slack\.com/|/services/T[A-Z0-9]+/B[A-Z0-9]+/\S+"), "a Slack webhook URL"),
    (re.compile(r"discord(?:app)?\.com/api/webhooks/"), "a webhook URL"),
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
)
SECRET_FIX = "secrets stay in Airflow connections: create a connection and refer to it by id (`- connection: <conn_id>`)"


def find_secret(text: str) -> str | None:
    for pattern, what in SECRET_PATTERNS:
        if pattern.search(text):
            return what
    return None


def _admit(schema: dict[str, Any], *alternatives: dict[str, Any]) -> None:
    schema["anyOf"] = [*schema.get("anyOf", []), *alternatives]


class SlackChannel(StrictModel):
    channel: PlainText
    conn_id: PlainText | None = Field(None, description="Default: [dataops] slack_conn_id.")

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not SLACK_CHANNEL_RE.match(value):
            raise ValueError(f"{value!r} is not a Slack channel: write it like \"#data-alerts\" (lower case) or a channel id")
        return value


class EmailChannel(StrictModel):
    to: list[PlainText] = Field(min_length=1)
    conn_id: PlainText | None = Field(None, description="Default: [dataops] smtp_conn_id.")

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not EMAIL_RE.match(address):
                raise ValueError(f"{address!r} is not an email address")
        return value


class Channel(StrictModel):
    """Exactly one of `slack`, `email` or `connection`."""

    # The short forms (a channel name, an address, a list of addresses) are normalised to the long
    # forms before validation; the JSON Schema admits them too.
    slack: SlackChannel | None = Field(None, description='"#channel", or {channel, conn_id}.',
                                       json_schema_extra=lambda s: _admit(s, {"type": "string"}))
    email: EmailChannel | None = Field(None, description="An address, a list of them, or {to, conn_id}.",
                                       json_schema_extra=lambda s: _admit(s, {"type": "string"},
                                                                          {"type": "array", "items": {"type": "string"}}))
    connection: PlainText | None = Field(None, description="Any Airflow connection: Slack API, Slack webhook, SMTP or HTTP.")

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError('a channel is a mapping like {slack: "#x"}, {email: "a@b.c"} or {connection: conn_id}')
        data = dict(data)
        if isinstance(data.get("slack"), str):
            data["slack"] = {"channel": data["slack"]}
        if isinstance(data.get("email"), str):
            data["email"] = {"to": [data["email"]]}
        elif isinstance(data.get("email"), list):
            data["email"] = {"to": data["email"]}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Channel:
        given = [k for k in ("slack", "email", "connection") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a channel names exactly one of slack, email or connection (got {given or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("slack", "email", "connection") if getattr(self, k) is not None)

    @property
    def target(self) -> str:
        if self.slack:
            return self.slack.channel
        if self.email:
            return ",".join(self.email.to)
        return self.connection or ""

    def to_runtime(self) -> dict[str, Any]:
        value = getattr(self, self.kind)
        return {self.kind: value.model_dump(mode="json") if hasattr(value, "model_dump") else value}


class Escalation(StrictModel):
    after: Duration = Field(description="Escalate an alert nobody acknowledged or resolved within this time.")
    to: PlainText = Field(description="Id of an Airflow connection (Slack API, Slack webhook, SMTP or HTTP).")


class AlertsConfig(StrictModel):
    channels: list[Channel] = Field(default_factory=list)
    on: dict[Literal[EVENTS], list[PlainText]] | None = Field(  # type: ignore[valid-type]
        None, description="Narrow which events go where: event -> channel kinds (slack, email, connection) or "
        "exact targets (\"#chan\", an address, a connection id). Events not listed go to every channel; [] to none.",
    )
    escalation: Escalation | None = None
    repeat: bool | None = Field(
        None, description="Alert on every run while a check keeps failing; default [dataops] alert_on_repeat "
        "(False: only when it starts, and once when it recovers).",
    )

    @model_validator(mode="after")
    def _selectors_exist(self) -> AlertsConfig:
        known = {"slack", "email", "connection"}
        for channel in self.channels:
            known.add(channel.target)
            if channel.email:
                known.update(channel.email.to)
        for event, selectors in (self.on or {}).items():
            for selector in selectors:
                if selector not in known:
                    raise ValueError(
                        f"alerts.on.{event}: {selector!r} matches no channel: use slack, email, connection, or a "
                        "target listed in alerts.channels"
                    )
        return self

    def to_runtime(self) -> dict[str, Any]:
        return {
            "channels": [c.to_runtime() for c in self.channels],
            "on": {k: list(v) for k, v in self.on.items()} if self.on is not None else None,
            "escalation": (
                {"after": self.escalation.after.total_seconds(), "to": self.escalation.to} if self.escalation else None
            ),
            "repeat": self.repeat,
        }
