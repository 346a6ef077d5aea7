"""The async API: ``asend``, ``aretry``, ``astream``, under asyncio and trio.

Database work runs in worker threads, so the event loop keeps running while a send
waits on the network or on a database lock; a cancelled send leaves the
conversation consistent and retry-able.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.to_thread
import pytest
from sqlalchemy import func, select, text

from clust import AsyncClient, Conversation, Store
from clust.messages import (
    ConversationBusy,
    InvalidRequestError,
    NothingToRetry,
    PendingTurn,
    StreamInterrupted,
)
from clust.store import UsageRow
from clust.testing import FakeClaude, Reply

pytestmark = pytest.mark.anyio

MODEL = "claude-sonnet-5-5"
LONG_ANSWER = "It rains in Brest, as it always does. " * 20


def texts(conv: Conversation) -> list[str]:
    return [message.text() for message in conv.history]


def count_usage(store: Store) -> int:
    """Usage rows of stored replies (a broken stream leaves an "interrupted" row: billed)."""
    table = UsageRow.__table__
    with store.engine.connect() as connection:
        query = select(func.count()).select_from(table).where(table.c.outcome == "reply")
        return int(connection.execute(query).scalar_one())


class Ticker:
    """Counts how often the event loop lets it run."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            await anyio.sleep(0.005)
            self.ticks += 1


async def test_asend_stores_turns_and_sends_the_history(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(
        model=MODEL, max_tokens=100, system="Be brief.", params={"temperature": 0.4}
    )
    first = await conv.asend(aclient, "first")
    second = await conv.asend(aclient, "second", max_tokens=50)
    assert first.content[0].text == "Echo: first"
    assert second.content[0].text == "Echo: second"
    body = fake.last_request.body
    assert (body["system"], body["temperature"], body["max_tokens"]) == ("Be brief.", 0.4, 50)
    assert body["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": [{"type": "text", "text": "Echo: first"}]},
        {"role": "user", "content": "second"},
    ]
    stored = store.get_conversation(conv.id)
    assert texts(stored) == ["first", "Echo: first", "second", "Echo: second"]
    assert stored.usage().requests == 2
    assert stored.usage().output_tokens == first.usage.output_tokens + second.usage.output_tokens


