"""Waiting for a busy conversation, fairly: a plan step shared by every send with ``wait=``.

Within a process, senders are served first come, first served: each joins the
conversation's line (:mod:`clust.store.waiters`) and only the first in line asks the
database for the lease. It is woken as soon as a lease on the conversation is released
in this process, rather than polling on a fixed period; the others wait for their turn
to come, each on its own ticket (a thread on a :class:`threading.Event`, an async task
on an event of its loop), so a cancelled task simply leaves the line.

Across processes, the first in line also polls, with jittered exponential backoff
capped at :data:`POLL_CAP`, for a lease released elsewhere. As soon as it comes first,
and whenever it is refused, it reserves the next turn for its own process
(:func:`clust.store.reservations.reserve_next`); the reservation goes to the process
whose first sender began to wait earliest. A free lease then goes to that process, not
to whichever process happens to ask first: a process that hands the conversation from
one of its senders to the next (at once, woken in memory) cannot keep it from another
process's sender that came earlier, so waits stay bounded by the turns of those who
came first, plus a poll per hand-over between processes. Chosen over PostgreSQL's
advisory locks or LISTEN/NOTIFY because it works the same on SQLite, holds no
connection while waiting, and needs nothing but the conversation row.

A send without ``wait`` asks once and does not stand in line.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from clust.conversation.effects import Db
from clust.messages.errors import ConversationBusy
from clust.store import reservations, waiters
from clust.store.engine import writing
from clust.store.waiters import Ticket

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from clust.conversation.effects import AsyncContext, BlockingContext
    from clust.protocol.plans import Plan

__all__ = ["POLL_CAP", "RESERVATION", "WaitTurn", "in_line"]

POLL_FIRST = 0.01
"""Seconds before the first in line asks again after a refusal (then doubled, jittered)."""
POLL_CAP = 0.1
"""The longest the first in line waits between two requests for the lease (a lease
released by another process is noticed within this)."""
RESERVATION = timedelta(seconds=2)
"""How long a reservation of the next turn lasts unless its process renews it (the first
in line renews it on each poll): a process that died frees it within this."""
_RECHECK = 1.0  # a ticket not first in line looks again at least this often


@dataclass(frozen=True)
class WaitTurn:
    """Wait until ``ticket`` is woken (it came first in line, or a lease was released)
    or ``seconds`` passed."""

    ticket: Ticket
    seconds: float

    def run(self, context: BlockingContext) -> None:
        self.ticket.wait(self.seconds)

    async def arun(self, context: AsyncContext) -> None:
        event = anyio.Event()
        try:
            if not self.ticket.listen(_loop_waker(event)):
                with anyio.move_on_after(self.seconds):
                    await event.wait()
        finally:
            self.ticket.listen(None)


def _loop_waker(event: anyio.Event) -> Callable[[], None]:
    """A function that sets ``event`` in the running event loop, from any thread,
    without blocking (the loop may be gone by then: nothing happens)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio (anyio's other backend)
        import trio

        token = trio.lowlevel.current_trio_token()

        def wake_trio() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(event.set)

        return wake_trio

    def wake_asyncio() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(event.set)

    return wake_asyncio


def in_line(engine: Engine, conversation_id: str, wait: float, claim: Db) -> Plan[Any]:
    """Run ``claim`` (a database step that takes the conversation's lease, raising
    :class:`ConversationBusy` while another send holds it) when this sender's turn
    comes, waiting up to ``wait`` seconds; return what it returns.

    Raises:
        ConversationBusy: still busy after ``wait`` seconds (the last refusal), or at
            once without ``wait``.
    """
    if wait <= 0:
        result = yield claim
        return result
    deadline = time.monotonic() + wait
    ticket = waiters.join(engine.url, conversation_id)
    served = False
    try:
        reserve = Db(partial(_reserve, engine, conversation_id, ticket))
        poll = 0.0  # when the first in line asks next without being woken
        backoff = POLL_FIRST
        came_first = False
        while True:
            now = time.monotonic()
            first = ticket.first
            if first and not came_first:
                came_first = True
                if not ticket.signalled:
                    # First behind a sender that took the lease: the lease will be
                    # released here, but first take this process's place among the
                    # other processes' waiters.
                    poll = now + POLL_CAP
                    yield from _try(reserve)
                    continue
            if first and (ticket.take_signal() or now >= poll):
                try:
                    result = yield claim
                    served = True
                    return result
                except ConversationBusy as busy:
                    now = time.monotonic()
                    if now >= deadline:
                        raise
                    poll = now + backoff * random.uniform(0.5, 1.0)
                    backoff = min(backoff * 2, POLL_CAP)
                    if (yield from _try(reserve)) and busy.holder is None:
                        poll = now  # free, and reserved for this process now: ask again
            elif now >= deadline:
                result = yield claim  # a last request, out of turn: raises if still busy
                served = True
                return result
            until = poll if first else now + _RECHECK
            yield WaitTurn(ticket, max(0.0, min(until, deadline) - time.monotonic()))
    except GeneratorExit:
        raise  # closed with its driver gone: no effect can run now
    except BaseException:
        # Leaving without the lease: nobody else here waits for the next turn reserved.
        if ticket.reserved and waiters.count(engine.url, conversation_id) == 1:
            with contextlib.suppress(Exception):  # it runs out by itself anyway
                yield Db(partial(_unreserve, engine, conversation_id))
        raise
    finally:
        waiters.leave(ticket, served=served)


def _try(reserve: Db) -> Plan[bool]:
    """Reserve the next turn, if the database lets us (best effort: a failure to get
    the lease itself is what the sender is told about)."""
    try:
        reserved: bool = yield reserve
    except Exception:
        return False
    return reserved


def _reserve(engine: Engine, conversation_id: str, ticket: Ticket) -> bool:
    with writing(engine) as connection:
        now = datetime.now(timezone.utc)
        held = reservations.reserve_next(
            connection, conversation_id, ticket.since, now, RESERVATION
        )
    ticket.reserved = ticket.reserved or held
    return held


def _unreserve(engine: Engine, conversation_id: str) -> None:
    with writing(engine) as connection:
        reservations.unreserve(connection, conversation_id)
