"""Stream conformance: clust and the official SDK accumulate the same final message.

Each scripted reply is enqueued once per consumer on one FakeClaude and read through clust's
stream (sync and async), clust's non-streamed call, and the official SDK's
``messages.stream(...).get_final_message()``. The final messages must be equal as JSON.

Representations compared: clust ``to_wire()`` (exactly the keys received, explicit nulls
kept) and the SDK ``model_dump(mode="json", exclude_unset=True)`` (exactly the keys its
snapshot was built from). With these two no normalization is needed for any FakeClaude
scripted reply: the SDK builds its snapshot from the events' own dicts, so it fills no
defaults (no ``citations: None`` on text blocks), and both keep the ``null``s the server sent
(``stop_details``, ``container``, ``diagnostics``, ``usage.server_tool_use``). Ids need no
normalization either: every reply is enqueued with a fixed message id (``extra``) and
explicit tool-use ids, so every request gets the same ids.

The single normalization, :func:`without_sdk_filled_stop_details`, applies only to the
hand-written streams that never mention ``stop_details``: there the SDK's accumulator
assigns ``stop_details = None`` itself (see its docstring).

The last tests document where clust deliberately differs from the SDK: tool input cut off by
``max_tokens``, a stream ending without ``message_stop``, an ``error`` event mid-stream, and
deltas for block types neither side knows.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from typing import Any

import anthropic
import anyio.to_thread
import pytest
from support import sse

from clust import AsyncClient, Client
from clust.messages import (
    ContentBlockDeltaEvent,
    InputJsonDelta,
    Message,
    MessagesRequestBody,
    MessagesResponseBody,
    OverloadedError,
    PingEvent,
    StreamInterrupted,
    ToolUseContentBlock,
)
from clust.protocol.accumulator import partial_tool_input, tool_input_complete
from clust.testing import FakeClaude, Reply

API_KEY = "sk-conformance-key"
MODEL = "claude-sonnet-5-5"
PROMPT = "Hello, Claude"
MESSAGE_ID = "msg_conformance_01"
SDK_KWARGS: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 4096,
    "messages": [{"role": "user", "content": PROMPT}],
}

# ~2,000 characters with multi-byte text: over 200 text deltas from the fake.
LONG_TEXT = "".join(
    f"Line {i}: naïve café 日本語 🎉 — “quotes” and \\ backslashes.\n" for i in range(36)
)
TRICKY_INPUT: dict[str, Any] = {
    "city": 'Zürich "centre" \\ back\\slash\nnew line\ttab',
    "emoji": "🎉🙂 and \u2028 and \u00e9",
    "numbers": [0, -1, 3.25, -12.5e-7, 1e100, 12345678901234567890, 10**30],
    "nested": {"ok": True, "no": False, "nothing": None, "empty": {}, "list": []},
    "escapes": "\u0000\u001f\u007f",
}
CITATION = {
    "type": "char_location",
    "cited_text": "The grass is green.",
    "document_index": 0,
    "document_title": "Facts",
    "start_char_index": 0,
    "end_char_index": 19,
}
PAGE_CITATION = {
    "type": "page_location",
    "cited_text": "Sky is blue",
    "document_index": 1,
    "document_title": None,
    "start_page_number": 3,
    "end_page_number": 4,
}


def with_fixed_id(reply: Reply) -> Reply:
    """The same reply with a fixed message id, so every request answers with the same id."""
    return dataclasses.replace(reply, extra={**(reply.extra or {}), "id": MESSAGE_ID})


def _rich() -> Reply:
    return Reply.thinking(
        "Let me think about ünïcode 🎉 and the weather.",
        signature="EqQBCgIYAhIMsig==",
        then=Reply.tool_uses(
            [("get_weather", TRICKY_INPUT, "toolu_rich_1")],
            text="Checking the weather — one moment. 🌧️",
        ),
    )


SCRIPTS: dict[str, Reply] = {
    "text": Reply.text("Hello! How can I help you today?"),
    "long_text_many_deltas": Reply.text(LONG_TEXT),
    "tool_use_tricky_input": Reply.tool_use(
        "get_weather", TRICKY_INPUT, id="toolu_tricky_1", text="Let me check."
    ),
    "parallel_tool_uses": Reply.tool_uses(
        [
            ("get_weather", {"city": "Paris", "days": 3}, "toolu_par_1"),
            ("get_time", {}, "toolu_par_2"),
        ],
        text="Checking both.",
    ),
    "thinking_signature_text_tool_use": _rich(),
    "redacted_thinking": Reply(
        content=(
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
            {"type": "thinking", "thinking": "", "signature": "sig-omitted-display"},
            {"type": "text", "text": "Done thinking."},
        )
    ),
    "citations": Reply(
        content=(
            {"type": "text", "text": "According to the documents, "},
            {"type": "text", "text": "the grass is green", "citations": [CITATION]},
            {"type": "text", "text": " and ", "citations": []},
            {"type": "text", "text": "the sky is blue.", "citations": [PAGE_CITATION, CITATION]},
        )
    ),
    "pings_interleaved": _rich().with_pings(1),
    "tiny_tcp_chunks_1": _rich().in_chunks(1),
    "tiny_tcp_chunks_7_with_pings": Reply.text(LONG_TEXT).in_chunks(7).with_pings(3),
    "stop_sequence": Reply.text(
        "Counting: 1, 2, 3, ", stop_reason="stop_sequence", stop_sequence="4"
    ),
    "max_tokens": Reply.text("This answer was cut sh", stop_reason="max_tokens"),
    "unknown_block_type": Reply(
        content=(
            {"type": "mystery_block", "payload": {"x": [1, 2]}, "label": "from the future"},
            {"type": "text", "text": "After the unknown block."},
        )
    ),
    "server_tool_use_and_web_search_result": Reply(
        content=(
            {"type": "text", "text": "Let me search."},
            {
                "type": "server_tool_use",
                "id": "srvtoolu_conf_1",
                "name": "web_search",
                "input": {"query": "weather Paris today"},
            },
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_conf_1",
                "content": [
                    {
                        "type": "web_search_result",
                        "url": "https://weather.example.com/paris",
                        "title": "Paris weather",
                        "encrypted_content": "EqgfCioIARgBIiQ3YTBi",
                        "page_age": "2 hours ago",
                    }
                ],
            },
            {
                "type": "text",
                "text": "It is 14 C and raining.",
                "citations": [
                    {
                        "type": "web_search_result_location",
                        "cited_text": "14 C, light rain",
                        "url": "https://weather.example.com/paris",
                        "title": "Paris weather",
                        "encrypted_index": "Eo8BCioIAhgBIiQyYjQ2",
                    }
                ],
            },
        ),
        usage={"server_tool_use": {"web_search_requests": 1}},
    ),
    "refusal_with_stop_details": Reply(
        content=({"type": "text", "text": "I can't help with that."},),
        stop_reason="refusal",
        stop_details={"type": "refusal", "category": "cyber", "explanation": "Policy."},
    ),
    "container_and_newer_fields": Reply(
        content=({"type": "text", "text": "Ran the code."},),
        stop_reason="pause_turn",
        extra={
            "container": {
                "id": "container_011CQ",
                "expires_at": "2026-11-21T10:00:00Z",
                "skills": [{"skill_id": "pptx", "type": "anthropic", "version": "latest"}],
            },
            "context_management": {"applied_edits": []},
        },
    ),
}


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeClaude) -> FakeClaude:
    fake_server.reset()
    return fake_server


@pytest.fixture(scope="module")
def client(fake_server: FakeClaude) -> Iterator[Client]:
    with Client(api_key=API_KEY, base_url=fake_server.base_url, max_retries=0) as c:
        yield c


@pytest.fixture
async def aclient(fake: FakeClaude) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(api_key=API_KEY, base_url=fake.base_url, max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def sdk(fake_server: FakeClaude) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=fake_server.base_url, max_retries=0) as c:
        yield c


# --- helpers -------------------------------------------------------------------------------


def request_body() -> MessagesRequestBody:
    """The typed twin of ``SDK_KWARGS`` (same prompt, so the fake computes the same usage)."""
    return MessagesRequestBody(model=MODEL, max_tokens=4096, messages=[Message.user(PROMPT)])


def sdk_json(message: anthropic.types.Message) -> dict[str, Any]:
    """The SDK's final message as JSON: exactly the fields its snapshot holds."""
    with warnings.catch_warnings():
        # An unknown block type is held by the SDK in a text-block class with extra fields;
        # it dumps back correctly, but pydantic warns that the type tag is not "text".
        warnings.filterwarnings("ignore", "Pydantic serializer warnings", UserWarning)
        return message.model_dump(mode="json", exclude_unset=True)