async def test_a_failed_asend_leaves_the_turn_pending_for_aretry(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    with pytest.raises(NothingToRetry):
        await conv.aretry(aclient)
    fake.enqueue(Reply.error(400, "invalid_request_error", "Bad request"))
    with pytest.raises(InvalidRequestError):
        await conv.asend(aclient, "question")
    assert conv.pending
    assert count_usage(store) == 0
    with pytest.raises(PendingTurn):
        await conv.asend(aclient, "another")

    reply = await store.get_conversation(conv.id).aretry(aclient)

    assert reply.content[0].text == "Echo: question"
    assert texts(store.get_conversation(conv.id)) == ["question", "Echo: question"]
    assert count_usage(store) == 1


async def test_astream_with_async_with_stores_the_reply(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    await conv.asend(aclient, "first")
    fake.enqueue(Reply.text(LONG_ANSWER))
    async with conv.astream(aclient, "forecast?") as stream:
        assert stream.current_message is None
        pieces = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()
        assert stream.current_message == final
    assert "".join(pieces) == LONG_ANSWER == final.content[0].text
    assert fake.last_request.body["stream"] is True
    assert len(fake.last_request.body["messages"]) == 3
    stored = store.get_conversation(conv.id)
    assert texts(stored)[2:] == ["forecast?", LONG_ANSWER]
    assert stored.usage().requests == 2


async def test_astream_with_async_for_stores_the_reply(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    types = [event.type async for event in conv.astream(aclient, "hello")]
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    assert texts(store.get_conversation(conv.id)) == ["hello", "Echo: hello"]


async def test_a_cut_astream_stores_nothing_and_aretry_completes_it(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER).cut_after(6))
    received: list[str] = []
    with pytest.raises(StreamInterrupted):
        async with conv.astream(aclient, "forecast?") as stream:
            async for piece in stream.text_stream:
                received.append(piece)
    assert received
    assert store.get_conversation(conv.id).pending
    assert count_usage(store) == 0

    async with conv.astream(aclient, None) as stream:  # resend the pending turn
        final = await stream.get_final_message()
    assert final.content[0].text == "Echo: forecast?"
    assert fake.last_request.body["messages"] == [{"role": "user", "content": "forecast?"}]
    assert texts(store.get_conversation(conv.id)) == ["forecast?", "Echo: forecast?"]


async def test_leaving_an_astream_early_releases_the_lease(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=500)
    fake.enqueue(Reply.text(LONG_ANSWER))
    async with conv.astream(aclient, "forecast?") as stream:
        async for _event in stream:
            break
    with pytest.raises(StreamInterrupted):
        await stream.get_final_message()
    assert store.get_conversation(conv.id).pending
    assert count_usage(store) == 0
    reply = await store.get_conversation(conv.id).aretry(aclient)  # at once: no busy
    assert reply.content[0].text == "Echo: forecast?"
    assert texts(store.get_conversation(conv.id)) == ["forecast?", "Echo: forecast?"]


async def test_a_cancelled_asend_leaves_the_conversation_retryable(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    await conv.asend(aclient, "first")
    fake.enqueue(Reply.text("too late").delayed(1.0))
    with anyio.move_on_after(0.3) as scope:
        await conv.asend(aclient, "second")
    assert scope.cancelled_caught

    for seen in (conv, store.get_conversation(conv.id)):
        assert seen.pending
        assert texts(seen) == ["first", "Echo: first", "second"]
    assert count_usage(store) == 1
    reply = await store.get_conversation(conv.id).aretry(aclient)  # no lease left behind
    assert reply.content[0].text == "Echo: second"
    assert texts(store.get_conversation(conv.id)) == [
        "first",
        "Echo: first",
        "second",
        "Echo: second",
    ]


async def test_a_cancelled_astream_leaves_the_conversation_retryable(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    fake.enqueue(Reply.text("one two three four five six seven").slow(0.1))
    received: list[str] = []
    with anyio.move_on_after(0.35) as scope:
        async with conv.astream(aclient, "count") as stream:
            async for piece in stream.text_stream:
                received.append(piece)
    assert scope.cancelled_caught
    assert store.get_conversation(conv.id).pending
    assert count_usage(store) == 0
    reply = await conv.aretry(aclient)
    assert reply.content[0].text == "Echo: count"


async def test_a_second_asend_while_one_is_in_flight_is_busy(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    fake.enqueue(Reply.text("slow").delayed(0.6))
    results: dict[str, Any] = {}

    async def first() -> None:
        results["first"] = await conv.asend(aclient, "first")

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        while not fake.requests:
            await anyio.sleep(0.005)
        other = store.get_conversation(conv.id)
        started = time.monotonic()
        with pytest.raises(ConversationBusy):
            await other.asend(aclient, "second")
        assert time.monotonic() - started < 0.4
        results["second"] = await other.asend(aclient, "second", wait=5.0)

    assert results["first"].content[0].text == "slow"
    assert results["second"].content[0].text == "Echo: second"
    assert texts(store.get_conversation(conv.id)) == ["first", "slow", "second", "Echo: second"]


async def test_the_event_loop_runs_while_asend_waits_on_the_network(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    fake.enqueue(Reply.text("slow").delayed(0.4))
    ticker = Ticker()
    async with anyio.create_task_group() as group:
        group.start_soon(ticker.run)
        reply = await conv.asend(aclient, "hello")
        group.cancel_scope.cancel()
    assert reply.content[0].text == "slow"
    assert ticker.ticks >= 10  # ~80 if nothing blocks; 0 or 1 if the loop were stuck


def lock_conversation_row(
    engine: Any, conversation_id: str, locked: threading.Event, release: threading.Event
) -> None:
    """Hold a write lock on the conversation's row until ``release`` (at most 5 s)."""
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE clust_conversations SET title = title WHERE id = :id"),
            {"id": conversation_id},
        )
        locked.set()
        release.wait(5.0)


async def test_the_event_loop_runs_while_asend_waits_on_a_database_lock(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    locked, release = threading.Event(), threading.Event()
    blocker = threading.Thread(
        target=lock_conversation_row, args=(store.engine, conv.id, locked, release)
    )
    blocker.start()
    try:
        await anyio.to_thread.run_sync(locked.wait, 5.0)
        ticker = Ticker()

        async def unlock_later() -> None:
            await anyio.sleep(0.4)  # runs only if the event loop is free
            release.set()

        async with anyio.create_task_group() as group:
            group.start_soon(ticker.run)
            group.start_soon(unlock_later)
            started = time.monotonic()
            reply = await conv.asend(aclient, "hello")
            elapsed = time.monotonic() - started
            group.cancel_scope.cancel()
    finally:
        release.set()
        await anyio.to_thread.run_sync(blocker.join, 5.0)

    assert reply.content[0].text == "Echo: hello"
    assert elapsed >= 0.3  # the send did wait for the lock ...
    assert elapsed < 3.0  # ... and the unlocking task got to run on the loop
    assert ticker.ticks >= 10
    assert texts(store.get_conversation(conv.id)) == ["hello", "Echo: hello"]
