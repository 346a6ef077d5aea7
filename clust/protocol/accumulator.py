"""Build the final ``MessagesResponseBody`` from typed stream events (sans-IO).

One :class:`MessageAccumulator` per streamed response; the sync and async
clients feed it the same events. The rules are the official SDK's (see
``api/streaming.md``, "Accumulating") with three deliberate differences:

- Tool input JSON is parsed once, at ``content_block_stop``, instead of being
  re-parsed with a partial-JSON parser after every fragment. Input that does not
  parse as a JSON object (cut short by ``max_tokens``, or simply broken) is never
  turned into a smaller valid object: the block keeps the ``input`` of its start
  event (usually ``{}``) and is marked incomplete, with the raw text kept. So is
  the last block when it received no input JSON at all and the message stopped
  for ``max_tokens`` (an empty buffer otherwise means ``{}``, a tool without
  parameters). Read the mark with :func:`tool_input_complete` and
  :func:`partial_tool_input`.
- Protocol violations (an event before ``message_start``, a block index out of
  order or unknown, a delta after its block stopped, a known delta type sent to a
  block it cannot apply to) raise :class:`~clust.messages.errors.StreamDecodeError`
  instead of being ignored or raising a bare ``IndexError``.
- Nothing is dropped: unknown event types are kept in :attr:`~MessageAccumulator.unknown_events`,
  unknown delta types (and known ones sent to a block type this release does not
  know) in :attr:`~MessageAccumulator.unapplied_deltas`; unknown fields of
  ``message_delta`` are copied onto the message like the known ones.

The incomplete-input mark is an instance attribute named ``_partial_json`` on
the ``ToolUseContentBlock`` / ``ServerToolUseContentBlock`` (pydantic leaves
underscore names out of ``to_wire()``, ``model_dump()`` and equality, and keeps
them through ``model_copy()`` and pickling), so it travels with the message
without ever being sent back to the API.

Text and thinking deltas are collected in a list per block and joined once, so
accumulating n deltas costs O(total size), not O(n**2).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from clust.messages.blocks import (
    ContentBlock,
    ServerToolUseContentBlock,
    TextContentBlock,
    ThinkingContentBlock,
    ToolUseContentBlock,
    UnknownContentBlock,
)
from clust.messages.citations import Citation
from clust.messages.errors import ApiError, StreamDecodeError, StreamInterrupted
from clust.messages.events import (
    CitationsDelta,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    Delta,
    ErrorEvent,
    InputJsonDelta,
    MessageDeltaEvent,
    MessageDeltaUsage,
    MessageStartEvent,
    MessageStopEvent,
    PingEvent,
    SignatureDelta,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    UnknownDelta,
    UnknownEvent,
)
from clust.messages.response import MessagesResponseBody, Usage
from clust.protocol.errors import error_from_envelope

__all__ = [
    "MessageAccumulator",
    "accumulate",
    "error_from_event",
    "partial_tool_input",
    "tool_input_complete",
]

_PARTIAL_JSON = "_partial_json"
_validate_assignment = MessagesResponseBody.__pydantic_validator__.validate_assignment
# Stop reasons that mean the output was cut off mid-way.
_TRUNCATED = frozenset({"max_tokens", "model_context_window_exceeded"})


def tool_input_complete(block: ContentBlock) -> bool:
    """Whether a tool-use block's ``input`` is the whole input the model sent.

    ``False`` for a block whose input JSON was cut short or did not parse, and
    for a block still streaming in a snapshot. Always ``True`` for other blocks.
    """
    return getattr(block, _PARTIAL_JSON, None) is None


def partial_tool_input(block: ContentBlock) -> str | None:
    """The raw input JSON received for an incomplete tool-use block, else ``None``."""
    value = getattr(block, _PARTIAL_JSON, None)
    return value if isinstance(value, str) else None


def error_from_event(event: ErrorEvent, *, request_id: str | None = None) -> ApiError:
    """The typed error to raise for an in-stream ``error`` event.

    The class follows ``error.type`` (``overloaded_error`` -> ``OverloadedError``,
    ...; unknown types -> ``ApiError``); ``status_code`` is 200, the status of the
    response that carried the stream. ``request_id`` (the response header) wins
    over the one in the event.
    """
    return error_from_envelope(200, event.to_wire(), request_id=request_id)


class _Open:
    """What an open (still streaming) block has received so far.

    Each list is ``None`` when the block cannot take that kind of delta. ``text``
    and ``thinking`` start with the block's initial value.
    """

    __slots__ = (
        "block",
        "citations",
        "joined_text",
        "joined_thinking",
        "json",
        "signature",
        "text",
        "thinking",
    )

    def __init__(self, block: ContentBlock) -> None:
        self.block = block
        self.text: list[str] | None = None
        self.thinking: list[str] | None = None
        self.json: list[str] | None = None
        self.citations: list[Citation] | None = None
        self.signature = False  # accepts signature_delta
        self.joined_text = self.joined_thinking = False  # deltas already joined into [0]
        if isinstance(block, TextContentBlock):
            self.text = [block.text]
        elif isinstance(block, ThinkingContentBlock):
            self.thinking = [block.thinking]
            self.signature = True
        elif isinstance(block, (ToolUseContentBlock, ServerToolUseContentBlock)):
            self.json = []
        elif isinstance(block, UnknownContentBlock):
            # A block type from a newer API: apply the deltas its fields allow
            # (e.g. a beta mcp_tool_use block takes input_json_delta).
            extra = block.model_extra or {}
            if isinstance(extra.get("text"), str):
                self.text = [extra["text"]]
            if isinstance(extra.get("thinking"), str):
                self.thinking = [extra["thinking"]]
                self.signature = isinstance(extra.get("signature"), str)
            if isinstance(extra.get("input"), dict):
                self.json = []

    def updates(self) -> dict[str, Any]:
        """The field values accumulated so far (joined lazily, cached for next time)."""
        out: dict[str, Any] = {}
        text, thinking = self.text, self.thinking
        if text is not None and (len(text) > 1 or self.joined_text):
            if len(text) > 1:
                text[:] = ["".join(text)]
                self.joined_text = True
            out["text"] = text[0]
        if thinking is not None and (len(thinking) > 1 or self.joined_thinking):
            if len(thinking) > 1:
                thinking[:] = ["".join(thinking)]
                self.joined_thinking = True
            out["thinking"] = thinking[0]
        if self.citations is not None:
            existing = getattr(self.block, "citations", None)
            out["citations"] = [*(existing or ()), *self.citations]
        return out

    def raw_json(self) -> str:
        if not self.json:
            return ""
        joined = "".join(self.json)
        self.json[:] = [joined]
        return joined


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_tool_input(raw: str) -> dict[str, Any] | None:
    """The input object, or ``None`` when ``raw`` is not one complete JSON object."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:  # JSONDecodeError, and NaN/Infinity
        return None
    return value if isinstance(value, dict) else None


