"""Parse cost of the YAML DAG factory, against a baseline measured in the same run.

    python benchmarks/bench_parse.py            # N = 10, 100, 500; 5 repeats each
    python benchmarks/bench_parse.py --quick    # N = 10, 2 repeats (what CI runs)

For each N it writes N pipeline files (sla, alerts with escalation, a freshness source, a SQL task,
a bash task, 5 checks) into a fresh dags folder and measures, each in a fresh process with Airflow
already imported (as the dag-processor's parse subprocess has it):

- factory:   DagBag parse of the loader file, warm cache (the steady state: a re-parse every 30 s)
- cold:      the same with an empty cache (the first parse after a deploy)
- baseline:  DagBag parse of ONE Python file that builds the same N DAGs with the same operators in
             a loop (the same `build_dag` over specs held in the file: pure DAG + operator cost)
- dag-factory 1.1: the same N DAGs (same operators; no deadlines/alert watch, which it cannot
             express) from one YAML per DAG, as a peer
- task start: the worker's parse for one task (`_AIRFLOW_PARSING_CONTEXT_DAG_ID` set), loader vs a
             Python file holding just that DAG.

Targets (issue 2): factory/baseline <= 1.15; task start <= 15 ms and flat in N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PIPELINE = """\
pipeline:
  name: {name}
  owner: data-team
  schedule: "0 5 * * *"
  tags: [bench]
  sla:
    freshness: "2 hours"
dataset:
  conn_id: warehouse
  table: analytics.{name}
  timestamp_column: updated_at
sources:
  - table: raw.{name}
    conn_id: warehouse
    timestamp_column: loaded_at
    max_age: "1 day"
tasks:
  - id: load
    sql: "INSERT INTO analytics.{name} SELECT * FROM raw.{name}"
    conn_id: warehouse
  - id: refresh
    bash: "echo refresh {name}"
quality_checks:
  - type: row_count
    threshold: 100
  - type: null_check
    columns: [id, customer_id]
    action: warn
  - type: unique
    columns: [id]
  - type: accepted_values
    column: status
    values: [placed, shipped, delivered]
  - type: freshness
    max_age: "2 hours"
alerts:
  channels:
    - slack: "#data-alerts"
  escalation:
    after: "15 minutes"
    to: data-oncall
"""

DAG_FACTORY = """\
{name}:
  default_args:
    owner: data-team
    start_date: 2024-01-01
  schedule: "0 5 * * *"
  catchup: false
  tags: [bench]
  tasks:
    - task_id: wait_for_raw
      operator: airflow_dataops.sensors.freshness.FreshnessSensor
      conn_id: warehouse
      table: raw.{name}
      timestamp_column: loaded_at
      max_age: 86400
    - task_id: load
      operator: airflow.providers.common.sql.operators.sql.SQLExecuteQueryOperator
      conn_id: warehouse
      sql: "INSERT INTO analytics.{name} SELECT * FROM raw.{name}"
      dependencies: [wait_for_raw]
    - task_id: refresh
      operator: airflow.providers.standard.operators.bash.BashOperator
      bash_command: "echo refresh {name}"
      dependencies: [load]
    - task_id: quality_checks
      operator: airflow_dataops.operators.quality.DataQualityOperator
      conn_id: warehouse
      table: analytics.{name}
      timestamp_column: updated_at
      checks:
        - {{type: row_count, threshold: 100}}
        - {{type: null_check, columns: [id, customer_id], action: warn}}
        - {{type: unique, columns: [id]}}
        - {{type: accepted_values, column: status, values: [placed, shipped, delivered]}}
        - {{type: freshness, max_age: "2 hours"}}
      dependencies: [refresh]
"""

MEASURE = r"""
import json, os, sys, time
import airflow.sdk  # the dag-processor's parse process has Airflow loaded already
from airflow_dataops.compat import dagbag_class
DagBag = dagbag_class()
HEAVY = ("great_expectations", "pandas", "psycopg2", "asyncpg")
# What Airflow's own import already loaded is not parse cost (Airflow 3.1's imports psycopg2).
preloaded = {m for m in HEAVY if m in sys.modules}
mode, path = sys.argv[1], sys.argv[2]
clock = time.process_time  # CPU time of this process: robust to other load on the machine
if mode == "dagbag":
    start = clock()
    bag = DagBag(dag_folder=path, safe_mode=False)
    elapsed = clock() - start
    count, errors = len(bag.dags), len(bag.import_errors)
