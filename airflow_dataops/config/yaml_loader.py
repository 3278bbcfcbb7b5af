"""Safe YAML for pipeline files: positions for every key, and none of YAML's surprises.

- Only plain data: explicit tags (``!!python/...``, custom ``!tags``) are refused.
- Aliases are refused (alias bombs; and a pipeline file has no need for them).
- Duplicate keys are an error naming both lines.
- No silent coercions: only ``true``/``false``, ``null``/``~``, decimal integers and decimal floats
  are resolved; ``NO``, ``yes``, ``on``, ``12:30``, ``0o17``, ``2024-01-01`` stay strings. A field that
  wants a string refuses a number (``1.10`` must be quoted there) instead of guessing.
- Files over ``MAX_BYTES`` are refused before parsing.

Uses libyaml (the C parser) when available: it is several times faster, and parse cost matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from airflow_dataops.config.errors import ConfigIssue

MAX_BYTES = 1024 * 1024

Path_ = tuple[str | int, ...]


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2-core-like resolution, stricter: no octal/hex/sexagesimal/yes/no/on/off/dates."""


_Resolver.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Resolver.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)

_Parser = getattr(yaml, "CParser", None)
if _Parser is not None:

    class _Loader(yaml.CParser, yaml.constructor.BaseConstructor, _Resolver):  # type: ignore[misc]
        def __init__(self, stream):
            yaml.CParser.__init__(self, stream)
            yaml.constructor.BaseConstructor.__init__(self)
            _Resolver.__init__(self)

else:  # pragma: no cover - PyYAML without libyaml

    class _Loader(  # type: ignore[no-redef]
        yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
        yaml.constructor.BaseConstructor, _Resolver,
    ):
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.BaseConstructor.__init__(self)
            _Resolver.__init__(self)


_STR, _INT, _FLOAT, _BOOL, _NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


@dataclass
class LoadedYaml:
    """Plain data plus the (line, column) of every key path, both 1-based."""

    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def position(self, path: Path_) -> tuple[int, int]:
        """The nearest known position for a key path (walking up to its parents)."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.issues: list[ConfigIssue] = []
        self._seen: set[int] = set()

    def issue(self, node: yaml.Node, path: Path_, message: str, value: Any = None) -> None:
        mark = node.start_mark
        self.issues.append(ConfigIssue(self.file, mark.line + 1, mark.column + 1, path, message, value))

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if id(node) in self._seen:
            line, column = self.positions[path]
            self.issues.append(ConfigIssue(
                self.file, line, column, path, "YAML aliases (*name) are not allowed in pipeline files: write the value out",
            ))
            return None
        self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self.issue(node, path, f"YAML tag {node.tag!r} is not allowed: remove it")
                return None
            return [self.build(child, (*path, index)) for index, child in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any] | None:
        if node.tag != _MAP:
            self.issue(node, path, f"YAML tag {node.tag!r} is not allowed: remove it")
            return None
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                self.issue(key_node, path, "keys must be plain names (no merge keys `<<`, no complex keys)")
                continue
            key = key_node.value
            if key_node.tag not in (_STR, _INT, _BOOL, _NULL, _FLOAT):
                self.issue(key_node, path, f"YAML tag {key_node.tag!r} is not allowed: remove it")
                continue
            child = (*path, key)
            if key in first_line:
                self.issue(
                    key_node, child,
                    f"duplicate key {key!r} (first defined on line {first_line[key]}): keep one of them",
                )
                continue
            first_line[key] = key_node.start_mark.line + 1
            self.positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, child)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        tag, text = node.tag, node.value
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() == "true"
        if tag == _INT:
            return int(text)
        if tag == _FLOAT:
            return float(text)
        self.issue(node, path, f"YAML tag {tag!r} is not allowed in pipeline files: remove it", text)
        return None


def load_yaml(text: str | bytes, file: str = "<string>") -> LoadedYaml:
    """Parse one YAML document into plain data with positions; problems become ``issues``."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_BYTES:
        return LoadedYaml(None, issues=[ConfigIssue(
            file, 1, 1, (), f"file is {size:,} bytes, over the {MAX_BYTES:,}-byte limit for a pipeline file: split it",
        )])
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return LoadedYaml(None, issues=[ConfigIssue(file, line, col, (), f"invalid YAML: {problem}")])
    except yaml.YAMLError as exc:
        return LoadedYaml(None, issues=[ConfigIssue(file, 1, 1, (), f"invalid YAML: {exc}")])
    finally:
        loader.dispose()
    if root is None:
        return LoadedYaml(None)
    builder = _Builder(file)
    data = builder.build(root, ())
    return LoadedYaml(data, builder.positions, builder.issues)
