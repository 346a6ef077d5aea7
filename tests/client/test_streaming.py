"""Streaming on both clients over real sockets against FakeClaude."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support import message_start, simple_body, sse

from clust import AsyncClient, Client
from clust.messages import (
    StopReason,
    StreamOptionMismatch,
    ToolUseContentBlock,
    errors,
)
from clust.messages.events import (
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    PingEvent,
    TextDelta,
)
from clust.testing import FakeClaude, Reply

LONG_TEXT = "Streaming, done right: " + "correct under any chunking, constant memory. " * 20


def _without_ids(message: dict[str, Any]) -> dict[str, Any]:
    """The fake numbers message and tool ids per request: compare everything else."""
    content = [{k: v for k, v in block.items() if k != "id"} for block in message["content"]]
    return {**{k: v for k, v in message.items() if k != "id"}, "content": content}


def _event_types(events: list[object]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_text_stream_events_and_final_message(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text(LONG_TEXT).with_pings(5))
    with client.create_a_message_stream(simple_body()) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert fake.last_request.body["stream"] is True
    assert isinstance(events[0], MessageStartEvent)
    assert isinstance(events[-1], MessageStopEvent)
    assert isinstance(events[-2], MessageDeltaEvent)
    assert any(isinstance(event, PingEvent) for event in events)
    deltas = [e for e in events if isinstance(e, ContentBlockDeltaEvent)]
    assert len(deltas) > 20  # many small deltas
    assert "".join(d.delta.text for d in deltas if isinstance(d.delta, TextDelta)) == LONG_TEXT
    assert final.text() == LONG_TEXT
    assert final.stop_reason == StopReason.END_TURN
    assert stream.request_id is not None and stream.request_id.startswith("req_")


def test_text_stream_helper(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text(LONG_TEXT))
    stream = client.create_a_message_stream(simple_body())
    assert "".join(stream.text_stream) == LONG_TEXT
    assert stream.get_final_message().text() == LONG_TEXT


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_stream_equals_json_reply(client: Client, fake: FakeClaude, chunk: int) -> None:
    reply = Reply.thinking(
        "Let me think about the weather…",
        signature="sig-abc",
        then=Reply.tool_uses(
            [
                ("get_weather", {"city": "Zürich ☃", "days": 3, "temp": -1.5e3, "ok": True}),
                ("get_time", {"tz": "Europe/Zurich", "nested": {"a": [1, "\u00e9", None]}}),
            ],
            text="Checking two things.",
        ),
    )
    fake.enqueue(reply)
    as_json = client.create_a_message(simple_body())
    fake.enqueue(reply.in_chunks(chunk))
    streamed = client.create_a_message_stream(simple_body()).get_final_message()
    assert _without_ids(streamed.to_wire()) == _without_ids(as_json.to_wire())
    tools = [b for b in streamed.content if isinstance(b, ToolUseContentBlock)]
    assert [t.input["city"] if "city" in t.input else t.input["tz"] for t in tools] == [
        "Zürich ☃",
        "Europe/Zurich",
    ]


@pytest.mark.anyio
async def test_async_stream(aclient: AsyncClient, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text(LONG_TEXT).in_chunks(5))
    async with aclient.create_a_message_stream(simple_body()) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == LONG_TEXT == final.text()


@pytest.mark.anyio
async def test_async_events(aclient: AsyncClient, fake: FakeClaude) -> None:
    fake.enqueue(Reply.tool_use("lookup", {"q": "x" * 50}))
    events = [event async for event in aclient.create_a_message_stream(simple_body())]
    names = _event_types(events)
    assert names[0] == "MessageStartEvent" and names[-1] == "MessageStopEvent"
    assert "ContentBlockStartEvent" in names and "ContentBlockStopEvent" in names


def test_stream_false_body_is_refused(client: Client, fake: FakeClaude) -> None:
    with pytest.raises(StreamOptionMismatch, match="stream"):
        client.create_a_message_stream(simple_body(stream=False))
    assert fake.requests == []


def test_stream_true_body_is_accepted(client: Client, fake: FakeClaude) -> None:
    final = client.create_a_message_stream(simple_body(stream=True)).get_final_message()
    assert final.text().startswith("Echo:")
    assert fake.last_request.body["stream"] is True


def test_request_is_sent_on_first_iteration(client: Client, fake: FakeClaude) -> None:
    stream = client.create_a_message_stream(simple_body())
    assert fake.requests == []
    next(iter(stream))
    assert len(fake.requests) == 1
    stream.close()


def test_current_message_snapshot(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("abcdefghijklmnopqrstuvwxyz"))
    with client.create_a_message_stream(simple_body()) as stream:
        assert stream.current_message is None
        seen = ""
        for event in stream:
            if isinstance(event, ContentBlockDeltaEvent) and isinstance(event.delta, TextDelta):
                seen += event.delta.text
                snapshot = stream.current_message
                assert snapshot is not None and snapshot.text() == seen
                assert snapshot.stop_reason is None
        assert stream.current_message == stream.get_final_message()


def test_error_on_open_is_typed_and_retried(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.error(529, "overloaded_error", "Overloaded"), Reply.text("ok"))
    assert client.create_a_message_stream(simple_body()).get_final_message().text() == "ok"
    fake.enqueue(*(Reply.error(400, "invalid_request_error", "bad") for _ in range(2)))
    with pytest.raises(errors.InvalidRequestError):
        client.create_a_message_stream(simple_body()).get_final_message()


def test_error_event_before_content_is_retried_transparently(
    client: Client, fake: FakeClaude
) -> None:
    fake.enqueue(Reply.text("lost").stream_error_after(2), Reply.text("second attempt"))
    events = list(client.create_a_message_stream(simple_body()))
    assert len(fake.requests) == 2
    assert _event_types(events).count("MessageStartEvent") == 1
    texts = [
        e.delta.text
        for e in events
        if isinstance(e, ContentBlockDeltaEvent) and isinstance(e.delta, TextDelta)
    ]
    assert "".join(texts) == "second attempt"


def test_error_event_after_content_is_raised_with_partial(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("Once upon a time there was").stream_error_after(5))
    stream = client.create_a_message_stream(simple_body())
    received = ""
    with pytest.raises(errors.OverloadedError) as caught:
        for text in stream.text_stream:
            received += text
    error = caught.value
    assert error.status_code == 200 and error.error_type == "overloaded_error"
    assert error.request_id is not None
    assert error.partial_message is not None
    assert error.partial_message.text() == received != ""
    assert len(fake.requests) == 1  # never retried once content was delivered


def test_non_retryable_error_event_is_raised(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("x").stream_error_after(1, "invalid_request_error", "bad"))
    with pytest.raises(errors.InvalidRequestError):
        client.create_a_message_stream(simple_body()).get_final_message()
    assert len(fake.requests) == 1


def test_cut_before_content_is_retried(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("never seen").cut_after(1), Reply.text("whole"))
    assert client.create_a_message_stream(simple_body()).get_final_message().text() == "whole"
    assert len(fake.requests) == 2


def test_cut_after_content_raises_interrupted_with_partial(
    client: Client, fake: FakeClaude
) -> None:
    fake.enqueue(Reply.text(LONG_TEXT).cut_after(8))
    stream = client.create_a_message_stream(simple_body())
    with pytest.raises(errors.StreamInterrupted) as caught:
        stream.get_final_message()
    partial = caught.value.partial_message
    assert partial is not None
    assert partial.text() and LONG_TEXT.startswith(partial.text())
    assert partial.usage.input_tokens > 0  # billed input is visible
    assert caught.value.request_id == stream.request_id
    assert len(fake.requests) == 1


def test_clean_end_without_message_stop_raises(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(*(Reply.text("almost").end_without_stop() for _ in range(3)))
    with pytest.raises(errors.StreamInterrupted, match="message_stop") as caught:
        client.create_a_message_stream(simple_body()).get_final_message()
    assert caught.value.partial_message is not None
    assert caught.value.partial_message.text() == "almost"
    assert caught.value.partial_message.stop_reason is None


@pytest.mark.anyio
async def test_async_cut_after_content(aclient: AsyncClient, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text(LONG_TEXT).cut_after(8))
    async with aclient.create_a_message_stream(simple_body()) as stream:
        with pytest.raises(errors.StreamInterrupted) as caught:
            await stream.get_final_message()
    assert caught.value.partial_message is not None


@pytest.mark.anyio
async def test_async_error_event_before_content_retried(
    aclient: AsyncClient, fake: FakeClaude
) -> None:
    fake.enqueue(Reply.text("lost").stream_error_after(1), Reply.text("again"))
    async with aclient.create_a_message_stream(simple_body()) as stream:
        assert (await stream.get_final_message()).text() == "again"


def test_json_reply_to_stream_request(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.raw('{"type":"message"}', content_type="application/json"))
    with pytest.raises(errors.ResponseDecodeError, match="event stream"):
        client.create_a_message_stream(simple_body()).get_final_message()


def test_malformed_event_data(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.malformed())
    with pytest.raises(errors.StreamDecodeError):
        client.create_a_message_stream(simple_body()).get_final_message()


def test_invalid_utf8_in_data(client: Client, fake: FakeClaude) -> None:
    start = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":'
        b'"message","role":"assistant","model":"x","content":[],"stop_reason":null,'
        b'"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
    )
    bad = (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":"\xff\xfe"}}\n\n'
    )
    fake.enqueue(Reply.raw(start + bad, content_type="text/event-stream"))
    with pytest.raises(errors.StreamDecodeError):
        client.create_a_message_stream(simple_body()).get_final_message()


def test_break_closes_the_response(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("x" * 400).slow(0.02))
    started = time.monotonic()
    stream = client.create_a_message_stream(simple_body())
    for event in stream:
        if isinstance(event, ContentBlockStartEvent):
            break
    assert time.monotonic() - started < 2
    # The loop's exit closed the stream: nothing more is read.
    assert list(stream) == []
    with pytest.raises(errors.StreamInterrupted):
        stream.get_final_message()
    fake.enqueue(Reply.text("next"))
    assert client.create_a_message(simple_body()).text() == "next"


def test_with_block_closes_the_response(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("y" * 400).slow(0.02))
    started = time.monotonic()
    with client.create_a_message_stream(simple_body()) as stream:
        next(iter(stream))
    assert time.monotonic() - started < 2
    assert list(stream) == []


@pytest.mark.anyio
async def test_async_with_block_closes(aclient: AsyncClient, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("z" * 400).slow(0.02))
    async with aclient.create_a_message_stream(simple_body()) as stream:
        async for event in stream:
            if isinstance(event, ContentBlockStopEvent | ContentBlockDeltaEvent):
                break
    assert [event async for event in stream] == []


def test_read_timeout_mid_stream(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("slow " * 20).slow(0.5))
    stream = client.create_a_message_stream(simple_body(), timeout=0.1, max_retries=0)
    with pytest.raises(errors.StreamInterrupted, match="timed out"):
        stream.get_final_message()


@pytest.mark.parametrize(
    ("detail", "wanted"),
    [
        ({"type": "overloaded_error"}, errors.OverloadedError),
        ({"type": "api_error", "message": None}, errors.InternalServerError),
        ({"type": "rate_limit_error", "message": None, "details": {}}, errors.RateLimitError),
    ],
    ids=["no message", "null message", "null message with details"],
)
def test_error_event_without_a_message_is_still_typed(
    client: Client, fake: FakeClaude, detail: dict[str, Any], wanted: type[Exception]
) -> None:
    """An ``error`` event whose ``message`` is missing or null raises the error class of
    its type (as the HTTP error path does), not a decode error."""
    body = sse(
        message_start(input_tokens=3),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Hi"},
        },
        {"type": "error", "error": detail},  # after content: raised, not retried
    )
    fake.enqueue(Reply.raw(body, content_type="text/event-stream"))
    with pytest.raises(wanted) as caught:
        client.create_a_message_stream(simple_body()).get_final_message()
    assert caught.value.status_code == 200
    assert caught.value.error_type == detail["type"]
    assert detail["type"] in str(caught.value)
    assert caught.value.partial_message is not None
    assert caught.value.partial_message.text() == "Hi"
