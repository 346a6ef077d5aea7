"""Waiting for a busy conversation is fair (issue 10).

Eight senders share one conversation, each sending several turns with ``wait=``.
Before, each waiter polled the lease every 50 ms in no order: the longest wait ran to
many times a turn and one send hit its limit while others went through again and
again. Now senders of one process stand in line (first come, first served), the first
in line is woken when a lease is released, and across processes the sender that has
waited longest reserves the next turn.

Measures, per send: its *wait* (from the call until FakeClaude receives its request:
the lease was taken just before), its *hold* (from then until the call returns: the
lease is held meanwhile, FakeClaude delays each reply by ``DELAY``) and its *time*
(the whole call). With eight senders always queueing, a send waits for the seven
others' turns under any fair order, so the bound is set against the median send time:
the longest wait stays under 3x it; and, from the order of service, no sender is
served twice while another one waits (first come, first served).

Every test runs on an SQLite file and on PostgreSQL; the async ones under asyncio and
trio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import pytest

from clust import AsyncClient, Client, Store
from clust.messages import ConversationBusy
from clust.store import waiters
from clust.testing import FakeClaude, Reply
from clust.testing.recorder import RecordedRequest

MODEL = "claude-sonnet-5-5"
SENDERS = 8
TURNS = 3
DELAY = 0.04  # seconds FakeClaude holds each reply: most of a turn's hold
WAIT = 60.0
ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "procs" / "fair_wait_worker.py"


@dataclass(frozen=True)
class Sent:
    label: str
    sender: str
    start: float
    arrival: float
    end: float

    @property
    def wait(self) -> float:
        return self.arrival - self.start

    @property
    def hold(self) -> float:
        return self.end - self.arrival


def label_of(request: RecordedRequest) -> str:
    content = request.body["messages"][-1]["content"]
    return content if isinstance(content, str) else str(content[0]["text"])


def serve(
    fake: FakeClaude,
    arrivals: dict[str, float],
    *,
    clock: Callable[[], float] = time.monotonic,
    gates: dict[str, threading.Event] | None = None,
) -> None:
    """Answer every request after ``DELAY`` (or once its gate opens), noting when it came."""

    def respond(request: RecordedRequest) -> Reply:
        label = label_of(request)
        arrivals[label] = clock()
        if gates and label in gates:
            assert gates[label].wait(30)
            return Reply.text(f"ok {label}")
        return Reply.text(f"ok {label}").delayed(DELAY)

    fake.set_responder(respond)


def check_fair(sent: list[Sent], title: str, *, overtakes: int = 1) -> None:
    """The longest wait under 3x the median send time; while a sender waited, no other
    sender was served more than ``overtakes`` times (once: first come, first served).

    Raises:
        SlowWait: only the first condition failed.
    """
    waits = [s.wait for s in sent]
    times = [s.end - s.start for s in sent]
    holds = [s.hold for s in sent]
    longest, median_time = max(waits), statistics.median(times)
    print(
        f"\n{title}: {len(sent)} sends; wait longest {longest:.3f} s, median "
        f"{statistics.median(waits):.3f} s; hold median {statistics.median(holds):.3f} s, "
        f"longest {max(holds):.3f} s; send time median {median_time:.3f} s; "
        f"longest wait / median send time {longest / median_time:.2f}, "
        f"/ median hold {longest / statistics.median(holds):.1f}"
    )
    for waiting in sent:
        served = Counter(
            other.sender
            for other in sent
            if other.sender != waiting.sender and waiting.start < other.arrival < waiting.arrival
        )
        assert max(served.values(), default=0) <= overtakes, (waiting.label, served)
    if not longest < 3 * median_time:
        raise SlowWait((longest, median_time))


class SlowWait(AssertionError):
    """The longest wait was not under 3x the median send time.

    Quiet, the ratio is 1.0-1.3; once, under the full suite on 2 cores, one wait of
    eight async senders took ~1 s more than the others (3.03x): the eight-sender tests
    measure again once on SlowWait, so only a ratio missed twice in a row fails (the
    order of service is checked every time)."""


def stored_labels(store: Store, conversation_id: str) -> list[str]:
    history = store.get_conversation(conversation_id).history
    return [m.text() for m in history if m.role.value == "user"]


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


async def auntil(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await anyio.sleep(0.002)


def in_line(store: Store, conversation_id: str) -> int:
    return waiters.count(store.engine.url, conversation_id)


# -- eight senders in one process ----------------------------------------------------------


def test_eight_threads_are_served_fairly(store: Store, fake: FakeClaude, client: Client) -> None:
    arrivals: dict[str, float] = {}
    serve(fake, arrivals)

    def once() -> None:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        sent: list[Sent] = []
        start_line = threading.Barrier(SENDERS)

        def sender(index: int) -> None:
            mine = store.get_conversation(conv.id)
            start_line.wait()
            for turn in range(TURNS):
                label = f"s{index}-t{turn}-{conv.id}"
                start = time.monotonic()
                mine.send(client, label, wait=WAIT)
                sent.append(Sent(label, str(index), start, arrivals[label], time.monotonic()))

        threads = [threading.Thread(target=sender, args=(i,)) for i in range(SENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(sent) == SENDERS * TURNS
        assert sorted(stored_labels(store, conv.id)) == sorted(s.label for s in sent)
        assert in_line(store, conv.id) == 0
        check_fair(sent, f"threads, {store.engine.dialect.name}")

    try:
        once()
    except SlowWait:  # once, under the full suite's load (see SlowWait): measure again
        once()


@pytest.mark.anyio
async def test_eight_tasks_are_served_fairly(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    arrivals: dict[str, float] = {}
    serve(fake, arrivals)

    async def once() -> None:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        sent: list[Sent] = []

        async def sender(index: int) -> None:
            mine = store.get_conversation(conv.id)
            for turn in range(TURNS):
                label = f"s{index}-t{turn}-{conv.id}"
                start = time.monotonic()
                await mine.asend(aclient, label, wait=WAIT)
                sent.append(Sent(label, str(index), start, arrivals[label], time.monotonic()))

        async with anyio.create_task_group() as group:
            for index in range(SENDERS):
                group.start_soon(sender, index)

        assert len(sent) == SENDERS * TURNS
        assert sorted(stored_labels(store, conv.id)) == sorted(s.label for s in sent)
        assert in_line(store, conv.id) == 0
        check_fair(sent, f"async, {store.engine.dialect.name}")

    try:
        await once()
    except SlowWait:  # once, under the full suite's load (see SlowWait): measure again
        await once()


def test_first_come_first_served(store: Store, fake: FakeClaude, client: Client) -> None:
    """Seven senders arrive one after another while the conversation is busy; they are
    served in the order they came, each woken as the lease comes free."""
    arrivals: dict[str, float] = {}
    gate = threading.Event()
    serve(fake, arrivals, gates={"holder": gate})
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    finished: dict[str, float] = {}

    def send(label: str, wait: float) -> None:
        store.get_conversation(conv.id).send(client, label, wait=wait)
        finished[label] = time.monotonic()

    holder = threading.Thread(target=send, args=("holder", 0.0))
    holder.start()
    until(lambda: "holder" in arrivals)
    threads = []
    for index in range(1, SENDERS):
        thread = threading.Thread(target=send, args=(f"w{index}", WAIT))
        thread.start()
        threads.append(thread)
        until(lambda index=index: in_line(store, conv.id) == index)
    gate.set()
    for thread in [holder, *threads]:
        thread.join()

    order = sorted(arrivals, key=arrivals.__getitem__)
    assert order == ["holder"] + [f"w{i}" for i in range(1, SENDERS)]
    gaps = [arrivals[label] - finished[before] for before, label in pairwise(order)]
    # Woken by the release, not by a timer: the next request leaves at once.
    print(f"\nhand-over gaps: median {statistics.median(gaps) * 1000:.1f} ms")
    assert in_line(store, conv.id) == 0


def test_a_waiter_past_its_deadline_raises_busy_and_leaves_the_line(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    arrivals: dict[str, float] = {}
    gate = threading.Event()
    serve(fake, arrivals, gates={"holder": gate})
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    holder = threading.Thread(target=conv.send, args=(client, "holder"))
    holder.start()
    until(lambda: "holder" in arrivals)
    late = store.get_conversation(conv.id)
    outcome: dict[str, Any] = {}

    def impatient() -> None:
        start = time.monotonic()
        try:
            late.send(client, "impatient", wait=0.3)
        except ConversationBusy as exc:
            outcome["error"], outcome["took"] = exc, time.monotonic() - start

    thread = threading.Thread(target=impatient)
    thread.start()
    until(lambda: in_line(store, conv.id) == 1)
    thread.join()

    assert isinstance(outcome["error"], ConversationBusy)
    assert outcome["error"].holder is not None  # the database's own refusal
    assert 0.3 <= outcome["took"] < 5.0
    assert in_line(store, conv.id) == 0
    gate.set()
    holder.join()
    assert late.send(client, "patient", wait=WAIT).text() == "ok patient"
    assert stored_labels(store, conv.id) == ["holder", "patient"]


@pytest.mark.anyio
async def test_a_cancelled_async_waiter_leaves_the_line(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    arrivals: dict[str, float] = {}
    gate = threading.Event()
    serve(fake, arrivals, gates={"holder": gate})
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    cancelled = anyio.CancelScope()
    finished: dict[str, float] = {}

    async def send(label: str, wait: float) -> None:
        await store.get_conversation(conv.id).asend(aclient, label, wait=wait)
        finished[label] = time.monotonic()

    async def cancelled_sender() -> None:
        with cancelled:
            await send("cancelled", WAIT)

    async with anyio.create_task_group() as group:
        group.start_soon(send, "holder", 0.0)
        await auntil(lambda: "holder" in arrivals)
        group.start_soon(cancelled_sender)
        await auntil(lambda: in_line(store, conv.id) == 1)
        group.start_soon(send, "next", WAIT)
        await auntil(lambda: in_line(store, conv.id) == 2)
        cancelled.cancel()
        await auntil(lambda: in_line(store, conv.id) == 1)  # it left the line at once
        gate.set()

    assert cancelled.cancelled_caught and "cancelled" not in arrivals
    assert stored_labels(store, conv.id) == ["holder", "next"]
    # The next one was first in line when the lease came free: woken, not polling.
    assert arrivals["next"] - finished["holder"] < 1.0
    assert in_line(store, conv.id) == 0


# -- two processes --------------------------------------------------------------------------


def test_two_processes_share_the_conversation_fairly(
    db_url: str, store: Store, fake: FakeClaude, client: Client
) -> None:
    """Four senders in a child process and four in this one (its own Store), three
    turns each. Waits stay bounded across processes: under 3x the median send time,
    and neither process keeps the conversation for more than a round of its senders."""
    per_process = SENDERS // 2
    arrivals: dict[str, float] = {}
    serve(fake, arrivals, clock=time.time)
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    config = {
        "name": "b",
        "db_url": db_url,
        "base_url": fake.base_url,
        "conversation_id": conv.id,
        "model": MODEL,
        "senders": per_process,
        "turns": TURNS,
        "wait": WAIT,
    }
    child = subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    sent: list[Sent] = []
    start_line = threading.Barrier(per_process)

    def sender(index: int) -> None:
        mine = store.get_conversation(conv.id)
        start_line.wait()
        for turn in range(TURNS):
            label = f"a-s{index}-t{turn}"
            start = time.time()
            mine.send(client, label, wait=WAIT)
            sent.append(Sent(label, f"a-s{index}", start, arrivals[label], time.time()))

    try:
        assert child.stdout is not None and child.stdin is not None
        assert json.loads(child.stdout.readline()) == {"event": "ready"}
        threads = [threading.Thread(target=sender, args=(i,)) for i in range(per_process)]
        child.stdin.write("go\n")
        child.stdin.flush()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    for line in out.splitlines():
        report = json.loads(line)
        if "label" in report:
            label = report["label"]
            sender_name = label.rsplit("-", 1)[0]
            sent.append(Sent(label, sender_name, report["start"], arrivals[label], report["end"]))
    assert len(sent) == SENDERS * TURNS
    assert sorted(stored_labels(store, conv.id)) == sorted(s.label for s in sent)
    # Across processes the order is kept through the database, by polling: a sender
    # that began to wait just after another may still go first, once.
    check_fair(sent, f"two processes, {store.engine.dialect.name}", overtakes=2)
    order = "".join(s.label[0] for s in sorted(sent, key=lambda s: s.arrival))
    runs = [len(run) for run in order.replace("ab", "a b").replace("ba", "b a").split()]
    print(f"service order: {order}")
    assert max(runs) <= per_process + 2, order
