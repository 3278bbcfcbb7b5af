"""Polling for an outcome that real processes produce in their own time."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float, what: str):
    """The first truthy value of ``predicate()`` within ``timeout`` seconds, else an AssertionError
    naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
