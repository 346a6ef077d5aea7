"""``Conversation.send``: what goes out on the wire, what is stored, what it cost.

FakeClaude records every request (``fake.last_request.body`` parsed, ``.raw`` the
bytes), so each test checks the request as the API would see it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from clust import Client, Conversation, Store
from clust.messages import (
    InvalidParameter,
    Message,
    Role,
    TextContentBlock,
    ToolResultContentBlock,
    ToolUseContentBlock,
)
from clust.store import MessageRow, UsageRow
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"
TTL_BETA = "extended-cache-ttl-2025-04-11"

WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

# Long enough to pass FakeClaude's minimum cacheable prefix (1024 fake tokens).
LONG = "Follow the house style guide to the letter. " * 400


def stored_wires(store: Store, conversation_id: str) -> list[str]:
    table = MessageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table.c.wire)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.position)
        ).all()
    return [row[0] for row in found]


def usage_rows(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    table = UsageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.message_position)
        ).all()
    return [dict(row._mapping) for row in found]


def betas(fake: FakeClaude) -> list[str]:
    header = fake.last_request.header("anthropic-beta") or ""
    return [value.strip() for value in header.split(",") if value.strip()]


def texts(conv: Conversation) -> list[str]:
    return [message.text() for message in conv.history]


# -- the request -----------------------------------------------------------------------------


def test_each_request_holds_defaults_and_every_earlier_turn_in_order(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    system = [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Answer in English."},
    ]
    conv = store.create_conversation(
        model=MODEL,
        max_tokens=300,
        system=system,
        tools=[WEATHER_TOOL],
        params={"temperature": 0.2, "top_k": 7, "stop_sequences": ["###"]},
    )
    for index in range(3):
        reply = conv.send(client, f"question {index}")
        assert reply.content[0].text == f"Echo: question {index}"
        body = fake.last_request.body
        assert body["model"] == MODEL
        assert body["max_tokens"] == 300
        assert body["system"] == system
        assert body["tools"] == [WEATHER_TOOL]
        assert (body["temperature"], body["top_k"], body["stop_sequences"]) == (0.2, 7, ["###"])
        assert "stream" not in body
        assert [m["role"] for m in body["messages"]] == ["user", "assistant"] * index + ["user"]
        assert [m["content"] for m in body["messages"][::2]] == [
            f"question {i}" for i in range(index + 1)
        ]
    # Every stored turn went out byte for byte, in position order.
    raw = fake.last_request.raw
    wires = stored_wires(store, conv.id)
    assert len(wires) == 6
    assert b"[" + ",".join(wires[:5]).encode() + b"]" in raw
    assert TTL_BETA not in betas(fake)


def test_a_reopened_conversation_sends_the_same_history(
    db_url: str, store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(
        model=MODEL, max_tokens=100, system="Be brief.", tools=[WEATHER_TOOL]
    )
    conv.send(client, [TextContentBlock(text="cached turn", cache_control={"type": "ephemeral"})])
    conv.send(client, "second")
    first_requests = fake.requests
    with Store(db_url) as elsewhere:  # another Store, as another process would open it
        resumed = elsewhere.get_conversation(conv.id)
        assert resumed.history == conv.history
        resumed.send(client, "third")
    body = fake.last_request.body
    assert body["system"] == "Be brief."
    assert body["tools"] == [WEATHER_TOOL]
    assert body["messages"][:4] == first_requests[-1].body["messages"] + [
        {"role": "assistant", "content": [{"type": "text", "text": "Echo: second"}]}
    ]
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    raw = fake.last_request.raw
    wires = stored_wires(store, conv.id)
    assert b"[" + ",".join(wires[:5]).encode() + b"]" in raw
    # The original object learns about the turn added elsewhere on its next send.
    conv.send(client, "fourth")
    assert [m["content"] for m in fake.last_request.body["messages"][::2]][-2:] == [
        "third",
        "fourth",
    ]
    assert len(store.get_conversation(conv.id).history) == 8


def test_send_accepts_strings_blocks_and_user_messages(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    conv.send(client, "plain")
    conv.send(client, TextContentBlock(text="one block"))
    conv.send(client, Message.user([TextContentBlock(text="a"), TextContentBlock(text="b")]))
    conv.send(client, [{"type": "text", "text": "raw dict block"}])
    assert fake.last_request.body["messages"][-1] == {
        "role": "user",
        "content": [{"type": "text", "text": "raw dict block"}],
    }
    assert texts(conv)[::2] == ["plain", "one block", "ab", "raw dict block"]


@pytest.mark.parametrize(
    "content",
    [
        Message.assistant("not a user turn"),
        [{"type": "text"}],
        [{"type": "image", "source": {"type": "base64"}}],
    ],
    ids=["assistant-message", "text-without-text", "image-without-data"],
)
def test_bad_content_raises_invalid_parameter_before_anything_happens(
    store: Store, client: Client, fake: FakeClaude, content: Any
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    conv.send(client, "hello")
    requests = len(fake.requests)
    with pytest.raises(InvalidParameter) as caught:
        conv.send(client, content)
    assert caught.value.field == "content"
    assert len(fake.requests) == requests
    assert len(store.get_conversation(conv.id).history) == 2
    conv.send(client, "still fine")  # no pending turn, no lease left behind


# -- the 1-hour TTL beta header ------------------------------------------------------------


ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
FIVE_MINUTES = {"type": "ephemeral", "ttl": "5m"}


@pytest.mark.parametrize(
    ("defaults", "one_hour"),
    [
        ({}, False),
        ({"system": [{"type": "text", "text": "s", "cache_control": FIVE_MINUTES}]}, False),
        ({"system": [{"type": "text", "text": "s", "cache_control": ONE_HOUR}]}, True),
        ({"tools": [WEATHER_TOOL, {**WEATHER_TOOL, "name": "b", "cache_control": ONE_HOUR}]}, True),
        ({"tools": [{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}]}, False),
    ],
    ids=["no-marker", "system-5m", "system-1h", "tools-1h", "tools-default-ttl"],
)
def test_ttl_beta_header_follows_the_stored_defaults(
    db_url: str,
    store: Store,
    client: Client,
    fake: FakeClaude,
    defaults: dict[str, Any],
    one_hour: bool,
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100, **defaults)
    conv.send(client, "one")
    assert (TTL_BETA in betas(fake)) is one_hour
    conv.send(client, "two")
    assert (TTL_BETA in betas(fake)) is one_hour
    with Store(db_url) as elsewhere:
        elsewhere.get_conversation(conv.id).send(client, "three")
    assert (TTL_BETA in betas(fake)) is one_hour


def test_ttl_beta_header_follows_a_one_hour_marker_in_the_history(
    db_url: str, store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    conv.send(client, "plain")
    assert TTL_BETA not in betas(fake)
    conv.send(client, [TextContentBlock(text="keep me an hour", cache_control=ONE_HOUR)])
    assert TTL_BETA in betas(fake)
    conv.send(client, "plain again")  # the marked turn is still in the history
    assert TTL_BETA in betas(fake)
    with Store(db_url) as elsewhere:  # and still after reading it back from the store
        elsewhere.get_conversation(conv.id).send(client, "from elsewhere")
    assert TTL_BETA in betas(fake)
    # A 1h marker inside a tool result's content counts too.
    other = store.create_conversation(model=MODEL, max_tokens=100, tools=[WEATHER_TOOL])
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Rome"}, id="toolu_x"))
    other.send(client, "Weather in Rome?")
    assert TTL_BETA not in betas(fake)
    other.send(
        client,
        [
            ToolResultContentBlock(
                tool_use_id="toolu_x",
                content=[TextContentBlock(text="result", cache_control=ONE_HOUR)],
            )
        ],
    )
    assert TTL_BETA in betas(fake)


def test_ttl_beta_header_for_a_one_hour_override_applies_to_that_call_only(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100, system="plain")
    conv.send(client, "one", system=[{"type": "text", "text": "s", "cache_control": ONE_HOUR}])
    assert TTL_BETA in betas(fake)
    conv.send(client, "two", betas=["some-other-beta-2099-01-01"])
    assert betas(fake) == ["some-other-beta-2099-01-01"]
    conv.send(
        client,
        "three",
        tools=[{**WEATHER_TOOL, "cache_control": ONE_HOUR}],
        betas=["some-other-beta-2099-01-01"],
    )
    assert set(betas(fake)) == {"some-other-beta-2099-01-01", TTL_BETA}
    conv.send(client, "four")
    assert betas(fake) == []


# -- per-call overrides --------------------------------------------------------------------


def test_overrides_apply_to_one_call_only(store: Store, client: Client, fake: FakeClaude) -> None:
    conv = store.create_conversation(
        model=MODEL, max_tokens=100, system="default system", params={"temperature": 0.2}
    )
    conv.send(
        client,
        "overridden",
        model="claude-haiku-5-5",
        max_tokens=50,
        system="other system",
        tools=[WEATHER_TOOL],
        params={"temperature": 0.9, "top_p": 0.5},
    )
    body = fake.last_request.body
    assert (body["model"], body["max_tokens"], body["system"]) == (
        "claude-haiku-5-5",
        50,
        "other system",
    )
    assert body["tools"] == [WEATHER_TOOL]
    assert (body["temperature"], body["top_p"]) == (0.9, 0.5)

    conv.send(client, "defaults again")
    body = fake.last_request.body
    assert (body["model"], body["max_tokens"], body["system"], body["temperature"]) == (
        MODEL,
        100,
        "default system",
        0.2,
    )
    assert "tools" not in body and "top_p" not in body
    stored = store.get_conversation(conv.id)
    assert (stored.model, stored.max_tokens, stored.system, stored.params) == (
        MODEL,
        100,
        "default system",
        {"temperature": 0.2},
    )
    assert [row["model"] for row in usage_rows(store, conv.id)] == ["claude-haiku-5-5", MODEL]


EXTRA = {"context_management": {"edits": []}, "future_flag": True}


def test_extra_body_defaults_survive_overrides_and_export(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    """Fields sent through ``extra_body`` are kept as such: a per-call override, an
    override's own ``extra_body`` and an export/import all validate the head again."""
    conv = store.create_conversation(
        model=MODEL, max_tokens=100, params={"temperature": 0.2, "extra_body": EXTRA}
    )
    conv.send(client, "plain")
    assert {key: fake.last_request.body[key] for key in EXTRA} == EXTRA

    conv.send(client, "shorter", max_tokens=50, params={"top_p": 0.5})
    body = fake.last_request.body
    assert (body["max_tokens"], body["top_p"], body["temperature"]) == (50, 0.5, 0.2)
    assert {key: body[key] for key in EXTRA} == EXTRA

    conv.send(client, "other flag", params={"extra_body": {"future_flag": False, "more": 1}})
    body = fake.last_request.body
    assert (body["context_management"], body["future_flag"], body["more"]) == (
        {"edits": []},
        False,
        1,
    )

    copy = store.import_conversation(store.export_conversation(conv))
    assert copy.params == conv.params == {"temperature": 0.2, **EXTRA}
    copy.send(client, "from the copy", max_tokens=60)
    assert {key: fake.last_request.body[key] for key in EXTRA} == EXTRA


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"params": {"temperature": 3}}, "temperature"),
        ({"max_tokens": 10_000_000}, "max_tokens"),
        ({"params": {"stream": True}}, "stream"),
        ({"params": {"messages": []}}, "messages"),
        ({"params": {"unknown_option": True}}, "unknown_option"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_bad_override_raises_before_anything_is_stored_or_sent(
    store: Store, client: Client, fake: FakeClaude, overrides: dict[str, Any], field: str
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    with pytest.raises(InvalidParameter) as caught:
        conv.send(client, "hello", **overrides)
    assert caught.value.field == field
    assert fake.requests == []
    assert store.get_conversation(conv.id).history == []
    assert not conv.pending
    conv.send(client, "hello")


# -- history and usage ---------------------------------------------------------------------


def test_history_is_typed_messages_oldest_first(store: Store, client: Client) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    conv.send(client, "first")
    conv.send(client, "second")
    for history in (conv.history, store.get_conversation(conv.id).history):
        assert all(isinstance(message, Message) for message in history)
        assert [message.role for message in history] == [Role.USER, Role.ASSISTANT] * 2
        assert [message.text() for message in history] == [
            "first",
            "Echo: first",
            "second",
            "Echo: second",
        ]
        assert isinstance(history[1].content[0], TextContentBlock)


def test_usage_totals_are_the_sum_of_the_replies_cache_fields_included(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    system = [
        {"type": "text", "text": LONG, "cache_control": ONE_HOUR},
        {"type": "text", "text": LONG.upper(), "cache_control": FIVE_MINUTES},
    ]
    conv = store.create_conversation(model=MODEL, max_tokens=200, system=system)
    replies = [conv.send(client, f"turn {index}") for index in range(3)]
    replies.append(conv.send(client, "tool time", tools=[WEATHER_TOOL]))  # new prefix: a write

    totals = conv.usage()
    assert totals == store.get_conversation(conv.id).usage()
    assert totals.requests == 4
    assert totals.input_tokens == sum(r.usage.input_tokens for r in replies)
    assert totals.output_tokens == sum(r.usage.output_tokens for r in replies)
    assert totals.cache_read_input_tokens == sum(
        r.usage.cache_read_input_tokens or 0 for r in replies
    )
    assert totals.cache_creation_input_tokens == sum(
        r.usage.cache_creation_input_tokens or 0 for r in replies
    )
    splits = [r.usage.cache_creation for r in replies]
    assert all(split is not None for split in splits)
    assert totals.cache_creation_1h_input_tokens == sum(
        s.ephemeral_1h_input_tokens for s in splits if s is not None
    )
    assert totals.cache_creation_5m_input_tokens == sum(
        s.ephemeral_5m_input_tokens for s in splits if s is not None
    )
    # FakeClaude's cache simulation did write and read: the sums are not trivially zero.
    assert totals.cache_creation_1h_input_tokens > 0
    assert totals.cache_creation_5m_input_tokens > 0
    assert totals.cache_read_input_tokens > 0
    assert totals.total_input_tokens == (
        totals.input_tokens + totals.cache_creation_input_tokens + totals.cache_read_input_tokens
    )


def test_usage_rows_record_what_each_request_cost(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100, tools=[WEATHER_TOOL])
    fake.enqueue(
        Reply.text("slow answer").delayed(0.25),
        Reply.tool_use("get_weather", {"city": "Oslo"}),
        Reply.text("cut short", stop_reason="max_tokens").with_usage(output_tokens=99),
    )
    replies = [conv.send(client, "q0"), conv.send(client, "q1")]
    call = replies[1].content[0]
    assert isinstance(call, ToolUseContentBlock)
    replies.append(conv.send(client, [ToolResultContentBlock(tool_use_id=call.id, content="rain")]))
    rows = usage_rows(store, conv.id)
    assert [row["message_position"] for row in rows] == [1, 3, 5]
    assert [row["stop_reason"] for row in rows] == ["end_turn", "tool_use", "max_tokens"]
    for row, reply in zip(rows, replies, strict=True):
        assert reply.request_id is not None
        assert row["request_id"] == reply.request_id
        assert row["model"] == reply.model == MODEL
        assert row["input_tokens"] == reply.usage.input_tokens
        assert row["output_tokens"] == reply.usage.output_tokens
        assert row["service_tier"] == "standard"
        assert row["started_at"] <= row["finished_at"]
        assert row["latency_ms"] >= 0
    assert rows[2]["output_tokens"] == 99
    assert rows[0]["latency_ms"] >= 250
    assert len({row["request_id"] for row in rows}) == 3


# -- tools ---------------------------------------------------------------------------------


def test_tool_use_reply_and_tool_result_turn(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=200, tools=[WEATHER_TOOL])
    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Paris"}, id="toolu_01", text="Let me check.")
    )
    reply = conv.send(client, "Weather in Paris?")
    assert str(reply.stop_reason) == "tool_use"

    stored = store.get_conversation(conv.id).history[-1]
    assert stored.role == Role.ASSISTANT
    assert isinstance(stored.content[1], ToolUseContentBlock)
    assert (stored.content[1].id, stored.content[1].name, stored.content[1].input) == (
        "toolu_01",
        "get_weather",
        {"city": "Paris"},
    )

    answer = conv.send(client, [ToolResultContentBlock(tool_use_id="toolu_01", content="sunny")])
    assert answer.content[0].text == "Echo: (1 tool result)"
    sent = fake.last_request.body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"}],
    }
    assert fake.last_request.body["tools"] == [WEATHER_TOOL]
    assert [row["stop_reason"] for row in usage_rows(store, conv.id)] == ["tool_use", "end_turn"]
