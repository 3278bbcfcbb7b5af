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
