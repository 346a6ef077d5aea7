"""Incremental JSON Lines splitter: bytes in, complete lines out (sans-IO).

Feeds may cut anywhere, even inside a line or between the ``\\r`` and ``\\n`` of a
line ending. Lines end with ``\\n``, ``\\r\\n`` or a lone ``\\r`` (JSON text never holds
a raw CR or LF, so splitting on either is safe). Blank lines are skipped, as is one
UTF-8 byte order mark at the very start. Memory stays bounded by the longest line
plus one chunk: only the unfinished tail of a chunk is kept between feeds.
"""

from __future__ import annotations

__all__ = ["JsonlSplitter"]

_BOM = b"\xef\xbb\xbf"


class JsonlSplitter:
    """Split a byte stream into its JSON lines (each without its line ending)."""

    __slots__ = ("_partial", "_started")

    def __init__(self) -> None:
        self._partial = bytearray()
        self._started = False

    @property
    def has_pending(self) -> bool:
        """Whether bytes of an unfinished line are buffered."""
        return bool(self._partial)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines completed by ``chunk``, in order."""
        if not self._started:
            if len(self._partial) + len(chunk) < len(_BOM) and _BOM.startswith(
                bytes(self._partial) + chunk
            ):
                self._partial += chunk  # too short to tell yet
                return []
            self._started = True
            head = bytes(self._partial) + chunk
            self._partial.clear()
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last < 0:
            self._partial += chunk
            return []
        if self._partial:
            self._partial += chunk[: last + 1]
            block = bytes(self._partial)
            self._partial.clear()
        else:
            block = chunk[: last + 1]
        self._partial += chunk[last + 1 :]
        return [line for line in block.splitlines() if line and not line.isspace()]

    def end(self) -> list[bytes]:
        """The last line when the stream ended without a line ending (else nothing)."""
        rest = bytes(self._partial)
        self._partial.clear()
        if not self._started and _BOM.startswith(rest):
            rest = b""
        self._started = True
        return [rest] if rest and not rest.isspace() else []
