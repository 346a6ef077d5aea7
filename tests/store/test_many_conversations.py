"""Many conversations at once on one event loop: hundreds of conversations, 3 turns each.

All of them advance together, one task group per turn, through ``asend`` with one
``AsyncClient``, while a heartbeat task ticks every 10 ms on the same event loop.
Every turn must be stored (both messages, a completed ledger row, no lease left
behind), and the loop must keep ticking: the database work runs in the store's
worker threads, so the largest gap between two ticks must stay under 100 ms.

FakeClaude is served from a child process here: its handler threads (one per
connection, hundreds of them) would otherwise share this process's GIL with the
event loop under test, and the heartbeat would measure the fake server.

At 500 conversations the loop still stalls for 100-180 ms on 2 cores, all through each
round, not only as the 500 sends start; raw httpx alone, with no store, stalls for
~480 ms on the same workload, and the SDK for ~1,300 ms (``bench_concurrency``). The
loop thread spends ~4.3 ms of CPU per turn, as much as raw httpx does per request:
what a burst of responses costs the HTTP client on the loop, with the GIL shared with
the store's threads (4 threads instead of 16 do not shorten it). The case is kept,
expected to fail on :class:`LoopStalled` only (any other failure is a failure); not
strict, as it passes now and then.
``python -m benchmarks.bench_concurrency`` measures the same workload.
"""

from __future__ import annotations

import fcntl
import gc
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from clust import AsyncClient, Conversation, Store
from clust.conversation.offload import DEFAULT_THREADS
from clust.store.schema import ConversationRow, MessageRow, UsageRow

MODEL = "claude-sonnet-5-5"
TURNS = 3
TICK = 0.01
MAX_GAP = 0.1
ATTEMPTS = 3


class LoopStalled(AssertionError):
    """The heartbeat missed its ticks: something held the event loop too long."""


@pytest.fixture
def many_connections() -> Iterator[None]:
    """Tests that open dozens of PostgreSQL connections take turns across xdist
    workers (the same lock as ``test_async_store``), so that together they stay
    under the server's ``max_connections``."""
    lock = Path(tempfile.gettempdir()) / "clust-test-many-connections.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    """The base URL of a FakeClaude running in a child process (``python -m clust.testing``)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "clust.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        child.terminate()
        child.wait(timeout=10)


class Heartbeat:
    """Ticks every :data:`TICK` seconds on the event loop; :attr:`largest_gap` is the
    longest time between two ticks (a tick that came ``TICK`` late shows as ``2 * TICK``)
    less the time the OS kept the loop's thread waiting for a CPU meanwhile
    (``run_delay`` of ``/proc/self/task/<tid>/schedstat``): the other xdist worker's
    tests and FakeClaude's process share the 2 cores, and while the loop's thread waits
    in the run queue it is held by the machine, not by anything this process does.
    Time spent waiting for the GIL (held by the store's threads) still counts: that
    thread sleeps on a lock, not in the run queue. :attr:`largest_wall_gap` is the gap
    as the clock saw it."""

    def __init__(self) -> None:
        self.ticks = 0
        self.largest_gap = 0.0
        self.largest_wall_gap = 0.0

    async def run(self) -> None:
        stats = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")
        readable = stats.exists()

        def queued() -> float:  # seconds this thread has waited for a CPU so far
            return int(stats.read_text().split()[1]) / 1e9 if readable else 0.0

        last, last_queued = time.perf_counter(), queued()
        while True:
            await anyio.sleep(TICK)
            now, now_queued = time.perf_counter(), queued()
            self.largest_wall_gap = max(self.largest_wall_gap, now - last)
            self.largest_gap = max(self.largest_gap, now - last - (now_queued - last_queued))
            self.ticks += 1
            last, last_queued = now, now_queued


