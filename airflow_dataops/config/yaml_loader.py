"""Safe YAML for pipeline files: positions for every key, and none of YAML's surprises.

- Only plain data: explicit tags (``!!python/...``, custom ``!tags``) are refused.
- Aliases are refused (alias bombs; and a pipeline file has no need for them).
- Duplicate keys are an error naming both lines.
- No silent coercions: only ``true``/``false``, ``null``/``~``, decimal integers and decimal floats
  are resolved; ``NO``, ``yes``, ``on``, ``12:30``, ``0o17``, ``2024-01-01`` stay strings. A field that
  wants a string refuses a number (``1.10`` must be quoted there) instead of guessing.
- Files over ``MAX_BYTES`` are refused before parsing, and nesting deeper than ``MAX_DEPTH`` is refused
  (``config.yaml_depth`` finds deep flow nesting before the parser reads it).
- Integers over Python's 4,300-digit limit for ``int()`` are an error with their position.
- Text must be UTF-8 (a byte-order mark is allowed); anything else is an error with its position.
- Whatever the input, ``load_yaml`` returns problems as ``issues``; it never raises.

Uses libyaml (the C parser) when available: it is several times faster, and parse cost matters.
One pass over the parser's events builds the data, its positions and its issues (no composed node
graph, no recursion, no second parse for aliases).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from airflow_dataops.config.errors import ConfigIssue, shown
from airflow_dataops.config.limits import MAX_BYTES, MAX_DEPTH
from airflow_dataops.config.yaml_depth import too_deep_at

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

_C_PARSER = getattr(yaml, "__with_libyaml__", False)
if _C_PARSER:

    class _Loader(yaml.cyaml.CParser, _Resolver):  # type: ignore[misc]
        def __init__(self, stream):
            yaml.cyaml.CParser.__init__(self, stream)
            _Resolver.__init__(self)

else:  # pragma: no cover - PyYAML without libyaml

    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _Resolver):  # type: ignore[no-redef]
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
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


_SKIP = object()  # the value of a refused key: read past it, keep nothing
_ALLOWED_KEY_TAGS = (_STR, _INT, _BOOL, _NULL, _FLOAT)
_NODE_EVENTS = (yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
_END_EVENTS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


class _TooDeep(Exception):
    def __init__(self, issue: ConfigIssue):
        self.issue = issue


class _Frame:
    """One open collection. ``discard``: its content is refused (a YAML tag, a complex or duplicate
    key): it is read past, only its aliases are reported."""

    __slots__ = ("path", "value", "is_map", "index", "key", "expect_key", "first_line", "discard", "is_key", "mark")

    def __init__(self, path: Path_, is_map: bool, discard: bool, is_key: bool, mark: Any):
        self.path, self.is_map, self.discard, self.is_key, self.mark = path, is_map, discard, is_key, mark
        self.value: Any = None if discard else ({} if is_map else [])
        self.index = 0
        self.key: Any = None
        self.expect_key = True
        self.first_line: dict[str, int] = {}


class _Builder:
    """Plain data and positions straight from the parser's event stream, in one pass and without
    recursion: a composed node graph would cost a second walk, and each alias would carry its anchor's
    mark instead of its own. Stops at the first node deeper than ``MAX_DEPTH``."""

    def __init__(self, loader: Any, file: str):
        self.loader = loader
        self.file = file
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.issues: list[ConfigIssue] = []
        self.texts: dict[Path_, str] = {}
        self.anchors: dict[str, Any] = {}

    def issue(self, mark: Any, path: Path_, message: str, value: Any = None) -> None:
        self.issues.append(ConfigIssue(self.file, mark.line + 1, mark.column + 1, path, message, value))

    def build(self) -> Any:
        loader, stack = self.loader, []
        root: Any = None
        document_mark = None
        while True:
            event = loader.get_event()
            if isinstance(event, _END_EVENTS):
                frame = stack.pop()
                self._deliver(stack, frame.value, frame.mark, bad_key=frame.is_key)
                if not stack:
                    root = frame.value
                continue
            if isinstance(event, yaml.DocumentStartEvent):
                if document_mark is not None:
                    raise yaml.composer.ComposerError("expected a single document in the stream", document_mark,
                                                      "but found another document", event.start_mark)
                document_mark = event.start_mark
                continue
            if isinstance(event, yaml.StreamEndEvent):
                return root
            if not isinstance(event, _NODE_EVENTS):
                continue
            value = self._node(stack, event)
            if value is not _OPENED:
                self._deliver(stack, value, event.start_mark)
                if not stack:
                    root = value

    def _node(self, stack: list[_Frame], event: Any) -> Any:
        mark = event.start_mark
        parent = stack[-1] if stack else None
        as_key = parent is not None and parent.is_map and parent.expect_key
        if parent is None:
            path, discard = (), False
        elif as_key:
            path, discard = parent.path, parent.discard
        elif parent.is_map:
            path = (*parent.path, parent.key) if parent.key is not _SKIP else parent.path
            discard = parent.discard or parent.key is _SKIP
        else:
            path, discard = (*parent.path, parent.index), parent.discard
        if len(stack) > MAX_DEPTH:  # the open collections around it: its path length, or more for a key
            raise _TooDeep(ConfigIssue(self.file, mark.line + 1, mark.column + 1, path[:2], DEPTH_HELP))
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}", mark)
            self.issue(mark, path, "YAML aliases (*name) are not allowed in pipeline files: write the value out")
            return _SKIP if as_key else None
        if event.anchor is not None:
            if event.anchor in self.anchors:
                raise yaml.composer.ComposerError(f"found duplicate anchor {event.anchor!r}; first occurrence",
                                                  self.anchors[event.anchor], "second occurrence", mark)
            self.anchors[event.anchor] = mark
        is_scalar = isinstance(event, yaml.ScalarEvent)
        tag = event.tag
        if tag is None or tag == "!":
            kind = yaml.ScalarNode if is_scalar else (
                yaml.MappingNode if isinstance(event, yaml.MappingStartEvent) else yaml.SequenceNode)
            tag = self.loader.resolve(kind, event.value if is_scalar else None, event.implicit)
        if as_key:
            return self._key(parent, event, tag, is_scalar, stack)
        if not discard:
            self.positions.setdefault(path, (mark.line + 1, mark.column + 1))
        if is_scalar:
            return None if discard else self._scalar(tag, event.value, mark, path)
        is_map = isinstance(event, yaml.MappingStartEvent)
        if not discard and tag != (_MAP if is_map else _SEQ):
            self.issue(mark, path, f"YAML tag {tag!r} is not allowed: remove it")
            discard = True
        stack.append(_Frame(path, is_map, discard, False, mark))
        return _OPENED

    def _key(self, parent: _Frame, event: Any, tag: str, is_scalar: bool, stack: list[_Frame]) -> Any:
        mark = event.start_mark
        if not is_scalar:  # a complex key: read past it (and its value), then refuse it
            stack.append(_Frame(parent.path, isinstance(event, yaml.MappingStartEvent), True, True, mark))
            return _OPENED
        if parent.discard:
            return _SKIP
        if tag == "tag:yaml.org,2002:merge":
            self.issue(mark, parent.path, "keys must be plain names (no merge keys `<<`, no complex keys)")
            return _SKIP
        if tag not in _ALLOWED_KEY_TAGS:
            self.issue(mark, parent.path, f"YAML tag {tag!r} is not allowed: remove it")
            return _SKIP
        key = event.value
        child = (*parent.path, key)
        if key in parent.first_line:
            self.issue(mark, child, f"duplicate key {shown(key)} (first defined on line {parent.first_line[key]}): "
                       "keep one of them")
            return _SKIP
        parent.first_line[key] = mark.line + 1
        self.positions[child] = (mark.line + 1, mark.column + 1)
        return key

    def _deliver(self, stack: list[_Frame], value: Any, mark: Any, bad_key: bool = False) -> None:
        if not stack:
            return
        parent = stack[-1]
        if parent.is_map and parent.expect_key:
            if bad_key:
                if not parent.discard:
                    self.issue(mark, parent.path, "keys must be plain names (no merge keys `<<`, no complex keys)")
                value = _SKIP
            parent.key, parent.expect_key = value, False
        elif parent.is_map:
            if not parent.discard and parent.key is not _SKIP:
                parent.value[parent.key] = value
            parent.key, parent.expect_key = None, True
        else:
            if not parent.discard:
                parent.value.append(value)
            parent.index += 1

    def _scalar(self, tag: str, text: str, mark: Any, path: Path_) -> Any:
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() == "true"
        if tag in (_INT, _FLOAT):
            try:
                value = int(text) if tag == _INT else float(text)
            except ValueError:  # over Python's 4,300-digit limit for int(): refuse it, never raise
                digits = len(text.lstrip("+-"))
                self.issue(mark, path, f"integer too long ({digits:,} digits): no setting takes a number this "
                           "big: shorten it, or quote it if it is meant as text", shown(text, 40))
                return text  # refused already: other rules need not say more about it
            if repr(value) != text:
                self.texts[path] = text
            return value
        self.issue(mark, path, f"YAML tag {tag!r} is not allowed in pipeline files: remove it", text)
        return None


_OPENED = object()  # a collection started: its value arrives with its end event

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


def _yaml_error(exc: Exception, text: str, file: str) -> ConfigIssue:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return ConfigIssue(file, line, col, (), f"invalid YAML: {problem}")
    if isinstance(exc, yaml.reader.ReaderError):
        # libyaml counts the position in bytes of the UTF-8 text, the pure-Python reader in characters.
        position = len(text.encode()[: exc.position].decode("utf-8", "ignore")) if _C_PARSER else exc.position
        line, col = _line_col(text, min(position, len(text)))
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
    deep = too_deep_at(text)
    if deep is not None:
        # Parse only up to there, so that the parser never reads the deep part; the first node
        # too deep is in it (the scan counts no level that is not there).
        prefix = _parse(text[: deep + 1], file)
        if prefix.issues and prefix.issues[0].message == DEPTH_HELP:
            return prefix
    return _parse(text, file)


def _parse(text: str, file: str) -> LoadedYaml:
    loader = _Loader(text)
    builder = _Builder(loader, file)
    try:
        data = builder.build()
    except _TooDeep as exc:
        return LoadedYaml(None, issues=[exc.issue])
    except yaml.YAMLError as exc:
        return LoadedYaml(None, issues=[_yaml_error(exc, text, file)])
    finally:
        loader.dispose()
    return LoadedYaml(data, builder.positions, builder.issues, builder.texts)


def oversize_issue(file: str, size: int) -> ConfigIssue:
    return ConfigIssue(
        file, 1, 1, (), f"file is {size:,} bytes, over the {MAX_BYTES:,}-byte limit for a pipeline file: split it",
    )
