"""``Conversation.stream``: events go to the caller, the reply is stored once complete.

A stream that breaks off, or that the caller leaves early, stores no reply, leaves
the user turn pending and gives the conversation back at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from clust import Client, Conversation, Store
from clust.messages import (
    ConversationBusy,
    MessagesError,
    OverloadedError,
    PendingTurn,
    StreamInterrupted,
    TextContentBlock,
)
from clust.store import MessageRow, UsageRow
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"
TTL_BETA = "extended-cache-ttl-2025-04-11"
LONG_ANSWER = "It rains in Brest, as it always does. " * 20


def texts(conv: Conversation) -> list[str]:
    return [message.text() for message in conv.history]


def count_rows(store: Store, row: Any) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(row)).scalar_one())


def reply_rows(store: Store) -> int:
    """Usage rows of stored replies (a broken stream leaves an "interrupted" row: billed)."""
    table = UsageRow.__table__
    with store.engine.connect() as connection:
        query = select(func.count()).select_from(table).where(table.c.outcome == "reply")
        return int(connection.execute(query).scalar_one())


def usage_rows(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    table = UsageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.message_position)
        ).all()
    return [dict(row._mapping) for row in found]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def assert_pending_and_retryable(
    store: Store, conv: Conversation, client: Client, question: str, answer: str
) -> None:
    """Nothing of the reply stored; the user turn pending; retry (at once) completes it."""
    for seen in (conv, store.get_conversation(conv.id)):
        assert seen.pending
        assert texts(seen)[-1] == question
    assert reply_rows(store) == 0
    with pytest.raises(PendingTurn):
        conv.send(client, "something else")
    reply = store.get_conversation(conv.id).retry(client)  # no ConversationBusy: lease released
    assert reply.content[0].text == answer
    assert texts(store.get_conversation(conv.id)) == [question, answer]
    assert reply_rows(store) == 1


# -- a complete stream ---------------------------------------------------------------------


def test_stream_yields_events_and_stores_the_reply(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100, params={"temperature": 0.5})
    with conv.stream(client, "hello there") as stream:
        assert stream.current_message is None
        events = list(stream)
        final = stream.get_final_message()
        assert stream.current_message == final

    types = [event.type for event in events]
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    assert "content_block_delta" in types
    assert final.content[0].text == "Echo: hello there"
    body = fake.last_request.body
    assert body["stream"] is True
    assert body["temperature"] == 0.5
    assert body["messages"] == [{"role": "user", "content": "hello there"}]

    stored = store.get_conversation(conv.id)
    assert texts(stored) == ["hello there", "Echo: hello there"]
    assert not stored.pending
    (row,) = usage_rows(store, conv.id)
    assert row["request_id"] == final.request_id is not None
    assert row["stop_reason"] == "end_turn"
    assert row["model"] == MODEL
    assert (row["input_tokens"], row["output_tokens"]) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )


def test_text_stream_and_current_message_while_streaming(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    conv.send(client, "first")
    fake.enqueue(Reply.text(LONG_ANSWER))
    seen_lengths = []
    with conv.stream(client, "weather?") as stream:
        pieces = []
        for piece in stream.text_stream:
            pieces.append(piece)
            current = stream.current_message
            assert current is not None
            seen_lengths.append(len(current.content[0].text))
        final = stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == LONG_ANSWER == final.content[0].text
    assert seen_lengths == sorted(seen_lengths)  # the snapshot grows as text arrives
    assert fake.last_request.body["messages"][:2] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": [{"type": "text", "text": "Echo: first"}]},
    ]
    assert texts(store.get_conversation(conv.id))[2:] == ["weather?", LONG_ANSWER]
    conv.send(client, "thanks")  # the streamed reply goes out with the next turn
    assert fake.last_request.body["messages"][3] == {
        "role": "assistant",
        "content": [{"type": "text", "text": LONG_ANSWER}],
    }


def test_get_final_message_alone_reads_and_stores_the_stream(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(
        model=MODEL,
        max_tokens=100,
        system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    )
    final = conv.stream(client, [TextContentBlock(text="blocks")]).get_final_message()
    assert final.content[0].text == "Echo: blocks"
    assert TTL_BETA in (fake.last_request.header("anthropic-beta") or "")
    assert texts(store.get_conversation(conv.id)) == ["blocks", "Echo: blocks"]


def test_stream_with_overrides_applies_them_to_that_turn_only(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    with conv.stream(client, "x", model="claude-haiku-5-5", max_tokens=7) as stream:
        stream.get_final_message()
    assert (fake.last_request.body["model"], fake.last_request.body["max_tokens"]) == (
        "claude-haiku-5-5",
        7,
    )
    conv.send(client, "y")
    assert (fake.last_request.body["model"], fake.last_request.body["max_tokens"]) == (MODEL, 100)
    assert [row["model"] for row in usage_rows(store, conv.id)] == ["claude-haiku-5-5", MODEL]


def test_a_stream_that_is_never_iterated_does_nothing(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    with conv.stream(client, "never sent"):
        pass
    assert fake.requests == []
    assert count_rows(store, MessageRow) == 0
    conv.send(client, "sent")
    assert texts(store.get_conversation(conv.id)) == ["sent", "Echo: sent"]


# -- a stream that breaks off ----------------------------------------------------------------

BROKEN: dict[str, tuple[Reply, type[MessagesError]]] = {
    "cut-after-content": (Reply.text(LONG_ANSWER).cut_after(6), StreamInterrupted),
    "end-without-stop": (Reply.text(LONG_ANSWER).end_without_stop(), StreamInterrupted),
    "error-event-after-content": (
        Reply.text(LONG_ANSWER).stream_error_after(6, "overloaded_error"),
        OverloadedError,
    ),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_broken_stream_stores_nothing_and_retry_completes_it(
    store: Store, client: Client, fake: FakeClaude, broken: str
) -> None:
    reply, error = BROKEN[broken]
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(reply)
    received: list[str] = []
    with pytest.raises(error), conv.stream(client, "forecast?") as stream:
        received.extend(stream.text_stream)
    assert received  # some text did reach the caller before the break
    assert "".join(received) != LONG_ANSWER or broken == "end-without-stop"
    assert_pending_and_retryable(store, conv, client, "forecast?", "Echo: forecast?")


def test_get_final_message_of_a_cut_stream_raises_stream_interrupted(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER).cut_after(5))
    stream = conv.stream(client, "forecast?")
    with pytest.raises(StreamInterrupted) as caught:
        stream.get_final_message()
    assert caught.value.partial_message is not None
    assert_pending_and_retryable(store, conv, client, "forecast?", "Echo: forecast?")


def test_a_pending_turn_can_be_resent_as_a_stream(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER).cut_after(5))
    with pytest.raises(StreamInterrupted), conv.stream(client, "forecast?") as stream:
        stream.get_final_message()
    with pytest.raises(PendingTurn), conv.stream(client, "new question") as stream:
        list(stream)
    with conv.stream(client, None) as stream:  # None: resend the pending turn
        assert "".join(stream.text_stream) == "Echo: forecast?"
    assert fake.last_request.body["messages"] == [{"role": "user", "content": "forecast?"}]
    assert texts(store.get_conversation(conv.id)) == ["forecast?", "Echo: forecast?"]


# -- leaving early -------------------------------------------------------------------------


def test_leaving_the_with_block_early_stores_nothing_and_releases_the_lease(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER))
    with conv.stream(client, "forecast?") as stream:
        for index, _event in enumerate(stream):
            if index == 3:
                break
    with pytest.raises(StreamInterrupted):
        stream.get_final_message()
    assert_pending_and_retryable(store, conv, client, "forecast?", "Echo: forecast?")


def test_breaking_out_of_text_stream_in_a_with_block(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER))
    with conv.stream(client, "forecast?") as stream:
        for _piece in stream.text_stream:
            break
    assert_pending_and_retryable(store, conv, client, "forecast?", "Echo: forecast?")


def test_breaking_out_of_a_for_loop_releases_the_lease_at_once(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER))
    stream = conv.stream(client, "forecast?")  # still referenced after the loop
    for _event in stream:
        break
    assert_pending_and_retryable(store, conv, client, "forecast?", "Echo: forecast?")
    del stream


def test_closing_a_stream_mid_way_stores_nothing(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER))
    stream = conv.stream(client, "forecast?")
    iterator = iter(stream)
    next(iterator)
    next(iterator)
    stream.close()
    assert_pending_and_retryable(store, conv, client, "forecast?", "Echo: forecast?")


# -- busy ----------------------------------------------------------------------------------


def test_a_stream_while_a_send_is_in_flight_is_busy(
    store: Store, client: Client, fake: FakeClaude, pool: ThreadPoolExecutor
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    fake.enqueue(Reply.text("slow").delayed(0.7))
    with Client(api_key="k", base_url=fake.base_url) as other_client:
        first = pool.submit(conv.send, other_client, "first")
        deadline = time.monotonic() + 5
        while not fake.requests:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        other = store.get_conversation(conv.id)
        with pytest.raises(ConversationBusy), other.stream(client, "second") as stream:
            list(stream)
        with other.stream(client, "second", wait=5.0) as stream:
            assert stream.get_final_message().content[0].text == "Echo: second"
        assert first.result(timeout=5).content[0].text == "slow"
    assert texts(store.get_conversation(conv.id)) == ["first", "slow", "second", "Echo: second"]


def test_a_slow_stream_holds_the_conversation_until_it_completes(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    fake.enqueue(Reply.text("one two three four").slow(0.02))
    with conv.stream(client, "go") as stream:
        iterator = iter(stream)
        next(iterator)
        with pytest.raises(ConversationBusy):
            store.get_conversation(conv.id).send(client, "meanwhile")
        for _ in iterator:
            pass
    assert texts(store.get_conversation(conv.id)) == ["go", "one two three four"]
    store.get_conversation(conv.id).send(client, "after")


def test_a_long_stream_renews_its_lease(db_url: str, fake: FakeClaude, client: Client) -> None:
    """A stream that outlasts the lease keeps the conversation: nobody takes it over."""
    with Store(db_url, lease_seconds=0.4) as short_lease:
        conv = short_lease.create_conversation(model=MODEL, max_tokens=1024)
        other = short_lease.get_conversation(conv.id)
        fake.enqueue(Reply.text("one two three four five six seven eight nine ten").slow(0.1))
        busy_seen = 0
        with conv.stream(client, "Count slowly") as stream:
            for index, _ in enumerate(stream):
                if index in (6, 11):  # well past 0.4 s: the first claim would have run out
                    with pytest.raises(ConversationBusy):
                        other.send(client, "Let me in")
                    busy_seen += 1
            reply = stream.get_final_message()
        assert busy_seen == 2
        assert reply.text().startswith("one two")
        assert texts(short_lease.get_conversation(conv.id))[-1] == reply.text()


# -- the ledger: billed attempts that stored no turn ----------------------------------------


def test_a_broken_stream_is_billed_and_recorded_as_interrupted(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    """A stream cut after message_start was charged: its usage is recorded (flagged,
    no message) so the conversation's totals match the bill; a retry adds its own."""
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER).cut_after(6))
    with pytest.raises(StreamInterrupted) as broken, conv.stream(client, "forecast?") as stream:
        stream.get_final_message()
    partial = broken.value.partial_message
    assert partial is not None
    (row,) = usage_rows(store, conv.id)
    assert row["outcome"] == "interrupted"
    assert row["message_position"] is None
    assert row["input_tokens"] == partial.usage.input_tokens > 0
    assert row["request_id"] == broken.value.request_id
    assert conv.usage().requests == 1
    reply = conv.retry(client)
    rows = sorted(usage_rows(store, conv.id), key=lambda r: r["id"])
    assert [(r["outcome"], r["message_position"]) for r in rows] == [
        ("interrupted", None),
        ("reply", 1),
    ]
    totals = conv.usage()
    assert totals.requests == 2
    assert totals.input_tokens == partial.usage.input_tokens + reply.usage.input_tokens


def test_leaving_a_stream_early_records_what_was_billed(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER))
    with conv.stream(client, "forecast?") as stream:
        for _ in stream.text_stream:
            break
    (row,) = usage_rows(store, conv.id)
    assert (row["outcome"], row["message_position"]) == ("interrupted", None)
    assert row["input_tokens"] > 0
    assert conv.pending


def test_a_stream_refused_before_message_start_records_nothing(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.error(400, "invalid_request_error", "bad"))
    with pytest.raises(MessagesError), conv.stream(client, "forecast?") as stream:
        stream.get_final_message()
    # The ledger keeps the attempt, recorded as not billed: nothing counted.
    [attempt] = usage_rows(store, conv.id)
    assert (attempt["outcome"], attempt["input_tokens"], attempt["output_tokens"]) == (
        "failed",
        0,
        0,
    )
    assert conv.usage().requests == 0
