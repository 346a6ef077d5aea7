"""Incremental Server-Sent Events decoder: bytes in, events out (sans-IO).

Follows the WHATWG "event stream interpretation" rules that the Messages API
stream relies on:

- lines end with LF, CRLF or a lone CR (a CR at the end of one chunk and an LF
  at the start of the next are one line ending);
- a line starting with ``:`` is a comment; ``field: value`` strips one space
  after the colon; a line without a colon is a field with an empty value;
- ``data`` lines are joined with ``b"\\n"``; ``event`` names the event; ``id``
  sets the last event id (kept across events, ignored if it contains NUL);
  ``retry`` (ASCII digits only) sets the reconnection time; other fields are
  ignored;
- a blank line dispatches the event, but only when it had at least one
  ``data`` line (a block with no ``data`` is not an event, as in WHATWG);
- one UTF-8 byte order mark at the start of the stream is skipped;
- at the end of the stream an event that was not closed by a blank line is
  dropped; :attr:`SseDecoder.has_pending` tells the caller it happened.

``data`` stays raw bytes so that the JSON parser reads them directly; its UTF-8
validity is the JSON parser's business. The event name and id are decoded here
and invalid UTF-8 in them raises :class:`~clust.messages.errors.StreamDecodeError`.

Performance: the decoder never loops per byte and, for the API's own framing,
not even per line. Line endings other than LF are normalised once per chunk
(only when the chunk contains a CR). The usual ``event: X\\ndata: {...}\\n\\n``
frames of a chunk are cut out by one regex ``split`` and turned into events by
``map``/``zip``, all in C; anything else (comments, multi-line data, other
fields) goes through a general path that works line by line (never byte by byte).
Bytes of an event that spans chunks are buffered in a ``bytearray`` and copied
a constant number of times, so a huge event arriving in tiny chunks costs
O(size), not O(size**2). ``benchmarks/bench_sse_decoder.py`` measures it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import NamedTuple, cast

from clust.messages.errors import StreamDecodeError

__all__ = ["ServerSentEvent", "SseDecoder", "decode_sse"]

_BOM = b"\xef\xbb\xbf"
_CR = 13
# The usual frame. The lookbehind lets a match start only at a line start, which
# keeps the search linear on hostile input ("event: event: event: ..." on one line);
# it sits after the literal so that the search still skips ahead on "event: ".
_FRAME = re.compile(rb"event: (?<![^\n]event: )([^\n]*)\ndata: ([^\n]*)\n\n")
_NAME_CACHE_LIMIT = 256
_SMALL = 400  # below this many bytes (one or two events), find() beats a regex split


class ServerSentEvent(NamedTuple):
    """One dispatched server-sent event.

    Attributes:
        event: the ``event:`` field, or ``None`` when absent or empty (WHATWG
            then calls the event ``"message"``).
        data: the ``data:`` lines as raw bytes, joined with ``b"\\n"``.
        id: the last event id seen so far in the stream (WHATWG keeps it
            across events), or ``None`` if the stream never sent one.
        retry: the ``retry:`` value sent inside this event block, if any.
    """

    event: str | None
    data: bytes
    id: str | None = None
    retry: int | None = None


# NamedTuple's generated __new__ is a Python function; building the tuple
# directly is about 3x cheaper and this runs once per event.
_Fields = tuple[str | None, bytes, str | None, int | None]
_new_event = cast("Callable[[type[ServerSentEvent], _Fields], ServerSentEvent]", tuple.__new__)


class SseDecoder:
    """Turn a byte stream, fed in arbitrary chunks, into :class:`ServerSentEvent`.

    Feed every chunk to :meth:`feed` and call :meth:`close` once the stream has
    ended. The events returned are the same whatever the chunking. Not thread
    safe; one decoder per stream.

    Example::

        decoder = SseDecoder()
        for chunk in chunks:
            for event in decoder.feed(chunk):
                handle(event)
        decoder.close()
        if decoder.has_pending:
            ...  # the stream was cut in the middle of an event
    """

    __slots__ = (
        "_at_start",
        "_buf",
        "_closed",
        "_data",
        "_event",
        "_fields_seen",
        "_has_pending",
        "_head",
        "_last_id",
        "_names",
        "_retry",
        "_retry_field",
        "_skip_lf",
        "_unusual",
    )

    def __init__(self) -> None:
        self._buf = bytearray()  # unprocessed LF-only bytes, starting at an event start
        self._head = b""  # first bytes of the stream, until the BOM question is settled
        self._at_start = True
        self._skip_lf = False  # previous chunk ended with CR: an LF now is its pair
        self._closed = False
        self._unusual = True  # any of: at start, skip LF, closed
        self._has_pending = False
        self._last_id: str | None = None
        self._retry: int | None = None
        self._names: dict[bytes, str | None] = {b"": None}
        # state of the event block being read by the general (slow) path
        self._event: str | None = None
        self._data: list[bytes] = []
        self._retry_field: int | None = None
        self._fields_seen = False

    @property
    def last_event_id(self) -> str | None:
        """The last event id the stream set (``id:`` field), or ``None``."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The last reconnection time (ms) the stream asked for, or ``None``."""
        return self._retry

    @property
    def has_pending(self) -> bool:
        """Whether undispatched bytes are buffered (before :meth:`close`).

        After :meth:`close`, ``True`` means the stream ended in the middle of an
        event (a partial line, or fields not followed by a blank line); that
        event was dropped. Comment lines and blank lines alone do not count.
        """
        if self._closed:
            return self._has_pending
        return bool(self._buf) or bool(self._head)

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        """Decode one chunk; return the events it completed (often none or several)."""
        data = chunk if type(chunk) is bytes else bytes(chunk)
        if self._unusual:
            data = self._prepare(data)
        if b"\r" in data:
            # A CR ends a line on its own; if the next chunk starts with LF,
            # that LF belongs to this CR.
            if data[-1] == _CR:
                self._skip_lf = self._unusual = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf
        if buf:
            scan = len(buf) - 1
            buf += data
            if buf.find(b"\n\n", scan) < 0:
                return []  # still inside the same event
            data = bytes(buf)
            buf.clear()
        events: list[ServerSentEvent] = []
        if len(data) < _SMALL:
            # A few events: a plain split costs less than the regex split.
            tail = self._decode_blocks(data, events)
        else:
            tail = self._decode_events(data, events)
        if tail:
            buf += tail
        return events

    def _prepare(self, chunk: bytes) -> bytes:
        """The rare cases at the start of :meth:`feed`: closed, BOM, LF after CR."""
        if self._closed:
            raise RuntimeError("SseDecoder.feed() called after close()")
        if self._at_start:
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head  # could still become a BOM
                return b""
            self._at_start = False
            self._head = b""
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
        self._unusual = self._at_start or self._skip_lf
        return chunk

    def close(self) -> list[ServerSentEvent]:
        """End the stream; return any event still to dispatch (per WHATWG, none).

        An event not terminated by a blank line is dropped; :attr:`has_pending`
        then becomes ``True``. Further :meth:`feed` calls raise ``RuntimeError``.
        Calling :meth:`close` again returns ``[]``.
        """
        if self._closed:
            return []
        self._closed = self._unusual = True
        events: list[ServerSentEvent] = []
        rest = self._head + bytes(self._buf)
        self._head = b""
        self._buf.clear()
        last_nl = rest.rfind(b"\n")
        partial = rest[last_nl + 1 :]
        if last_nl >= 0:
            # Complete lines of an unfinished event: read them for the state
            # (the last id or retry), which can never dispatch anything here
            # because the buffer holds no blank line after a field.
            for line in rest[:last_nl].split(b"\n"):
                self._line(line, events)
        self._has_pending = bool(partial) or self._fields_seen
        self._reset_block()
        return events

    # -- internals ---------------------------------------------------------

    def _decode_events(self, data: bytes, events: list[ServerSentEvent]) -> bytes:
        """Dispatch every event completed in ``data`` (LF-only, starting at an
        event start); return the undispatched tail."""
        # One C-level pass cuts the usual "event: X\ndata: Y\n\n" frames out:
        # parts = [gap, name, data, gap, name, data, ..., rest].
        parts = _FRAME.split(data)
        count = len(parts)
        if count == 4 and not parts[0]:
            # One frame (small chunks): skip the batch machinery below.
            name = self._names.get(parts[1])
            if name is None:
                name = self._decode_name(parts[1])
            events.append(_new_event(ServerSentEvent, (name, parts[2], self._last_id, None)))
        elif count > 1:
            if any(parts[0:-1:3]):
                self._decode_mixed(parts, events)
            else:
                raw_names = parts[1::3]
                names = list(map(self._names.get, raw_names))
                if None in names:  # a name not seen yet (or an empty one)
                    for i, name in enumerate(names):
                        if name is None:
                            names[i] = self._decode_name(raw_names[i])
                events.extend(
                    map(
                        _new_event,
                        repeat(ServerSentEvent),
                        zip(names, parts[2::3], repeat(self._last_id), repeat(None)),
                    )
                )
        rest = parts[-1]
        if b"\n\n" not in rest:
            return rest
        return self._decode_blocks(rest, events)

    def _decode_mixed(self, parts: list[bytes], events: list[ServerSentEvent]) -> None:
        """Slower path of :meth:`_decode_events` when other text sits between frames."""
        for i in range(0, len(parts) - 1, 3):
            gap, raw_name, payload = parts[i], parts[i + 1], parts[i + 2]
            if gap:
                # Comments, other fields or other framings: the gap may even
                # end mid-line, so decode it together with the frame after it
                # (which ends with a blank line, so nothing is left over).
                frame = b"".join((gap, b"event: ", raw_name, b"\ndata: ", payload, b"\n\n"))
                self._decode_blocks(frame, events)
            else:
                name = self._decode_name(raw_name)
                events.append(_new_event(ServerSentEvent, (name, payload, self._last_id, None)))

    def _decode_blocks(self, data: bytes, events: list[ServerSentEvent]) -> bytes:
        """General path: dispatch the events completed in ``data``; return the rest."""
        blocks = data.split(b"\n\n")
        rest = blocks.pop()
        names = self._names
        for block in blocks:
            if block[:7] == b"event: ":
                # "event: X\ndata: Y", the API's own framing, without splitting lines
                raw_name, sep, payload = block[7:].partition(b"\ndata: ")
                if sep and b"\n" not in payload and b"\n" not in raw_name:
                    name = names.get(raw_name)
                    if name is None:
                        name = self._decode_name(raw_name)
                    events.append(_new_event(ServerSentEvent, (name, payload, self._last_id, None)))
                    continue
            elif block[:6] == b"data: " and b"\n" not in block:
                # "data: JSON" alone, the framing of many other SSE APIs
                events.append(_new_event(ServerSentEvent, (None, block[6:], self._last_id, None)))
                continue
            for line in block.split(b"\n"):
                self._line(line, events)
            self._dispatch(events)
        return rest

    def _line(self, line: bytes, events: list[ServerSentEvent]) -> None:
        """Apply one line (without its ending) to the current event block."""
        if not line:
            self._dispatch(events)
            return
        if line[0] == 58:  # ":" comment
            return
        colon = line.find(b":")
        if colon < 0:
            field, value = line, b""
        else:
            field = line[:colon]
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if field == b"data":
            self._data.append(value)
            self._fields_seen = True
        elif field == b"event":
            self._event = self._decode_name(value)
            self._fields_seen = True
        elif field == b"id":
            if b"\0" not in value:
                self._last_id = _decode(value, "id")
        # bytes.isdigit() accepts ASCII digits only, as WHATWG says; int() would
        # refuse absurdly long digit strings: ignore those like any bad value.
        elif field == b"retry" and value.isdigit() and len(value) <= 18:
            self._retry = self._retry_field = int(value)
            self._fields_seen = True

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        data = self._data
        if data:
            joined = data[0] if len(data) == 1 else b"\n".join(data)
            events.append(
                _new_event(ServerSentEvent, (self._event, joined, self._last_id, self._retry_field))
            )
        self._reset_block()

    def _reset_block(self) -> None:
        self._event = None
        self._data = []
        self._retry_field = None
        self._fields_seen = False

    def _decode_name(self, raw: bytes) -> str | None:
        try:
            return self._names[raw]
        except KeyError:
            pass
        decoded = _decode(raw, "event name")
        if len(self._names) < _NAME_CACHE_LIMIT:
            self._names[raw] = decoded
        return decoded


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StreamDecodeError(f"invalid UTF-8 in SSE {what}: {raw[:80]!r}") from exc


def decode_sse(chunks: Iterable[bytes]) -> tuple[list[ServerSentEvent], bool]:
    """Decode a whole stream; return its events and whether it ended mid-event."""
    decoder = SseDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events, decoder.has_pending
