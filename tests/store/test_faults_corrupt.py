"""Corrupted rows are not trusted (issue 7): a stored turn whose JSON does not decode,
is not a message, or disagrees with its role column, and a request head without
``model``, raise :class:`CorruptConversation` (a ``StoreError`` naming the conversation
and the position) from history, export and send, and nothing is sent. Every test runs
on an SQLite file and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from clust import Client, Conversation, Store
from clust.messages import CorruptConversation, InvalidRequestError, StoreError
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"


def _chat(store: Store, client: Client, fake: FakeClaude, turns: int = 1) -> Conversation:
    """A conversation of ``turns`` exchanges (positions 0 .. 2 * turns - 1)."""
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    for index in range(turns):
        fake.enqueue(Reply.text(f"answer {index}"))
        conv.send(client, f"question {index}")
    return conv


def _execute(store: Store, sql: str, **params: Any) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(sql), params)


def _corrupt_turn(store: Store, conversation_id: str, position: int, **values: str) -> None:
    sets = ", ".join(f"{name} = :{name}" for name in values)
    _execute(
        store,
        f"UPDATE clust_messages SET {sets} WHERE conversation_id = :id AND position = :position",
        id=conversation_id,
        position=position,
        **values,
    )


def _stored_turns(store: Store, conversation_id: str) -> int:
    with store.engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(*) FROM clust_messages WHERE conversation_id = :id"),
            {"id": conversation_id},
        ).scalar()
    return int(count or 0)


def _assert_corrupt(
    error: pytest.ExceptionInfo[CorruptConversation], conv_id: str, at: Any
) -> None:
    assert isinstance(error.value, StoreError)
    assert error.value.conversation_id == conv_id
    assert error.value.position == at
    assert conv_id in str(error.value)


CORRUPTIONS = {
    # The stored JSON cut short.
    "truncated JSON": {"wire": '{"role":"user","content":"question 0'},
    # Not JSON at all.
    "not JSON": {"wire": "question 0"},
    # The JSON says assistant, the role column user: two assistant turns would go out.
    "role disagrees": {"wire": '{"role":"assistant","content":"question 0"}'},
    # A role the conversation cannot send.
    "system role": {"role": "system", "wire": '{"role":"system","content":"obey"}'},
    # Decodes, but is no message.
    "junk content": {"wire": '{"role":"user","content":42}'},
    "not an object": {"wire": '["role","user"]'},
}
BROKEN_INSIDE = {"junk content"}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_turn_raises_a_typed_error_from_history_export_and_send(
    store: Store, client: Client, fake: FakeClaude, corruption: str
) -> None:
    conv = _chat(store, client, fake, turns=2)
    _corrupt_turn(store, conv.id, 2, **CORRUPTIONS[corruption])
    sent = len(fake.requests)

    with pytest.raises(CorruptConversation) as from_history:
        store.get_conversation(conv.id).history  # noqa: B018 (the property reads)
    _assert_corrupt(from_history, conv.id, 2)

    with pytest.raises(CorruptConversation) as from_export:
        store.export_conversation(conv.id)
    _assert_corrupt(from_export, conv.id, 2)

    fake.enqueue(Reply.text("never"))
    with pytest.raises(CorruptConversation) as from_send:
        store.get_conversation(conv.id).send(client, "question 2")
    _assert_corrupt(from_send, conv.id, 2)
    if corruption in BROKEN_INSIDE:
        # Begins and ends as a user turn: the O(1) check a send makes passes it, the
        # API refuses the request (unbilled), and that refusal is explained.
        assert isinstance(from_send.value.__cause__, InvalidRequestError)
        assert len(fake.requests) == sent + 1
        assert _stored_turns(store, conv.id) == 5  # the new user turn waits, pending
    else:
        assert len(fake.requests) == sent  # nothing was sent
        assert _stored_turns(store, conv.id) == 4  # nor stored


def test_turns_read_after_the_history_was_loaded_are_checked_too(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = _chat(store, client, fake)
    assert len(conv.history) == 2  # this object holds the first exchange
    other = store.get_conversation(conv.id)
    fake.enqueue(Reply.text("answer 1"))
    other.send(client, "question 1")  # another object adds positions 2 and 3
    _corrupt_turn(store, conv.id, 3, wire='{"role":"user","content":"forged"}')
    sent = len(fake.requests)
    with pytest.raises(CorruptConversation) as from_refresh:
        conv.refresh()
    _assert_corrupt(from_refresh, conv.id, 3)
    fake.enqueue(Reply.text("never"))
    with pytest.raises(CorruptConversation):
        conv.send(client, "question 2")
    assert len(fake.requests) == sent
    assert _stored_turns(store, conv.id) == 4


@pytest.mark.parametrize(
    "head",
    ['{"max_tokens":100}', '{"model":"","max_tokens":100}', '{"model":"claude"', "[]"],
)
def test_a_corrupt_request_head_raises_a_typed_error_before_anything_is_sent(
    store: Store, client: Client, fake: FakeClaude, head: str
) -> None:
    conv = _chat(store, client, fake)
    _execute(
        store,
        "UPDATE clust_conversations SET request_head = :head WHERE id = :id",
        head=head,
        id=conv.id,
    )
    sent = len(fake.requests)
    with pytest.raises(CorruptConversation) as from_history:
        store.get_conversation(conv.id).history  # noqa: B018 (the property reads)
    _assert_corrupt(from_history, conv.id, None)
    with pytest.raises(CorruptConversation) as from_export:
        store.export_conversation(conv.id)
    _assert_corrupt(from_export, conv.id, None)
    with pytest.raises(CorruptConversation) as from_send:
        store.get_conversation(conv.id).send(client, "question 1")
    _assert_corrupt(from_send, conv.id, None)
    assert "request head" in str(from_send.value)
    assert len(fake.requests) == sent
    assert _stored_turns(store, conv.id) == 2
