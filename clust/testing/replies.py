"""Scripted replies: what FakeClaude answers to the next POST /v1/messages.

A :class:`Reply` describes a *message* (content blocks, stop reason, usage overrides), or an
*error* status, a *raw* body, or a dropped connection. The same message reply is sent as JSON to
a non-streaming request and as SSE to a ``stream: true`` request, and both give the same final
message. Stream modifiers (``cut_after``, ``end_without_stop``, ``stream_error_after``, ``slow``,
``with_pings``, ``in_chunks``) return a changed copy; they shape only the SSE form, except that
a cut JSON response sends half its body and drops the connection, and ``slow`` delays a JSON
response once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .recorder import RecordedRequest

__all__ = ["Reply", "Responder"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the classmethods; the fields are the raw description.

    ``Reply(content=[...raw block dicts...], stop_reason=..., usage=...)`` is the general form:
    ``tool_use`` / ``server_tool_use`` blocks without an ``id`` get a deterministic one
    (``toolu_fake_0001``, ...); ``stop_reason`` defaults to ``"tool_use"`` when a ``tool_use``
    block is present, else ``"end_turn"``; ``usage`` entries override the computed ones;
    ``extra`` adds or overrides top-level message fields; ``headers`` adds response headers.
    """

    content: Sequence[Mapping[str, Any]] = ()
    stop_reason: str | None = None
    stop_sequence: str | None = None
    stop_details: Mapping[str, Any] | None = None
    usage: Mapping[str, Any] | None = None
    model: str | None = None
    extra: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    kind: str = "message"
    """``message`` | ``echo`` | ``error`` | ``raw`` | ``malformed`` | ``disconnect``."""
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    error_details: Mapping[str, Any] | None = None
    body: bytes | None = None
    content_type: str | None = None
    cut_after_events: int | None = None
    stream_error: tuple[int, str, str] | None = None
    omit_stop: bool = False
    event_delay: float = 0.0
    response_delay: float = 0.0
    ping_every: int | None = None
    chunk_size: int | None = None

    # --- constructors -------------------------------------------------------------------

    @classmethod
    def text(
        cls,
        text: str,
        *,
        stop_reason: str = "end_turn",
        stop_sequence: str | None = None,
        citations: Sequence[Mapping[str, Any]] | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> Reply:
        """One text block. ``citations`` (raw citation objects) go on the block; over SSE they
        arrive as ``citations_delta`` events."""
        block: dict[str, Any] = {"type": "text", "text": text}
        if citations is not None:
            block["citations"] = [dict(c) for c in citations]
        return cls(
            content=(block,), stop_reason=stop_reason, stop_sequence=stop_sequence, usage=usage
        )

    @classmethod
    def tool_use(
        cls,
        name: str,
        input: Mapping[str, Any],
        *,
        id: str | None = None,
        text: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> Reply:
        """A ``tool_use`` block (optionally after a text block); stop reason ``tool_use``."""
        return cls.tool_uses([(name, input, id)], text=text, usage=usage)

    @classmethod
    def tool_uses(
        cls,
        calls: Iterable[tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], str | None]],
        *,
        text: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> Reply:
        """Several ``tool_use`` blocks ``(name, input[, id])`` (parallel tool use)."""
        blocks: list[dict[str, Any]] = []
        if text is not None:
            blocks.append({"type": "text", "text": text})
        for call in calls:
            block: dict[str, Any] = {"type": "tool_use", "name": call[0], "input": dict(call[1])}
            if len(call) > 2 and call[2] is not None:
                block["id"] = call[2]
            blocks.append(block)
        return cls(content=tuple(blocks), stop_reason="tool_use", usage=usage)

    @classmethod
    def thinking(
        cls, thinking: str, *, signature: str = "fake-signature", then: Reply | None = None
    ) -> Reply:
        """A ``thinking`` block, then the content of ``then`` (whose other fields are kept)."""
        block = {"type": "thinking", "thinking": thinking, "signature": signature}
        rest = then if then is not None else cls(stop_reason="end_turn")
        return dataclasses.replace(rest, content=(block, *rest.content))

    @classmethod
    def echo(cls) -> Reply:
        """The default answer: ``"Echo: <text of the last user turn>"`` (honours ``max_tokens``
        and ``stop_sequences``). Useful with stream modifiers."""
        return cls(kind="echo")

    @classmethod
    def error(
        cls,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Reply:
        """An HTTP error with the real envelope, e.g. ``Reply.error(529, "overloaded_error",
        "Overloaded", headers={"retry-after": "2", "x-should-retry": "true"})``."""
        return cls(
            kind="error",
            status=status,
            error_type=error_type,
            error_message=message,
            error_details=details,
            headers=headers,
        )

    @classmethod
    def malformed(
        cls,
        body: str | bytes | None = None,
        *,
        status: int = 200,
        content_type: str | None = None,
    ) -> Reply:
        """A broken 200 answer. By default: truncated JSON as ``application/json`` (non-stream)
        or an SSE event whose data is not JSON (stream). ``body``/``content_type`` override it,
        e.g. ``Reply.malformed("<html>", content_type="text/html")``."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        return cls(kind="malformed", status=status, body=raw, content_type=content_type)

    @classmethod
    def raw(
        cls,
        body: str | bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A body sent byte for byte (chunked to a streaming request, so ``in_chunks``, ``slow``
        and ``cut_after`` do not apply but ``chunk_size`` of the server does)."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        return cls(kind="raw", status=status, body=raw, content_type=content_type, headers=headers)

    @classmethod
    def disconnect(cls) -> Reply:
        """Read the request, then close the connection without any response."""
        return cls(kind="disconnect")

    # --- modifiers ----------------------------------------------------------------------

    def cut_after(self, events: int) -> Reply:
        """Drop the connection after ``events`` SSE events (pings count), without the
        terminating chunk. A JSON response instead sends half its body, then drops."""
        _check_count(events, "events")
        return dataclasses.replace(self, cut_after_events=events)

    def end_without_stop(self) -> Reply:
        """End the SSE body cleanly but leave out ``message_delta`` and ``message_stop``."""
        return dataclasses.replace(self, omit_stop=True)

    def stream_error_after(
        self, events: int, error_type: str = "overloaded_error", message: str = "Overloaded"
    ) -> Reply:
        """Send ``event: error`` after ``events`` SSE events, then end the body."""
        _check_count(events, "events")
        return dataclasses.replace(self, stream_error=(events, error_type, message))

    def slow(self, delay_per_event: float) -> Reply:
        """Wait ``delay_per_event`` seconds before each SSE event (once before a JSON body)."""
        _check_delay(delay_per_event)
        return dataclasses.replace(self, event_delay=delay_per_event)

    def delayed(self, seconds: float) -> Reply:
        """Wait ``seconds`` before sending the status line (any kind of reply)."""
        _check_delay(seconds)
        return dataclasses.replace(self, response_delay=seconds)

    def with_pings(self, every: int) -> Reply:
        """Add a ``ping`` event after every ``every`` events (besides the usual first one)."""
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        return dataclasses.replace(self, ping_every=every)

    def in_chunks(self, size: int) -> Reply:
        """Write the SSE body in TCP chunks of ``size`` bytes (splitting anywhere)."""
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        return dataclasses.replace(self, chunk_size=size)

    def with_headers(self, headers: Mapping[str, str]) -> Reply:
        """Add response headers."""
        return dataclasses.replace(self, headers={**(self.headers or {}), **headers})

    def with_usage(self, **usage: Any) -> Reply:
        """Override usage fields (e.g. ``output_tokens=7``)."""
        return dataclasses.replace(self, usage={**(self.usage or {}), **usage})


Responder = Callable[["RecordedRequest"], Reply]
"""A function that picks the reply for a recorded request."""


def _check_count(value: int, name: str) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_delay(value: float) -> None:
    if value < 0:
        raise ValueError(f"delay must be >= 0, got {value}")
