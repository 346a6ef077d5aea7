"""Leases that free a dead holder fast: renewed while the sender lives, run out soon
after it dies, kept across a tool step, broken by an operator, on the database's clock.

Every test runs on an SQLite file and on PostgreSQL (the clock test on PostgreSQL
only). Child processes are real (``procs/lease_worker.py``): killed with SIGKILL,
stopped with SIGSTOP.
"""

from __future__ import annotations

import inspect
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from store.lease_support import (
    MODEL,
    STARTUP,
    Child,
    clust_cli,
    database_now,
    lease_of,
    ledger,
    message_requests,
    poll,
    response,
)

from clust import Client, Conversation, Store
from clust.conversation.history import History, user_wire
from clust.conversation.turns import (
    begin_turn,
    finish_turn,
    release_turn,
)
from clust.messages import (
    ConversationBusy,
    ConversationDeleted,
    ConversationNotFound,
    LeaseLost,
)
from clust.store.keeper import KEEPER
from clust.testing import FakeClaude, Reply

HOLDER_PREFIX = f"{socket.gethostname()[:32]}:"


def texts(conv: Conversation) -> list[str]:
    return [message.text() for message in conv.history]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


@pytest.fixture
def other_client(fake: FakeClaude) -> Iterator[Client]:
    """A second client (its own connections), for the send running in a thread."""
    with Client(api_key="test-key", base_url=fake.base_url, max_retries=0) as c:
        yield c


def send_in_thread(
    pool: ThreadPoolExecutor, fake: FakeClaude, conv: Conversation, client: Client, content: str
) -> Future[Any]:
    """Start ``conv.send`` in a thread; return once FakeClaude has the request."""
    before = message_requests(fake)
    future = pool.submit(conv.send, client, content)
    poll(lambda: message_requests(fake) > before or future.done(), 10, "the request")
    return future


# -- renewed while the sender lives ---------------------------------------------------------


def test_the_default_lease_is_30_seconds(
    db_url: str, fake: FakeClaude, other_client: Client, pool: ThreadPoolExecutor
) -> None:
    assert inspect.signature(Store).parameters["lease_seconds"].default == 30.0
    with Store(db_url) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        fake.enqueue(Reply.echo().delayed(1.0))
        sending = send_in_thread(pool, fake, conv, other_client, "hello")
        holder, expiry = lease_of(store, conv.id)
        assert expiry is not None and holder is not None
        left = (expiry - database_now(store)).total_seconds()
        assert 25.0 < left <= 30.0, left
        # Who holds it: this host and process, then a random part.
        assert holder.startswith(f"{HOLDER_PREFIX}{os.getpid()}:")
        sending.result(timeout=10)
        assert lease_of(store, conv.id) == (None, None)


def test_a_request_several_times_longer_than_the_lease_keeps_it(
    db_url: str,
    fake: FakeClaude,
    client: Client,
    other_client: Client,
    pool: ThreadPoolExecutor,
) -> None:
    lease = 0.6
    with Store(db_url, lease_seconds=lease) as store, Store(db_url) as elsewhere:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        fake.enqueue(Reply.echo().delayed(5 * lease))
        sending = send_in_thread(pool, fake, conv, other_client, "a long one")
        other = elsewhere.get_conversation(conv.id)
        expiries = []
        deadline = time.monotonic() + 4 * lease
        while time.monotonic() < deadline:
            with pytest.raises(ConversationBusy) as busy:
                other.send(client, "meanwhile")  # never taken over: the lease is renewed
            assert busy.value.holder is not None
            assert busy.value.holder.startswith(f"{HOLDER_PREFIX}{os.getpid()}:")
            expiries.append(busy.value.expires_at)
            time.sleep(lease / 4)
        assert sending.result(timeout=10).text() == "Echo: a long one"
        assert len(set(expiries)) > 2  # extended again and again
        assert texts(elsewhere.get_conversation(conv.id)) == ["a long one", "Echo: a long one"]
        assert lease_of(store, conv.id) == (None, None)
        assert [row["outcome"] for row in ledger(store, conv.id)] == ["reply"]