def sdk_final_message(sdk: anthropic.Anthropic) -> dict[str, Any]:
    with sdk.messages.stream(**SDK_KWARGS) as stream:
        return sdk_json(stream.get_final_message())


def clust_json(message: MessagesResponseBody) -> dict[str, Any]:
    return message.to_wire()


# --- equal final messages ------------------------------------------------------------------


def test_scripts_cover_at_least_12_replies() -> None:
    assert len(SCRIPTS) >= 12


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_sync_stream_matches_sdk_and_non_streamed(
    name: str, fake: FakeClaude, client: Client, sdk: anthropic.Anthropic
) -> None:
    reply = with_fixed_id(SCRIPTS[name])
    fake.enqueue(reply, reply, reply)

    with client.create_a_message_stream(request_body()) as stream:
        streamed = stream.get_final_message()
    once = client.create_a_message(request_body())
    theirs = sdk_final_message(sdk)

    ours = clust_json(streamed)
    assert ours["id"] == MESSAGE_ID
    assert ours == clust_json(once)
    assert ours == theirs
    assert all(tool_input_complete(block) for block in streamed.content)


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_async_stream_matches_sdk_and_non_streamed(
    name: str, fake: FakeClaude, aclient: AsyncClient, sdk: anthropic.Anthropic
) -> None:
    reply = with_fixed_id(SCRIPTS[name])
    fake.enqueue(reply, reply, reply)

    async with aclient.create_a_message_stream(request_body()) as stream:
        streamed = await stream.get_final_message()
    once = await aclient.create_a_message(request_body())
    theirs = await anyio.to_thread.run_sync(sdk_final_message, sdk)

    ours = clust_json(streamed)
    assert ours == clust_json(once)
    assert ours == theirs


