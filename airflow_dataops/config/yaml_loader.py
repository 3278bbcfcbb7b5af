"""Safe YAML for pipeline files: positions for every key, and none of YAML's surprises.

- Only plain data: explicit tags (``!!python/...``, custom ``!tags``) are refused.
- Aliases are refused (alias bombs; and a pipeline file has no need for them).
- Duplicate keys are an error naming both lines.
- No silent coercions: only ``true``/``false``, ``null``/``~``, decimal integers and decimal floats
  are resolved; ``NO``, ``yes``, ``on``, ``12:30``, ``0o17``, ``2024-01-01`` stay strings. A field that
  wants a string refuses a number (``1.10`` must be quoted there) instead of guessing.
- Files over ``MAX_BYTES`` are refused before parsing, and nesting deeper than ``MAX_DEPTH`` is refused.
- Text must be UTF-8 (a byte-order mark is allowed); anything else is an error with its position.
- Whatever the input, ``load_yaml`` returns problems as ``issues``; it never raises.

Uses libyaml (the C parser) when available: it is several times faster, and parse cost matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from airflow_dataops.config.errors import ConfigIssue, shown
from airflow_dataops.config.limits import MAX_BYTES, MAX_DEPTH

DEPTH_HELP = f"the file is nested deeper than {MAX_DEPTH} levels: a pipeline file needs only a few, flatten it"

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
    # The source text of numbers that read differently from how they are written (``1.10``, ``007``).
    texts: dict[Path_, str] = field(default_factory=dict)

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
        self.texts: dict[Path_, str] = {}
        self.has_aliases = False
        self._too_deep = False
        self._seen: set[int] = set()

    def issue(self, node: yaml.Node, path: Path_, message: str, value: Any = None) -> None:
        mark = node.start_mark
        self.issues.append(ConfigIssue(self.file, mark.line + 1, mark.column + 1, path, message, value))

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if id(node) in self._seen:
            # An alias: the composed node is the anchor's, so its position is not the alias's.
            # `load_yaml` reports every alias at its own position from the event stream.
            self.has_aliases = True
            return None
        self._seen.add(id(node))
        if len(path) > MAX_DEPTH:
            if not self._too_deep:
                self._too_deep = True
                self.issue(node, path[:2], DEPTH_HELP)
            return None
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
                    f"duplicate key {shown(key)} (first defined on line {first_line[key]}): keep one of them",
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
        if tag in (_INT, _FLOAT):
            value = int(text) if tag == _INT else float(text)
            if repr(value) != text:
                self.texts[path] = text
            return value
        self.issue(node, path, f"YAML tag {tag!r} is not allowed in pipeline files: remove it", text)
        return None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _decode(data: bytes, file: str) -> tuple[str | None, ConfigIssue | None]:
    data = data.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = data[: exc.start].decode("utf-8", "replace")
        line, column = _line_col(text, len(text))
        return None, ConfigIssue(
            file, line, column, (), f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} here): save it as UTF-8",
        )


def _event_walk(text: str, file: str) -> tuple[list[ConfigIssue], tuple[int, int, Path_] | None]:
    """Every alias at its own position and key path, and the first place nested deeper than
    ``MAX_DEPTH``: from the event stream, which keeps each alias's mark (the composed graph does not)."""
    issues: list[ConfigIssue] = []
    too_deep: tuple[int, int, Path_] | None = None
    # One frame per open collection: [path, is_mapping, next key (mappings) or index (sequences), expecting_key]
    frames: list[list[Any]] = []
    loader = _Loader(text)

    def value_path() -> Path_:
        path, is_map, slot, _ = frames[-1]
        return (*path, slot) if slot is not None else path

    def advance() -> None:
        if frames:
            frame = frames[-1]
            if frame[1]:
                frame[3] = not frame[3]
            else:
                frame[2] += 1

    try:
        while loader.check_event():
            event = loader.get_event()
            starts = isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frames.pop()
                advance()
                continue
            if not isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)) and not starts:
                continue
            in_key = bool(frames) and frames[-1][1] and frames[-1][3]
            path = (frames[-1][0] if in_key else value_path()) if frames else ()
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                issues.append(ConfigIssue(file, mark.line + 1, mark.column + 1, path,
                                          "YAML aliases (*name) are not allowed in pipeline files: write the value out"))
            if in_key and isinstance(event, yaml.ScalarEvent):
                frames[-1][2] = event.value
            if starts:
                if len(frames) > MAX_DEPTH and too_deep is None:
                    too_deep = (event.start_mark.line + 1, event.start_mark.column + 1, path[:2])
                is_map = isinstance(event, yaml.MappingStartEvent)
                frames.append([path, is_map, None if is_map else 0, True])
            else:
                advance()
    except yaml.YAMLError:
        pass  # the composer reported it already
    finally:
        loader.dispose()
    return issues, too_deep


def _yaml_error(exc: Exception, text: str, file: str) -> ConfigIssue:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return ConfigIssue(file, line, col, (), f"invalid YAML: {problem}")
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = _line_col(text, min(exc.position, len(text)))
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        return ConfigIssue(file, line, col, (), f"invalid YAML: the control character U+{char:04X} is not allowed "
                           "in YAML text: remove it")
    return ConfigIssue(file, 1, 1, (), f"invalid YAML: {exc}")


def load_yaml(text: str | bytes, file: str = "<string>") -> LoadedYaml:
    """Parse one YAML document into plain data with positions; problems become ``issues``."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_BYTES:
        return LoadedYaml(None, issues=[oversize_issue(file, size)])
    if isinstance(text, bytes):
        decoded, problem = _decode(text, file)
        if problem is not None:
            return LoadedYaml(None, issues=[problem])
        text = decoded
    text = text.removeprefix("\ufeff")
    loader = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
    except RecursionError:
        _, deep = _event_walk(text, file)
        line, column, path = deep or (1, 1, ())
        return LoadedYaml(None, issues=[ConfigIssue(file, line, column, path, DEPTH_HELP)])
    except yaml.YAMLError as exc:
        return LoadedYaml(None, issues=[_yaml_error(exc, text, file)])
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        return LoadedYaml(None)
    builder = _Builder(file)
    data = builder.build(root, ())
    issues = builder.issues
    if builder.has_aliases:
        aliases, _ = _event_walk(text, file)
        issues = issues + aliases
    return LoadedYaml(data, builder.positions, issues, builder.texts)


def oversize_issue(file: str, size: int) -> ConfigIssue:
    return ConfigIssue(
        file, 1, 1, (), f"file is {size:,} bytes, over the {MAX_BYTES:,}-byte limit for a pipeline file: split it",
    )
