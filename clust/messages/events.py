"""Typed server-sent events of a streamed ``POST /v1/messages``.

``parse_event(event_name, data)`` turns one SSE frame into a ``StreamEvent``. It
dispatches on the ``event:`` name straight to that class's Rust validator (the
common case: name and JSON ``type`` agree) and falls back to the open union,
which picks the class by the JSON ``type``, when the name is missing, unknown
or disagrees. Unknown event and delta types parse into ``UnknownEvent`` /
``UnknownDelta``, which keep every field and dump back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, TypeAdapter, ValidationError

from clust.messages._wire import OpenUnionFallback, WireModel, literal_tags
from clust.messages.blocks import ContentBlock
from clust.messages.citations import Citation
from clust.messages.response import (
    Container,
    MessagesResponseBody,
    OutputTokensDetails,
    ServerToolUsage,
    StopDetails,
    StopReasonValue,
)

__all__ = [
    "CitationsDelta",
    "ContentBlockDeltaEvent",
    "ContentBlockStartEvent",
    "ContentBlockStopEvent",
    "Delta",
    "ErrorDetail",
    "ErrorEvent",
    "InputJsonDelta",
    "MessageDelta",
    "MessageDeltaEvent",
    "MessageDeltaUsage",
    "MessageStartEvent",
    "MessageStopEvent",
    "PingEvent",
    "SignatureDelta",
    "StreamEvent",
    "TextDelta",
    "ThinkingDelta",
    "UnknownDelta",
    "UnknownEvent",
    "parse_event",
]


# --- deltas ----------------------------------------------------------------------------------


class TextDelta(WireModel):
    """Append ``text`` to the text block."""

    type: Literal["text_delta"] = "text_delta"
    text: str


class InputJsonDelta(WireModel):
    """A fragment of the tool input JSON; concatenate, parse at the block's stop."""

    type: Literal["input_json_delta"] = "input_json_delta"
    partial_json: str


class ThinkingDelta(WireModel):
    """Append ``thinking`` to the thinking block."""

    type: Literal["thinking_delta"] = "thinking_delta"
    thinking: str


class SignatureDelta(WireModel):
    """Replace the thinking block's ``signature``."""

    type: Literal["signature_delta"] = "signature_delta"
    signature: str


class CitationsDelta(WireModel):
    """Append ``citation`` to the text block's ``citations``."""

    type: Literal["citations_delta"] = "citations_delta"
    citation: Citation


class UnknownDelta(OpenUnionFallback):
    """A delta type this release does not know; every field is kept."""

    _known_types: ClassVar[frozenset[str]] = literal_tags(
        TextDelta, InputJsonDelta, ThinkingDelta, SignatureDelta, CitationsDelta
    )


Delta = Annotated[
    Annotated[
        TextDelta | InputJsonDelta | ThinkingDelta | SignatureDelta | CitationsDelta,
        Field(discriminator="type"),
    ]
    | UnknownDelta,
    Field(union_mode="left_to_right"),
]
"""Any ``content_block_delta.delta``; unknown types become ``UnknownDelta``."""


# --- events ----------------------------------------------------------------------------------


class MessageStartEvent(WireModel):
    """The first event: the message with empty ``content`` and the input usage."""

    type: Literal["message_start"] = "message_start"
    message: MessagesResponseBody


class ContentBlockStartEvent(WireModel):
    """A block starts at ``index`` (text ``""``, tool input ``{}``; server results complete)."""

    type: Literal["content_block_start"] = "content_block_start"
    index: int
    content_block: ContentBlock


class ContentBlockDeltaEvent(WireModel):
    """A change to the block at ``index``."""

    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: Delta


class ContentBlockStopEvent(WireModel):
    """The block at ``index`` is complete."""

    type: Literal["content_block_stop"] = "content_block_stop"
    index: int


class MessageDelta(WireModel):
    """Top-level changes at the end of the message."""

    stop_reason: StopReasonValue | None = None
    stop_sequence: str | None = None
    stop_details: StopDetails | None = None
    container: Container | None = None


class MessageDeltaUsage(WireModel):
    """Cumulative usage totals: each field present overwrites the snapshot's (never add)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    server_tool_use: ServerToolUsage | None = None
    output_tokens_details: OutputTokensDetails | None = None


class MessageDeltaEvent(WireModel):
    """Stop reason and final usage, just before ``message_stop``."""

    type: Literal["message_delta"] = "message_delta"
    delta: MessageDelta
    usage: MessageDeltaUsage


class MessageStopEvent(WireModel):
    """The last event of a complete stream."""

    type: Literal["message_stop"] = "message_stop"


class PingEvent(WireModel):
    """Keep-alive; may appear anywhere."""

    type: Literal["ping"] = "ping"


class ErrorDetail(WireModel):
    """``{"type": "overloaded_error", "message": ...}`` (``details`` and others kept as
    extras). ``message`` may be missing or null: the error is still typed by ``type``."""

    type: str
    message: str | None = None


class ErrorEvent(WireModel):
    """An error after the 200 header (e.g. overload mid-stream); nothing follows it."""

    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str | None = None


_KNOWN_EVENTS: tuple[type[WireModel], ...] = (
    MessageStartEvent,
    ContentBlockStartEvent,
    ContentBlockDeltaEvent,
    ContentBlockStopEvent,
    MessageDeltaEvent,
    MessageStopEvent,
    PingEvent,
    ErrorEvent,
)


class UnknownEvent(OpenUnionFallback):
    """An event type this release does not know; every field is kept."""

    _known_types: ClassVar[frozenset[str]] = literal_tags(*_KNOWN_EVENTS)


StreamEvent = Annotated[
    Annotated[
        MessageStartEvent
        | ContentBlockStartEvent
        | ContentBlockDeltaEvent
        | ContentBlockStopEvent
        | MessageDeltaEvent
        | MessageStopEvent
        | PingEvent
        | ErrorEvent,
        Field(discriminator="type"),
    ]
    | UnknownEvent,
    Field(union_mode="left_to_right"),
]
"""Any stream event; unknown types become ``UnknownEvent``."""

_STREAM_EVENT: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
_validate_any_event: Callable[[Any], Any] = _STREAM_EVENT.validate_json

_VALIDATE_BY_NAME: dict[str, Callable[[Any], Any]] = {
    next(iter(literal_tags(event))): event.__pydantic_validator__.validate_json
    for event in _KNOWN_EVENTS
}


def parse_event(event_name: str | None, data: bytes | str) -> StreamEvent:
    """Parse the JSON ``data`` of one SSE frame into its typed event.

    ``event_name`` is the frame's ``event:`` field (None when absent). The class is
    chosen by the ``type`` inside ``data``. Raises pydantic's ``ValidationError`` (a
    ``ValueError``) on malformed JSON or a malformed known event.
    """
    if event_name is not None:
        validate = _VALIDATE_BY_NAME.get(event_name)
        if validate is not None:
            try:
                event: StreamEvent = validate(data)
            except ValidationError:
                pass  # name and type disagree, or bad data: the union decides / reports
            else:
                return event
    result: StreamEvent = _validate_any_event(data)
    return result
