"""``airflow-dataops``: validate pipeline files in CI, render what a pipeline becomes, print the config's
JSON Schema, acknowledge alerts. ``validate``, ``render`` and ``schema`` need no Airflow database and
no connection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _dags_folder() -> Path:
    from airflow_dataops.settings import airflow_cfg_value

    configured = airflow_cfg_value("core", "dags_folder")
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "dags"


def _defaults():
    from airflow_dataops import settings
    from airflow_dataops.config.defaults import Defaults

    return Defaults(settings.get("default_conn_id"), settings.get("default_timestamp_column"))


def _root_for(target: Path) -> Path:
    """The dags folder no `.sql` path may leave: the configured one when ``target`` is inside it,
    else the folder given (or the file's folder)."""
    dags = _dags_folder().absolute()
    absolute = target.absolute()
    if absolute == dags or dags in absolute.parents:
        return dags
    return absolute if target.is_dir() else absolute.parent


def _read(path: Path, explicit: bool) -> bytes | str | None:
    """A pipeline file's bytes, or its error (unreadable, or over the size limit: checked before
    reading it whole); None for a file of a folder that is not a pipeline file."""
    from airflow_dataops.dag_builder.discovery import FileProblem, is_pipeline_file, read_pipeline_file

    content = read_pipeline_file(path, explicit=explicit)
    if isinstance(content, FileProblem):
        return content.message
    if content is None:
        return None
    return content if explicit or is_pipeline_file(content) else None


def _pipeline_files(paths: list[str]) -> list[tuple[Path, str, Path, bytes | str]]:
    """(path, name to show, dags folder, content or error) of every pipeline file under the given
    files/folders."""
    from airflow_dataops.dag_builder.discovery import find_pipeline_files

    out: list[tuple[Path, str, Path, bytes | str]] = []
    for raw in paths:
        target = Path(raw)
        if target.is_dir():
            root = _root_for(target)
            for path in find_pipeline_files(target):
                content = _read(path, explicit=False)
                if content is not None:
                    out.append((path, os.path.relpath(path), root, content))
        elif target.is_file():
            out.append((target, os.path.relpath(target), _root_for(target), _read(target, explicit=True)))
        else:
            print(f"{raw}: no such file or directory", file=sys.stderr)
            out.append((target, raw, Path(raw), "file not found"))
    return out


def _unexpected(shown: str, exc: Exception) -> str:
    from airflow_dataops.config.errors import unexpected_issue

    return str(unexpected_issue(shown, exc))


def cmd_validate(args: argparse.Namespace) -> int:
    from airflow_dataops.config.errors import duplicate_name_issues
    from airflow_dataops.config.resolve import environment_names, load_pipeline_text, validate_loaded

    paths = args.paths or [str(_dags_folder())]
    files = _pipeline_files(paths)
    defaults = _defaults()
    problems: list[str] = []
    names: dict[str, list[tuple[str, int, int]]] = {}
    for path, shown, root, content in files:
        if isinstance(content, str):
            problems.append(f"{shown}:1:1: (top level): {content}")
            continue
        try:
            loaded = load_pipeline_text(content, shown)
            issues = validate_loaded(loaded, shown, defaults, base_dir=path.parent, root=root)
        except Exception as exc:  # a bug: one clear line for this file, and go on with the others
            problems.append(_unexpected(shown, exc))
            continue
        problems += [str(issue) for issue in sorted(issues, key=lambda i: (i.line, i.column))]
        data = loaded.data
        for env in args.env or []:
            defined = environment_names(data) if isinstance(data, dict) else []
            if isinstance(data, dict) and "environments" in data and env not in defined:
                line, column = loaded.position(("environments",))
                problems.append(f"{shown}:{line}:{column}: environments: no environment {env!r} (defines: "
                                f"{', '.join(defined) or 'none'}): add one, it is required by --env")
        name = data.get("pipeline", {}).get("name") if isinstance(data, dict) and isinstance(data.get("pipeline"), dict) else None
        if isinstance(name, str):
            names.setdefault(name, []).append((shown, *loaded.position(("pipeline", "name"))))
    problems += [str(issue) for issue in duplicate_name_issues(names)]
    for line in problems:
        print(line)
    verdict = "ok" if not problems else f"{len(problems)} error(s)"
    print(f"airflow-dataops validate: {len(files)} pipeline file(s), {verdict}", file=sys.stderr)
    return 1 if problems else 0


def _find_pipeline(name: str, paths: list[str]) -> tuple[tuple[Path, Path, bytes] | None, list[str]]:
    """(path, dags folder, content) of the file defining pipeline ``name``, and the files that could
    not even be parsed (one of them may be the one: `validate` tells why)."""
    from airflow_dataops.config.yaml_loader import load_yaml

    unparsed = []
    for path, shown, root, content in _pipeline_files(paths):
        data = load_yaml(content, shown).data if isinstance(content, bytes) else None
        if not isinstance(data, dict):
            unparsed.append(shown)
        elif isinstance(data.get("pipeline"), dict) and data["pipeline"].get("name") == name:
            return (path, root, content), unparsed
    return None, unparsed


def cmd_render(args: argparse.Namespace) -> int:
    from airflow_dataops import settings
    from airflow_dataops.config.errors import ConfigError
    from airflow_dataops.config.resolve import resolve
    from airflow_dataops.dag_builder.spec import build_spec

    found, unparsed = _find_pipeline(args.name, args.path or [str(_dags_folder())])
    if found is None:
        print(f"no pipeline named {args.name!r} under {', '.join(args.path or [str(_dags_folder())])}", file=sys.stderr)
        if unparsed:
            print(f"  {len(unparsed)} file(s) there do not parse ({', '.join(unparsed[:5])}): `airflow-dataops "
                  "validate` shows why", file=sys.stderr)
        return 2
    path, root, content = found
    environment = args.env or settings.get("environment")
    shown = os.path.relpath(path)
    try:
        config = resolve(content, shown, environment, _defaults(), base_dir=path.parent, root=root)
        spec = build_spec(config, path.parent, root)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: say so in one line, not a traceback
        print(_unexpected(shown, exc), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(spec, indent=2))
        return 0
    print(render_text(spec))
    return 0


def render_text(spec: dict) -> str:
    schedule = spec["schedule"]
    if schedule["kind"] == "none":
        when = "manual (no schedule)"
    elif schedule["kind"] == "cron":
        table = "CronDataIntervalTimetable" if schedule["data_interval"] else "CronTriggerTimetable"
        when = f"{schedule['cron']} ({schedule['timezone']}, {table})"
    elif schedule["kind"] == "assets":
        when = "on asset updates: " + ", ".join(schedule["uris"])
    else:
        when = schedule["value"]
    checks = spec["checks"]
    lines = [
        f"DAG {spec['dag_id']}  (environment {spec['environment']}, notifications {'on' if spec['notifications'] else 'off'})",
        f"  file:      {spec['file']}",
        f"  schedule:  {when}",
        f"  start:     {spec['start_date']}  catchup={spec['catchup']}  max_active_runs={spec['max_active_runs']}",
        f"  owner:     {spec['default_args']['owner']}  retries={spec['default_args']['retries']}",
        f"  tags:      {', '.join(spec['tags'])}",
        f"  dataset:   {checks['table']} on {checks['conn_id']} (timestamp {checks['timestamp_column']}), publishes {checks['asset']}",
        "  tasks:",
    ]
    for source in spec["sources"]:
        what = source.get("asset") or f"{source['table']}.{source['timestamp_column']} on {source['conn_id']}"
        lines.append(f"    wait_for_{source['name']}: freshness sensor ({source['mode']}) {what} newer than {source['max_age_s']:g}s, on timeout {source['on_timeout']}")
    for task in spec["tasks"]:
        upstream = f"  <- {', '.join(task['upstream'])}" if task["upstream"] else ""
        body = (task.get("sql") or task.get("bash") or task.get("callable")
                or f"file {task.get('sql_file') or task.get('bash_file')}")
        lines.append(f"    {task['id']}: {task['kind']} {str(body).splitlines()[0][:70]}{upstream}")
    for source_task, items in checks["frames"].items():
        lines.append(f"    quality_checks_{source_task}: {len(items)} pandas check(s) on {source_task}'s DataFrame")
    if checks["items"]:
        lines.append(f"    quality_checks: {len(checks['items'])} check(s)")
        for item in checks["items"]:
            keys = {k: v for k, v in item.items() if k not in ("type", "action", "name")}
            lines.append(f"      - {item['name']} [{item['type']}, {item.get('action', 'fail')}] {json.dumps(keys)}")
    if spec.get("sla"):
        lines.append(f"  sla:       freshness {spec['sla']['freshness']}s after the run is queued (Deadline Alert)")
    alerts = spec.get("alerts")
    if alerts:
        lines.append(f"  alerts:    {json.dumps(alerts['channels'])}")
        if alerts.get("on"):
            lines.append(f"    routing: {json.dumps(alerts['on'])}")
        if alerts.get("escalation"):
            lines.append(f"    escalation: after {alerts['escalation']['after']:g}s to connection {alerts['escalation']['to']}")
    return "\n".join(lines)


def cmd_schema(args: argparse.Namespace) -> int:
    from airflow_dataops.config.model import PipelineFile

    schema = PipelineFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "airflow-dataops pipeline"
    print(json.dumps(schema, indent=2))
    return 0


def _results_store(command: str):
    """The results store ``ack``/``purge`` work on, or None (after saying why) when there is none.

    Connections are looked up as Airflow's own CLI does (``_AIRFLOW_PROCESS_CONTEXT=server``): env
    vars, secrets backends and the metadata database (Admin > Connections); a plain process would
    skip the metadata database. Without the connection this machine's tasks write the embedded
    SQLite file, so that is the store when it exists (said on stderr); when it does not either,
    there is nothing to act on and nothing is created."""
    from airflow_dataops import settings
    from airflow_dataops.store.base import embedded_path

    if _metadata_db_reachable():
        os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    from airflow_dataops.hooks.sql import connection_exists
    from airflow_dataops.store.results import ResultsStore

    conn_id = settings.get("results_conn_id")
    if not connection_exists(conn_id) and not embedded_path().exists():
        print(
            f"airflow-dataops {command}: no results store found: the connection {conn_id!r} ([dataops] "
            "results_conn_id) is not in environment variables, secrets backends or Airflow's metadata database "
            f"({_metadata_db_name()}), and this machine has no embedded store ({embedded_path()}). Run this where "
            "Airflow's configuration (AIRFLOW_HOME, [database] sql_alchemy_conn) or the connection is visible.",
            file=sys.stderr,
        )
        return None
    store = ResultsStore.default()
    print(f"results store: {store.description}", file=sys.stderr)
    return store


def _metadata_db_name() -> str:
    from airflow_dataops.settings import airflow_cfg_value

    url = airflow_cfg_value("database", "sql_alchemy_conn") or f"sqlite:///{_airflow_home()}/airflow.db"
    from airflow_dataops.alerting.secrets import scrub

    return scrub(url)


def _airflow_home() -> str:
    return os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")


def _metadata_db_reachable() -> bool:
    """False only for a SQLite metadata database whose file does not exist (looking would create an
    empty one): then there is nothing to find there."""
    from airflow_dataops.settings import airflow_cfg_value

    url = airflow_cfg_value("database", "sql_alchemy_conn") or f"sqlite:///{_airflow_home()}/airflow.db"
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///").split("?")[0]).is_file()
    return True


def cmd_ack(args: argparse.Namespace) -> int:
    from airflow_dataops import settings
    from airflow_dataops.store.alerts import acknowledge, open_alerts

    store = _results_store("ack")
    if store is None:
        return 2
    by = args.by or os.environ.get("USER") or "cli"
    environment = args.env or settings.get("environment")
    narrow = {"run_id": args.run, "event": args.event, "subject": args.subject}
    count = acknowledge(store.engine, args.pipeline, args.run, by, event=args.event, subject=args.subject,
                        environment=environment)
    scope = ", ".join(f"{name.removesuffix('_id')} {value}" for name, value in narrow.items() if value) or "all runs"
    print(f"acknowledged {count} open alert(s) of {args.pipeline} ({scope}) in {environment} as {by}")
    if not count:  # run ids repeat across environments sharing a store: say where the alerts are
        elsewhere = sorted({a["environment"] for a in open_alerts(store.engine, args.pipeline)
                            if all(value is None or a[name] == value for name, value in narrow.items())})
        if elsewhere:
            print(f"open alerts matching that are in environment(s) {', '.join(elsewhere)}: pass --env", file=sys.stderr)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    store = _results_store("purge")
    if store is None:
        return 2
    removed = store.purge(args.days)
    print("purged: " + ", ".join(f"{table} {count}" for table, count in removed.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airflow-dataops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check pipeline files in every environment (for CI)")
    p.add_argument("paths", nargs="*", help="files or folders (default: the Airflow dags folder)")
    p.add_argument("--env", action="append", help="an environment every pipeline must define (repeatable)")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("render", help="show the DAG a pipeline becomes")
    p.add_argument("name", help="pipeline name (the DAG id)")
    p.add_argument("--env", help="environment (default: [dataops] environment)")
    p.add_argument("--path", action="append", help="where to look (default: the dags folder)")
    p.add_argument("--json", action="store_true", help="print the DAG spec as JSON")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("schema", help="print the JSON Schema of pipeline files (editor completion)")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("ack", help="acknowledge open alerts so they do not escalate")
    p.add_argument("pipeline")
    p.add_argument("--run", help="one run id (default: every open alert of the pipeline)")
    p.add_argument("--event", help="only this event, e.g. check_failed (default: every event)")
    p.add_argument("--subject", help="only this subject: a check name, task id, source or sla (default: any)")
    p.add_argument("--env", help="the environment whose alerts these are (default: [dataops] environment)")
    p.add_argument("--by", help="who acknowledges (default: $USER)")
    p.set_defaults(func=cmd_ack)
    p = sub.add_parser("purge", help="delete results older than [dataops] results_retention_days")
    p.add_argument("--days", type=int, help="override the retention")
    p.set_defaults(func=cmd_purge)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
