"""Failure rules and concurrency: nothing half-written, pending turns, retry, leases.

A failed send stores no reply and bills nothing (its attempt row in the ledger is
completed as not billed), leaves the user turn pending, and gives the conversation
back at once; ``retry`` completes it. One send may be in flight per conversation:
another raises ``ConversationBusy`` at once (or waits), and a lease left by a crashed
sender runs out. (A live sender's lease is renewed while it runs: a stalled one that
loses it is in ``test_lease_keeper.py``.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from clust import Client, Conversation, Store
from clust.conversation.history import History, user_wire
from clust.conversation.turns import begin_turn
from clust.messages import (
    ConnectionFailed,
    ConversationBusy,
    InvalidRequestError,
    MessagesError,
    NothingToRetry,
    OverloadedError,
    PendingTurn,
    RequestTimedOut,
    ResponseDecodeError,
)
from clust.store import MessageRow, UsageRow
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"


def texts(conv: Conversation) -> list[str]:
    return [message.text() for message in conv.history]


def count_rows(store: Store, row: Any) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(row)).scalar_one())


def count_billed(store: Store) -> int:
    """Usage rows of billed requests (the ledger also keeps attempts that were not)."""
    table = UsageRow.__table__
    query = select(func.count()).select_from(table)
    query = query.where(table.c.outcome.in_(("reply", "interrupted", "summary")))
    with store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def wait_for_requests(fake: FakeClaude, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.requests) < count:
        assert time.monotonic() < deadline, "FakeClaude never got the request"
        time.sleep(0.005)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


@pytest.fixture
def other_client(fake: FakeClaude) -> Iterator[Client]:
    """A second client (its own connections), for the send running in a thread."""
    with Client(api_key="test-key", base_url=fake.base_url, max_retries=0) as c:
        yield c


# -- a failed send -----------------------------------------------------------------------------

Script = Callable[[FakeClaude], None]

FAILURES: dict[str, tuple[Script, dict[str, Any], type[MessagesError], int]] = {
    "http-400": (
        lambda fake: fake.enqueue(Reply.error(400, "invalid_request_error", "Bad request")),
        {},
        InvalidRequestError,
        1,
    ),
    "http-529-after-retries": (
        lambda fake: fake.enqueue(*[Reply.error(529, "overloaded_error", "Overloaded")] * 3),
        {},  # the client's policy allows 2 retries: 3 attempts, then the error
        OverloadedError,
        3,
    ),
    "client-timeout": (
        lambda fake: fake.enqueue(Reply.text("too late").delayed(1.0)),
        {"timeout": 0.2, "max_retries": 0},
        RequestTimedOut,
        1,
    ),
    "dropped-connection": (
        lambda fake: fake.enqueue(Reply.disconnect()),
        {"max_retries": 0},
        ConnectionFailed,
        1,
    ),
    "undecodable-reply": (
        lambda fake: fake.enqueue(Reply.malformed()),
        {},
        ResponseDecodeError,
        1,
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_send_stores_no_reply_and_retry_completes_it(
    store: Store, client: Client, fake: FakeClaude, failure: str
) -> None:
    script, options, error, attempts = FAILURES[failure]
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    conv.send(client, "first")
    before = len(fake.requests)
    script(fake)

    with pytest.raises(error):
        conv.send(client, "second", **options)

    assert len(fake.requests) - before == attempts
    for seen in (conv, store.get_conversation(conv.id)):
        assert seen.pending
        assert texts(seen) == ["first", "Echo: first", "second"]
        assert seen.usage().requests == 1
    assert count_rows(store, MessageRow) == 3
    assert count_billed(store) == 1
    assert count_rows(store, UsageRow) == 2  # and the failed attempt, as the ledger keeps it

    # A new turn waits until the pending one is settled, on any object.
    with pytest.raises(PendingTurn) as caught:
        conv.send(client, "third")
    assert caught.value.position == 2
    with pytest.raises(PendingTurn):
        store.get_conversation(conv.id).send(client, "third")
    assert count_rows(store, MessageRow) == 3

    reply = conv.retry(client)
    assert reply.content[0].text == "Echo: second"
    sent = fake.last_request.body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]  # not sent twice
    assert sent[-1] == {"role": "user", "content": "second"}
    for seen in (conv, store.get_conversation(conv.id)):
        assert not seen.pending
        assert texts(seen) == ["first", "Echo: first", "second", "Echo: second"]
        assert seen.usage().requests == 2
    conv.send(client, "third")
    assert len(store.get_conversation(conv.id).history) == 6


def test_retry_from_another_store_after_a_failure(
    db_url: str, store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100, system="Be brief.")
    fake.enqueue(Reply.disconnect())
    with pytest.raises(ConnectionFailed):
        conv.send(client, "lost reply", max_retries=0)
    with Store(db_url) as elsewhere:
        resumed = elsewhere.get_conversation(conv.id)
        assert resumed.pending
        reply = resumed.retry(client)
    assert reply.content[0].text == "Echo: lost reply"
    assert fake.last_request.body["system"] == "Be brief."
    with pytest.raises(NothingToRetry):
        conv.retry(client)  # the original object learns the turn is done
    assert texts(conv) == ["lost reply", "Echo: lost reply"]


def test_discard_pending_drops_the_turn(store: Store, client: Client, fake: FakeClaude) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    conv.send(client, "first")
    fake.enqueue(Reply.error(400, "invalid_request_error", "Bad request"))
    with pytest.raises(InvalidRequestError):
        conv.send(client, "rejected")

    conv.discard_pending()

    for seen in (conv, store.get_conversation(conv.id)):
        assert not seen.pending
        assert texts(seen) == ["first", "Echo: first"]
    assert count_rows(store, MessageRow) == 2
    conv.discard_pending()  # nothing pending: nothing happens
    assert count_rows(store, MessageRow) == 2
    with pytest.raises(NothingToRetry):
        conv.retry(client)

    conv.send(client, "instead")
    assert [m["content"] for m in fake.last_request.body["messages"]][::2] == [
        "first",
        "instead",
    ]
    assert texts(store.get_conversation(conv.id)) == [
        "first",
        "Echo: first",
        "instead",
        "Echo: instead",
    ]


def test_retry_with_nothing_pending_raises_and_changes_nothing(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    with pytest.raises(NothingToRetry):
        conv.retry(client)
    conv.send(client, "first")
    with pytest.raises(NothingToRetry):
        conv.retry(client)
    with pytest.raises(NothingToRetry):
        store.get_conversation(conv.id).retry(client)
    assert len(fake.requests) == 1
    assert count_rows(store, MessageRow) == 2
    conv.send(client, "second")  # no lease was left behind
    assert len(store.get_conversation(conv.id).history) == 4


def test_an_object_holding_a_discarded_turn_sends_the_stored_history(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    mine = store.create_conversation(model=MODEL, max_tokens=100)
    fake.enqueue(Reply.error(400, "invalid_request_error", "Bad request"))
    with pytest.raises(InvalidRequestError):
        mine.send(client, "old question")
    theirs = store.get_conversation(mine.id)
    theirs.discard_pending()
    theirs.send(client, "new question")

    mine.send(client, "follow-up")

    sent = [m["content"] for m in fake.last_request.body["messages"]]
    assert sent[0] == "new question"
    assert sent[-1] == "follow-up"
    assert texts(store.get_conversation(mine.id))[::2] == ["new question", "follow-up"]
    assert texts(mine) == texts(store.get_conversation(mine.id))


def test_retry_on_an_object_holding_a_replaced_pending_turn_resends_the_stored_one(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    mine = store.create_conversation(model=MODEL, max_tokens=100)
    fake.enqueue(Reply.error(400, "invalid_request_error", "Bad request"))
    with pytest.raises(InvalidRequestError):
        mine.send(client, "old question")
    theirs = store.get_conversation(mine.id)
    theirs.discard_pending()
    fake.enqueue(Reply.error(400, "invalid_request_error", "Bad request"))
    with pytest.raises(InvalidRequestError):
        theirs.send(client, "new question")

    reply = mine.retry(client)

    assert reply.content[0].text == "Echo: new question"
    assert fake.last_request.body["messages"] == [{"role": "user", "content": "new question"}]
    assert texts(store.get_conversation(mine.id)) == ["new question", "Echo: new question"]


# -- one send in flight ------------------------------------------------------------------------


def start_slow_send(
    pool: ThreadPoolExecutor,
    fake: FakeClaude,
    conv: Conversation,
    client: Client,
    content: str,
    delay: float,
) -> Future[Any]:
    """Begin a send whose reply takes ``delay`` seconds; return once it is in flight."""
    before = len(fake.requests)
    fake.enqueue(Reply.text(f"slow reply to {content}").delayed(delay))
    future = pool.submit(conv.send, client, content)
    wait_for_requests(fake, before + 1)
    return future


def test_a_second_send_while_one_is_in_flight_is_busy_at_once(
    db_url: str,
    store: Store,
    client: Client,
    other_client: Client,
    fake: FakeClaude,
    pool: ThreadPoolExecutor,
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    with Store(db_url) as elsewhere:
        others = [store.get_conversation(conv.id), elsewhere.get_conversation(conv.id)]
        first = start_slow_send(pool, fake, conv, other_client, "first", delay=1.0)
        for other in others:
            started = time.monotonic()
            with pytest.raises(ConversationBusy) as caught:
                other.send(client, "second")
            assert time.monotonic() - started < 0.5
            assert caught.value.conversation_id == conv.id
            assert caught.value.expires_at is not None
            with pytest.raises(ConversationBusy):
                other.discard_pending()  # not while a send holds the conversation
            with pytest.raises(ConversationBusy):
                other.retry(client)

    assert first.result(timeout=5).content[0].text == "slow reply to first"
    assert len(fake.requests) == 1
    assert texts(store.get_conversation(conv.id)) == ["first", "slow reply to first"]
    assert conv.usage().requests == 1


def test_a_send_that_waits_goes_through_after_the_one_in_flight(
    store: Store,
    client: Client,
    other_client: Client,
    fake: FakeClaude,
    pool: ThreadPoolExecutor,
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    first = start_slow_send(pool, fake, conv, other_client, "first", delay=0.6)
    other = store.get_conversation(conv.id)

    started = time.monotonic()
    reply = other.send(client, "second", wait=5.0)
    waited = time.monotonic() - started

    assert reply.content[0].text == "Echo: second"
    assert first.done()
    assert waited >= 0.3
    assert fake.last_request.body["messages"][:2] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": [{"type": "text", "text": "slow reply to first"}]},
    ]
    assert texts(store.get_conversation(conv.id)) == [
        "first",
        "slow reply to first",
        "second",
        "Echo: second",
    ]


def test_a_short_wait_still_ends_in_busy(
    store: Store,
    client: Client,
    other_client: Client,
    fake: FakeClaude,
    pool: ThreadPoolExecutor,
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    first = start_slow_send(pool, fake, conv, other_client, "first", delay=0.7)
    started = time.monotonic()
    with pytest.raises(ConversationBusy):
        store.get_conversation(conv.id).send(client, "second", wait=0.2)
    assert 0.15 <= time.monotonic() - started < 0.6
    first.result(timeout=5)
    assert len(store.get_conversation(conv.id).history) == 2


def test_a_lease_left_by_a_crashed_sender_runs_out(store: Store, client: Client) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    conv.send(client, "before the crash")
    # A process took the lease and stored its user turn, then died before the reply.
    begin_turn(store.engine, conv.id, History(), user_wire("lost"), timedelta(seconds=0.4))

    opened = store.get_conversation(conv.id)
    with pytest.raises(ConversationBusy):
        opened.send(client, "new")
    with pytest.raises(ConversationBusy):
        opened.retry(client)
    assert opened.pending

    reply = opened.retry(client, wait=3.0)
    assert reply.content[0].text == "Echo: lost"
    assert texts(store.get_conversation(conv.id)) == [
        "before the crash",
        "Echo: before the crash",
        "lost",
        "Echo: lost",
    ]


def test_concurrent_senders_never_lose_or_reorder_turns(
    db_url: str, store: Store, fake: FakeClaude, pool: ThreadPoolExecutor
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    start = threading.Barrier(4)

    def sender(worker: int) -> None:
        with Store(db_url) as own, Client(api_key="k", base_url=fake.base_url) as client:
            mine = own.get_conversation(conv.id)
            start.wait()
            for turn in range(3):
                mine.send(client, f"w{worker}-t{turn}", wait=20.0)

    for future in [pool.submit(sender, worker) for worker in range(4)]:
        future.result(timeout=60)

    history = store.get_conversation(conv.id).history
    assert len(history) == 24
    said = [m.text() for m in history]
    for question, answer in zip(said[::2], said[1::2], strict=True):
        assert answer == f"Echo: {question}"
    assert sorted(said[::2]) == sorted(f"w{w}-t{t}" for w in range(4) for t in range(3))
    for worker in range(4):  # each worker's turns in its own order
        own = [text for text in said[::2] if text.startswith(f"w{worker}-")]
        assert own == [f"w{worker}-t{t}" for t in range(3)]
    # Each request carried exactly the turns stored before it.
    requests = sorted(fake.requests, key=lambda r: len(r.body["messages"]))
    assert [len(r.body["messages"]) for r in requests] == list(range(1, 24, 2))
    assert requests[-1].body["messages"][-1]["content"] == said[-2]
    assert conv.usage().requests == 12
