"""Alerting: one message builder, routing, claimed (exactly-once) dispatch, anti-fatigue, SLA deadlines
and escalation. See docs/alerting.md."""