def _merge_usage(usage: Usage, delta: MessageDeltaUsage) -> Usage:
    """``usage`` with every field present (and not null) in ``delta`` overwritten.

    Usage counts are cumulative totals, never added. Nested objects
    (``cache_creation``, ``server_tool_use``, ...) are merged key by key, so a
    count absent from the delta keeps its ``message_start`` value. Unknown fields
    are merged the same way.
    """
    changes = {name: value for name, value in delta.to_wire().items() if value is not None}
    if not changes:
        return usage
    merged = usage.to_wire()
    for name, value in changes.items():
        old = merged.get(name)
        if isinstance(value, dict) and isinstance(old, dict):
            merged[name] = {**old, **{k: v for k, v in value.items() if v is not None}}
        else:
            merged[name] = value
    return Usage.model_validate(merged)


class MessageAccumulator:
    """Fold the events of one streamed response into its ``MessagesResponseBody``.

    Feed every parsed event, in order, to :meth:`feed`. Then:

    - :meth:`final_message` once ``message_stop`` was seen (:attr:`is_complete`);
    - :attr:`error` holds an ``error`` event if one arrived: raise
      :func:`error_from_event` (nothing follows an error event);
    - a stream that ended before ``message_stop`` is interrupted:
      :meth:`final_message` raises :class:`StreamInterrupted` carrying
      :meth:`partial_message`.

    :attr:`current_message` builds a snapshot at any time (cost O(message size):
    call it now and then, not after every delta). :attr:`content_started` tells
    whether any content arrived yet, which decides whether a failed stream may be
    retried without the caller noticing.

    ``request_id`` (the response's ``request-id`` header) is put on the errors
    this class raises.
    """

    def __init__(self, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        self._message: MessagesResponseBody | None = None
        self._blocks: list[ContentBlock] = []
        self._open: dict[int, _Open] = {}
        self._complete = False
        self._final: MessagesResponseBody | None = None
        self._content_started = False
        self._error: ErrorEvent | None = None
        self._unknown_events: list[UnknownEvent] = []
        self._unapplied: dict[int, list[Delta]] = {}
        self._empty_input_block: ContentBlock | None = None

    # -- state -------------------------------------------------------------

    @property
    def is_complete(self) -> bool:
        """Whether ``message_stop`` was seen."""
        return self._complete

    @property
    def content_started(self) -> bool:
        """Whether any content arrived: a ``content_block_delta``, or a
        ``content_block_start`` whose block is not empty (a server tool result,
        say). ``message_start`` and pings alone do not count."""
        return self._content_started

    @property
    def error(self) -> ErrorEvent | None:
        """The ``error`` event received, if any."""
        return self._error

    @property
    def unknown_events(self) -> list[UnknownEvent]:
        """Events of types this release does not know, in arrival order."""
        return self._unknown_events

    @property
    def unapplied_deltas(self) -> dict[int, list[Delta]]:
        """Deltas kept but not applied, by block index: unknown delta types, and
        known ones sent to a block type this release does not know."""
        return self._unapplied

    @property
    def current_message(self) -> MessagesResponseBody | None:
        """A snapshot of the message so far (``None`` before ``message_start``).

        Blocks still streaming carry the text received so far; a tool-use block
        still streaming is marked incomplete (see :func:`tool_input_complete`).
        After ``message_stop`` this is :meth:`final_message`.
        """
        if self._final is not None:
            return self._final
        message = self._message
        if message is None:
            return None
        content = list(self._blocks)
        for index, state in self._open.items():
            block = state.block.model_copy(update=state.updates())
            if state.json is not None:
                setattr(block, _PARTIAL_JSON, state.raw_json())
            content[index] = block
        return message.model_copy(update={"content": content})

    def partial_message(self) -> MessagesResponseBody | None:
        """What arrived before the stream broke off (``None`` before ``message_start``)."""
        return self.current_message

    def final_message(self) -> MessagesResponseBody:
        """The complete message; call once the stream has ended.

        Raises:
            StreamInterrupted: ``message_stop`` never arrived; the exception holds
                :meth:`partial_message`.
        """
        if self._final is None:
            raise StreamInterrupted(
                "the stream ended before message_stop",
                partial_message=self.partial_message(),
                request_id=self.request_id,
            )
        return self._final

    # -- feeding -----------------------------------------------------------

    def feed(self, event: StreamEvent) -> None:
        """Apply one event. Raises ``StreamDecodeError`` on a protocol violation."""
        if type(event) is ContentBlockDeltaEvent:
            state = self._open.get(event.index)
            if state is None:
                raise self._no_open_block(event.type, event.index)
            self._content_started = True
            delta = event.delta
            if type(delta) is TextDelta and state.text is not None:  # the hot path
                state.text.append(delta.text)
            else:
                self._apply_delta(state, event.index, delta)
        elif type(event) is PingEvent:
            pass
        elif type(event) is ContentBlockStartEvent:
            self._start_block(event)
        elif type(event) is ContentBlockStopEvent:
            state = self._open.pop(event.index, None)
            if state is None:
                raise self._no_open_block(event.type, event.index)
            self._finish_block(state)
        elif type(event) is MessageStartEvent:
            if self._message is not None:
                raise self._violation("a second message_start")
            # Our own copy: the caller may keep the event, which must not change.
            self._message = event.message.model_copy()
            self._message._request_id = self.request_id
            self._blocks = list(event.message.content)
        elif type(event) is MessageDeltaEvent:
            self._message_delta(event)
        elif type(event) is MessageStopEvent:
            message = self._require_message(event.type)
            for index in sorted(self._open):
                self._finish_block(self._open.pop(index))
            self._complete = True
            self._final = message.model_copy(update={"content": self._blocks})
        elif type(event) is ErrorEvent:
            self._error = event
        elif type(event) is UnknownEvent:
            self._unknown_events.append(event)
        else:
            raise TypeError(f"not a stream event: {event!r}")

    def _violation(self, what: str) -> StreamDecodeError:
        return StreamDecodeError(f"stream protocol violation: {what}", request_id=self.request_id)

    def _require_message(self, what: str) -> MessagesResponseBody:
        if self._message is None:
            raise self._violation(f"{what} before message_start")
        if self._complete:
            raise self._violation(f"{what} after message_stop")
        return self._message

    def _no_open_block(self, what: str, index: int) -> StreamDecodeError:
        self._require_message(what)
        if 0 <= index < len(self._blocks):
            return self._violation(f"{what} for block {index}, which has stopped")
        return self._violation(f"{what} for block {index}, which never started")

    def _start_block(self, event: ContentBlockStartEvent) -> None:
        self._require_message(event.type)
        index = event.index
        if index != len(self._blocks):
            raise self._violation(
                f"content_block_start for block {index}, expected block {len(self._blocks)}"
            )
        block = event.content_block.model_copy()
        self._blocks.append(block)
        self._open[index] = _Open(block)
        if not _is_empty_start(block):
            self._content_started = True

    def _apply_delta(self, state: _Open, index: int, delta: Delta) -> None:
        if type(delta) is InputJsonDelta and state.json is not None:
            state.json.append(delta.partial_json)
        elif type(delta) is ThinkingDelta and state.thinking is not None:
            state.thinking.append(delta.thinking)
        elif type(delta) is SignatureDelta and state.signature:
            setattr(state.block, "signature", delta.signature)  # noqa: B010 (any block type)
        elif type(delta) is CitationsDelta and state.text is not None:
            if state.citations is None:
                state.citations = []
            state.citations.append(delta.citation)
        elif type(delta) is UnknownDelta or isinstance(state.block, UnknownContentBlock):
            self._unapplied.setdefault(index, []).append(delta)
        else:
            raise self._violation(f"{delta.type} for block {index} of type {state.block.type!r}")

    def _finish_block(self, state: _Open) -> None:
        block = state.block
        for name, value in state.updates().items():
            setattr(block, name, value)
        if state.json is not None:
            raw = state.raw_json()
            if raw.strip():
                parsed = _parse_tool_input(raw)
                if parsed is None:
                    setattr(block, _PARTIAL_JSON, raw)
                else:
                    setattr(block, "input", parsed)  # noqa: B010 (any block type)
            else:
                # No input JSON at all: {} for a tool without parameters, unless
                # the output was cut right here (see _mark_cut_input).
                self._empty_input_block = block
                self._mark_cut_input()

    def _mark_cut_input(self) -> None:
        """Flag the last block's empty tool input as incomplete when the message
        was cut short (stop reason ``max_tokens``): the input never came."""
        message = self._message
        block = self._empty_input_block
        if (
            block is not None
            and message is not None
            and message.stop_reason in _TRUNCATED
            and self._blocks
            and self._blocks[-1] is block
        ):
            setattr(block, _PARTIAL_JSON, "")

    def _message_delta(self, event: MessageDeltaEvent) -> None:
        message = self._require_message(event.type)
        delta = event.delta
        message.stop_reason = delta.stop_reason
        message.stop_sequence = delta.stop_sequence
        if "stop_details" in delta.model_fields_set:
            message.stop_details = delta.stop_details
        if delta.container is not None:
            message.container = delta.container
        try:
            # Fields this release does not know in message_delta (e.g. beta
            # context_management) overwrite when non-null; validated, since the
            # message may know a field the event does not.
            for extras in (delta.model_extra, event.model_extra):
                for name, value in (extras or {}).items():
                    if value is not None:
                        _validate_assignment(message, name, value)
            message.usage = _merge_usage(message.usage, event.usage)
        except ValidationError as exc:
            raise self._violation(f"message_delta does not fit the message: {exc}") from exc
        self._mark_cut_input()


def _is_empty_start(block: ContentBlock) -> bool:
    """Whether a start block carries no content yet (its payload comes in deltas)."""
    if isinstance(block, TextContentBlock):
        return not block.text and not block.citations
    if isinstance(block, ThinkingContentBlock):
        return not block.thinking
    if isinstance(block, (ToolUseContentBlock, ServerToolUseContentBlock)):
        return not block.input
    return False


def accumulate(
    events: Iterable[StreamEvent], *, request_id: str | None = None
) -> MessagesResponseBody:
    """Accumulate a whole stream of events into its final message.

    Raises:
        ApiError: the stream carried an ``error`` event (typed by its ``error.type``).
        StreamInterrupted: the events ended before ``message_stop``.
        StreamDecodeError: the events broke the stream protocol.
    """
    accumulator = MessageAccumulator(request_id=request_id)
    for event in events:
        accumulator.feed(event)
        if accumulator.error is not None:
            raise error_from_event(accumulator.error, request_id=request_id)
    return accumulator.final_message()
