"""Callables the factory tests name by path (``tests.dag_builder.callables:...``)."""

from __future__ import annotations


def count_rows(ti, params):  # asks for two context values by name
    return {"task": ti.task_id, "params": dict(params)}


def broken():
    raise RuntimeError("the python task failed on purpose")
