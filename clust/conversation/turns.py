"""A turn's life in the database: claim the conversation, store the user turn, store
the reply and its usage, or give the claim back. Sync functions; the async API runs
them in worker threads.

A turn is two short write transactions around the HTTP call, never one long one:

1. ``begin``: take the lease (one send in flight per conversation, across
   processes), reserve the next position, catch up on turns other processes added,
   insert the user turn. Committed before the request leaves, so a crash of this
   process after this point leaves a pending user turn that ``retry`` resends. On
   PostgreSQL this commit does not wait for its WAL flush (the reply's commit, which
   does, flushes it too): only a crash of the database server in between could undo
   it, and then ``finish`` finds its lease gone and stores nothing either.
2. ``finish``: check the lease is still ours and release it, insert the assistant
   turn and its usage row. Or ``abort``: release the lease, store nothing.

On PostgreSQL each step is, in the common case, one statement (data-modifying CTEs)
run in autocommit: all or nothing by itself, it needs no BEGIN and COMMIT round trips.
``begin`` takes that path only when the history held is current and has no pending
turn; anything else (busy, stale, gone) falls back to the general transaction, which
tells which.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from clust.conversation.history import History, assistant_wire
from clust.conversation.records import usage_values
from clust.messages.errors import (
    ConversationBusy,
    NothingToRetry,
    PendingTurn,
    StoreError,
    TurnInBatch,
)
from clust.messages.response import MessagesResponseBody
from clust.store import batches as batch_rows
from clust.store import repository as rows
from clust.store.engine import transaction, writing

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "Turn",
    "abort_turn",
    "begin_turn",
    "discard_pending",
    "finish_turn",
    "renew_turn",
    "sync_history",
    "utcnow",
]


def utcnow() -> datetime:
    """Now, in UTC (every time the store writes)."""
    return datetime.now(timezone.utc)


@dataclass
class Turn:
    """A send in flight: who holds the conversation, and where the reply goes."""

    conversation_id: str
    holder: str
    reply_position: int
    started_at: datetime


def sync_history(connection: Connection, conversation_id: str, history: History) -> None:
    """Append the turns stored after the ones ``history`` holds.

    The newest turn held is read back too: if it is no longer stored as held (another
    object discarded that pending turn, perhaps sending another since), the whole
    history is read again rather than sending a turn the store no longer has.
    Positions have no gaps, so the first row read is the one at ``known - 1``.
    """
    known = len(history)
    if known == 0:
        history.extend(*rows.load_turns(connection, conversation_id))
        return
    roles, wires, ttls = rows.load_turns(connection, conversation_id, known - 1)
    if wires and wires[0] == history.wires[-1] and roles[0] == history.roles[-1]:
        history.extend(roles[1:], wires[1:], ttls[1:])
        return
    history.truncate(0)
    history.extend(*rows.load_turns(connection, conversation_id))


def _refuse_if_in_batch(
    connection: Connection, conversation_id: str, position: int, now: datetime
) -> None:
    """Raise :class:`TurnInBatch` if the pending turn at ``position`` waits in an open
    Message Batch (asked only when a turn is pending: never on a plain send)."""
    batch_id = batch_rows.open_batch_of(connection, conversation_id, position, now)
    if batch_id is not None:
        raise TurnInBatch(conversation_id, position, batch_id)


def begin_turn(
    engine: Engine,
    conversation_id: str,
    history: History,
    user_wire: bytes | None,
    lease: timedelta,
    *,
    resume: bool = False,
    after: int | None = None,
    reply_id: bool = False,
) -> Turn:
    """Claim the conversation and store the user turn (``None``: resend the pending one,
    or with ``resume`` send the history as it is, to continue a ``pause_turn`` reply).
    With ``after``, the user turn is stored only right after the turn at that position
    (the tool results of a tool loop answer that reply, and nothing may come between).
    With ``reply_id``, the newest reply's message id is read too if ``history`` does
    not know it (for ``diagnostics.previous_message_id``).

    Raises:
        ConversationBusy: another send holds the conversation.
        PendingTurn: a new turn was given but the last one still waits for its reply.
        NothingToRetry: no turn was given and none is pending.
        StoreError: with ``after``, turns were stored after that position meanwhile.
    """
    holder = secrets.token_hex(16)
    current = after is None or len(history) == after + 1
    if user_wire is not None and history.last_role != "user" and current and _one_statement(engine):
        turn = _begin_in_one_statement(
            engine, conversation_id, history, user_wire, lease, holder, reply_id
        )
        if turn is not None:
            return turn
    count = 0 if user_wire is None else 1
    with transaction(engine) as connection:
        now = utcnow()
        held_until, position = rows.claim_and_take(
            connection, conversation_id, holder, now, now + lease, count
        )
        if held_until is not None:
            raise ConversationBusy(conversation_id, expires_at=held_until)
        # A pending turn held in memory may since have been discarded (and replaced)
        # by another object: check it before resending it or refusing a new turn.
        if position != len(history) or history.last_role == "user":
            sync_history(connection, conversation_id, history)
            if position != len(history):
                raise StoreError(
                    f"conversation {conversation_id!r}: stored turns end at {len(history)} "
                    f"but the next position is {position}"
                )
        pending = history.last_role == "user"
        if pending:
            _refuse_if_in_batch(connection, conversation_id, position - 1, now)
        if user_wire is None:
            if not pending and not (resume and history.last_role == "assistant"):
                raise NothingToRetry(
                    f"conversation {conversation_id!r} has no pending user turn to resend"
                )
        else:
            if pending:
                raise PendingTurn(conversation_id, position - 1)
            if after is not None and position != after + 1:
                raise StoreError(
                    f"conversation {conversation_id!r}: the turn at position {after} is no "
                    f"longer the newest (the turns end at {position - 1}): another process "
                    "answered it, so this turn is not stored"
                )
            rows.insert_messages(connection, conversation_id, position, [("user", user_wire)], now)
        if reply_id:
            _learn_reply_id(connection, conversation_id, history)
    if user_wire is not None:
        history.append("user", user_wire)
    return Turn(conversation_id, holder, len(history), now)


def _one_statement(engine: Engine) -> bool:
    """Whether the turn's writes go as single autocommitted statements (PostgreSQL:
    each saves the BEGIN and COMMIT round trips; SQLite runs in process)."""
    return engine.dialect.name == "postgresql"


def _begin_in_one_statement(
    engine: Engine,
    conversation_id: str,
    history: History,
    user_wire: bytes,
    lease: timedelta,
    holder: str,
    reply_id: bool,
) -> Turn | None:
    """The common case in one statement: ``history`` is current and has no pending
    turn, the conversation is free. ``None``: not so (busy, stale history, gone): the
    caller takes the general path, which tells which."""
    with writing(engine) as connection:
        now = utcnow()
        stored = rows.begin_user_turn_pg(
            connection, conversation_id, holder, now, now + lease, len(history), user_wire
        )
        if not stored:
            return None
        if reply_id:
            _learn_reply_id(connection, conversation_id, history)
    history.append("user", user_wire)
    return Turn(conversation_id, holder, len(history), now)


def _learn_reply_id(connection: Connection, conversation_id: str, history: History) -> None:
    """Read the newest reply's message id if ``history`` does not know it yet."""
    newest = history.newest_reply
    known = history.last_reply
    if newest is not None and (known is None or known[0] != newest):
        history.last_reply = (newest, rows.reply_message_id(connection, conversation_id, newest))


