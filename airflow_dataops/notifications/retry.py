"""Bounded retries for Slack: 429 (honouring Retry-After), 5xx, timeouts and dropped connections.

slack-sdk retries one dropped connection by default and gives up at once on 429 and 5xx; read
timeouts are retried by no built-in handler. These handlers extend slack-sdk's own and share one
time budget per send: a retry that could not finish inside the budget is not attempted, so a send
never takes longer than ``total_seconds`` (plus one request timeout).
"""

from __future__ import annotations

import asyncio
import socket
import time
from http.client import RemoteDisconnected
from urllib.error import URLError

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

MAX_RETRIES = 4
SERVER_ERRORS = frozenset({500, 502, 503, 504})
BACKOFF = BackoffRetryIntervalCalculator(backoff_factor=0.5)


class Budget:
    """A wall-clock allowance shared by every retry of one send."""

    def __init__(self, total_seconds: float):
        self.deadline = time.monotonic() + total_seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, wait: float) -> bool:
        return self.remaining() > wait


def _retry_after(response) -> float:
    for key, values in (response.headers or {}).items():
        if key.lower() == "retry-after":
            value = values[0] if isinstance(values, list | tuple) else values
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def _connection_error_types():
    types: list[type[Exception]] = [URLError, ConnectionError, RemoteDisconnected, TimeoutError, socket.timeout]
    return types


class _SyncRateLimit(RateLimitErrorRetryHandler):
    def __init__(self, budget: Budget):
        super().__init__(max_retry_count=MAX_RETRIES)
        self.budget = budget

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return super()._can_retry(state=state, request=request, response=response, error=error) and self.budget.allows(
            _retry_after(response)
        )

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None) -> None:
        state.next_attempt_requested = True
        time.sleep(_retry_after(response))
        state.increment_current_attempt()


class _SyncServerError(ServerErrorRetryHandler):
    def __init__(self, budget: Budget):
        super().__init__(max_retry_count=MAX_RETRIES, interval_calculator=BACKOFF)
        self.budget = budget

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        wait = BACKOFF.calculate_sleep_duration(state.current_attempt)
        return response is not None and response.status_code in SERVER_ERRORS and self.budget.allows(wait)


class _SyncConnectionError(ConnectionErrorRetryHandler):
    def __init__(self, budget: Budget):
        super().__init__(max_retry_count=MAX_RETRIES, interval_calculator=BACKOFF, error_types=_connection_error_types())
        self.budget = budget

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        wait = BACKOFF.calculate_sleep_duration(state.current_attempt)
        return super()._can_retry(state=state, request=request, response=response, error=error) and self.budget.allows(wait)


def sync_handlers(budget: Budget) -> list:
    return [_SyncRateLimit(budget), _SyncServerError(budget), _SyncConnectionError(budget)]


class _AsyncRateLimit(AsyncRateLimitErrorRetryHandler):
    def __init__(self, budget: Budget):
        super().__init__(max_retry_count=MAX_RETRIES)
        self.budget = budget

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        return response is not None and response.status_code == 429 and self.budget.allows(_retry_after(response))

    async def prepare_for_next_attempt_async(self, *, state, request, response=None, error=None) -> None:
        state.next_attempt_requested = True
        await asyncio.sleep(_retry_after(response))
        state.increment_current_attempt()


class _AsyncServerError(AsyncServerErrorRetryHandler):
    def __init__(self, budget: Budget):
        super().__init__(max_retry_count=MAX_RETRIES, interval_calculator=BACKOFF)
        self.budget = budget

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        wait = BACKOFF.calculate_sleep_duration(state.current_attempt)
        return response is not None and response.status_code in SERVER_ERRORS and self.budget.allows(wait)


class _AsyncConnectionError(AsyncConnectionErrorRetryHandler):
    def __init__(self, budget: Budget):
        super().__init__(max_retry_count=MAX_RETRIES, interval_calculator=BACKOFF)
        self.error_types_to_do_retries = [*self.error_types_to_do_retries, asyncio.TimeoutError, TimeoutError,
                                          ConnectionError]
        self.budget = budget

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        wait = BACKOFF.calculate_sleep_duration(state.current_attempt)
        return (
            await super()._can_retry_async(state=state, request=request, response=response, error=error)
            and self.budget.allows(wait)
        )


def async_handlers(budget: Budget) -> list:
    return [_AsyncRateLimit(budget), _AsyncServerError(budget), _AsyncConnectionError(budget)]
