"""The senders of this process that wait for a busy conversation, in line.

A send with ``wait=`` joins its conversation's line (one per database and
conversation, in this process) and takes a :class:`Ticket`. Only the first in line
asks the database for the lease; the others wait their turn, so this process serves
its waiters first come, first served. When a lease on the conversation is released
in this process (:func:`released`, called by the statements that release it), the
first in line is woken at once; a lease released by another process is noticed by
the first in line's polling (:mod:`clust.conversation.waiting`). When a ticket
leaves the line (its send took the lease, gave up or was cancelled), the next one
becomes first.

Nothing here touches the database: this module only orders and wakes waiters. The
blocking driver waits on a ticket's :class:`threading.Event`; an async driver sets
a waker (:meth:`Ticket.listen`) that reaches its event loop from any thread.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Hashable
from datetime import datetime, timezone

__all__ = ["Ticket", "count", "join", "leave", "released"]

_lock = threading.Lock()
_lines: dict[tuple[Hashable, str], deque[Ticket]] = {}


class Ticket:
    """A sender's place in a conversation's line.

    Attributes:
        key: (database, conversation id).
        since: when the sender began to wait (UTC): across processes the oldest
            waiter goes first.
        reserved: set once the sender reserved the next turn in the database (see
            :func:`clust.store.lease_rows.reserve_next`).
    """

    __slots__ = ("_event", "_signalled", "_waker", "key", "reserved", "since")

    def __init__(self, key: tuple[Hashable, str]) -> None:
        self.key = key
        self.since = datetime.now(timezone.utc)
        self.reserved = False
        self._event = threading.Event()
        self._signalled = False
        self._waker: Callable[[], None] | None = None

    @property
    def first(self) -> bool:
        """Whether this ticket is first in line (it may ask for the lease)."""
        with _lock:
            line = _lines.get(self.key)
            return line is not None and line[0] is self

    @property
    def signalled(self) -> bool:
        """Whether :meth:`take_signal` would say so now (without taking the signal)."""
        with _lock:
            return self._signalled

    def take_signal(self) -> bool:
        """Whether the lease may be free now (released in this process, or the ticket
        before this one left without taking it) since this was last asked."""
        with _lock:
            signalled, self._signalled = self._signalled, False
            return signalled

    def wait(self, timeout: float) -> None:
        """Block until woken or ``timeout`` seconds passed."""
        self._event.wait(timeout)
        self._event.clear()

    def listen(self, waker: Callable[[], None] | None) -> bool:
        """Call ``waker`` (from any thread) when this ticket is woken, until called again
        with ``None``; whether it was woken already (then ``waker`` is not called)."""
        with _lock:
            self._waker = waker
            woken = self._event.is_set()
            if waker is None:
                self._event.clear()
            return woken

    def _wake(self, signal: bool) -> None:  # under _lock
        if signal:
            self._signalled = True
        self._event.set()
        if self._waker is not None:
            self._waker()


def join(database: Hashable, conversation_id: str) -> Ticket:
    """A new ticket at the end of the conversation's line (first, and free to ask for
    the lease at once, if the line was empty)."""
    key = (database, conversation_id)
    ticket = Ticket(key)
    with _lock:
        line = _lines.setdefault(key, deque())
        line.append(ticket)
        if len(line) == 1:
            ticket._signalled = True
    return ticket


def leave(ticket: Ticket, *, served: bool) -> None:
    """Take ``ticket`` out of its line. If it was first, the next one becomes first and
    is woken: to ask for the lease at once when ``ticket`` left without it, else (it
    holds the lease now) to wait for its release."""
    with _lock:
        line = _lines.get(ticket.key)
        if line is None or ticket not in line:
            return
        was_first = line[0] is ticket
        line.remove(ticket)
        if not line:
            del _lines[ticket.key]
        elif was_first:
            line[0]._wake(signal=not served)


def released(database: Hashable, conversation_id: str) -> None:
    """A lease on the conversation was released in this process: wake the first in line."""
    with _lock:
        line = _lines.get((database, conversation_id))
        if line:
            line[0]._wake(signal=True)


def _forked() -> None:
    """In a forked child: the parent's waiters are not here (and the lock may have been
    held by one of its threads)."""
    global _lock
    _lock = threading.Lock()
    _lines.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def count(database: Hashable, conversation_id: str) -> int:
    """How many senders of this process wait in the conversation's line."""
    with _lock:
        line = _lines.get((database, conversation_id))
        return 0 if line is None else len(line)
