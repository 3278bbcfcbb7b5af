"""airflow-dataops loader: every pipeline YAML under this folder becomes an Airflow DAG.

Airflow only parses .py files (and, in safe mode, only those mentioning "airflow" and "dag"), so
this small file hands the YAML files next to it to the airflow-dataops DAG factory.
"""

from airflow_dataops.dag_builder.loader import load_pipelines

load_pipelines(globals(), __file__)