def test_scripts_really_stream_what_their_names_promise(fake: FakeClaude, client: Client) -> None:
    """Many deltas, many pings, and tool input JSON split inside escapes and numbers."""
    fake.enqueue(
        with_fixed_id(SCRIPTS["long_text_many_deltas"]),
        with_fixed_id(SCRIPTS["pings_interleaved"]),
        with_fixed_id(SCRIPTS["tool_use_tricky_input"]),
    )
    with client.create_a_message_stream(request_body()) as stream:
        deltas = sum(type(event) is ContentBlockDeltaEvent for event in stream)
    assert deltas > 200
    with client.create_a_message_stream(request_body()) as stream:
        pings = sum(type(event) is PingEvent for event in stream)
    assert pings > 20
    with client.create_a_message_stream(request_body()) as stream:
        fragments = [
            event.delta.partial_json
            for event in stream
            if type(event) is ContentBlockDeltaEvent and isinstance(event.delta, InputJsonDelta)
        ]
    assert len(fragments) > 20
    assert any(re.search(r"\\u[0-9a-f]{0,3}$", fragment) for fragment in fragments)
    assert any(
        re.search(r"[0-9.]$", a) and re.match(r"[0-9e.+-]", b) for a, b in pairwise(fragments)
    )


# --- deliberate differences ----------------------------------------------------------------


