"""A cheap look at a YAML text, before parsing it, for nesting deeper than ``MAX_DEPTH``.

Why: ``[[[[...`` costs two bytes a level, and a parser must read far ahead to place each ``[``
(libyaml up to 1,024 characters, giving up at its own nesting limit with a message that names no
key). This scan finds the first flow collection (``[`` or ``{``) nested too deep, counting the
block levels above it (keys that open a block: ``key:`` alone on its line, ``- `` items) and the
flow levels around it. Quoted scalars, comments and block scalars (``|``, ``>``) are skipped.

It is a lower bound: it never counts a level that is not there in a well-formed file, and it may
miss some (a key on an item line, tags and anchors). The parser has the last word: ``load_yaml``
parses only up to the place found here to name the key path, and goes on as usual should the
parser disagree. Block nesting needs no scan: it costs at least a byte of indentation a level and
the parser reaches the limit without reading ahead.
"""

from __future__ import annotations

import re

from airflow_dataops.config.limits import MAX_DEPTH

_TOKEN = re.compile(r"[\[\]{}'\"#|>\n]")
_QUOTED = {"'": re.compile(r"'(?:[^']|'')*'"), '"': re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)}
_LINE = re.compile(
    r"(?P<indent> *)(?P<items>(?:-[ \t]+)*)"
    r"(?P<key>(?:\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\n]|'')*'|[^\s#'\"\[\]{},&*!|>%@`?:-](?:[^\n#:]|:(?=\S))*?)[ \t]*:(?=[ \t\n]|$))?"
    r"(?P<rest>[^\n]*)"
)
# Where a node may start, looking back over spaces: a flow indicator, a `:`, an item's `-`, a line start.
_NODE_START = set("[{,:-?\n")


def too_deep_at(text: str) -> int | None:
    """The offset of the first ``[``/``{`` that opens a collection nested deeper than ``MAX_DEPTH``
    (by the count above), or None."""
    if text.count("[") + text.count("{") < MAX_DEPTH // 2:
        return None  # fewer flow levels than that cannot trouble the parser; it checks the rest itself
    openers: list[tuple[int, int]] = []  # block lines that open levels: (indent, levels)
    line_depth = 0  # levels of the current line's node, in block context
    flow = 0  # open flow collections
    pos = 0
    length = len(text)
    line_start = True
    while pos < length:
        if line_start and flow == 0:
            line = _LINE.match(text, pos)
            indent = len(line["indent"])
            rest = line["rest"].strip()
            if rest and not rest.startswith("#") or line["key"] is not None or line["items"]:
                while openers and openers[-1][0] >= indent:
                    openers.pop()
                above = sum(levels for _, levels in openers)
                items = line["items"]
                line_depth = above + items.count("-") + (1 if line["key"] is not None else 0)
                # each item opens a level for what is indented past its `-`; a key alone on its
                # line, for what is indented past the key
                column = indent
                for part in re.finditer(r"-[ \t]+", items):
                    openers.append((indent + part.start(), 1))
                    column = indent + part.end()
                if line["key"] is not None and (not rest or rest.startswith("#")):
                    openers.append((column, 1))
            pos = line.start("rest") if line["key"] is not None or line["items"] else line.start("items")
            line_start = False
        match = _TOKEN.search(text, pos)
        if match is None:
            return None
        char, at = match.group(), match.start()
        pos = at + 1
        if char == "\n":
            line_start = True
            continue
        before = at - 1
        while before >= 0 and text[before] in " \t":
            before -= 1
        previous = text[before] if before >= 0 else "\n"
        spaced = before < at - 1
        if char == "#":
            if spaced or previous == "\n":
                newline = text.find("\n", at)
                if newline < 0:
                    return None
                pos = newline
            continue
        at_node_start = previous in _NODE_START and (previous not in "-?" or spaced) or flow > 0 and previous in "[{,"
        if char in "'\"":
            if at_node_start:
                quoted = _QUOTED[char].match(text, at)
                if quoted is None:
                    return None  # unterminated: the parser says where
                pos = quoted.end()
            continue
        if char in "|>":
            if flow == 0 and at_node_start:
                pos = _past_block_scalar(text, at)
                line_start = True
            continue
        if char in "[{":
            if flow > 0 or at_node_start:
                if line_depth + flow > MAX_DEPTH:  # the path length of the node it opens
                    return at
                flow += 1
        elif flow > 0:
            flow -= 1
    return None


def _past_block_scalar(text: str, at: int) -> int:
    """The start of the first line after the block scalar whose indicator is at ``at``: the lines
    indented more than the indicator's line (or blank) are its content."""
    line_begin = text.rfind("\n", 0, at) + 1
    indent = _SPACES.match(text, line_begin).end() - line_begin
    pos = text.find("\n", at)
    while pos >= 0:
        start = pos + 1
        content = _SPACES.match(text, start).end()
        if content < len(text) and text[content] != "\n" and content - start <= indent:
            return start
        pos = text.find("\n", start)
    return len(text)


_SPACES = re.compile(r"[ \t]*")
