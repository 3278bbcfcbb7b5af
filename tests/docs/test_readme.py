"""The README stays true: its Python example builds a DAG, and every [dataops] option is documented."""

from __future__ import annotations

import re
from pathlib import Path

from airflow_dataops.settings import OPTIONS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_dataops_option_is_documented_with_its_default():
    for option in OPTIONS:
        row = next((line for line in README.splitlines() if line.startswith(f"| `{option.name}` |")), None)
        assert row is not None, f"[dataops] {option.name} is missing from the README's options table"
        if option.default and option.name != "pipelines_cache_dir":
            assert f"`{option.default}`" in row, f"README gives a different default for {option.name}: {row}"


def test_the_python_example_builds_a_dag():
    block = re.search(r"## Using it from Python\n\n```python\n(.*?)```", README, re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    from airflow.sdk import DAG

    dags = [v for v in namespace.values() if isinstance(v, DAG)] or [namespace["checks"].dag]
    dag = dags[0]
    assert dag.dag_id == "orders_python"
    assert {t.task_id for t in dag.tasks} == {"wait_for_raw_orders", "quality_checks"}
    assert dag.get_task("wait_for_raw_orders").deferrable is True


def test_the_quickstart_is_two_commands_and_ci_runs_the_test_command():
    quick = re.search(r"## Quickstart\n.*?```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in quick.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci
