"""Property tests for the accumulator, alone and behind the SSE decoder."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import message_start

from clust.messages.errors import StreamDecodeError, StreamInterrupted
from clust.messages.events import StreamEvent, parse_event
from clust.messages.response import MessagesResponseBody
from clust.protocol.accumulator import (
    MessageAccumulator,
    accumulate,
    partial_tool_input,
    tool_input_complete,
)
from clust.protocol.sse import SseDecoder

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api-examples"
COMPLETE_EXAMPLES = [EXAMPLES / "stream-text.sse", EXAMPLES / "stream-tool-use.sse"]

START = message_start(input_tokens=3)
STOP = {"type": "message_stop"}


def events_of(*objects: dict[str, Any]) -> list[StreamEvent]:
    return [parse_event(obj["type"], json.dumps(obj)) for obj in objects]


def tool_stream(fragments: list[str], stop_reason: str) -> list[StreamEvent]:
    return events_of(
        START,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        *(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": f},
            }
            for f in fragments
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        STOP,
    )


def cut(text: str, points: list[int]) -> list[str]:
    bounds = [0, *sorted(points), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=15,
)
JSON_OBJECTS = st.dictionaries(st.text(), JSON_VALUES, max_size=5)


@st.composite
def dumped_objects(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A JSON object and one of its spellings (escaped or raw unicode, compact or spaced)."""
    value = draw(JSON_OBJECTS)
    text = json.dumps(
        value,
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 1])),
        separators=draw(st.sampled_from([None, (",", ":")])),
    )
    return value, text


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_tool_input_split_anywhere_parses_to_the_same_object(data: st.DataObject) -> None:
    value, text = data.draw(dumped_objects())
    points = data.draw(st.lists(st.integers(0, len(text)), max_size=30))
    message = accumulate(tool_stream(["", *cut(text, points)], "tool_use"))
    block = message.content[0]
    assert block.input == value  # type: ignore[union-attr]
    assert tool_input_complete(block)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_truncated_tool_input_is_flagged_never_shrunk(data: st.DataObject) -> None:
    _value, text = data.draw(dumped_objects())
    end = data.draw(st.integers(1, len(text) - 1))
    prefix = text[:end]
    points = data.draw(st.lists(st.integers(0, len(prefix)), max_size=10))
    message = accumulate(tool_stream(cut(prefix, points), "max_tokens"))
    block = message.content[0]
    # A proper prefix of an object's JSON is never a JSON object itself.
    assert block.input == {}  # type: ignore[union-attr]
    assert not tool_input_complete(block)
    assert partial_tool_input(block) == prefix


@settings(max_examples=200)
@given(st.lists(st.text(), max_size=40), st.lists(st.text(), max_size=10))
def test_text_and_thinking_deltas_concatenate(texts: list[str], thoughts: list[str]) -> None:
    def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": index, "delta": delta}

    objects: list[dict[str, Any]] = [
        START,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        *(block_delta(0, {"type": "thinking_delta", "thinking": t}) for t in thoughts),
        block_delta(0, {"type": "signature_delta", "signature": "sig"}),
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        *(block_delta(1, {"type": "text_delta", "text": t}) for t in texts),
        {"type": "content_block_stop", "index": 1},
        STOP,
    ]
    message = accumulate(events_of(*objects))
    assert message.content[0].thinking == "".join(thoughts)  # type: ignore[union-attr]
    assert message.text() == "".join(texts)


def decode_and_accumulate(chunks: list[bytes]) -> MessagesResponseBody:
    decoder = SseDecoder()
    accumulator = MessageAccumulator()
    for chunk in chunks:
        for sse in decoder.feed(chunk):
            accumulator.feed(parse_event(sse.event, sse.data))
    assert decoder.close() == []
    assert not decoder.has_pending
    return accumulator.final_message()


@settings(max_examples=200)
@given(st.data())
def test_examples_any_chunking_give_the_same_message(data: st.DataObject) -> None:
    raw = data.draw(st.sampled_from(COMPLETE_EXAMPLES)).read_bytes()
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=60))
    bounds = [0, *sorted(points), len(raw)]
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode_and_accumulate(chunks).to_wire() == decode_and_accumulate([raw]).to_wire()


def example_events() -> list[StreamEvent]:
    raw = (EXAMPLES / "stream-tool-use.sse").read_bytes()
    return [parse_event(e.event, e.data) for e in SseDecoder().feed(raw)]


@settings(max_examples=300)
@given(st.permutations(example_events()), st.integers(0, 17))
def test_any_event_order_gives_a_message_or_a_protocol_error(
    events: list[StreamEvent], keep: int
) -> None:
    """Shuffled or cut streams never fail with anything but the documented errors."""
    accumulator = MessageAccumulator()
    try:
        for event in events[:keep]:
            accumulator.feed(event)
            accumulator.current_message  # noqa: B018 (snapshots must never fail)
        accumulator.final_message()
    except (StreamDecodeError, StreamInterrupted):
        pass
