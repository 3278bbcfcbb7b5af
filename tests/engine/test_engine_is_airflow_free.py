"""The check engine imports nothing from Airflow (reusable by the CLI, testable in milliseconds)."""

from __future__ import annotations

import subprocess
import sys


def test_engine_modules_import_without_airflow():
    code = (
        "import sys\n"
        "import airflow_dataops.engine.sql_runner, airflow_dataops.engine.pandas_runner\n"
        "import airflow_dataops.engine.gx_runner, airflow_dataops.engine.freshness\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
        "print('great_expectations' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "False", "Great Expectations is imported lazily, only when a check needs it"
