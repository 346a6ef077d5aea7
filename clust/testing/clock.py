"""A clock that tests can move forward (cache TTLs and batch processing read it)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

__all__ = ["FakeClock"]


class FakeClock:
    """Real monotonic time plus an offset that only moves forward."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds on the monotonic clock, shifted by every :meth:`advance` so far."""
        return time.monotonic() + self._offset

    def wall(self) -> datetime:
        """UTC wall time, shifted the same way (used for RFC 3339 timestamps)."""
        return datetime.now(timezone.utc) + timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0)."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds!r}")
        with self._lock:
            self._offset += seconds


def rfc3339(moment: datetime) -> str:
    """``2026-11-20T18:37:24.100435Z`` style timestamp."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
