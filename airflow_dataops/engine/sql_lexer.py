"""A conservative, dialect-aware SQL lexer: where do strings, quoted names and comments end?

Two uses, both about never letting user text add a statement:

- ``check_filter``: a ``where`` filter is ONE condition. Only plain ``'...'`` strings (``''`` for a
  quote), ``"..."`` names and, on MySQL/MariaDB, backtick names are understood; everything a
  condition never needs and that could change where a string or the statement ends is refused:
  ``;``, comments (``--``, ``/*``, ``#``), ``$`` (dollar quotes, parameters), backslashes (E''
  strings, MySQL escapes), prefixed literals (``E'..'``, ``N'..'``, ``q'..'``), ``?`` and ``{}``
  markers, backticks and ``[...]`` names elsewhere, unbalanced parentheses or quotes.
- ``single_statement``: a ``sql`` check is the author's SQL (comments, dollar quotes and escapes
  allowed), but must be ONE statement. It is lexed with the dialect's rules; where a server setting
  changes the rules (PostgreSQL's ``standard_conforming_strings``, MySQL's
  ``NO_BACKSLASH_ESCAPES``) it is lexed both ways and must be one statement either way. Trailing
  semicolons and comments are cut off, so the statement can be wrapped in a subquery.

Anything the lexer is unsure about is refused, with what was refused and how to rewrite it. No
Airflow imports here.
"""

from __future__ import annotations

import re

MYSQL = frozenset({"mysql", "mariadb"})
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_FILTER_EXAMPLE = "like `created_at >= '2024-01-01' AND status IN ('paid', 'new')`"


class UnsafeSqlError(ValueError):
    """SQL text that could add a statement, or that the lexer cannot be sure about."""


def _ident_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def _quoted_end(text: str, start: int, quote: str, *, backslash_escapes: bool) -> int:
    """Index just past the quote closing the quoted run opened at ``start`` (doubled quotes and,
    with ``backslash_escapes``, ``\\x`` stay inside), or -1 when it never closes."""
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if backslash_escapes and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return -1


# ---------------------------------------------------------------------------------- filters
def check_filter(where: str, dialect: str | None = None, *, error: type[ValueError] = UnsafeSqlError) -> None:
    """Raise ``error`` unless ``where`` is one SQL condition for ``dialect`` (None: the strictest rules)."""
    shown = where if len(where) <= 200 else where[:200] + f"... ({len(where) - 200} more characters)"

    def refuse(what: str, fix: str) -> None:
        raise error(f"`where` filter {shown!r} {what}: {fix}. A filter is one SQL condition, {_FILTER_EXAMPLE}")

    i, n, depth = 0, len(where), 0
    while i < n:
        ch = where[i]
        if ch in "'\"" or (ch == "`" and dialect in MYSQL):
            if ch != "`" and i and (_ident_char(where[i - 1]) or where[i - 1] == "&"):
                refuse(f"has a prefixed literal {where[max(0, i - 2):i + 1]!r}...",
                       "write a plain '...' string (no E, N, X, B, U& or q prefix)")
            end = _quoted_end(where, i, ch, backslash_escapes=False)
            if end < 0:
                refuse(f"has an unclosed {ch} quote", f"close it (write a {ch} inside it as {ch * 2})")
            if "\\" in where[i:end]:
                refuse("has a backslash inside a quoted string, which some databases read as an escape",
                       "leave it out (write a quote as '', and use LIKE ... ESCAPE '!' instead of '\\')")
            i = end
            continue
        if ch == "`":
            refuse("has a backtick, which quotes names only on MySQL/MariaDB", 'quote names with "double quotes"')
        if where.startswith("--", i) or where.startswith("/*", i) or where.startswith("*/", i) or ch == "#":
            refuse(f"contains a comment marker {where[i:i + 2] if ch != '#' else '#'!r}", "remove the comment")
        if ch == ";":
            refuse("contains a `;` (it would end the statement)", "remove it")
        if ch == "$":
            refuse("contains a `$` outside a string (a dollar quote or a parameter)",
                   "use '...' strings, and quote names containing $ with \"double quotes\"")
        if ch == "\\":
            refuse("contains a backslash", "remove it")
        if ch in "[]" and dialect != "postgresql":
            refuse(f"contains {ch!r} (a quoted name on some databases)", 'quote names with "double quotes"')
        if ch in "{}?":
            refuse(f"contains {ch!r} (a template or parameter marker)", "render templates first and write values as literals")
        if ch == "\x00":
            refuse("contains a NUL character", "remove it")
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                refuse("closes a parenthesis it never opened", "balance the parentheses")
        i += 1
    if depth:
        refuse("leaves a parenthesis open", "balance the parentheses")


# ------------------------------------------------------------------------------- statements
def _backslash_modes(dialect: str | None) -> tuple[bool, ...]:
    """Whether backslashes escape in ordinary strings, per server setting the dialect may have."""
    if dialect == "sqlite":
        return (False,)
    return (False, True)  # PostgreSQL standard_conforming_strings, MySQL NO_BACKSLASH_ESCAPES, unknown


