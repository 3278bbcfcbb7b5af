"""Config problems: every one names file:line:col, the key path, the bad value and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


MAX_SHOWN = 80


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)``, cut to ``limit`` characters: a huge bad value must not flood the message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@dataclass(frozen=True, eq=False)
class ConfigIssue:
    file: str
    line: int
    column: int
    path: tuple[str | int, ...]
    message: str
    value: Any = None
    environment: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        env = f" [environment {self.environment}]" if self.environment else ""
        return f"{where}: {format_path(self.path)}: {self.message}{env}"


class ConfigError(ValueError):
    """All problems of one pipeline file, reported together."""

    def __init__(self, issues: list[ConfigIssue]):
        unique = {str(issue): issue for issue in issues}
        self.issues = sorted(unique.values(), key=lambda i: (i.file, i.line, i.column, str(i.path), i.message))
        super().__init__("\n".join(str(issue) for issue in self.issues))


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception, cut to a readable length."""
    return shown(f"{type(exc).__name__}: {exc}", 500).strip("'\"")


def unexpected_issue(file: str, exc: BaseException) -> ConfigIssue:
    """A bug of ours hit by one file: one clear line for that file, and the others go on."""
    return ConfigIssue(file, 1, 1, (), f"validating this file failed unexpectedly ({error_text(exc)}): please "
                       "report this as a bug of airflow-dataops")


def duplicate_name_issues(defined: dict[str, list[tuple[str, int, int]]]) -> list[ConfigIssue]:
    """One issue for each file whose pipeline name (the DAG id) another file has too.
    ``defined``: name -> the (file, line, column) of each `pipeline.name` giving it."""
    issues = []
    for name, places in defined.items():
        if len(places) > 1:
            for file, line, column in places:
                others = ", ".join(f"{f}:{n}" for f, n, _ in places if f != file)
                issues.append(ConfigIssue(file, line, column, ("pipeline", "name"), f"{name!r} is also the name of "
                                          f"{others}: pipeline names must be unique (the DAG id): rename one"))
    return issues
