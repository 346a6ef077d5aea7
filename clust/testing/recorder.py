"""Every request the fake received, for assertions."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordedRequest", "Recorder"]


@dataclass(frozen=True)
class RecordedRequest:
    """One received HTTP request."""

    method: str
    path: str
    """The path without the query string, e.g. ``/v1/messages``."""
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    """Header names lowercased; repeated headers joined with ``", "``."""
    body: Any
    """The parsed JSON body, or ``None`` when empty or not JSON."""
    raw: bytes

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())


class Recorder:
    """Thread-safe list of :class:`RecordedRequest`."""

    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def record(self, request: RecordedRequest) -> None:
        """Append one request."""
        with self._lock:
            self._items.append(request)

    def all(self) -> list[RecordedRequest]:
        """A copy of the list, oldest first."""
        with self._lock:
            return list(self._items)

    def last(self) -> RecordedRequest:
        """The most recent request; ``LookupError`` if none."""
        with self._lock:
            if not self._items:
                raise LookupError("FakeClaude has received no request yet")
            return self._items[-1]

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._items.clear()


def parse_headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Lowercase names; join repeats with ``", "``."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Comma-separated values of a (joined) header, stripped, empty ones dropped."""
    raw = headers.get(name, "")
    return [v.strip() for v in raw.split(",") if v.strip()]