def _statement_tokens(sql: str, dialect: str | None, backslash_escapes: bool, refuse) -> list[tuple[str, int, int]]:
    """(kind, start, end) tokens: 'space', 'comment', ';', '(', ')', 'text'."""
    tokens: list[tuple[str, int, int]] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            j = i + 1
            while j < n and sql[j].isspace():
                j += 1
            tokens.append(("space", i, j))
            i = j
            continue
        if sql.startswith("--", i):
            if dialect in MYSQL and not (i + 2 >= n or sql[i + 2] in " \t\r\n\f\v"):
                refuse(f"has `--` not followed by a space at character {i}, which MySQL does not read as a comment",
                       "put a space after --")
            j = sql.find("\n", i)
            j = n if j < 0 else j + 1
            tokens.append(("comment", i, j))
            i = j
            continue
        if ch == "#":
            if dialect in MYSQL:
                j = sql.find("\n", i)
                j = n if j < 0 else j + 1
                tokens.append(("comment", i, j))
                i = j
                continue
            if dialect != "postgresql":
                refuse(f"has `#` at character {i}, a comment on some databases", "use -- comments")
        if sql.startswith("/*", i):
            if dialect in MYSQL and sql.startswith("/*!", i):
                refuse("has a MySQL executable comment /*! ... */", "write the SQL without it")
            j = sql.find("*/", i + 2)
            if j < 0:
                refuse(f"has an unclosed /* comment at character {i}", "close it with */")
            if "/*" in sql[i + 2:j]:
                refuse(f"has a /* inside a /* comment at character {i} (nested on PostgreSQL only)", "do not nest comments")
            tokens.append(("comment", i, j + 2))
            i = j + 2
            continue
        quote = None
        if ch in "'\"":
            quote = ch
        elif ch == "`" and (dialect in MYSQL or dialect == "sqlite"):
            quote = ch
        elif ch == "`" and dialect != "postgresql":  # PostgreSQL: an operator character
            refuse(f"has a backtick at character {i}", 'quote names with "double quotes"')
        if quote:
            escapes = backslash_escapes and quote != "`" and (dialect != "postgresql" or quote == "'")
            if quote == "'" and i and _ident_char(sql[i - 1]):
                word_start = i - 1
                while word_start and _ident_char(sql[word_start - 1]):
                    word_start -= 1
                prefix = sql[word_start:i].lower()
                if dialect == "postgresql" and prefix == "e":
                    escapes = True  # E'...' escape strings: backslashes always escape
                elif dialect not in ("postgresql", "sqlite") and dialect not in MYSQL:
                    refuse(f"has a prefixed string literal {sql[word_start:i + 1]!r}... at character {word_start}",
                           "write a plain '...' string")
            if dialect == "postgresql" and quote == "'" and i >= 2 and sql[i - 2:i].lower() == "u&":
                escapes = False
            end = _quoted_end(sql, i, quote, backslash_escapes=escapes)
            if end < 0:
                refuse(f"has an unclosed {quote} quote at character {i}", f"close it (write a {quote} inside it as {quote * 2})")
            tokens.append(("text", i, end))
            i = end
            continue
        if ch == "[" and dialect in ("sqlite", "mssql"):
            end = _quoted_end(sql, i, "]", backslash_escapes=False) if dialect == "mssql" else sql.find("]", i) + 1
            if end <= 0:
                refuse(f"has an unclosed [ name at character {i}", "close it with ]")
            tokens.append(("text", i, end))
            i = end
            continue
        if ch == "$" and not (i and _ident_char(sql[i - 1])):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag and dialect == "postgresql":
                close = sql.find(tag.group(0), tag.end())
                if close < 0:
                    refuse(f"has an unclosed dollar quote {tag.group(0)} at character {i}", f"close it with {tag.group(0)}")
                tokens.append(("text", i, close + len(tag.group(0))))
                i = close + len(tag.group(0))
                continue
            if tag and dialect != "sqlite" and dialect not in MYSQL:
                refuse(f"has a dollar quote {tag.group(0)} at character {i}", "use '...' strings")
        if ch == "\x00":
            refuse("contains a NUL character", "remove it")
        kind = ch if ch in ";()" else "text"
        tokens.append((kind, i, i + 1))
        i += 1
    return tokens


def single_statement(sql: str, dialect: str | None = None, *, what: str = "SQL",
                     error: type[ValueError] = UnsafeSqlError) -> str:
    """``sql`` without trailing semicolons, blanks and comments, if it is exactly ONE statement
    for ``dialect`` whatever the server's string settings; else ``error``."""

    def refuse(problem: str, fix: str) -> None:
        raise error(f"{what} {problem}: {fix}. A check's SQL must be one SELECT statement")

    ends = set()
    for backslash_escapes in _backslash_modes(dialect):
        tokens = _statement_tokens(sql, dialect, backslash_escapes, refuse)
        significant = [t for t in tokens if t[0] not in ("space", "comment")]
        while significant and significant[-1][0] == ";":
            significant.pop()
        if not significant:
            refuse("is empty", "write a query")
        inner = [t for t in significant if t[0] == ";"]
        if inner:
            how = " if the server reads backslashes as escapes" if backslash_escapes else ""
            refuse(f"has a `;` at character {inner[0][1]} followed by more SQL{how}: that is more than one statement",
                   "keep one statement (semicolons inside strings and comments are fine)")
        depth = 0
        for kind, start, _ in significant:
            depth += kind == "("
            depth -= kind == ")"
            if depth < 0:
                refuse(f"closes a parenthesis it never opened at character {start}", "balance the parentheses")
        if depth:
            refuse("leaves a parenthesis open", "balance the parentheses")
        ends.add(significant[-1][2])
    if len(ends) != 1:
        refuse("ends in different places depending on the server's string settings", "avoid backslashes in strings")
    return sql[: ends.pop()]
