"""Run a Python callable named by path (``package.module:function``), imported only when the task runs.

The YAML factory uses this for `python` tasks so that parsing a pipeline never imports user code.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any


class CallableByPath:
    """A callable stand-in: imports ``package.module:function`` at call time and passes it the
    context values its signature asks for (all of them if it takes ``**kwargs``)."""

    def __init__(self, path: str):
        self.path = path

    def __repr__(self) -> str:
        return f"CallableByPath({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CallableByPath) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def resolve(self):
        module_name, _, attr = self.path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(f"cannot import {module_name!r} for python task {self.path!r}: {exc}. "
                              "Is the module installed, or in the dags folder / PYTHONPATH?") from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ImportError(f"{module_name!r} has no {attr!r} (python task {self.path!r})") from None

    def __call__(self, **context: Any) -> Any:
        func = self.resolve()
        params = inspect.signature(func).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return func(**context)
        return func(**{name: value for name, value in context.items() if name in params})