def test_a_killed_sender_frees_the_conversation_within_lease_seconds(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    client: Client,
    lease_child: Callable[[dict[str, Any]], Child],
) -> None:
    """The child's keeper renews its 2 s lease for as long as it lives (the request
    outlasts the lease); SIGKILL stops the renewals, and the lease runs out within
    2 s. Its attempt stays in the ledger, of unknown outcome (see test_ledger.py)."""
    lease = 2.0
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    fake.enqueue(Reply.echo().delayed(60))  # never answered: the child is killed first
    child = lease_child(
        {
            "db_url": db_url,
            "base_url": fake.base_url,
            "id": conv.id,
            "content": "doomed",
            "lease_seconds": lease,
        }
    )
    pid = child.expect("ready", STARTUP)["pid"]
    poll(lambda: message_requests(fake) == 1, STARTUP, "the child's request")
    time.sleep(2 * lease)  # longer than the lease: still held, renewed by the child
    with pytest.raises(ConversationBusy) as busy:
        conv.retry(client)
    assert busy.value.holder is not None and busy.value.holder.startswith(f"{HOLDER_PREFIX}{pid}:")

    child.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    assert child.proc.wait(timeout=10) == -signal.SIGKILL
    reply = conv.retry(client, wait=lease + 30)
    freed_after = time.monotonic() - killed
    assert reply.text() == "Echo: doomed"
    assert freed_after <= lease + 1.0, freed_after  # + the polling and a loaded machine
    assert texts(store.get_conversation(conv.id)) == ["doomed", "Echo: doomed"]


# -- lost while the sender lives ----------------------------------------------------------------


def test_a_stalled_sender_whose_lease_ran_out_gets_lease_lost(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    client: Client,
    lease_child: Callable[[dict[str, Any]], Child],
) -> None:
    """Moved here from test_conversation_failures.py: a sender that stalls (SIGSTOP:
    its keeper stops too) longer than its lease is taken over; its late reply is not
    stored (LeaseLost) but billed, so the ledger has it; it carries on from the turns
    stored meanwhile."""
    lease = 1.0
    conv = store.create_conversation(model=MODEL, max_tokens=100)
    fake.enqueue(Reply.echo().delayed(3 * lease))
    child = lease_child(
        {
            "db_url": db_url,
            "base_url": fake.base_url,
            "id": conv.id,
            "content": "first",
            "then": "second",
            "lease_seconds": lease,
        }
    )
    child.expect("ready", STARTUP)
    poll(lambda: message_requests(fake) == 1, STARTUP, "the child's request")
    child.proc.send_signal(signal.SIGSTOP)
    try:
        taker = store.get_conversation(conv.id)
        with pytest.raises(ConversationBusy):
            taker.retry(client)  # the lease still runs
        reply = taker.retry(client, wait=3 * lease + 5)  # ... until it runs out
        assert reply.text() == "Echo: first"
    finally:
        child.proc.send_signal(signal.SIGCONT)

    # The stalled sender's reply comes back after its lease was taken over.
    late = child.expect("error", 30)
    assert late["error"] == "LeaseLost", late
    stored = store.get_conversation(conv.id)
    assert texts(stored) == ["first", "Echo: first"]
    # Both replies were billed: the refused one is in the ledger, flagged.
    outcomes = sorted(turn.outcome for turn in stored.usage_by_turn())
    assert outcomes == ["interrupted", "reply"]
    assert stored.usage().requests == 2
    # The stalled object carries on from the stored turns.
    child.go()
    assert child.expect("replied", 30)["text"] == "Echo: second"
    assert texts(store.get_conversation(conv.id))[2:] == ["second", "Echo: second"]


