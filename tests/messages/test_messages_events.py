"""Stream events and parse_event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from clust.messages import (
    CharLocationCitation,
    CitationsDelta,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    ErrorEvent,
    InputJsonDelta,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    PingEvent,
    SignatureDelta,
    StopReason,
    TextContentBlock,
    TextDelta,
    ThinkingContentBlock,
    ThinkingDelta,
    ToolUseContentBlock,
    UnknownContentBlock,
    UnknownDelta,
    UnknownEvent,
    parse_event,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api-examples"
needs_examples = pytest.mark.skipif(
    not EXAMPLES.is_dir(), reason="tests/fixtures/api-examples missing"
)


def frames(name: str) -> list[tuple[str | None, str]]:
    """(event name, data) of every frame of an example .sse file."""
    result = []
    for frame in (EXAMPLES / name).read_text().split("\n\n"):
        event_name, data = None, []
        for line in frame.splitlines():
            if line.startswith("event:"):
                event_name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].removeprefix(" "))
        if data:
            result.append((event_name, "\n".join(data)))
    return result


SSE_FILES = ["stream-text.sse", "stream-tool-use.sse", "stream-error.sse"]


@needs_examples
@pytest.mark.parametrize("name", SSE_FILES)
def test_every_example_frame_parses_and_round_trips(name: str) -> None:
    parsed = frames(name)
    assert parsed
    for event_name, data in parsed:
        wire = json.loads(data)
        for candidate in (
            parse_event(event_name, data),
            parse_event(event_name, data.encode()),
            parse_event(None, data),
        ):
            assert candidate.type == wire["type"] == event_name
            assert not isinstance(candidate, UnknownEvent)
            assert candidate.to_wire() == wire


@needs_examples
def test_text_stream_event_classes() -> None:
    events = [parse_event(name, data) for name, data in frames("stream-text.sse")]
    assert [type(event) for event in events] == [
        MessageStartEvent,
        ContentBlockStartEvent,
        PingEvent,
        ContentBlockDeltaEvent,
        ContentBlockDeltaEvent,
        ContentBlockDeltaEvent,
        ContentBlockStopEvent,
        MessageDeltaEvent,
        MessageStopEvent,
    ]
    start = events[0]
    assert isinstance(start, MessageStartEvent)
    assert start.message.content == []
    assert start.message.usage.input_tokens == 12
    block = events[1]
    assert isinstance(block, ContentBlockStartEvent)
    assert block.content_block == TextContentBlock(text="")
    text = ""
    for event in events:
        if isinstance(event, ContentBlockDeltaEvent):
            assert isinstance(event.delta, TextDelta)
            text += event.delta.text
    assert text == "Hello! How can I help you today?"
    end = events[-2]
    assert isinstance(end, MessageDeltaEvent)
    assert end.delta.stop_reason is StopReason.END_TURN
    assert end.usage.output_tokens == 11
    assert end.usage.input_tokens is None


@needs_examples
def test_tool_use_stream_deltas() -> None:
    events = [parse_event(name, data) for name, data in frames("stream-tool-use.sse")]
    deltas = [event.delta for event in events if isinstance(event, ContentBlockDeltaEvent)]
    expected: list[type] = [
        ThinkingDelta,
        ThinkingDelta,
        SignatureDelta,
        TextDelta,
        InputJsonDelta,
        InputJsonDelta,
        InputJsonDelta,
    ]
    assert [type(delta) for delta in deltas] == expected
    partial = "".join(delta.partial_json for delta in deltas if isinstance(delta, InputJsonDelta))
    assert json.loads(partial) == {"location": "Paris, FR"}
    starts = [event for event in events if isinstance(event, ContentBlockStartEvent)]
    assert [type(start.content_block) for start in starts] == [
        ThinkingContentBlock,
        TextContentBlock,
        ToolUseContentBlock,
    ]
    final = next(event for event in events if isinstance(event, MessageDeltaEvent))
    assert final.usage.input_tokens == 2095
    assert final.usage.cache_creation_input_tokens == 1800
    assert final.usage.output_tokens_details is not None
    assert final.usage.output_tokens_details.thinking_tokens == 40


@needs_examples
def test_error_stream_ends_with_a_typed_error_event() -> None:
    events = [parse_event(name, data) for name, data in frames("stream-error.sse")]
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert error.error.type == "overloaded_error"
    assert error.error.message == "Overloaded"
    assert error.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"


def test_error_event_keeps_details() -> None:
    wire = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "slow down",
            "details": {"error_code": "spend_limit"},
        },
    }
    event = parse_event("error", json.dumps(wire))
    assert isinstance(event, ErrorEvent)
    assert event.error.model_extra == {"details": {"error_code": "spend_limit"}}
    assert event.to_wire() == wire


@pytest.mark.parametrize("event_name", ["compaction_start", None, "ping"])
def test_unknown_event_keeps_every_field(event_name: str | None) -> None:
    wire = {"type": "compaction_start", "index": 3, "payload": {"a": [1, None]}}
    event = parse_event(event_name, json.dumps(wire))
    assert isinstance(event, UnknownEvent)
    assert event.type == "compaction_start"
    assert event.to_wire() == wire


def test_event_name_disagreeing_with_the_type_uses_the_type() -> None:
    data = '{"type":"content_block_stop","index":4}'
    event = parse_event("content_block_delta", data)
    assert isinstance(event, ContentBlockStopEvent)
    assert event.index == 4


def test_unknown_delta_keeps_every_field() -> None:
    wire = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "compaction_delta", "content": "summary", "extra": {"x": 1}},
    }
    event = parse_event("content_block_delta", json.dumps(wire))
    assert isinstance(event, ContentBlockDeltaEvent)
    assert isinstance(event.delta, UnknownDelta)
    assert event.to_wire() == wire


def test_citations_delta_is_typed_and_unknown_citations_are_kept() -> None:
    citation = {
        "type": "char_location",
        "cited_text": "The grass is green.",
        "document_index": 0,
        "document_title": "Doc",
        "start_char_index": 0,
        "end_char_index": 20,
    }
    wire: dict[str, Any] = {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "citations_delta", "citation": citation},
    }
    event = parse_event("content_block_delta", json.dumps(wire))
    assert isinstance(event, ContentBlockDeltaEvent)
    assert isinstance(event.delta, CitationsDelta)
    assert isinstance(event.delta.citation, CharLocationCitation)
    assert event.to_wire() == wire
    wire["delta"]["citation"] = {"type": "video_location", "cited_text": "x", "t": 3}
    assert parse_event("content_block_delta", json.dumps(wire)).to_wire() == wire


def test_unknown_block_in_content_block_start() -> None:
    wire = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "mcp_tool_result", "tool_use_id": "x", "content": []},
    }
    event = parse_event("content_block_start", json.dumps(wire))
    assert isinstance(event, ContentBlockStartEvent)
    assert isinstance(event.content_block, UnknownContentBlock)
    assert event.to_wire() == wire


def test_message_delta_with_unknown_stop_reason_and_extras() -> None:
    wire = {
        "type": "message_delta",
        "delta": {
            "stop_reason": "compaction_v2",
            "stop_sequence": None,
            "stop_details": {"type": "refusal", "category": "bio", "explanation": "no"},
            "container": {"id": "cntr_1", "expires_at": "2026-11-20T00:00:00Z"},
            "new_delta_field": True,
        },
        "usage": {"output_tokens": 9, "iterations": []},
        "context_management": {"applied_edits": []},
    }
    event = parse_event("message_delta", json.dumps(wire))
    assert isinstance(event, MessageDeltaEvent)
    assert event.delta.stop_reason == "compaction_v2"
    assert event.delta.container is not None
    assert event.to_wire() == wire


def test_message_delta_usage_fields_are_all_optional() -> None:
    event = parse_event("message_delta", '{"type":"message_delta","delta":{},"usage":{}}')
    assert isinstance(event, MessageDeltaEvent)
    assert event.usage.output_tokens is None
    assert event.to_wire() == {"type": "message_delta", "delta": {}, "usage": {}}


@pytest.mark.parametrize("data", ["", "{", "not json", b"\xff\xfe", "[1]", "{}", '{"type":3}'])
@pytest.mark.parametrize("event_name", ["content_block_delta", None, "foo"])
def test_bad_data_raises_validation_error(event_name: str | None, data: Any) -> None:
    with pytest.raises(ValidationError):
        parse_event(event_name, data)
    with pytest.raises(ValueError):
        parse_event(event_name, data)


@pytest.mark.parametrize(
    "data",
    [
        '{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}',
        '{"type":"message_start"}',
        '{"type":"error","error":{"message":"no type"}}',
        '{"type":"error"}',
    ],
)
def test_malformed_known_events_are_errors_not_unknown(data: str) -> None:
    name = json.loads(data)["type"]
    for event_name in (name, None):
        with pytest.raises(ValidationError):
            parse_event(event_name, data)


def test_user_built_events_send_their_type() -> None:
    assert MessageStopEvent().to_wire() == {"type": "message_stop"}
    assert PingEvent().to_wire() == {"type": "ping"}
    delta = ContentBlockDeltaEvent(index=2, delta=TextDelta(text="x"))
    assert delta.to_wire() == {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "text_delta", "text": "x"},
    }
    assert parse_event("content_block_delta", delta.model_dump_json()) == delta
