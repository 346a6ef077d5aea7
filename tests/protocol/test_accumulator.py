"""MessageAccumulator: typed events in, the final MessagesResponseBody out.

Where the official SDK defines the behaviour, the same bytes are accumulated by
the SDK (its SSE decoder and ``accumulate_event``) and the results compared.
"""

from __future__ import annotations

import itertools
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import message_start

from clust.messages import errors
from clust.messages.blocks import (
    TextContentBlock,
    ThinkingContentBlock,
    ToolUseContentBlock,
    UnknownContentBlock,
)
from clust.messages.events import (
    ErrorEvent,
    StreamEvent,
    TextDelta,
    UnknownDelta,
    UnknownEvent,
    parse_event,
)
from clust.messages.response import MessagesResponseBody
from clust.protocol.accumulator import (
    MessageAccumulator,
    accumulate,
    error_from_event,
    partial_tool_input,
    tool_input_complete,
)
from clust.protocol.sse import decode_sse

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api-examples"

# -- building streams ------------------------------------------------------------------------


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **payload: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": payload}


def text(index: int, value: str) -> dict[str, Any]:
    return delta(index, type="text_delta", text=value)


def tool_json(index: int, fragment: str) -> dict[str, Any]:
    return delta(index, type="input_json_delta", partial_json=fragment)


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str = "end_turn", **usage: Any) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": 42, **usage},
    }


MESSAGE_STOP = {"type": "message_stop"}
PING = {"type": "ping"}
TEXT_BLOCK = {"type": "text", "text": ""}


def tool_block(tool_id: str = "toolu_1", name: str = "get_weather") -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": {}}


def sse(*objects: dict[str, Any]) -> bytes:
    return b"".join(
        b"event: " + obj["type"].encode() + b"\ndata: " + json.dumps(obj).encode() + b"\n\n"
        for obj in objects
    )


def events_of(*objects: dict[str, Any]) -> list[StreamEvent]:
    return [parse_event(obj["type"], json.dumps(obj)) for obj in objects]


def ours(stream: bytes) -> MessagesResponseBody:
    decoded, pending = decode_sse([stream])
    assert not pending
    return accumulate(parse_event(e.event, e.data) for e in decoded)


def sdk(stream: bytes) -> dict[str, Any]:
    """The official SDK's decoder + accumulation on the same bytes."""
    from anthropic._streaming import SSEDecoder
    from anthropic.lib.streaming._messages import accumulate_event

    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    with warnings.catch_warnings():
        # The SDK's loosely constructed models make pydantic warn when dumped
        # (unknown citation types, for one); the values are right.
        warnings.simplefilter("ignore", UserWarning)
        for event in SSEDecoder().iter_bytes(iter([stream])):
            if event.event in (None, "ping"):
                continue
            assert event.event != "error"
            snapshot = accumulate_event(
                event=event.json(), current_snapshot=snapshot, json_bufs=buffers
            )
        result: dict[str, Any] = snapshot.to_dict(mode="json")
    return result