def test_break_lease_frees_a_conversation_at_once_and_the_late_reply_is_refused(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    client: Client,
    other_client: Client,
    pool: ThreadPoolExecutor,
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    fake.enqueue(Reply.echo().delayed(2.0))
    sending = send_in_thread(pool, fake, conv, other_client, "first")
    with Store(db_url) as elsewhere:
        other = elsewhere.get_conversation(conv.id)
        with pytest.raises(ConversationBusy) as busy:
            other.retry(client)
        assert busy.value.holder is not None and busy.value.expires_at is not None

        started = time.monotonic()
        assert elsewhere.break_lease(conv.id) is True
        reply = other.retry(client)  # free at once, not in 30 s
        assert time.monotonic() - started < 5.0
        assert reply.text() == "Echo: first"

        with pytest.raises(LeaseLost) as lost:
            sending.result(timeout=10)
        assert lost.value.conversation_id == conv.id
        assert texts(elsewhere.get_conversation(conv.id)) == ["first", "Echo: first"]
        rows = ledger(store, conv.id)
        assert [row["outcome"] for row in rows] == ["interrupted", "reply"]
        assert rows[0]["output_tokens"] > 0 and rows[0]["message_position"] is None
        assert conv.usage().requests == 2

        assert elsewhere.break_lease(conv.id) is False  # nobody holds it now
        with pytest.raises(ConversationNotFound):
            elsewhere.break_lease("no-such-conversation")


def test_the_keeper_marks_a_turn_whose_lease_was_taken_and_finish_refuses_it(
    store: Store,
) -> None:
    engine = store.engine
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    history = History()
    turn = begin_turn(engine, conv.id, history, user_wire("q"), timedelta(seconds=0.6))
    assert KEEPER.holds(engine, turn) and not turn.lost

    assert store.break_lease(conv.id) is True
    poll(lambda: turn.lost, 5, "the keeper to notice")
    assert turn.lost_reason == "taken"
    assert not KEEPER.holds(engine, turn)

    answer = response("too late", input_tokens=77, output_tokens=11)
    with pytest.raises(LeaseLost):
        finish_turn(engine, turn, history, answer, 5)
    assert history.last_role == "user"  # nothing of the reply stored
    [row] = ledger(store, conv.id)
    assert (row["outcome"], row["message_position"]) == ("interrupted", None)
    assert (row["input_tokens"], row["output_tokens"]) == (77, 11)
    assert store.get_conversation(conv.id).pending


def test_a_conversation_deleted_mid_send_raises_conversation_deleted(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    other_client: Client,
    pool: ThreadPoolExecutor,
) -> None:
    with Store(db_url, lease_seconds=0.6) as short:
        conv = short.create_conversation(model=MODEL, max_tokens=64)
        fake.enqueue(Reply.echo().delayed(1.5))
        sending = send_in_thread(pool, fake, conv, other_client, "going")
        store.delete_conversation(conv.id)
        with pytest.raises(ConversationDeleted) as deleted:
            sending.result(timeout=10)
        assert isinstance(deleted.value, ConversationNotFound)
    # Usage rows outlive their conversation: what the API billed is recorded.
    [row] = ledger(store, conv.id)
    assert row["outcome"] == "interrupted" and row["output_tokens"] > 0

    # The keeper notices too: the turn is marked lost, and finish says why.
    engine = store.engine
    gone = store.create_conversation(model=MODEL, max_tokens=64)
    history = History()
    turn = begin_turn(engine, gone.id, history, user_wire("q"), timedelta(seconds=0.6))
    store.delete_conversation(gone.id)
    poll(lambda: turn.lost, 5, "the keeper to notice")
    assert turn.lost_reason == "deleted"
    with pytest.raises(ConversationDeleted):
        finish_turn(engine, turn, history, response(), 5)
    assert [row["outcome"] for row in ledger(store, gone.id)] == ["interrupted"]


# -- a lease kept across a tool step ---------------------------------------------------------


def test_a_kept_lease_spans_a_tool_step(store: Store) -> None:
    engine = store.engine
    lease = timedelta(seconds=30)
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    history = History()
    first = begin_turn(engine, conv.id, history, user_wire("use the tool"), lease)
    finish_turn(engine, first, history, response("calling it"), 5, keep_lease=True)
    assert KEEPER.holds(engine, first)
    assert lease_of(store, conv.id)[0] == first.holder

    # Another send meanwhile is refused: the lease is still held, by the same holder.
    with pytest.raises(ConversationBusy) as busy:
        begin_turn(engine, conv.id, History(), user_wire("cutting in"), lease)
    assert busy.value.holder == first.holder

    # The tool results go on under the same lease, without a second claim.
    second = begin_turn(
        engine,
        conv.id,
        history,
        user_wire("the tool said 42"),
        lease,
        after=first.reply_position,
        holder=first.holder,
    )
    assert second.holder == first.holder and KEEPER.holds(engine, second)
    finish_turn(engine, second, history, response("it is 42"), 5)
    assert lease_of(store, conv.id) == (None, None)
    assert not KEEPER.holds(engine, second)
    assert len(store.get_conversation(conv.id).history) == 4
    outcomes = [row["outcome"] for row in ledger(store, conv.id)]
    assert outcomes == ["reply", "reply"]

    # A run that stops between the steps gives the lease back.
    third = begin_turn(engine, conv.id, history, user_wire("again"), lease)
    finish_turn(engine, third, history, response("calling it"), 5, keep_lease=True)
    assert release_turn(engine, third) is True
    assert not KEEPER.holds(engine, third)
    assert lease_of(store, conv.id) == (None, None)
    begin_turn(engine, conv.id, History(), user_wire("free again"), lease)


# -- the database's clock ---------------------------------------------------------------------


def test_a_process_whose_clock_is_an_hour_ahead_cannot_take_a_live_postgres_lease(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    lease_child: Callable[[dict[str, Any]], Child],
) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs on one machine: its lease times are Python's")
    engine = store.engine
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    history = History()
    held = begin_turn(engine, conv.id, history, user_wire("mine"), timedelta(seconds=30))
    config = {"db_url": db_url, "base_url": fake.base_url, "lease_seconds": 30.0}

    # By its own clock this lease ran out 59.5 minutes ago; by the server's it runs.
    skewed = lease_child({**config, "id": conv.id, "content": "mine now?", "skew_hours": 1})
    refused = skewed.expect("error", STARTUP)
    assert refused["error"] == "ConversationBusy", refused
    assert refused["holder"] == held.holder
    assert message_requests(fake) == 0
    finish_turn(engine, held, history, response(), 5)

    # Its own lease, taken on a free conversation, lasts lease_seconds by the
    # server's clock, not an hour longer.
    free = store.create_conversation(model=MODEL, max_tokens=64)
    fake.enqueue(Reply.echo().delayed(2.0))
    taker = lease_child({**config, "id": free.id, "content": "hello", "skew_hours": 1})
    poll(lambda: message_requests(fake) == 1, STARTUP, "the skewed child's request")
    _, expiry = lease_of(store, free.id)
    assert expiry is not None
    assert (expiry - database_now(store)).total_seconds() <= 30.0
    assert taker.expect("replied", 30)["text"] == "Echo: hello"


# -- the CLI ------------------------------------------------------------------------------------


def test_the_break_lease_command(db_url: str, store: Store) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    held = begin_turn(store.engine, conv.id, History(), user_wire("q"), timedelta(seconds=30))

    broken = clust_cli("conversations", "break-lease", conv.id, "--db", db_url)
    assert broken.returncode == 0, broken.stderr
    assert f"broke the lease held by {held.holder} on conversation {conv.id}" in broken.stdout
    assert lease_of(store, conv.id) == (None, None)

    again = clust_cli("conv", "break-lease", conv.id, "--url", db_url)
    assert again.returncode == 0, again.stderr
    assert "was not held by any send" in again.stdout

    missing = clust_cli("conversations", "break-lease", "nope", "--db", db_url)
    assert missing.returncode == 1
    assert "no conversation with id 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_holder_ids_name_the_host_and_process(store: Store) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    started = datetime.now(timezone.utc)
    turn = begin_turn(store.engine, conv.id, History(), user_wire("q"), timedelta(seconds=30))
    host, pid, random_part = turn.holder.rsplit(":", 2)
    assert (host, int(pid)) == (socket.gethostname()[:32], os.getpid())
    assert len(random_part) == 16 and len(turn.holder) <= 64
    assert turn.started_at >= started
    second = store.create_conversation(model=MODEL, max_tokens=64)
    other = begin_turn(store.engine, second.id, History(), user_wire("q"), timedelta(seconds=30))
    assert other.holder != turn.holder
