"""One ``Conversation`` object used by several callers at once.

- Two threads sending on the same object (the second waits): the second request
  carries the first exchange exactly once, and the history held matches the store.
- An ``asend`` cancelled by asyncio while its first write waits on the database: the
  worker thread still commits the user turn, and then gives the conversation back, so
  ``retry`` works at once instead of ``ConversationBusy`` until the lease runs out.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import event

from clust import AsyncClient, Client, Store
from clust.messages import PendingTurn
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"


def test_two_threads_sending_on_one_object(store: Store, client: Client, fake: FakeClaude) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    widen = threading.Event()

    # After each transaction, before the history held is updated, other threads run.
    @event.listens_for(store.engine, "checkin")
    def _slow_checkin(*_: object) -> None:
        if widen.is_set():
            time.sleep(0.2)

    fake.enqueue(Reply.text("reply-A").delayed(0.3), Reply.text("reply-B"))
    replies: dict[str, str] = {}

    def send(name: str) -> None:
        replies[name] = conv.send(client, f"question-{name}", wait=10).text()

    widen.set()
    first = threading.Thread(target=send, args=("A",))
    first.start()
    time.sleep(0.1)
    second = threading.Thread(target=send, args=("B",))
    second.start()
    first.join()
    second.join()
    widen.clear()

    assert replies == {"A": "reply-A", "B": "reply-B"}
    sent = fake.requests[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    expected = ["question-A", "reply-A", "question-B", "reply-B"]
    assert [m.text() for m in conv.history] == expected
    assert [m.text() for m in store.get_conversation(conv.id).history] == expected


def test_asend_cancelled_while_beginning_gives_the_conversation_back(
    db_url: str, fake: FakeClaude
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("holds SQLite's write lock from another connection")
    path = db_url[len("sqlite:///") :]

    def hold_write_lock(seconds: float) -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    async def scenario(store: Store) -> None:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        async with AsyncClient(api_key="k", base_url=fake.base_url, max_retries=0) as client:
            holder = threading.Thread(target=hold_write_lock, args=(1.0,))
            holder.start()
            await asyncio.sleep(0.1)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(conv.asend(client, "hello"), timeout=0.3)
            holder.join()
            await asyncio.sleep(0.3)  # the worker thread commits, then releases

            other = store.get_conversation(conv.id)
            assert other.pending
            with pytest.raises(PendingTurn):  # not ConversationBusy: the lease is free
                await other.asend(client, "next")
            reply = await other.aretry(client)
            assert reply.text() == "Echo: hello"

    with Store(db_url, lease_seconds=600) as store:
        asyncio.run(scenario(store))
