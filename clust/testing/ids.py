"""Deterministic ids: ``msg_fake_000001``, ``toolu_fake_0001``, ``req_fake_000001``, ..."""

from __future__ import annotations

import itertools
import threading

__all__ = ["IdFactory"]


class IdFactory:
    """Per-server counters, so a test sees the same ids on every run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, itertools.count[int]] = {}

    def _next(self, prefix: str) -> int:
        with self._lock:
            counter = self._counters.setdefault(prefix, itertools.count(1))
            return next(counter)

    def message_id(self) -> str:
        """``msg_fake_000001``, ..."""
        return f"msg_fake_{self._next('msg'):06d}"

    def tool_use_id(self) -> str:
        """``toolu_fake_0001``, ..."""
        return f"toolu_fake_{self._next('toolu'):04d}"

    def server_tool_use_id(self) -> str:
        """``srvtoolu_fake_0001``, ..."""
        return f"srvtoolu_fake_{self._next('srvtoolu'):04d}"

    def request_id(self) -> str:
        """``req_fake_000001``, ..."""
        return f"req_fake_{self._next('req'):06d}"

    def batch_id(self) -> str:
        """``msgbatch_fake_0001``, ..."""
        return f"msgbatch_fake_{self._next('msgbatch'):04d}"