else:
    # "warm": imports done by a first parse of the reference file (sys.argv[3]), then the median of
    # 15 parses of `path`: what the loader itself costs when a worker parses for one task.
    import runpy, statistics
    runpy.run_path(sys.argv[3])
    runpy.run_path(path)
    times = []
    for _ in range(15):
        start = clock()
        namespace = runpy.run_path(path)
        times.append(clock() - start)
    elapsed = statistics.median(times)
    count, errors = sum(type(v).__name__ == "DAG" for v in namespace.values()), 0
heavy = sorted(m for m in HEAVY if m in sys.modules and m not in preloaded)
print(json.dumps({"seconds": elapsed, "dags": count, "errors": errors, "heavy": heavy}))
"""


def run(mode: str, path: Path, env: dict[str, str], reference: Path | None = None) -> dict:
    extra = [str(reference)] if reference else []
    out = subprocess.run([sys.executable, "-c", MEASURE, mode, str(path), *extra], env=env, capture_output=True,
                         text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"measurement of {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(mode: str, path: Path, env: dict[str, str], repeats: int, reference: Path | None = None) -> tuple[float, dict]:
    samples = [run(mode, path, env, reference) for _ in range(repeats)]
    return statistics.median(s["seconds"] for s in samples), samples[-1]


def interleaved(paths: dict[str, Path], env: dict[str, str], repeats: int) -> dict[str, tuple[float, dict]]:
    """DagBag parses of several files, alternating, so that load changes hit them alike."""
    samples: dict[str, list[dict]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, path in paths.items():
            samples[name].append(run("dagbag", path, env))
    return {name: (statistics.median(s["seconds"] for s in got), got[-1]) for name, got in samples.items()}


def setup(root: Path, n: int) -> dict[str, Path]:
    sys.path.insert(0, str(REPO))
    from airflow_dataops.config.resolve import resolve
    from airflow_dataops.dag_builder.spec import build_spec

    factory = root / "factory"
    factory.mkdir()
    (factory / "dataops_pipelines.py").write_text((REPO / "dags" / "dataops_pipelines.py").read_text())
    peer = root / "dagfactory"
    peer.mkdir()
    specs = []
    for i in range(n):
        name = f"bench_{i:04d}"
        text = PIPELINE.format(name=name)
        (factory / f"{name}.yaml").write_text(text)
        (peer / f"{name}.yml").write_text(DAG_FACTORY.format(name=name))
        specs.append(build_spec(resolve(text, f"{name}.yaml", "development"), factory))
    baseline = root / "baseline"
    baseline.mkdir()
    (baseline / "all_dags.py").write_text(
        "# airflow DAG baseline: the same DAGs built in a loop from specs held in this file\n"
        "import json\nfrom airflow_dataops.dag_builder.build import build_dag\n"
        f"SPECS = json.loads({json.dumps(json.dumps(specs))})\n"
        "for spec in SPECS:\n    globals()[spec['dag_id']] = build_dag(spec)\n"
    )
    single = root / "single"
    single.mkdir()
    (single / "one_dag.py").write_text(
        "# airflow DAG: just the one being run\nimport json\nfrom airflow_dataops.dag_builder.build import build_dag\n"
        f"dag = build_dag(json.loads({json.dumps(json.dumps(specs[n // 2]))}))\n"
    )
    (peer / "load_dags.py").write_text(
        "# airflow DAG loader for dag-factory\nfrom dagfactory import load_yaml_dags\n"
        f"load_yaml_dags(globals_dict=globals(), dags_folder={str(peer)!r}, suffix=['.yml'])\n"
    )
    return {"factory": factory, "baseline": baseline, "single": single, "peer": peer, "target": specs[n // 2]["dag_id"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="N=10, 2 repeats (CI)")
    parser.add_argument("--sizes", default="10,100,500")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-dag-factory", action="store_true")
    args = parser.parse_args()
    sizes = [10] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeats = 2 if args.quick else args.repeats
    try:
        import dagfactory  # noqa: F401

        with_peer = not args.no_dag_factory
    except ImportError:
        with_peer = False
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
            root = Path(tmp)
            paths = setup(root, n)
            env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__DATAOPS__ENVIRONMENT": "development",
                   "AIRFLOW__DATAOPS__PIPELINES_CACHE_DIR": str(root / "cache"), "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
                   "PYTHONPATH": str(REPO)}
            env.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
            loader = paths["factory"] / "dataops_pipelines.py"
            cold = run("dagbag", loader, env)  # also fills the cache and the dag_id index
            files = {"factory": loader, "baseline": paths["baseline"] / "all_dags.py"}
            if with_peer:
                files["peer"] = paths["peer"] / "load_dags.py"
            measured = interleaved(files, env, repeats)
            (factory, sample), (baseline, base_sample) = measured["factory"], measured["baseline"]
            assert sample["dags"] == base_sample["dags"] == n and sample["errors"] == 0, (sample, base_sample)
            peer = measured["peer"][0] if with_peer else None
            task_env = {**env, "_AIRFLOW_PARSING_CONTEXT_DAG_ID": paths["target"]}
            one_dag = paths["single"] / "one_dag.py"
            task, task_sample = median("run", loader, task_env, repeats, reference=one_dag)
            single = median("run", one_dag, task_env, repeats, reference=one_dag)[0]
            assert task_sample["dags"] == 1, task_sample
            rows.append({"n": n, "cold": cold["seconds"], "factory": factory, "baseline": baseline, "peer": peer,
                         "task": task, "single": single, "heavy": sample["heavy"] or task_sample["heavy"]})
    print(f"\nparse cost in CPU seconds, median of {repeats} fresh processes (interleaved); ratios against the baseline of the same run")
    print("task start: CPU ms of one worker parse with imports warm (loader with the parsing context vs a .py holding only that DAG)")
    print(f"{'N':>5} {'baseline':>9} {'factory':>9} {'ratio':>6} {'cold':>8} {'dag-factory':>12} {'ratio':>6} "
          f"{'task start':>11} {'one-DAG .py':>12} {'heavy imports':>14}")
    for r in rows:
        peer = f"{r['peer']:12.3f} {r['peer'] / r['baseline']:6.2f}" if r["peer"] is not None else f"{'n/a':>12} {'':>6}"
        print(f"{r['n']:>5} {r['baseline']:9.3f} {r['factory']:9.3f} {r['factory'] / r['baseline']:6.2f} {r['cold']:8.3f} "
              f"{peer} {r['task'] * 1000:9.1f}ms {r['single'] * 1000:10.1f}ms {','.join(r['heavy']) or 'none':>14}")
    print("\ntargets: factory/baseline <= 1.15; task start <= 15 ms and flat in N; no heavy imports at parse time")
    print(yaml_costs())


def yaml_costs() -> str:
    """load_yaml alone, in this process: the repo's pipeline files, and hostile nesting (which
    took seconds with the pure-Python parser)."""
    import time

    import yaml

    sys.path.insert(0, str(REPO))
    from airflow_dataops.config.yaml_loader import load_yaml

    def best(text: bytes, repeats: int = 20) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            load_yaml(text, "bench.yaml")
            times.append(time.perf_counter() - start)
        return min(times)

    examples = [p.read_bytes() for p in sorted((REPO / "dags").rglob("*.yaml"))]
    repo = sum(best(text) for text in examples)
    deep = {size: best(b"pipeline:\n  tags: " + b"[" * (size // 2) + b"]" * (size // 2), 5) for size in (5_000, 100_000)}
    return (f"YAML (libyaml {'yes' if yaml.__with_libyaml__ else 'NO'}): the repo's {len(examples)} pipeline files "
            f"{repo * 1000:.2f} ms; `[[[...]]]` 5 KB {deep[5_000] * 1000:.2f} ms, 100 KB {deep[100_000] * 1000:.2f} ms")


if __name__ == "__main__":
    main()
