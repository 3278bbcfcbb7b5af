"""Pydantic's validation errors as config problems a person can act on: the file position of the
value (wherever an environment merge took it from), the key path, the value as written, the fix."""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from airflow_dataops.config.checks import CHECK_TYPES
from airflow_dataops.config.errors import ConfigIssue, shown
from airflow_dataops.config.model import PipelineFile
from airflow_dataops.config.yaml_loader import LoadedYaml, Path_

_TYPE_OF_CHECK = {model: name for name, model in CHECK_TYPES.items()}


def _shapes(annotation: Any) -> list[Any]:
    """What an annotation admits, unwrapped: model classes and list/dict types."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shapes(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [shape for arg in get_args(annotation) for shape in _shapes(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin in (list, tuple, dict):
        return [annotation]
    return []


def _models_at(root: type[BaseModel], loc: tuple) -> list[type[BaseModel]]:
    """The models that can sit at pydantic error location ``loc`` (its union labels included)."""
    shapes: list[Any] = [root]
    for part in loc:
        models = [s for s in shapes if isinstance(s, type)]
        named = [m for m in models if part == m.__name__ or part == _TYPE_OF_CHECK.get(m)]
        if named:
            shapes = named
            continue
        following: list[Any] = []
        for shape in shapes:
            if isinstance(shape, type):
                field = shape.model_fields.get(part) if isinstance(part, str) else None
                if field is not None:
                    following += _shapes(field.annotation)
            elif get_origin(shape) in (list, tuple) and isinstance(part, int):
                following += _shapes(get_args(shape)[0])
            elif get_origin(shape) is dict and isinstance(part, str):
                following += _shapes(get_args(shape)[1])
        shapes = following
    return [s for s in shapes if isinstance(s, type)]


def _suggest(key: str, loc: tuple, root: type[BaseModel]) -> str:
    """"did you mean" among the keys valid at that place only."""
    allowed = sorted({name for model in _models_at(root, loc) for name in model.model_fields})
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if close:
        return f": did you mean `{close[0]}`?"
    return ": remove it (see `airflow-dataops schema` for the keys allowed here)"


def _data_path(data: Any, loc: tuple) -> Path_:
    """Pydantic's error location minus its union/discriminator labels, as a path into ``data``."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            path.append(part)
        elif isinstance(current, dict) and isinstance(part, str) and part.isidentifier() and part not in CHECK_TYPES:
            path.append(part)  # a missing key: keep it in the path, its parent has the position
            current = None
    return tuple(path)


def _as_written(value: Any, text: str | None) -> str:
    """A scalar as the file wrote it (``1.10``, not 1.1), for "got ..." and "quote it"."""
    if text is not None:
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    return shown(value)


def _list_fix(value: str) -> str:
    items = [item for item in re.split(r"[,\s]+", value.strip()) if item]
    return f": write a list, like [{', '.join(items)}]" if items else ": write a list, like [a, b]"


def _message(error: dict[str, Any], root: type[BaseModel], text: str | None = None) -> str:
    kind, loc, value = error["type"], error["loc"], error.get("input")
    scalar = isinstance(value, (str, int, float, bool))
    got = _as_written(value, text)
    if kind == "missing":
        return f"`{loc[-1]}` is required"
    if kind == "extra_forbidden":
        return f"unknown key `{loc[-1]}`{_suggest(str(loc[-1]), loc[:-1], root)}"
    if kind == "union_tag_invalid":
        tag = str(error["ctx"].get("tag"))
        close = difflib.get_close_matches(tag, list(CHECK_TYPES), n=1, cutoff=0.6)
        hint = f": did you mean `{close[0]}`? (types: " if close else ": use one of "
        return f"unknown check type {shown(tag)}{hint}{', '.join(CHECK_TYPES)}{')' if close else ''}"
    if kind == "union_tag_not_found":
        return f"a check needs `type`: one of {', '.join(CHECK_TYPES)}"
    if kind == "string_type":
        if scalar:
            return f"expected text, got {got}: quote it (\"{got}\")"
        return f"expected text, got {shown(value)}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        if isinstance(value, float) and value.is_integer():
            return f"expected a whole number, got {got}: write {int(value)}"
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
            return f"expected a whole number, got {got}: remove the quotes"
        return f"expected a whole number, got {got}"
    if kind in {"float_type", "float_parsing"}:
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)", value.strip()):
            return f"expected a number, got {got}: remove the quotes"
        return f"expected a number, got {got}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, got {got}: write true or false, unquoted"
    if kind == "list_type":
        return f"expected a list, got {got}{_list_fix(value) if isinstance(value, str) else ''}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"expected a mapping, got {got}"
    if kind == "literal_error" and loc and loc[-1] == "version":
        return f"unsupported format version {got}: this airflow-dataops reads `version: 1` files"
    message = error["msg"].removeprefix("Value error, ")
    if kind != "value_error" and scalar:
        message = f"{message}, got {got}"
    return message


def issues_from_validation(exc: ValidationError, data: Any, loaded: LoadedYaml, file: str,
                           origin: dict[Path_, Path_] | None = None,
                           root: type[BaseModel] = PipelineFile) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        path = _data_path(data, error["loc"])
        source = origin_of(path, origin) if origin is not None else path
        line, column = loaded.position(source)
        issues.append(ConfigIssue(file, line, column, source, _message(error, root, loaded.texts.get(source))))
    return issues


def origin_of(path: Path_, origin: dict[Path_, Path_]) -> Path_:
    probe = path
    while probe:
        if probe in origin:
            return origin[probe] + path[len(probe):]
        probe = probe[:-1]
    return path
