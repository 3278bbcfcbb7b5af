"""Provider metadata for Airflow's ``apache_airflow_provider`` entry point.

Everything here is derived: the version from ``airflow_dataops.__version__`` and the ``[dataops]``
config section from ``airflow_dataops.settings.OPTIONS``, so ``airflow providers list`` and
``airflow config list`` can never disagree with the code. Importing this module is cheap: it is
called by every Airflow process that discovers providers.

No ``connection-types``: the package defines no hook of its own. Checks run against any existing
SQL connection (via common-sql / SQLAlchemy), alerts use the Slack, SMTP and HTTP providers'
connection types. No ``plugins`` either: the UI plugin is registered through the ``airflow.plugins``
entry point, and listing it in both places makes Airflow report it as registered twice.
"""

from __future__ import annotations

from typing import Any

from airflow_dataops import __version__
from airflow_dataops.settings import OPTIONS, SECTION

PACKAGE_NAME = "airflow-dataops"
INTEGRATION = "DataOps"
# The release that introduced every option that exists today; later options carry their own.
FIRST_RELEASE = "0.1.0"


def _config_section() -> dict[str, Any]:
    return {
        SECTION: {
            "description": "airflow-dataops: data-quality checks, freshness, alerting and the YAML pipeline factory.",
            "options": {
                option.name: {
                    "description": option.description,
                    "version_added": getattr(option, "version_added", None) or FIRST_RELEASE,
                    "type": option.type,
                    "example": option.example,
                    "default": option.default,
                }
                for option in OPTIONS
            },
        }
    }


def get_provider_info() -> dict[str, Any]:
    """The provider description Airflow validates against ``airflow/provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "DataOps",
        "description": (
            "DataOps in a box for Apache Airflow 3: data-quality checks, freshness sensors, "
            "SLA-miss escalation to Slack/email and a YAML DAG factory."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "tags": ["software"],
            }
        ],
        "operators": [{"integration-name": INTEGRATION, "python-modules": ["airflow_dataops.operators.quality"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_dataops.sensors.freshness", "airflow_dataops.sensors.asset_freshness"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_dataops.triggers.freshness"]}],
        "notifications": [
            "airflow_dataops.notifications.slack.SlackApiNotifier",
            "airflow_dataops.notifications.slack_webhook.SlackWebhookNotifier",
            "airflow_dataops.notifications.smtp.SmtpNotifier",
            "airflow_dataops.notifications.webhook.HttpWebhookNotifier",
        ],
        "config": _config_section(),
    }