def finish_turn(
    engine: Engine,
    turn: Turn,
    history: History,
    response: MessagesResponseBody,
    latency_ms: int,
) -> None:
    """Store the reply and its usage row and release the lease, in one transaction.

    Raises:
        ConversationBusy: the lease ran out and another send took the conversation;
            nothing is stored (the reply would not follow the turn it answers).
    """
    wire = assistant_wire(response)
    with writing(engine) as connection:
        now = utcnow()
        values = usage_values(
            response,
            conversation_id=turn.conversation_id,
            position=turn.reply_position,
            started_at=turn.started_at,
            finished_at=now,
            latency_ms=latency_ms,
        )
        stored = rows.store_reply(
            connection,
            holder=turn.holder,
            expected_position=turn.reply_position,
            wire=wire,
            usage_values=values,
            now=now,
        )
        if not stored:
            raise ConversationBusy(turn.conversation_id)
    history.append("assistant", wire)
    history.last_reply = (turn.reply_position, response.id or None)


def abort_turn(
    engine: Engine,
    turn: Turn,
    billed: MessagesResponseBody | None = None,
    latency_ms: int = 0,
) -> None:
    """Give the conversation back after a failed send; the user turn stays pending.

    ``billed`` is the partial message of a stream that broke off after
    ``message_start``: the API charged for it, so its usage is recorded (outcome
    ``interrupted``, no message position) and totals match the bill.
    """
    with transaction(engine) as connection:
        rows.release_lease(connection, turn.conversation_id, turn.holder)
        if billed is not None:
            values = usage_values(
                billed,
                conversation_id=turn.conversation_id,
                position=None,
                started_at=turn.started_at,
                finished_at=utcnow(),
                latency_ms=latency_ms,
                outcome="interrupted",
            )
            rows.insert_usage(connection, values)


def discard_pending(
    engine: Engine, conversation_id: str, history: History, lease: timedelta
) -> None:
    """Drop the pending user turn, if any (under the lease: not during a send)."""
    holder = secrets.token_hex(16)
    with transaction(engine) as connection:
        now = utcnow()
        held_until = rows.acquire_lease(connection, conversation_id, holder, now, now + lease)
        if held_until is not None:
            raise ConversationBusy(conversation_id, expires_at=held_until)
        sync_history(connection, conversation_id, history)
        if history.last_role == "user":
            position = len(history) - 1
            _refuse_if_in_batch(connection, conversation_id, position, now)
            rows.delete_messages_from(connection, conversation_id, position)
            history.truncate(position)
        rows.release_lease(connection, conversation_id, holder)


def renew_turn(engine: Engine, turn: Turn, lease: timedelta) -> bool:
    """Extend the lease of a long send; whether it was still held."""
    with transaction(engine) as connection:
        return rows.renew_lease(connection, turn.conversation_id, turn.holder, utcnow() + lease)
