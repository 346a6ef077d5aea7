"""The lease keeper: one daemon thread per process renews the leases this process holds.

A send holds its conversation's lease for ``lease_seconds`` (30 by default) and the
keeper extends it every third of that, whatever the send is doing (a reply that takes
ten minutes, a stream, the tools of a tool loop between two requests). A process that
dies stops renewing, so its leases run out within ``lease_seconds`` and another
process may take the conversation over.

The keeper renews all the leases it holds on one engine together: one statement on
PostgreSQL, one short write transaction on SQLite. When a renewal finds a lease no
longer held by its holder (broken by an operator, or run out and taken by another
send) or its conversation deleted, it marks the holding object ``lost`` (with
``lost_reason`` ``"taken"`` or ``"deleted"``) and stops renewing it; storing that
send's reply is then refused.

The keeper keeps only a weak reference to each holding object (a
:class:`~clust.conversation.turns.Turn`): a send that is abandoned without being
finished or aborted stops being renewed once nothing refers to it, and its lease
runs out like a dead process's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from sqlalchemy import Engine

from clust.store import lease_rows
from clust.store.engine import writing

__all__ = ["KEEPER", "Holding", "LeaseKeeper"]

_log = logging.getLogger(__name__)
_RETRY = 1.0  # seconds before a renewal that failed (database unreachable) is tried again
# With nothing to renew, the thread still wakes on its last schedule a few times before
# it waits for a notification: a send that begins meanwhile then wakes nobody (a thread
# switch per turn would cost more than the turn's database work on SQLite).
_IDLE_WAKES = 6


class Holding(Protocol):
    """What the keeper renews: a lease and where to say it was lost."""

    conversation_id: str
    holder: str
    lease: timedelta
    lost: bool
    lost_reason: str | None


@dataclass
class _Entry:
    engine: Engine
    turn: weakref.ref[Holding]
    lease: timedelta
    due: float  # time.monotonic() of the next renewal


class LeaseKeeper:
    """Renews, from one daemon thread, the leases registered with :meth:`hold`."""

    def __init__(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._held: dict[tuple[Engine, str, str], _Entry] = {}
        self._thread: threading.Thread | None = None
        self._wake_at = float("inf")  # when the thread wakes next (inf: when notified)
        self._interval = 10.0  # the shortest renewal interval of the leases held lately
        self._idle = 0  # wakes with nothing held, since something was
        self.renewals = 0
        """Renewal statements run so far (SQLite: one per lease)."""

    def hold(self, engine: Engine, turn: Holding) -> None:
        """Renew ``turn``'s lease until :meth:`let_go` (or until ``turn`` is lost or
        no longer referenced). Holding the same lease again (the next step of a tool
        loop) moves it to the new object."""
        due = time.monotonic() + turn.lease.total_seconds() / 3
        entry = _Entry(engine, weakref.ref(turn), turn.lease, due)
        with self._lock:
            self._held[(engine, turn.conversation_id, turn.holder)] = entry
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="clust-lease-keeper", daemon=True
                )
                self._thread.start()
            if due < self._wake_at:
                self._lock.notify()

    def let_go(self, engine: Engine, turn: Holding) -> None:
        """Stop renewing ``turn``'s lease (it was released, or is given up)."""
        with self._lock:
            self._held.pop((engine, turn.conversation_id, turn.holder), None)

    def holds(self, engine: Engine, turn: Holding) -> bool:
        """Whether ``turn``'s lease is being renewed."""
        with self._lock:
            return (engine, turn.conversation_id, turn.holder) in self._held

    def _run(self) -> None:
        while True:
            with self._lock:
                due = self._due()
                while not due:
                    pause = self._wake_at - time.monotonic()
                    self._lock.wait(None if pause == float("inf") else max(0.0, pause))
                    due = self._due()
            for engine, entries in due.items():
                self._renew(engine, entries)

    def _due(self) -> dict[Engine, list[tuple[tuple[Engine, str, str], _Entry]]]:
        """The entries to renew now, by engine: every entry of an engine that has one
        due, renewed a little early rather than in a statement of its own. Sets
        ``_wake_at`` to the next due time. Called with the lock held."""
        now = time.monotonic()
        engines = set()
        for key, entry in list(self._held.items()):
            if entry.turn() is None:  # abandoned: its lease runs out by itself
                del self._held[key]
            elif entry.due <= now:
                engines.add(entry.engine)
        due: dict[Engine, list[tuple[tuple[Engine, str, str], _Entry]]] = {}
        wake = float("inf")
        for key, entry in self._held.items():
            if entry.engine in engines and entry.due <= now + entry.lease.total_seconds() / 6:
                due.setdefault(entry.engine, []).append((key, entry))
            else:
                wake = min(wake, entry.due)
        if self._held:
            self._idle = 0
            self._interval = min(e.lease.total_seconds() / 3 for e in self._held.values())
        elif self._idle < _IDLE_WAKES:
            self._idle += 1
            wake = now + self._interval
        self._wake_at = wake
        return due

    def _renew(self, engine: Engine, entries: list[tuple[tuple[Engine, str, str], _Entry]]) -> None:
        by_lease: dict[timedelta, list[tuple[str, str]]] = {}
        for (_, conversation_id, holder), entry in entries:
            by_lease.setdefault(entry.lease, []).append((conversation_id, holder))
        lost: dict[str, str] = {}
        renewed: set[str] = set()
        failed = False
        try:
            with writing(engine) as connection:
                for lease, held in by_lease.items():
                    clock = datetime.now(timezone.utc)
                    renewed |= lease_rows.renew_leases(connection, held, lease, clock)
                    self.renewals += 1 if engine.dialect.name == "postgresql" else len(held)
                    for conversation_id, _ in held:
                        if conversation_id in renewed:
                            continue
                        state = lease_rows.lease_state(connection, conversation_id)
                        lost[conversation_id] = "deleted" if state is None else "taken"
        except Exception:  # the database is unreachable: try again soon
            _log.warning("clust: renewing leases failed; retrying", exc_info=True)
            failed = True
        now = time.monotonic()
        with self._lock:
            for key, entry in entries:
                if self._held.get(key) is not entry:
                    continue  # let go (or held again) meanwhile
                reason = lost.get(key[1])
                if reason is not None:
                    del self._held[key]
                    turn = entry.turn()
                    if turn is not None:
                        turn.lost_reason = reason
                        turn.lost = True
                    continue
                interval = entry.lease.total_seconds() / 3
                entry.due = now + (min(_RETRY, interval) if failed else interval)
                self._wake_at = min(self._wake_at, entry.due)

    def _forget_all(self) -> None:
        """In a forked child: the parent's leases are not this process's to renew."""
        self._lock = threading.Condition(threading.Lock())
        self._held = {}
        self._thread = None
        self._wake_at = float("inf")


KEEPER = LeaseKeeper()
"""The process's keeper (see :mod:`clust.store.keeper`)."""

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=KEEPER._forget_all)