def _cut_tool_input_sse(fragments: list[str]) -> str:
    """A stream whose tool_use input JSON is cut short by max_tokens."""
    start: dict[str, Any] = {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    deltas = [
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": fragment},
        }
        for fragment in fragments
    ]
    return sse(
        {"type": "message_start", "message": start},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Checking."},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_cut_1",
                "name": "get_weather",
                "input": {},
            },
        },
        *deltas,
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {"output_tokens": 4096},
        },
        {"type": "message_stop"},
    )


CUT_FRAGMENTS = ['{"city": "Paris", "days": [1, 2', ', 3], "note": "rain tomor']


def without_sdk_filled_stop_details(sdk_message: dict[str, Any]) -> dict[str, Any]:
    """Normalization for the hand-written streams below, which (like older API versions)
    never mention ``stop_details``: the SDK's accumulator assigns
    ``snapshot.stop_details = delta.stop_details`` unconditionally, so its dump gains
    ``"stop_details": null`` that no event carried, while clust leaves the field unset.
    Absent and null mean the same on the wire (no details), so the SDK's filled-in null is
    dropped; any non-null value is kept and compared."""
    if sdk_message.get("stop_details", ...) is None:
        return {k: v for k, v in sdk_message.items() if k != "stop_details"}
    return sdk_message


def _without_tool_input(message: dict[str, Any]) -> dict[str, Any]:
    content = [{k: v for k, v in block.items() if k != "input"} for block in message["content"]]
    return {**message, "content": content}


def test_tool_input_cut_by_max_tokens_is_kept_incomplete(
    fake: FakeClaude, client: Client, sdk: anthropic.Anthropic
) -> None:
    """SDK: re-parses the partial JSON and returns a smaller object that looks complete
    (the cut string is dropped). clust: keeps the start event's ``input`` ({}) and marks the
    block incomplete, with the raw JSON received."""
    raw = Reply.raw(_cut_tool_input_sse(CUT_FRAGMENTS), content_type="text/event-stream")
    fake.enqueue(raw, raw)

    ours = client.create_a_message_stream(request_body()).get_final_message()
    theirs = sdk_final_message(sdk)

    assert theirs["content"][1]["input"] == {"city": "Paris", "days": [1, 2, 3]}
    block = ours.content[1]
    assert isinstance(block, ToolUseContentBlock)
    assert block.input == {}
    assert not tool_input_complete(block)
    assert partial_tool_input(block) == "".join(CUT_FRAGMENTS)
    assert ours.stop_reason == "max_tokens"
    # Everything but the tool input agrees.
    assert "stop_details" not in clust_json(ours)
    assert _without_tool_input(clust_json(ours)) == _without_tool_input(
        without_sdk_filled_stop_details(theirs)
    )


def test_tool_input_missing_entirely_at_max_tokens_is_marked(
    fake: FakeClaude, client: Client, sdk: anthropic.Anthropic
) -> None:
    """No input JSON at all before max_tokens: the SDK shows ``{}`` (a tool without
    parameters); clust shows ``{}`` too but marks it incomplete with an empty raw text."""
    raw = Reply.raw(_cut_tool_input_sse([]), content_type="text/event-stream")
    fake.enqueue(raw, raw)

    ours = client.create_a_message_stream(request_body()).get_final_message()
    theirs = sdk_final_message(sdk)

    assert theirs["content"][1]["input"] == {}
    assert clust_json(ours) == without_sdk_filled_stop_details(theirs)
    assert not tool_input_complete(ours.content[1])
    assert partial_tool_input(ours.content[1]) == ""


