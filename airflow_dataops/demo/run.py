"""Run one pipeline once, headless, and print the outcome (``make demo-run``).

    python -m airflow_dataops.demo.run PIPELINE

Loads the DAGs folder of the current Airflow configuration, runs the pipeline's DAG with
``dag.test()`` (in this process, against the migrated metadata database of ``$AIRFLOW_HOME``),
then prints every task's state and every check result the run stored. Exit status: 0 when the run
succeeded, 1 when it failed, 2 when the pipeline could not be loaded.
"""

from __future__ import annotations

import sys


FINISHED_OK = {"success", "skipped"}
FAILED = {"failed", "upstream_failed"}


def _load_dag(name: str):
    from airflow.configuration import conf

    from airflow_dataops.compat import dagbag_class

    DagBag = dagbag_class()
    folder = conf.get("core", "dags_folder")
    bag = DagBag(dag_folder=folder)
    dag = bag.get_dag(name)
    if dag is None:
        problems = "\n".join(f"  {path}: {error.strip().splitlines()[-1]}" for path, error in bag.import_errors.items())
        known = ", ".join(sorted(bag.dag_ids)) or "none"
        raise LookupError(
            f"no pipeline {name!r} in {folder} (DAGs found: {known})"
            + (f"\nimport errors:\n{problems}" if problems else "")
            + "\nfix: check the pipeline name, or run `airflow-dataops validate` on the dags folder"
        )
    return dag


def _check_lines(dag_id: str, run_id: str) -> list[str]:
    try:
        from airflow_dataops.store.results import ResultsStore

        rows = ResultsStore.default().results_for_run(dag_id, run_id)
    except Exception as exc:  # the outcome above is what matters; the store is a bonus here
        return [f"  (check results unavailable: {type(exc).__name__}: {exc})"]
    if not rows:
        return ["  (no check results stored for this run)"]
    return [
        f"  {row['status']:<7} {row['check_name']:<32} {row.get('table_name') or '':<20} {row.get('message') or ''}"
        for row in rows
    ]


def _latest_run(dag_id: str):
    from airflow.models.dagrun import DagRun

    runs = DagRun.find(dag_id=dag_id)
    return max(runs, key=lambda run: run.run_after) if runs else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        dag = _load_dag(args[0])
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    note = None
    try:
        dag_run = dag.test()
    except Exception as exc:
        # Airflow 3.3.2's dag.test() can fail after the run has finished (DagRun.update_state reads
        # the DAG's DeadlineAlerts by id, but the in-memory DAG holds them encoded): report the run's
        # stored outcome and say what happened, instead of a bare traceback.
        dag_run = _latest_run(dag.dag_id)
        if dag_run is None:
            raise
        note = f"note: dag.test() raised after the run was recorded: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    state = str(getattr(dag_run.state, "value", dag_run.state))
    tis = sorted(dag_run.get_task_instances(), key=lambda t: (t.start_date is None, t.start_date, t.task_id))
    ti_states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}
    if state not in ("success", "failed") and ti_states and all(s in FINISHED_OK for s in ti_states.values()):
        state = "success"  # every task finished well; Airflow just did not record the run's end
    elif state not in ("success", "failed") and any(s in FAILED for s in ti_states.values()):
        state = "failed"
    lines = ["", "=" * 72, f"pipeline {dag.dag_id}: run {dag_run.run_id} -> {state.upper()}", "tasks:"]
    lines.extend(f"  {ti_state:<16} {task_id}" for task_id, ti_state in ti_states.items())
    lines.append("checks:")
    lines.extend(_check_lines(dag.dag_id, dag_run.run_id))
    if note:
        lines.append(note)
    lines.append("=" * 72)
    print("\n".join(lines))
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