def without_nulls(value: Any) -> Any:
    """JSON with null-valued keys removed (the SDK sets some fields to null explicitly)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def assert_same_as_sdk(stream: bytes) -> MessagesResponseBody:
    message = ours(stream)
    assert without_nulls(message.to_wire()) == without_nulls(sdk(stream))
    return message


# -- agreement with the official SDK ---------------------------------------------------------


@pytest.mark.parametrize("name", ["stream-text.sse", "stream-tool-use.sse"])
def test_examples_accumulate_like_the_sdk(name: str) -> None:
    message = assert_same_as_sdk((EXAMPLES / name).read_bytes())
    assert message.stop_reason in ("end_turn", "tool_use")


def test_text_example_exact_result() -> None:
    message = ours((EXAMPLES / "stream-text.sse").read_bytes())
    assert message.text() == "Hello! How can I help you today?"
    assert message.usage.output_tokens == 11
    assert message.usage.input_tokens == 12
    assert message.usage.service_tier == "standard"


def test_tool_use_example_exact_result() -> None:
    message = ours((EXAMPLES / "stream-tool-use.sse").read_bytes())
    thinking, said, call = message.content
    assert isinstance(thinking, ThinkingContentBlock)
    assert thinking.thinking == "The user wants current weather; call get_weather."
    assert thinking.signature.startswith("EqQB")
    assert isinstance(said, TextContentBlock)
    assert said.text == "Let me check that for you."
    assert isinstance(call, ToolUseContentBlock)
    assert call.input == {"location": "Paris, FR"}
    assert call.caller is not None
    assert call.caller.type == "direct"
    assert tool_input_complete(call)
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 40
    assert message.usage.cache_creation is not None
    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 1800


def test_error_example_raises_the_typed_error() -> None:
    decoded, _ = decode_sse([(EXAMPLES / "stream-error.sse").read_bytes()])
    events = [parse_event(e.event, e.data) for e in decoded]
    with pytest.raises(errors.OverloadedError) as info:
        accumulate(events)
    assert info.value.status_code == 200
    assert info.value.error_type == "overloaded_error"
    assert info.value.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"
    with pytest.raises(errors.OverloadedError) as info:
        accumulate(events, request_id="req_header")
    assert info.value.request_id == "req_header"

    accumulator = MessageAccumulator()
    for event in events:
        accumulator.feed(event)
    assert isinstance(accumulator.error, ErrorEvent)
    partial = accumulator.partial_message()
    assert partial is not None
    assert partial.text() == "Once upon"


def test_tool_input_split_inside_strings_numbers_and_escapes() -> None:
    document = json.dumps(
        {"city": "Z\u00fcrich \u2713 \U0001f600", "n": 1234567, "x": -0.125e3, "ok": [True, None]},
        ensure_ascii=True,
    )
    for size in (1, 2, 3, 5, 7):
        fragments = ["", *(document[i : i + size] for i in range(0, len(document), size))]
        stream = sse(
            message_start(),
            block_start(0, tool_block()),
            *(tool_json(0, f) for f in fragments),
            block_stop(0),
            message_delta("tool_use"),
            MESSAGE_STOP,
        )
        message = assert_same_as_sdk(stream)
        assert message.content[0].input == json.loads(document)  # type: ignore[union-attr]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(), JSON_VALUES, max_size=4), st.booleans(), st.data())
def test_tool_input_split_anywhere_agrees_with_the_sdk(
    value: dict[str, Any], ascii_only: bool, data: st.DataObject
) -> None:
    document = json.dumps(value, ensure_ascii=ascii_only)
    points = sorted(data.draw(st.lists(st.integers(0, len(document)), max_size=20)))
    bounds = [0, *points, len(document)]
    fragments = [document[a:b] for a, b in itertools.pairwise(bounds)]
    stream = sse(
        message_start(),
        block_start(0, tool_block()),
        *(tool_json(0, f) for f in ["", *fragments]),
        block_stop(0),
        message_delta("tool_use"),
        MESSAGE_STOP,
    )
    message = assert_same_as_sdk(stream)
    assert message.content[0].input == value  # type: ignore[union-attr]


def test_two_parallel_tool_use_blocks() -> None:
    stream = sse(
        message_start(),
        block_start(0, TEXT_BLOCK),
        text(0, "Checking both."),
        block_stop(0),
        block_start(1, tool_block("toolu_a", "get_weather")),
        tool_json(1, '{"city": "Pa'),
        tool_json(1, 'ris"}'),
        block_stop(1),
        block_start(2, tool_block("toolu_b", "get_time")),
        tool_json(2, '{"tz": "Europe/'),
        PING,
        tool_json(2, 'Paris"}'),
        block_stop(2),
        message_delta("tool_use"),
        MESSAGE_STOP,
    )
    message = assert_same_as_sdk(stream)
    calls = message.tool_uses()
    assert [(c.id, c.input) for c in calls] == [
        ("toolu_a", {"city": "Paris"}),
        ("toolu_b", {"tz": "Europe/Paris"}),
    ]


def test_interleaved_blocks_are_accumulated_per_index() -> None:
    stream = sse(
        message_start(),
        block_start(0, tool_block("toolu_a")),
        block_start(1, tool_block("toolu_b")),
        tool_json(0, '{"a": '),
        tool_json(1, '{"b": '),
        tool_json(1, "2}"),
        tool_json(0, "1}"),
        block_stop(1),
        block_stop(0),
        message_delta("tool_use"),
        MESSAGE_STOP,
    )
    message = assert_same_as_sdk(stream)
    assert [c.input for c in message.tool_uses()] == [{"a": 1}, {"b": 2}]


def test_thinking_and_signature_replaced_not_appended() -> None:
    stream = sse(
        message_start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="thinking_delta", thinking="Let me "),
        delta(0, type="thinking_delta", thinking="think."),
        delta(0, type="signature_delta", signature="sig-1"),
        delta(0, type="signature_delta", signature="sig-2"),
        block_stop(0),
        block_start(1, {"type": "redacted_thinking", "data": "opaque"}),
        block_stop(1),
        block_start(2, TEXT_BLOCK),
        text(2, "Done"),
        block_stop(2),
        message_delta(),
        MESSAGE_STOP,
    )
    message = assert_same_as_sdk(stream)
    block = message.content[0]
    assert isinstance(block, ThinkingContentBlock)
    assert (block.thinking, block.signature) == ("Let me think.", "sig-2")
    assert message.content[1].type == "redacted_thinking"


def test_citations_are_appended_to_the_text_block() -> None:
    first = {
        "type": "char_location",
        "cited_text": "The grass is green.",
        "document_index": 0,
        "document_title": "Facts",
        "start_char_index": 0,
        "end_char_index": 19,
    }
    second = {
        "type": "page_location",
        "cited_text": "Sky",
        "document_index": 1,
        "document_title": None,
        "start_page_number": 2,
        "end_page_number": 3,
    }
    future = {"type": "video_location", "cited_text": "x", "start_ms": 5}
    stream = sse(
        message_start(),
        block_start(0, {"type": "text", "text": "", "citations": None}),
        delta(0, type="citations_delta", citation=first),
        text(0, "the grass is green"),
        block_stop(0),
        block_start(1, {"type": "text", "text": "", "citations": []}),
        delta(1, type="citations_delta", citation=second),
        delta(1, type="citations_delta", citation=future),
        text(1, "and the sky blue"),
        block_stop(1),
        message_delta(),
        MESSAGE_STOP,
    )
    message = assert_same_as_sdk(stream)
    assert [c.to_wire() for c in message.content[0].citations] == [first]  # type: ignore[union-attr]
    assert [c.to_wire() for c in message.content[1].citations] == [second, future]  # type: ignore[union-attr]


def test_pings_anywhere_change_nothing() -> None:
    plain = [
        message_start(),
        block_start(0, TEXT_BLOCK),
        text(0, "a"),
        text(0, "b"),
        block_stop(0),
        message_delta(),
        MESSAGE_STOP,
    ]
    with_pings = [PING]
    for obj in plain:
        with_pings += [obj, PING]
    assert accumulate(events_of(*with_pings)) == accumulate(events_of(*plain))
    assert ours(sse(*with_pings)).text() == "ab"


# -- forward compatibility: unknown events, deltas and blocks --------------------------------


def test_unknown_events_and_deltas_are_kept_not_fatal() -> None:
    accumulator = MessageAccumulator()
    for event in events_of(
        {"type": "future_event", "x": 1},
        message_start(),
        block_start(0, TEXT_BLOCK),
        text(0, "Hi"),
        delta(0, type="sparkle_delta", sparkles=3),
        {"type": "another_event", "y": [1, 2]},
        block_stop(0),
        message_delta(),
        MESSAGE_STOP,
    ):
        accumulator.feed(event)
    message = accumulator.final_message()
    assert message.text() == "Hi"
    assert [e.type for e in accumulator.unknown_events] == ["future_event", "another_event"]
    assert isinstance(accumulator.unknown_events[1], UnknownEvent)
    kept = accumulator.unapplied_deltas[0]
    assert len(kept) == 1
    assert isinstance(kept[0], UnknownDelta)
    assert kept[0].to_wire() == {"type": "sparkle_delta", "sparkles": 3}


def test_unknown_block_types_take_the_deltas_their_fields_allow() -> None:
    accumulator = MessageAccumulator()
    for event in events_of(
        message_start(),
        block_start(
            0, {"type": "mcp_tool_use", "id": "m1", "name": "n", "server_name": "s", "input": {}}
        ),
        tool_json(0, '{"q": '),
        tool_json(0, '"x"}'),
        text(0, "no text field here"),
        block_stop(0),
        block_start(1, {"type": "fancy_text", "text": "A"}),
        text(1, "B"),
        block_stop(1),
        message_delta(),
        MESSAGE_STOP,
    ):
        accumulator.feed(event)
    mcp, fancy = accumulator.final_message().content
    assert isinstance(mcp, UnknownContentBlock)
    assert mcp.to_wire() == {
        "type": "mcp_tool_use",
        "id": "m1",
        "name": "n",
        "server_name": "s",
        "input": {"q": "x"},
    }
    assert fancy.to_wire() == {"type": "fancy_text", "text": "AB"}
    assert [type(d) for d in accumulator.unapplied_deltas[0]] == [TextDelta]


def test_unknown_fields_of_message_delta_are_copied_onto_the_message() -> None:
    md = message_delta("end_turn")
    md["delta"]["stop_details"] = {"type": "refusal", "category": "cyber"}
    md["delta"]["container"] = {"id": "c1", "expires_at": "2026-11-25T00:00:00Z"}
    md["delta"]["future_field"] = {"a": 1}
    md["context_management"] = {"applied_edits": []}
    message = accumulate(
        events_of(message_start(), md, MESSAGE_STOP),
    )
    assert message.stop_details is not None
    assert message.stop_details.category == "cyber"
    assert message.container is not None
    assert message.container.id == "c1"
    wire = message.to_wire()
    assert wire["future_field"] == {"a": 1}
    assert wire["context_management"] == {"applied_edits": []}


def test_message_delta_fields_are_validated_against_the_message() -> None:
    md = message_delta()
    md["diagnostics"] = {"cache_miss_reason": {"type": "model_changed"}}
    message = accumulate(events_of(message_start(), md, MESSAGE_STOP))
    assert message.diagnostics is not None
    assert message.diagnostics.cache_miss_reason is not None
    assert message.diagnostics.cache_miss_reason.type == "model_changed"
    for key, bad in (("diagnostics", 5), ("usage", {"output_tokens": 1, "service_tier": 5})):
        md = message_delta()
        md[key] = bad
        with pytest.raises(errors.StreamDecodeError, match="message_delta"):
            accumulate(events_of(message_start(), md, MESSAGE_STOP))


def test_null_container_does_not_erase_the_start_value() -> None:
    start = message_start()
    start["message"]["container"] = {"id": "c0", "expires_at": "2026-11-25T00:00:00Z"}
    md = message_delta()
    md["delta"]["container"] = None
    message = accumulate(events_of(start, md, MESSAGE_STOP))
    assert message.container is not None
    assert message.container.id == "c0"


# -- usage merging ---------------------------------------------------------------------------


def test_usage_merges_field_by_field_with_the_cache_ttl_breakdown() -> None:
    start = message_start(
        cache_creation_input_tokens=100,
        cache_read_input_tokens=5,
        cache_creation={"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
        service_tier="standard",
    )
    first = message_delta(
        output_tokens=20,
        input_tokens=None,
        cache_creation_input_tokens=107,
        cache_creation={"ephemeral_1h_input_tokens": 7},
        server_tool_use={"web_search_requests": 2},
        iterations=[{"type": "message"}],
    )
    second = message_delta(output_tokens=50)
    stream_objects = [start, first, second, MESSAGE_STOP]
    usage = accumulate(events_of(*stream_objects)).usage
    assert usage.output_tokens == 50  # overwritten, not added
    assert usage.input_tokens == 10  # null in the delta: kept
    assert usage.cache_read_input_tokens == 5  # absent: kept
    assert usage.cache_creation_input_tokens == 107
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_5m_input_tokens == 100
    assert usage.cache_creation.ephemeral_1h_input_tokens == 7
    assert usage.server_tool_use is not None
    assert usage.server_tool_use.web_search_requests == 2
    assert usage.service_tier == "standard"
    assert usage.to_wire()["iterations"] == [{"type": "message"}]


def test_usage_agrees_with_the_sdk_on_known_fields() -> None:
    start = message_start(
        cache_creation_input_tokens=0,
        cache_read_input_tokens=3,
        cache_creation={"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    )
    md = message_delta(
        output_tokens=9,
        input_tokens=12,
        cache_creation_input_tokens=1800,
        output_tokens_details={"thinking_tokens": 4},
        server_tool_use={"web_search_requests": 1, "web_fetch_requests": 0},
    )
    stream = sse(start, block_start(0, TEXT_BLOCK), text(0, "x"), block_stop(0), md, MESSAGE_STOP)
    assert_same_as_sdk(stream)


# -- no silent corruption: truncated tool input ----------------------------------------------


def truncated_tool_stream(fragments: list[str], stop_reason: str = "max_tokens") -> bytes:
    return sse(
        message_start(),
        block_start(0, tool_block()),
        *(tool_json(0, f) for f in fragments),
        block_stop(0),
        message_delta(stop_reason),
        MESSAGE_STOP,
    )


def test_truncated_tool_json_is_flagged_not_shrunk() -> None:
    stream = truncated_tool_stream(["", '{"location": "Par', 'is", "unit'])
    message = ours(stream)
    call = message.content[0]
    assert isinstance(call, ToolUseContentBlock)
    assert call.input == {}
    assert not tool_input_complete(call)
    assert partial_tool_input(call) == '{"location": "Paris", "unit'
    assert "_partial_json" not in json.dumps(message.to_wire())
    assert "_partial_json" not in json.dumps(message.model_dump(mode="json"))
    # The flag survives copies (pydantic keeps instance attributes).
    assert partial_tool_input(message.model_copy(deep=True).content[0]) == partial_tool_input(call)
    # The SDK, by contrast, hands back a smaller object that looks complete.
    assert sdk(stream)["content"][0]["input"] == {"location": "Paris"}


@pytest.mark.parametrize(
    "raw",
    ['{"a": 1}}', "[1, 2]", '"text"', "12", '{"a": NaN}', '{"a": Infinity}', "{'a': 1}", "{"],
)
def test_tool_json_that_is_not_one_object_is_flagged(raw: str) -> None:
    call = ours(truncated_tool_stream([raw], stop_reason="tool_use")).content[0]
    assert call.input == {}  # type: ignore[union-attr]
    assert partial_tool_input(call) == raw


def test_empty_tool_input_is_an_empty_object_unless_cut_off() -> None:
    call = ours(truncated_tool_stream([""], stop_reason="tool_use")).content[0]
    assert call.input == {}  # type: ignore[union-attr]
    assert tool_input_complete(call)
    cut = ours(truncated_tool_stream([""], stop_reason="max_tokens")).content[0]
    assert not tool_input_complete(cut)
    assert partial_tool_input(cut) == ""
    # An earlier block with an empty input was not cut off by max_tokens.
    message = ours(
        sse(
            message_start(),
            block_start(0, tool_block("toolu_a", "ping_tool")),
            block_stop(0),
            block_start(1, TEXT_BLOCK),
            text(1, "and then I ran out of"),
            block_stop(1),
            message_delta("max_tokens"),
            MESSAGE_STOP,
        )
    )
    assert tool_input_complete(message.content[0])


def test_complete_json_at_max_tokens_is_complete() -> None:
    call = ours(truncated_tool_stream(['{"a": [1, 2]}'])).content[0]
    assert call.input == {"a": [1, 2]}  # type: ignore[union-attr]
    assert tool_input_complete(call)


# -- protocol violations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "match"),
    [
        ([block_start(0, TEXT_BLOCK)], "before message_start"),
        ([text(0, "x")], "before message_start"),
        ([MESSAGE_STOP], "before message_start"),
        ([message_delta()], "before message_start"),
        ([message_start(), message_start()], "second message_start"),
        ([message_start(), block_start(1, TEXT_BLOCK)], "expected block 0"),
        (
            [message_start(), block_start(0, TEXT_BLOCK), block_start(0, TEXT_BLOCK)],
            "expected block 1",
        ),
        ([message_start(), block_start(0, TEXT_BLOCK), text(1, "x")], "never started"),
        ([message_start(), block_start(0, TEXT_BLOCK), text(-1, "x")], "never started"),
        ([message_start(), block_start(0, TEXT_BLOCK), block_stop(0), text(0, "x")], "has stopped"),
        (
            [message_start(), block_start(0, TEXT_BLOCK), block_stop(0), block_stop(0)],
            "has stopped",
        ),
        ([message_start(), block_stop(0)], "never started"),
        ([message_start(), MESSAGE_STOP, block_start(0, TEXT_BLOCK)], "after message_stop"),
        ([message_start(), MESSAGE_STOP, message_delta()], "after message_stop"),
        ([message_start(), MESSAGE_STOP, MESSAGE_STOP], "after message_stop"),
        ([message_start(), block_start(0, tool_block()), text(0, "x")], "text_delta for block 0"),
        ([message_start(), block_start(0, TEXT_BLOCK), tool_json(0, "{")], "input_json_delta"),
        (
            [
                message_start(),
                block_start(0, TEXT_BLOCK),
                delta(0, type="signature_delta", signature="s"),
            ],
            "signature_delta",
        ),
    ],
)
def test_protocol_violations_raise_stream_decode_error(
    objects: list[dict[str, Any]], match: str
) -> None:
    accumulator = MessageAccumulator(request_id="req_1")
    events = events_of(*objects)
    for event in events[:-1]:
        accumulator.feed(event)
    with pytest.raises(errors.StreamDecodeError, match=match) as info:
        accumulator.feed(events[-1])
    assert info.value.request_id == "req_1"


def test_ping_unknown_and_error_events_are_fine_before_message_start() -> None:
    accumulator = MessageAccumulator()
    for event in events_of(PING, {"type": "hello_event"}):
        accumulator.feed(event)
    assert accumulator.current_message is None
    assert accumulator.partial_message() is None
    with pytest.raises(errors.StreamInterrupted) as info:
        accumulator.final_message()
    assert info.value.partial_message is None


def test_feed_rejects_non_events() -> None:
    with pytest.raises(TypeError):
        MessageAccumulator().feed("message_start")  # type: ignore[arg-type]


# -- snapshots, interruption and retry hints -------------------------------------------------


def test_current_message_snapshots_without_touching_the_events() -> None:
    events = events_of(
        message_start(),
        block_start(0, TEXT_BLOCK),
        text(0, "Hel"),
        text(0, "lo"),
        block_stop(0),
        block_start(1, tool_block()),
        tool_json(1, '{"a": '),
    )
    accumulator = MessageAccumulator()
    for event in events[:4]:
        accumulator.feed(event)
    early = accumulator.current_message
    assert early is not None
    assert early.text() == "Hello"
    for event in events[4:]:
        accumulator.feed(event)
    snapshot = accumulator.current_message
    assert snapshot is not None
    assert snapshot.text() == "Hello"
    call = snapshot.content[1]
    assert call.input == {}  # type: ignore[union-attr]
    assert partial_tool_input(call) == '{"a": '
    assert not accumulator.is_complete
    # events untouched, earlier snapshots unchanged
    assert events[1].content_block.text == ""  # type: ignore[union-attr]
    assert events[5].content_block.input == {}  # type: ignore[union-attr]
    assert events[0].message.content == []  # type: ignore[union-attr]
    assert len(early.content) == 1
    for event in events_of(
        tool_json(1, "1}"), block_stop(1), message_delta("tool_use"), MESSAGE_STOP
    ):
        accumulator.feed(event)
    final = accumulator.final_message()
    assert accumulator.current_message is final
    assert final.content[1].input == {"a": 1}  # type: ignore[union-attr]
    assert tool_input_complete(final.content[1])
    assert partial_tool_input(snapshot.content[1]) == '{"a": '
    assert final.stop_reason == "tool_use"
    assert snapshot.stop_reason is None


def test_interrupted_stream_keeps_the_partial_message() -> None:
    accumulator = MessageAccumulator(request_id="req_9")
    for event in events_of(
        message_start(),
        block_start(0, TEXT_BLOCK),
        text(0, "Once upon"),
        text(0, " a time"),
    ):
        accumulator.feed(event)
    with pytest.raises(errors.StreamInterrupted) as info:
        accumulator.final_message()
    assert info.value.request_id == "req_9"
    partial = info.value.partial_message
    assert partial is not None
    assert partial.text() == "Once upon a time"
    assert partial.usage.input_tokens == 10
    with pytest.raises(errors.StreamInterrupted):
        accumulate(events_of(message_start(), block_start(0, TEXT_BLOCK)))


def test_message_stop_closes_blocks_left_open() -> None:
    message = accumulate(
        events_of(
            message_start(),
            block_start(0, TEXT_BLOCK),
            text(0, "a"),
            block_start(1, tool_block()),
            tool_json(1, '{"k": 1}'),
            message_delta("tool_use"),
            MESSAGE_STOP,
        )
    )
    assert message.text() == "a"
    assert message.content[1].input == {"k": 1}  # type: ignore[union-attr]


def test_content_started() -> None:
    accumulator = MessageAccumulator()
    for event in events_of(message_start(), PING, block_start(0, TEXT_BLOCK), {"type": "x"}):
        accumulator.feed(event)
    assert not accumulator.content_started
    accumulator.feed(events_of(text(0, ""))[0])
    assert accumulator.content_started

    accumulator = MessageAccumulator()
    for event in events_of(message_start(), block_start(0, tool_block())):
        accumulator.feed(event)
    assert not accumulator.content_started
    accumulator.feed(events_of(tool_json(0, ""))[0])
    assert accumulator.content_started

    accumulator = MessageAccumulator()
    result = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [{"type": "web_search_result", "url": "u", "title": "t"}],
    }
    for event in events_of(message_start(), block_start(0, result)):
        accumulator.feed(event)
    assert accumulator.content_started


def test_server_tool_use_and_results() -> None:
    result = {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [{"type": "web_search_result", "url": "https://x", "title": "X"}],
    }
    stream = sse(
        message_start(),
        block_start(
            0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
        ),
        tool_json(0, '{"query": "wea'),
        tool_json(0, 'ther"}'),
        block_stop(0),
        block_start(1, result),
        block_stop(1),
        block_start(2, TEXT_BLOCK),
        text(2, "Sunny."),
        block_stop(2),
        message_delta(server_tool_use={"web_search_requests": 1}),
        MESSAGE_STOP,
    )
    message = assert_same_as_sdk(stream)
    assert message.content[0].input == {"query": "weather"}  # type: ignore[union-attr]
    assert message.content[1].to_wire() == result


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "cls"),
    [
        ("invalid_request_error", errors.InvalidRequestError),
        ("authentication_error", errors.AuthenticationError),
        ("billing_error", errors.BillingError),
        ("permission_error", errors.PermissionDeniedError),
        ("not_found_error", errors.NotFoundError),
        ("conflict_error", errors.ConflictError),
        ("request_too_large", errors.RequestTooLargeError),
        ("rate_limit_error", errors.RateLimitError),
        ("api_error", errors.InternalServerError),
        ("timeout_error", errors.GatewayTimeoutError),
        ("overloaded_error", errors.OverloadedError),
        ("memory_precondition_failed_error", errors.ApiError),
    ],
)
def test_error_event_maps_to_the_typed_error(error_type: str, cls: type[errors.ApiError]) -> None:
    (event,) = events_of(
        {
            "type": "error",
            "error": {"type": error_type, "message": "boom", "details": {"error_code": "E1"}},
            "request_id": "req_body",
        }
    )
    assert isinstance(event, ErrorEvent)
    error = error_from_event(event)
    assert type(error) is cls
    assert error.status_code == 200
    assert error.error_type == error_type
    assert error.message == "boom"
    assert error.error_code == "E1"
    assert error.request_id == "req_body"
    assert error_from_event(event, request_id="req_header").request_id == "req_header"


# -- cost ------------------------------------------------------------------------------------


def test_many_deltas_accumulate_in_linear_time() -> None:
    pieces = [f"w{i} " for i in range(20_000)]
    events = events_of(
        message_start(),
        block_start(0, TEXT_BLOCK),
        *(text(0, p) for p in pieces),
        block_stop(0),
        block_start(1, tool_block()),
        *(tool_json(1, f) for f in ['{"k": "', *("x" * 5_000), '"}']),
        block_stop(1),
        message_delta(),
        MESSAGE_STOP,
    )
    start = time.process_time()
    message = accumulate(events)
    elapsed = time.process_time() - start
    assert message.text() == "".join(pieces)
    assert message.content[1].input == {"k": "x" * 5_000}  # type: ignore[union-attr]
    assert elapsed < 1.0


def test_feed_of_a_text_delta_is_cheap() -> None:
    accumulator = MessageAccumulator()
    for event in events_of(message_start(), block_start(0, TEXT_BLOCK)):
        accumulator.feed(event)
    (event,) = events_of(text(0, "token"))
    assert isinstance(event.delta, TextDelta)  # type: ignore[union-attr]
    feed = accumulator.feed
    start = time.process_time()
    for _ in range(100_000):
        feed(event)
    per_delta = (time.process_time() - start) / 100_000
    assert per_delta < 5e-6  # well under a microsecond on a laptop