@pytest.mark.anyio
async def test_tool_input_cut_by_max_tokens_async(fake: FakeClaude, aclient: AsyncClient) -> None:
    raw = Reply.raw(_cut_tool_input_sse(CUT_FRAGMENTS), content_type="text/event-stream")
    fake.enqueue(raw)
    ours = await aclient.create_a_message_stream(request_body()).get_final_message()
    assert ours.content[1].to_wire()["input"] == {}
    assert partial_tool_input(ours.content[1]) == "".join(CUT_FRAGMENTS)


END_WITHOUT_STOP = Reply.tool_uses(
    [("get_weather", {"city": "Oslo"}, "toolu_nostop_1")], text="Checking."
)


def test_stream_ending_without_message_stop(
    fake: FakeClaude, client: Client, sdk: anthropic.Anthropic
) -> None:
    """The body ends cleanly but message_delta/message_stop never come. The SDK returns the
    snapshot as if it were final (``stop_reason`` None, output usage of message_start); clust
    raises StreamInterrupted carrying the same partial message."""
    reply = with_fixed_id(END_WITHOUT_STOP).end_without_stop()
    fake.enqueue(reply, reply)

    with pytest.raises(StreamInterrupted) as caught:
        client.create_a_message_stream(request_body()).get_final_message()
    theirs = sdk_final_message(sdk)

    assert theirs["stop_reason"] is None
    partial = caught.value.partial_message
    assert partial is not None
    assert clust_json(partial) == theirs
    assert caught.value.request_id is not None
    assert len(fake.requests) == 2  # nothing was retried


@pytest.mark.anyio
async def test_stream_ending_without_message_stop_async(
    fake: FakeClaude, aclient: AsyncClient
) -> None:
    fake.enqueue(with_fixed_id(END_WITHOUT_STOP).end_without_stop())
    with pytest.raises(StreamInterrupted) as caught:
        await aclient.create_a_message_stream(request_body()).get_final_message()
    partial = caught.value.partial_message
    assert partial is not None
    assert partial.stop_reason is None
    assert [block.type for block in partial.content] == ["text", "tool_use"]


OVERLOADED_MID_STREAM = Reply.text("Hello there, this is a longer answer.").stream_error_after(6)


def test_overloaded_error_event_mid_stream(
    fake: FakeClaude, client: Client, sdk: anthropic.Anthropic
) -> None:
    """An ``error`` event after content started. The SDK raises its generic APIStatusError
    (status 200, not its OverloadedError); clust raises OverloadedError with status_code 200,
    the error type, the request id and the partial message."""
    reply = with_fixed_id(OVERLOADED_MID_STREAM)
    fake.enqueue(reply, reply)

    with pytest.raises(OverloadedError) as caught:
        client.create_a_message_stream(request_body()).get_final_message()
    with pytest.raises(anthropic.APIStatusError) as sdk_caught:
        sdk_final_message(sdk)

    assert type(sdk_caught.value) is anthropic.APIStatusError
    assert not isinstance(sdk_caught.value, anthropic.OverloadedError)
    assert sdk_caught.value.status_code == 200
    error = caught.value
    assert error.status_code == 200
    assert error.error_type == "overloaded_error"
    assert error.message == "Overloaded"
    assert error.request_id is not None and error.request_id.startswith("req_fake_")
    partial = error.partial_message
    assert partial is not None
    assert partial.id == MESSAGE_ID
    text = partial.text()
    assert text and "Hello there, this is a longer answer.".startswith(text)
    assert len(fake.requests) == 2  # content had started: clust did not retry


@pytest.mark.anyio
async def test_overloaded_error_event_mid_stream_async(
    fake: FakeClaude, aclient: AsyncClient
) -> None:
    fake.enqueue(with_fixed_id(OVERLOADED_MID_STREAM))
    with pytest.raises(OverloadedError) as caught:
        await aclient.create_a_message_stream(request_body()).get_final_message()
    assert caught.value.status_code == 200
    assert caught.value.partial_message is not None
    assert caught.value.partial_message.text()


