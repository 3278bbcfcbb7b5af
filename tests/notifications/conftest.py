"""Notifier tests share the alerting fixtures (fake Slack, SMTP server, connections, stores)."""

from tests.alerting.conftest import connections, ctx, default_store, slack, smtp, store  # noqa: F401
