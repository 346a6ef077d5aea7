"""What the server should write back for one request (built by the app, written by the server)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Outgoing"]


@dataclass
class Outgoing:
    """One HTTP response, or a dropped connection.

    ``chunks is None``: a ``Content-Length`` body. Otherwise a chunked body written piece by
    piece (one SSE event each), with ``event_delay`` before each piece and each piece split
    into TCP writes of ``chunk_size`` bytes when set. ``abort`` drops the connection after
    what was written (no terminating chunk; for a plain body, after ``truncate_at`` bytes).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[bytes] | None = None
    abort: bool = False
    truncate_at: int | None = None
    event_delay: float = 0.0
    response_delay: float = 0.0
    chunk_size: int | None = None
    drop: bool = False
