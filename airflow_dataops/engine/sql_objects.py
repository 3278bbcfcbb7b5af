"""Tables, columns and ``where`` filters as SQLAlchemy Core objects, never as pasted strings.

Identifiers were validated by the config models (letters, digits, underscores); here they are
turned into ``sqlalchemy.table()``/``column()`` so the dialect quotes them. A ``where`` filter is a
SQL fragment by design: it is accepted only as ONE expression (no ``;``, no comments, balanced
parentheses, closed quotes) and is wrapped in parentheses, so it cannot add a statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.sql.elements import quoted_name

from airflow_dataops.config.types import check_identifier


class UnsafeFilterError(ValueError):
    """A ``where`` filter that could add a statement or hide one in a comment."""


def split_table(name: str) -> tuple[str | None, str]:
    """``"analytics.orders"`` -> ``("analytics", "orders")``; ``"orders"`` -> ``(None, "orders")``."""
    check_identifier(name, dotted=True)
    parts = name.split(".")
    if len(parts) == 1:
        return None, parts[0]
    # Each part is a validated identifier, so a database.schema prefix may go unquoted as a whole.
    schema = parts[0] if len(parts) == 2 else quoted_name(".".join(parts[:-1]), quote=False)
    return schema, parts[-1]


def sql_table(name: str, columns: Iterable[str] = ()) -> sa.TableClause:
    schema, table = split_table(name)
    cols = [sa.column(check_identifier(c)) for c in dict.fromkeys(columns)]
    return sa.table(table, *cols, schema=schema)


def sql_column(table: sa.TableClause, name: str) -> sa.ColumnClause:
    check_identifier(name)
    if name in table.c:
        return table.c[name]
    col = sa.column(name)
    table.append_column(col)
    return col


_FORBIDDEN = (
    (";", "a `;` (it would end the statement)"),
    ("--", "a `--` comment"),
    ("/*", "a `/*` comment"),
    ("*/", "a `*/` comment end"),
)


def _outside_literals(where: str) -> str:
    """The filter with quoted literals/identifiers blanked out; raises on an unclosed quote."""
    out: list[str] = []
    i, n = 0, len(where)
    while i < n:
        ch = where[i]
        if ch in "'\"`":
            j = i + 1
            while True:
                if j >= n:
                    raise UnsafeFilterError(f"`where` filter {where!r} has an unclosed {ch} quote: close it")
                if where[j] == ch:
                    if j + 1 < n and where[j + 1] == ch:  # doubled quote = escaped quote
                        j += 2
                        continue
                    break
                if where[j] == "\\" and ch == "'":
                    raise UnsafeFilterError(
                        f"`where` filter {where!r} uses a backslash inside a string literal, which some "
                        "databases treat as an escape: write a quote as '' instead"
                    )
                j += 1
            out.append(" ")
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def validate_where(where: str) -> str:
    """The filter, stripped, if it is one SQL expression; else :class:`UnsafeFilterError`."""
    text = where.strip()
    if not text:
        raise UnsafeFilterError("`where` filter is empty: remove the key or write a condition")
    if "\x00" in text:
        raise UnsafeFilterError("`where` filter contains a NUL character")
    bare = _outside_literals(text)
    for token, why in _FORBIDDEN:
        if token in bare:
            raise UnsafeFilterError(
                f"`where` filter {where!r} contains {why}: a filter must be one SQL condition, "
                "like `created_at >= '2024-01-01'`"
            )
    if "$$" in bare:
        raise UnsafeFilterError(f"`where` filter {where!r} contains a `$$` dollar quote: use '...' literals")
    depth = 0
    for ch in bare:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            raise UnsafeFilterError(f"`where` filter {where!r} closes a parenthesis it never opened")
    if depth:
        raise UnsafeFilterError(f"`where` filter {where!r} leaves a parenthesis open")
    if re.search(r"\{\{|\{%|\{#", text):
        raise UnsafeFilterError(
            f"`where` filter {where!r} still contains Jinja: it must be rendered before it runs "
            "(pass it through a templated field such as DataQualityOperator.checks)"
        )
    return text


def where_clause(where: str | None) -> sa.TextClause | None:
    """A validated filter as a parenthesised ``text()`` clause (colons escaped: no bind parsing)."""
    if where is None:
        return None
    text = validate_where(where)
    return sa.text("(" + text.replace(":", "\\:") + ")")
