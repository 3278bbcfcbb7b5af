"""The task of a stand-in DAG for a pipeline file that does not validate: it fails with the errors.

Airflow 3.3 shows no parse warnings in the UI, so a broken YAML file becomes a visible DAG whose
docs list every error (file:line:col) and whose run fails with them.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class InvalidPipelineOperator(BaseOperator):
    ui_color = "#f8d7da"

    def __init__(self, *, file: str, errors: list[str], **kwargs: Any):
        super().__init__(**kwargs)
        self.file = file
        self.errors = list(errors)

    def execute(self, context: Any) -> None:
        from airflow_dataops.compat import AirflowFailException

        shown = "\n".join(f"  {e}" for e in self.errors[:50])
        more = f"\n  ... and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        raise AirflowFailException(
            f"pipeline file {self.file} is invalid ({len(self.errors)} error(s)); fix them and run "
            f"`airflow-dataops validate {self.file}`:\n{shown}{more}"
        )
