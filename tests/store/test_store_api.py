"""The Store's own API: create, get, list, delete, fork, export and import.

Every test runs on an SQLite file and on PostgreSQL (the ``db_url`` / ``store``
fixtures); requests go to FakeClaude over real sockets.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from clust import Client, Conversation, Store
from clust.messages import (
    CacheControl,
    CacheTtl,
    ConversationNotFound,
    InvalidParameter,
    StoreError,
    SystemPrompt,
)
from clust.store import ConversationRow, MessageRow, UsageRow
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def count_rows(store: Store, row: Any) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(row)).scalar_one())


def usage_rows(store: Store) -> list[dict[str, Any]]:
    table = UsageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(select(table).order_by(table.c.id)).all()
    return [dict(row._mapping) for row in found]


def chat(store: Store, client: Client, turns: int = 2, **defaults: Any) -> Conversation:
    conv = store.create_conversation(model=MODEL, max_tokens=200, **defaults)
    for index in range(turns):
        conv.send(client, f"question {index}")
    return conv


# -- create and get ------------------------------------------------------------------------


def test_create_conversation_keeps_every_default(store: Store) -> None:
    conv = store.create_conversation(
        model=MODEL,
        max_tokens=512,
        system="You are terse.",
        params={"temperature": 0.3, "top_k": 5, "stop_sequences": ["###"]},
        metadata={"user": "u-42", "tier": 2, "beta": True, "team": None},
        title="Support chat",
    )
    opened = store.get_conversation(conv.id)
    for seen in (conv, opened):
        assert seen.id == conv.id
        assert seen.model == MODEL
        assert seen.max_tokens == 512
        assert seen.system == "You are terse."
        assert seen.tools is None
        assert seen.params == {"temperature": 0.3, "top_k": 5, "stop_sequences": ["###"]}
        assert seen.metadata == {"user": "u-42", "tier": 2, "beta": True, "team": None}
        assert seen.title == "Support chat"
        assert seen.parent_id is None
        assert seen.fork_position is None
        assert seen.history == []
        assert not seen.pending
        assert seen.created_at.utcoffset() == timedelta(0)
    assert opened.created_at == conv.created_at


def test_create_conversation_keeps_cache_markers_of_system_blocks_and_tools(
    store: Store,
) -> None:
    system = SystemPrompt.from_text_blocks_with_cache_control(
        [
            ("Long instructions.", CacheControl(ttl=CacheTtl.ONE_HOUR)),
            ("Shorter ones.", CacheControl(ttl=CacheTtl.FIVE_MINUTES)),
            ("No marker here.", None),
        ]
    )
    tools = [
        WEATHER_TOOL,
        {**WEATHER_TOOL, "name": "get_time", "cache_control": {"type": "ephemeral"}},
    ]
    conv = store.create_conversation(model=MODEL, max_tokens=100, system=system, tools=tools)
    expected_system = [
        {
            "type": "text",
            "text": "Long instructions.",
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        },
        {
            "type": "text",
            "text": "Shorter ones.",
            "cache_control": {"type": "ephemeral", "ttl": "5m"},
        },
        {"type": "text", "text": "No marker here."},
    ]
    for seen in (conv, store.get_conversation(conv.id)):
        assert seen.system == expected_system
        assert seen.tools == tools


def test_create_conversation_accepts_raw_system_blocks(store: Store) -> None:
    blocks = [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    conv = store.create_conversation(model=MODEL, max_tokens=100, system=blocks)
    assert store.get_conversation(conv.id).system == blocks


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"params": {"temperature": 2}}, "temperature"),
        ({"max_tokens": 1_000_000}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"params": {"no_such_field": 1}}, "no_such_field"),
        ({"params": {"messages": [{"role": "user", "content": "hi"}]}}, "messages"),
        ({"params": {"stream": True}}, "stream"),
        ({"params": {"model": MODEL}}, "model"),
        ({"params": {"top_k": -1}}, "top_k"),
        ({"system": [{"type": "image"}]}, "system"),
        ({"tools": [{"name": "no_schema"}]}, "tools"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_defaults_raise_invalid_parameter_and_write_nothing(
    store: Store, arguments: dict[str, Any], field: str
) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 100, **arguments}
    with pytest.raises(InvalidParameter) as caught:
        store.create_conversation(**kwargs)
    assert caught.value.field == field
    assert count_rows(store, ConversationRow) == 0
    assert store.list_conversations() == []


def test_get_unknown_id_raises_conversation_not_found(store: Store) -> None:
    with pytest.raises(ConversationNotFound) as caught:
        store.get_conversation("no-such-id")
    assert caught.value.conversation_id == "no-such-id"
    with pytest.raises(ConversationNotFound):
        store.delete_conversation("no-such-id")
    with pytest.raises(ConversationNotFound):
        store.fork("no-such-id", 0)
    with pytest.raises(ConversationNotFound):
        store.export_conversation("no-such-id")


# -- list ----------------------------------------------------------------------------------


def test_list_is_newest_first_and_pages_cover_every_row_once(store: Store) -> None:
    created = [
        store.create_conversation(model=MODEL, max_tokens=10, title=f"c{i}").id for i in range(7)
    ]
    newest_first = list(reversed(created))
    assert [conv.id for conv in store.list_conversations()] == newest_first

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = store.list_conversations(limit=3, after=after)
        if not page:
            break
        pages += 1
        assert len(page) <= 3
        seen.extend(conv.id for conv in page)
        after = page[-1].id
    assert pages == 3
    assert seen == newest_first
    assert store.list_conversations(limit=1)[0].title == "c6"


def test_list_filters_on_metadata(store: Store) -> None:
    def make(**metadata: Any) -> str:
        return store.create_conversation(model=MODEL, max_tokens=10, metadata=metadata).id

    a = make(user="u1", n=1, vip=True, team=None)
    b = make(user="u1", n=2, vip=False)
    c = make(user="u2", n=1, vip=True)
    d = make(user="u2", n=1.5)
    e = make(flag=1)
    f = make(flag=True)
    g = make(code="1")
    make()

    def found(**wanted: Any) -> set[str]:
        return {conv.id for conv in store.list_conversations(metadata=wanted)}

    assert found(user="u1") == {a, b}
    assert found(n=1) == {a, c}
    assert found(n=1.5) == {d}
    assert found(vip=True) == {a, c}
    assert found(vip=False) == {b}
    assert found(team=None) == {a}  # present and null; a missing key does not match
    assert found(user="u2", n=1) == {c}
    assert found(user="u1", vip=True, n=1) == {a}
    # JSON types are kept apart: true is not 1, "1" is not 1.
    assert found(flag=1) == {e}
    assert found(flag=True) == {f}
    assert found(code="1") == {g}
    assert found(code=1) == set()
    assert found(user="nobody") == set()
    # Filters and pages combine, newest first.
    assert [conv.id for conv in store.list_conversations(metadata={"n": 1}, limit=1)] == [c]
    assert [conv.id for conv in store.list_conversations(metadata={"n": 1}, after=c)] == [a]


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_list_rejects_a_limit_out_of_range(store: Store, limit: int) -> None:
    with pytest.raises(InvalidParameter) as caught:
        store.list_conversations(limit=limit)
    assert caught.value.field == "limit"


def test_list_rejects_a_filter_value_that_is_not_a_scalar(store: Store) -> None:
    with pytest.raises(InvalidParameter) as caught:
        store.list_conversations(metadata={"tags": ["a"]})
    assert caught.value.field == "metadata['tags']"


# -- delete --------------------------------------------------------------------------------


def test_delete_removes_turns_but_keeps_usage_rows_detached(store: Store, client: Client) -> None:
    conv = chat(store, client, turns=2)
    other = chat(store, client, turns=1)
    before = usage_rows(store)
    assert len(before) == 3

    store.delete_conversation(conv.id)

    with pytest.raises(ConversationNotFound):
        store.get_conversation(conv.id)
    assert [listed.id for listed in store.list_conversations()] == [other.id]
    assert count_rows(store, MessageRow) == 2  # the other conversation's turns
    after = usage_rows(store)
    assert len(after) == 3
    detached = [row for row in after if row["conversation_id"] is None]
    assert len(detached) == 2
    assert all(row["message_position"] is None for row in detached)
    kept = {row["id"]: row for row in before}
    for row in detached:
        assert row["input_tokens"] == kept[row["id"]]["input_tokens"]
        assert row["output_tokens"] == kept[row["id"]]["output_tokens"]
        assert row["request_id"] == kept[row["id"]]["request_id"]
    assert other.usage().requests == 1


def test_a_deleted_conversation_cannot_be_sent_to(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = chat(store, client, turns=1)
    store.delete_conversation(conv.id)
    requests = len(fake.requests)
    with pytest.raises(ConversationNotFound):
        conv.send(client, "anyone there?")
    with pytest.raises(ConversationNotFound):
        conv.retry(client)
    with pytest.raises(ConversationNotFound):
        store.fork(conv, 0)
    assert len(fake.requests) == requests
    assert count_rows(store, MessageRow) == 0


# -- fork ----------------------------------------------------------------------------------


def test_fork_at_every_position_shares_history_and_defaults(store: Store, client: Client) -> None:
    parent = chat(
        store,
        client,
        turns=2,
        system="Be kind.",
        tools=[WEATHER_TOOL],
        params={"temperature": 0.1},
        metadata={"user": "u-7"},
        title="Original",
    )
    parent_wires = [message.to_wire() for message in parent.history]
    assert len(parent_wires) == 4

    for position in (0, 2, 3, 4):
        fork = store.fork(parent, position)
        for seen in (fork, store.get_conversation(fork.id)):
            assert seen.id != parent.id
            assert seen.parent_id == parent.id
            assert seen.fork_position == position
            assert (seen.model, seen.max_tokens, seen.system, seen.tools, seen.params) == (
                parent.model,
                parent.max_tokens,
                parent.system,
                parent.tools,
                parent.params,
            )
            assert seen.metadata == parent.metadata
            assert seen.title == parent.title
            assert [m.to_wire() for m in seen.history] == parent_wires[:position]
            assert seen.pending is (position % 2 == 1)
            assert seen.usage().requests == 0
    # The parent is untouched.
    assert [m.to_wire() for m in store.get_conversation(parent.id).history] == parent_wires
    assert parent.usage().requests == 2


def test_fork_by_id_then_edit_and_send(store: Store, client: Client, fake: FakeClaude) -> None:
    parent = chat(store, client, turns=2)
    fork = store.fork(parent.id, 2)  # keep the first exchange, replace the second question
    reply = fork.send(client, "question 1, rephrased")
    assert reply.content[0].text == "Echo: question 1, rephrased"
    sent = fake.last_request.body["messages"]
    assert [m["content"] for m in sent[::2]] == ["question 0", "question 1, rephrased"]
    assert len(store.get_conversation(fork.id).history) == 4
    assert [m.text() for m in store.get_conversation(parent.id).history][2] == "question 1"


def test_fork_at_a_user_turn_leaves_it_pending(store: Store, client: Client) -> None:
    parent = chat(store, client, turns=2)
    fork = store.fork(parent, 3)
    assert fork.pending
    reply = fork.retry(client)
    assert reply.content[0].text == "Echo: question 1"
    assert len(store.get_conversation(fork.id).history) == 4


@pytest.mark.parametrize("position", [-1, 5, 100])
def test_fork_out_of_range_raises_and_writes_nothing(
    store: Store, client: Client, position: int
) -> None:
    parent = chat(store, client, turns=2)
    with pytest.raises(InvalidParameter) as caught:
        store.fork(parent, position)
    assert caught.value.field == "at_position"
    assert count_rows(store, ConversationRow) == 1


def test_fork_sees_turns_added_by_another_object(store: Store, client: Client) -> None:
    parent = chat(store, client, turns=1)
    stale = store.get_conversation(parent.id)
    assert len(stale.history) == 2
    parent.send(client, "more")
    fork = store.fork(stale, 4)
    assert [m.text() for m in fork.history][::2] == ["question 0", "more"]


def test_deleting_the_parent_keeps_the_fork(store: Store, client: Client) -> None:
    parent = chat(store, client, turns=1)
    fork = store.fork(parent, 2)
    store.delete_conversation(parent.id)
    kept = store.get_conversation(fork.id)
    assert kept.parent_id is None
    assert [m.text() for m in kept.history] == ["question 0", "Echo: question 0"]


# -- export and import ---------------------------------------------------------------------


def rich_conversation(store: Store, client: Client, fake: FakeClaude) -> Conversation:
    conv = store.create_conversation(
        model=MODEL,
        max_tokens=300,
        system=[
            {"type": "text", "text": "Answer in French.", "cache_control": {"type": "ephemeral"}}
        ],
        tools=[WEATHER_TOOL],
        params={"temperature": 0.7, "metadata": {"user_id": "u-1"}},
        metadata={"user": "u-1", "n": 3},
        title="Météo ☀",
    )
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Zürich"}, id="toolu_export"))
    conv.send(client, "Quel temps à Zürich ?")
    conv.send(
        client,
        [{"type": "tool_result", "tool_use_id": "toolu_export", "content": "sunny, 21°C"}],
    )
    return conv


def stored_wires(store: Store, conversation_id: str) -> list[str]:
    table = MessageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table.c.wire)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.position)
        ).all()
    return [row[0] for row in found]


def without_identity(document: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in document.items()
        if key not in ("id", "created_at", "parent_id", "fork_position")
    }


def test_export_import_round_trip(store: Store, client: Client, fake: FakeClaude) -> None:
    conv = rich_conversation(store, client, fake)
    document = json.loads(json.dumps(store.export_conversation(conv)))  # JSON-ready
    assert document["id"] == conv.id
    assert len(document["messages"]) == 4
    assert len(document["usage"]) == 2

    imported = store.import_conversation(document)

    assert imported.id != conv.id
    again = store.get_conversation(imported.id)
    for seen in (imported, again):
        assert (seen.model, seen.max_tokens, seen.system, seen.tools, seen.params) == (
            conv.model,
            conv.max_tokens,
            conv.system,
            conv.tools,
            conv.params,
        )
        assert seen.metadata == conv.metadata
        assert seen.title == "Météo ☀"
        assert seen.history == conv.history
    assert stored_wires(store, imported.id) == stored_wires(store, conv.id)
    assert imported.usage() == conv.usage()
    assert without_identity(store.export_conversation(imported)) == without_identity(document)

    # The imported conversation carries on where the original stopped.
    imported.send(client, "Merci")
    sent = fake.last_request.raw
    for wire in stored_wires(store, conv.id):
        assert wire.encode() in sent


def test_import_with_keep_id_into_a_new_database(
    store: Store, client: Client, fake: FakeClaude, tmp_path: Path
) -> None:
    conv = rich_conversation(store, client, fake)
    document = store.export_conversation(conv.id)
    with Store(f"sqlite:///{tmp_path / 'other.db'}") as other:
        copy = other.import_conversation(document, keep_id=True)
        assert copy.id == conv.id
        assert other.get_conversation(conv.id).history == conv.history
        assert other.get_conversation(conv.id).usage() == conv.usage()
        with pytest.raises(StoreError):
            other.import_conversation(document, keep_id=True)
        assert len(other.list_conversations()) == 1


def test_import_with_keep_id_after_delete_and_on_an_existing_id(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = rich_conversation(store, client, fake)
    document = store.export_conversation(conv)
    with pytest.raises(StoreError):
        store.import_conversation(document, keep_id=True)
    assert count_rows(store, ConversationRow) == 1
    assert count_rows(store, MessageRow) == 4

    store.delete_conversation(conv.id)
    restored = store.import_conversation(document, keep_id=True)
    assert restored.id == conv.id
    assert store.get_conversation(conv.id).history == conv.history
    assert restored.usage() == conv.usage()


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ({"started_at": "not a time"}, "usage[0].started_at"),
        ({"input_tokens": None, "model": None}, "usage[0]"),
    ],
    ids=["bad time", "missing column"],
)
def test_an_import_with_a_bad_usage_row_writes_nothing(
    store: Store, client: Client, fake: FakeClaude, broken: dict[str, Any], field: str
) -> None:
    conv = rich_conversation(store, client, fake)
    document = store.export_conversation(conv)
    store.delete_conversation(conv.id)
    usage_before = count_rows(store, UsageRow)
    row = {**document["usage"][0], **broken}
    bad = {**document, "usage": [{k: v for k, v in row.items() if v is not None}]}
    with pytest.raises(InvalidParameter) as caught:
        store.import_conversation(bad, keep_id=True)
    assert caught.value.field == field
    assert (count_rows(store, ConversationRow), count_rows(store, MessageRow)) == (0, 0)
    assert count_rows(store, UsageRow) == usage_before
    restored = store.import_conversation(document, keep_id=True)  # the id is still free
    assert restored.usage() == conv.usage()


def test_import_rejects_a_foreign_document(store: Store) -> None:
    with pytest.raises(InvalidParameter) as caught:
        store.import_conversation({"format": "something-else", "version": 1})
    assert caught.value.field == "document"
    assert count_rows(store, ConversationRow) == 0


def test_a_stale_page_cursor_is_an_error_not_an_empty_page(store: Store) -> None:
    first = store.create_conversation(model="claude-sonnet-5-5", max_tokens=100)
    store.create_conversation(model="claude-sonnet-5-5", max_tokens=100)
    assert store.list_conversations(after=first.id) == []  # the oldest: nothing after it
    store.delete_conversation(first.id)
    with pytest.raises(ConversationNotFound):
        store.list_conversations(after=first.id)