async def all_at_once(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run every call concurrently in one task group; their results, in order."""
    results: list[Any] = [None] * len(calls)

    async def one(index: int) -> None:
        results[index] = await calls[index]()

    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(one, index)
    return results


def said(conv: Conversation, turn: int) -> str:
    return f"turn {turn} of {conv.id}"


async def advance(
    client: AsyncClient, conversations: list[Conversation], heartbeat: Heartbeat
) -> list[list[str]]:
    """Every conversation ``TURNS`` turns, all at once per turn, with the heartbeat
    ticking meanwhile; the replies' texts, by turn."""
    replies: list[list[str]] = []
    # Objects made before (pytest's own, thousands of them under xdist, and the
    # conversations) are left out of the collector's full passes, which would
    # otherwise pause the loop for ~100 ms over a heap the store did not make.
    gc.collect()
    gc.freeze()
    try:
        async with anyio.create_task_group() as ticking:
            ticking.start_soon(heartbeat.run)
            for turn in range(TURNS):
                sent = await all_at_once(
                    [partial(conv.asend, client, said(conv, turn)) for conv in conversations]
                )
                replies.append([reply.text() for reply in sent])
            ticking.cancel_scope.cancel()
    finally:
        gc.unfreeze()
    return replies


def stored_counts(store: Store) -> dict[str, Any]:
    """What the database holds, counted per conversation and per outcome."""
    messages = MessageRow.__table__.c
    usage = UsageRow.__table__.c
    conversations = ConversationRow.__table__.c
    parity = messages.position % 2
    with store.engine.connect() as connection:
        per_conversation = connection.execute(
            select(messages.conversation_id, func.count(), func.max(messages.position)).group_by(
                messages.conversation_id
            )
        ).all()
        roles = connection.execute(
            select(messages.role, func.min(parity), func.max(parity), func.count()).group_by(
                messages.role
            )
        ).all()
        outcomes = connection.execute(
            select(usage.outcome, func.count()).group_by(usage.outcome)
        ).all()
        replies_per_conversation = connection.execute(
            select(func.count())
            .select_from(UsageRow.__table__)
            .where(usage.outcome == "reply", usage.message_position.is_not(None))
            .group_by(usage.conversation_id)
        ).scalars()
        held = connection.execute(
            select(func.count()).where(conversations.lease_holder.is_not(None))
        ).scalar_one()
        next_positions = connection.execute(
            select(conversations.next_position, func.count()).group_by(conversations.next_position)
        ).all()
    return {
        "messages": sorted({(count, last) for _, count, last in per_conversation}),
        "conversations with messages": len(per_conversation),
        "roles": sorted(tuple(row) for row in roles),
        "outcomes": dict(outcomes),
        "replies per conversation": sorted(set(replies_per_conversation)),
        "leases held": held,
        "next positions": dict(next_positions),
    }


@pytest.mark.anyio
@pytest.mark.usefixtures("many_connections")
@pytest.mark.parametrize(
    ("size", "threads"),
    [
        # With the default 64 threads the loop stalls past 100 ms at this size on
        # 2 cores (GIL contention); with 8 its largest gap stays under 40 ms, while
        # store calls made on the loop itself would show as 110-200 ms gaps.
        pytest.param(100, 8, id="100-threads8"),
        pytest.param(
            500,
            DEFAULT_THREADS,
            id="500",
            marks=pytest.mark.xfail(
                raises=LoopStalled,
                strict=False,
                reason="bursts of HTTP responses hold the loop (module doc)",
            ),
        ),
    ],
)
async def test_conversations_advance_3_turns_all_at_once_and_the_loop_keeps_ticking(
    db_url: str, fake_url: str, size: int, threads: int
) -> None:
    async with (
        await Store.aopen(db_url, threads=threads) as store,
        AsyncClient(api_key="test-key", base_url=fake_url) as client,
    ):
        conversations: list[Conversation] = await all_at_once(
            [partial(store.acreate_conversation, model=MODEL, max_tokens=64)] * size
        )
        # One turn first, outside the measure: the client's first request builds its
        # connection pool (an SSL context, ~20 ms) and imports what it uses lazily.
        warm = await store.acreate_conversation(model=MODEL, max_tokens=64)
        await warm.asend(client, "warm up")

        # Another xdist worker shares the 2 cores: a stall the machine's load caused
        # once is measured again (up to ATTEMPTS rounds of TURNS turns, each checked);
        # a loop that stalls in every round fails.
        attempts = 1 if size > 100 else ATTEMPTS  # the 500 case is expected to stall
        rounds = 0
        while True:
            rounds += 1
            heartbeat = Heartbeat()
            started = time.perf_counter()
            replies = await advance(client, conversations, heartbeat)
            took = time.perf_counter() - started
            for turn in range(TURNS):
                assert replies[turn] == [f"Echo: {said(conv, turn)}" for conv in conversations]
            if heartbeat.largest_gap < MAX_GAP or rounds == attempts:
                break

        pending = await all_at_once([conv.apending for conv in conversations])
        usage = await all_at_once([conv.ausage for conv in conversations])
        counts = await store.offload.run(stored_counts, store)

    # Each reply answered its own conversation's turn (checked above: FakeClaude echoes
    # the user turn). Every turn stored: 6 messages a round each, user/assistant
    # alternating, and one completed ledger row per request, none left unknown, no
    # lease left behind. The warm-up conversation adds one turn (2 messages, 1 request).
    turns = TURNS * rounds
    requests = size * turns + 1
    assert counts["messages"] == [(2, 1), (2 * turns, 2 * turns - 1)]
    assert counts["conversations with messages"] == size + 1
    assert counts["roles"] == [("assistant", 1, 1, requests), ("user", 0, 0, requests)]
    assert counts["outcomes"] == {"reply": requests}
    assert counts["replies per conversation"] == [1, turns]
    assert counts["leases held"] == 0
    assert counts["next positions"] == {2 * turns: size, 2: 1}
    assert pending == [False] * size
    assert {(u.requests, u.unknown_attempts, u.in_flight_attempts) for u in usage} == {
        (turns, 0, 0)
    }

    assert heartbeat.ticks >= 1
    if heartbeat.largest_gap >= MAX_GAP:
        raise LoopStalled(
            f"the event loop stalled {heartbeat.largest_gap * 1e3:.0f} ms "
            f"({heartbeat.largest_wall_gap * 1e3:.0f} ms by the clock) "
            f"({size} conversations x {TURNS} turns in {took:.1f} s; in each of {rounds} rounds)"
        )