# --- hand-written streams: SSE framing and forward compatibility ---------------------------

FORWARD_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Pre: "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "stuff": 1}},
    {"type": "content_block_checkpoint", "index": 0, "note": "an event type from the future"},
    {"type": "ping", "extra": True},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "brand_new_reason", "stop_sequence": None, "stop_details": None},
        "usage": {"output_tokens": 5, "input_tokens": 12},
    },
    {"type": "message_stop"},
]


def _frames(events: list[dict[str, Any]], *, newline: str = "\n", space: str = " ") -> str:
    return "".join(
        f"event:{space}{e['type']}{newline}data:{space}{json.dumps(e)}{newline}{newline}"
        for e in events
    )


SSE_VARIANTS: dict[str, str] = {
    "lf": _frames(FORWARD_EVENTS),
    "crlf": _frames(FORWARD_EVENTS, newline="\r\n"),
    "cr": _frames(FORWARD_EVENTS, newline="\r"),
    "no_space_comments_ids_retry": ": keep-alive\n\n"
    + "".join(": c\nid: 7\nretry: 100\n" + _frames([e], space="") for e in FORWARD_EVENTS),
    "multi_line_data": "".join(
        f"event: {e['type']}\n"
        + "".join(f"data: {line}\n" for line in json.dumps(e, indent=1).split("\n"))
        + "\n"
        for e in FORWARD_EVENTS
    ),
}


@pytest.mark.parametrize("variant", list(SSE_VARIANTS))
def test_sse_framing_and_unknown_events_match_sdk(
    variant: str, fake: FakeClaude, client: Client, sdk: anthropic.Anthropic
) -> None:
    """Line endings, comments, id/retry fields, multi-line data, an unknown delta, an unknown
    event and an unknown stop reason: both sides end with the same message."""
    raw = Reply.raw(SSE_VARIANTS[variant], content_type="text/event-stream")
    fake.enqueue(raw, raw)
    ours = client.create_a_message_stream(request_body()).get_final_message()
    theirs = sdk_final_message(sdk)
    assert clust_json(ours) == theirs
    assert ours.text() == "Pre: héllo"
    assert ours.stop_reason == "brand_new_reason"


UNKNOWN_BLOCKS_WITH_DELTAS = sse(
    FORWARD_EVENTS[0],
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "mystery_text", "text": "", "meta": 1},
    },
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hello"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " world"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {
            "type": "mcp_tool_use",
            "id": "mcptoolu_1",
            "name": "lookup",
            "server_name": "kb",
            "input": {},
        },
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"q": "ünï'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": 'code", "n": 2}'},
    },
    {"type": "content_block_stop", "index": 1},
    FORWARD_EVENTS[-2],
    FORWARD_EVENTS[-1],
)


def test_unknown_block_types_take_their_deltas(
    fake: FakeClaude, client: Client, sdk: anthropic.Anthropic
) -> None:
    """Deliberate difference: block types this release does not know, but whose fields take
    text / input JSON deltas, get them applied by clust (so the streamed message equals what
    the API would have returned unstreamed). The SDK only applies deltas to the block types
    it knows and leaves the start block's empty values."""
    raw = Reply.raw(UNKNOWN_BLOCKS_WITH_DELTAS, content_type="text/event-stream")
    fake.enqueue(raw, raw)
    ours = clust_json(client.create_a_message_stream(request_body()).get_final_message())
    theirs = sdk_final_message(sdk)

    assert theirs["content"][0]["text"] == ""
    assert theirs["content"][1]["input"] == {}
    assert ours["content"][0] == {"type": "mystery_text", "text": "hello world", "meta": 1}
    assert ours["content"][1]["input"] == {"q": "ünïcode", "n": 2}
    # Everything else agrees.
    for message in (ours, theirs):
        message["content"][0].pop("text")
        message["content"][1].pop("input")
    assert ours == theirs
