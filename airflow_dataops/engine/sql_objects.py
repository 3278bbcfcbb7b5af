"""Tables, columns and ``where`` filters as SQLAlchemy Core objects, never as pasted strings.

Identifiers were validated by the config models (letters, digits, underscores); here they are
turned into ``sqlalchemy.table()``/``column()`` so the dialect quotes them. A ``where`` filter is a
SQL fragment by design: it is accepted only as ONE condition (``sql_lexer.check_filter``: plain
strings and quoted names only; no ``;``, comments, dollar quotes, backslashes; balanced parentheses)
and is wrapped in parentheses, so it cannot add a statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.sql.elements import quoted_name

from airflow_dataops.config.types import IDENTIFIER_HELP
from airflow_dataops.config.types import check_identifier as _model_check
from airflow_dataops.engine.sql_lexer import UnsafeSqlError, check_filter


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,127}")


def check_identifier(value: object, *, dotted: bool = False) -> str:
    """The models' identifier rule, matched over the WHOLE text (``"id\n"`` is refused: a
    trailing newline would otherwise let SQLAlchemy send the name unquoted)."""
    _model_check(value, dotted=dotted)
    parts = str(value).split(".") if dotted else [str(value)]
    if not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ValueError(f"{value!r} is not a valid {'table' if dotted else 'column'} name: {IDENTIFIER_HELP}")
    return str(value)


class UnsafeFilterError(UnsafeSqlError):
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


def validate_where(where: str, dialect: str | None = None) -> str:
    """The filter, stripped, if it is one SQL condition for ``dialect`` (a SQLAlchemy dialect name;
    None applies the strictest rules); else :class:`UnsafeFilterError`. Validate the RENDERED text."""
    text = where.strip()
    if not text:
        raise UnsafeFilterError("`where` filter is empty: remove the key or write a condition")
    if re.search(r"\{\{|\{%|\{#", text):
        raise UnsafeFilterError(
            f"`where` filter {where!r} still contains Jinja: it must be rendered before it runs "
            "(pass it through a templated field such as DataQualityOperator.checks)"
        )
    check_filter(text, dialect, error=UnsafeFilterError)
    return text


def where_clause(where: str | None, dialect: str | None = None) -> sa.TextClause | None:
    """A validated filter as a parenthesised ``text()`` clause (colons escaped: no bind parsing)."""
    if where is None:
        return None
    text = validate_where(where, dialect)
    return sa.text("(" + text.replace(":", "\\:") + ")")
