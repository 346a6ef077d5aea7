"""When to retry a call, and how long to wait first.

The rules (see ``shared/api/client-behaviour.md``), kept in this one place:

- retried: connection failures, timeouts, HTTP 408, 409, 429 and every status >= 500;
- ``x-should-retry: true|false`` overrides the status rule both ways;
- the wait is the server's ``retry-after-ms``, else ``retry-after`` (seconds or an
  HTTP date), when positive; otherwise exponential backoff ``0.5 * 2**k`` capped at
  8 s and shortened by up to 25 % of jitter;
- unlike the official SDK, a server-requested wait above ``max_server_wait``
  (60 s by default) is not slept: the error is raised at once, with its
  ``retry_after`` set, so the caller decides.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timezone

__all__ = ["RetryDecision", "RetryPolicy", "is_retryable_status", "server_requested_wait"]

_RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status_code: int, headers: Mapping[str, str]) -> bool:
    """Whether an error response may be retried (``x-should-retry`` wins)."""
    should_retry = headers.get("x-should-retry")
    if should_retry == "true":
        return True
    if should_retry == "false":
        return False
    return status_code in _RETRYABLE_STATUSES or status_code >= 500


def server_requested_wait(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asked to wait, or None when it asked for nothing usable.

    ``retry-after-ms`` is read first: when it is a number, it decides (a positive one is
    the wait; zero, negative or NaN ask for nothing). Otherwise ``retry-after`` as
    seconds, then as an HTTP date (an asctime date, which names no zone, is GMT). Zero,
    negative, infinite, past and unparseable values count as no request.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        milliseconds = _float(raw_ms)
        if milliseconds is not None:
            return milliseconds / 1000.0 if _usable(milliseconds) else None
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _float(raw)
    if seconds is not None:
        return seconds if _usable(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
        if when.tzinfo is None:  # asctime format: GMT by definition (RFC 9110)
            when = when.replace(tzinfo=timezone.utc)
        wait = when.timestamp() - now()
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: year 99999
        return None
    return wait if wait > 0 else None


def _float(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def _usable(wait: float) -> bool:
    return wait > 0 and math.isfinite(wait)


@dataclass(frozen=True)
class RetryDecision:
    """What to do after a failed attempt.

    ``retry`` says whether to try again after sleeping ``delay`` seconds.
    ``server_wait`` is the wait the server asked for, if any; when it exceeds the
    policy's ceiling, ``retry`` is False and ``wait_exceeds_ceiling`` True.
    """

    retry: bool
    delay: float = 0.0
    server_wait: float | None = None
    wait_exceeds_ceiling: bool = False


NO_RETRY = RetryDecision(retry=False)


@dataclass(frozen=True)
class RetryPolicy:
    """Retry settings of a client; ``decide_*`` apply the rules above.

    Attributes:
        max_retries: retries after the first attempt (2 means 3 attempts in all).
        initial_delay: backoff before the first retry, in seconds.
        max_delay: backoff cap, in seconds.
        max_server_wait: the longest server-requested wait that is slept; a longer
            one makes the error surface at once with ``retry_after`` set.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_server_wait: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries={self.max_retries!r} is invalid: allowed >= 0")
        if self.max_server_wait < 0:
            raise ValueError(
                f"max_server_wait={self.max_server_wait!r} is invalid: allowed >= 0 seconds"
            )

    def backoff(self, retry_index: int, jitter: float | None = None) -> float:
        """Backoff before retry number ``retry_index`` (0 for the first retry).

        ``jitter`` in [0, 1) shortens the wait by up to 25 %; random when None.
        """
        u = random.random() if jitter is None else jitter
        return min(self.initial_delay * 2.0**retry_index, self.max_delay) * (1.0 - 0.25 * u)

    def decide_status(
        self, retries_done: int, status_code: int, headers: Mapping[str, str]
    ) -> RetryDecision:
        """Decision after an HTTP error response, ``retries_done`` retries so far."""
        server_wait = server_requested_wait(headers)
        if retries_done >= self.max_retries or not is_retryable_status(status_code, headers):
            return RetryDecision(retry=False, server_wait=server_wait)
        if server_wait is not None:
            if server_wait > self.max_server_wait:
                return RetryDecision(
                    retry=False, server_wait=server_wait, wait_exceeds_ceiling=True
                )
            return RetryDecision(retry=True, delay=server_wait, server_wait=server_wait)
        return RetryDecision(retry=True, delay=self.backoff(retries_done))

    def decide_transport_failure(self, retries_done: int) -> RetryDecision:
        """Decision after a connection failure or timeout."""
        if retries_done >= self.max_retries:
            return NO_RETRY
        return RetryDecision(retry=True, delay=self.backoff(retries_done))

    def decide_stream_error(self, retries_done: int, error_type: str | None) -> RetryDecision:
        """Decision after an in-stream ``error`` event that came before any content.

        Retryable types are the ones whose HTTP statuses are retried (overload,
        rate limit, server errors, timeouts, conflicts).
        """
        if retries_done >= self.max_retries or error_type not in _RETRYABLE_STREAM_ERRORS:
            return NO_RETRY
        return RetryDecision(retry=True, delay=self.backoff(retries_done))


_RETRYABLE_STREAM_ERRORS = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "timeout_error", "conflict_error"}
)
