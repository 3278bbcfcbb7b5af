"""Deployment-wide defaults of a pipeline's dataset (from ``[dataops]``). Import-light on purpose:
the DAG loader needs it at parse time without loading the config models."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defaults:
    conn_id: str = "dataops_default"
    timestamp_column: str = "updated_at"
