"""airflow-dataops: data-quality checks, freshness sensors, SLA escalation and a YAML DAG factory
for Apache Airflow 3.

Importing this package is cheap on purpose: the worker re-parses DAG files before every task.
"""

__version__ = "0.1.0"
