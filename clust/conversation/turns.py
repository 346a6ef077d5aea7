"""A turn's life in the database: claim the conversation, store the user turn, store
the reply and its usage, or give the claim back. Sync functions; the async API runs
them in worker threads.

A turn is two short write transactions around the HTTP call, never one long one:

1. ``begin``: take the lease (one send in flight per conversation, across
   processes), reserve the next position, catch up on turns other processes added,
   insert the user turn, and write the request's intent row in the usage ledger
   (outcome ``unknown``). Committed before the request leaves, so a crash of this
   process after this point leaves a pending user turn that ``retry`` resends, and
   an attempt the ledger lists as of unknown outcome (it may have been billed). On
   PostgreSQL this commit does not wait for its WAL flush (the reply's commit, which
   does, flushes it too): only a crash of the database server in between could undo
   it, and then ``finish`` finds its lease gone and stores nothing either.
2. ``finish``: check the lease is still ours and release it (or keep it, between two
   steps of a tool loop), insert the assistant turn, complete the attempt row. Or
   ``abort``: release the lease, complete the attempt as ``failed`` (nothing billed)
   or ``interrupted`` (a partial message billed); the user turn stays pending.

While the turn runs, the process's lease keeper (:mod:`clust.store.keeper`) renews
its lease every third of ``lease_seconds``; if a renewal finds the lease taken (an
operator broke it, or it ran out and another send took the conversation) or the
conversation deleted, the :class:`Turn` is marked ``lost`` and ``finish`` refuses
the reply, raising :class:`~clust.messages.LeaseLost` or
:class:`~clust.messages.ConversationDeleted`. The reply's usage is recorded either way.

On PostgreSQL each step is, in the common case, one statement (data-modifying CTEs)
run in autocommit: all or nothing by itself, it needs no BEGIN and COMMIT round trips.
``begin`` takes that path only when the history held is current and has no pending
turn; anything else (busy, stale, gone) falls back to the general transaction, which
tells which. Lease times there come from the database server's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from clust.conversation.history import History, assistant_wire
from clust.conversation.integrity import check_turns
from clust.conversation.records import usage_values
from clust.messages.errors import (
    ConversationBusy,
    ConversationDeleted,
    ConversationNotFound,
    LeaseLost,
    NothingToRetry,
    PendingTurn,
    StoreError,
    TurnInBatch,
)
from clust.messages.response import MessagesResponseBody
from clust.store import batches as batch_rows
from clust.store import repository as rows
from clust.store.engine import transaction, writing
from clust.store.keeper import KEEPER

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "DEFAULT_LEASE",
    "Turn",
    "abort_turn",
    "begin_attempt",
    "begin_turn",
    "discard_pending",
    "drop_attempt",
    "finish_attempt",
    "finish_turn",
    "hold_lease",
    "release_turn",
    "sync_history",
    "utcnow",
]

DEFAULT_LEASE = timedelta(seconds=30)
"""A store's lease unless it says otherwise (``Store(lease_seconds=...)``)."""


def utcnow() -> datetime:
    """Now, in UTC (every time the store writes)."""
    return datetime.now(timezone.utc)


@dataclass
class Turn:
    """A send in flight: who holds the conversation, and where the reply goes.

    Attributes:
        conversation_id: the conversation.
        holder: the lease holder id (``host:pid:random``); pass it to
            :func:`begin_turn` to send the next step of a tool loop under this lease.
        reply_position: where the reply goes.
        started_at: when the turn began (UTC).
        attempt_id: the usage ledger's row of this request (outcome ``unknown`` until
            :func:`finish_turn` or :func:`abort_turn` completes it).
        lease: the lease's length; the keeper renews it while this object is referred
            to and the turn is neither finished nor aborted.
        lost: set (by the keeper) once the lease was found taken or the conversation
            deleted: the reply will be refused.
        lost_reason: ``"taken"`` or ``"deleted"`` when ``lost``.
        model: the model the attempt row was written with, when known.
    """

    conversation_id: str
    holder: str
    reply_position: int
    started_at: datetime
    attempt_id: int | None = None
    lease: timedelta = DEFAULT_LEASE
    lost: bool = False
    lost_reason: str | None = None
    model: str | None = None


def sync_history(connection: Connection, conversation_id: str, history: History) -> None:
    """Append the turns stored after the ones ``history`` holds.

    The newest turn held is read back too: if it is no longer stored as held (another
    object discarded that pending turn, perhaps sending another since), the whole
    history is read again rather than sending a turn the store no longer has.
    Positions have no gaps, so the first row read is the one at ``known - 1``.

    Turns read are checked first (:func:`~clust.conversation.integrity.check_turns`):
    a corrupt one raises :class:`~clust.messages.CorruptConversation`, and nothing
    is appended.
    """
    known = len(history)
    if known == 0:
        history.extend(*_checked(connection, conversation_id, 0))
        return
    roles, wires, ttls = rows.load_turns(connection, conversation_id, known - 1)
    if wires and wires[0] == history.wires[-1] and roles[0] == history.roles[-1]:
        check_turns(conversation_id, known, roles[1:], wires[1:])
        history.extend(roles[1:], wires[1:], ttls[1:])
        return
    turns = _checked(connection, conversation_id, 0)
    history.truncate(0)
    history.extend(*turns)


def _checked(connection: Connection, conversation_id: str, start: int) -> rows.Turns:
    """The stored turns from ``start`` on, checked."""
    turns = rows.load_turns(connection, conversation_id, start)
    check_turns(conversation_id, start, turns.roles, turns.wires)
    return turns


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
    holder: str | None = None,
    model: str | None = None,
    attempt: bool = True,
    reserve: Callable[[Connection], tuple[int, int] | None] | None = None,
) -> Turn:
    """Claim the conversation, store the user turn (``None``: resend the pending one,
    or with ``resume`` send the history as it is, to continue a ``pause_turn`` reply)
    and write the request's intent row in the usage ledger; the lease keeper renews
    the lease from then on. With ``after``, the user turn is stored only right after
    the turn at that position (the tool results of a tool loop answer that reply, and
    nothing may come between). With ``reply_id``, the newest reply's message id is
    read too if ``history`` does not know it (for ``diagnostics.previous_message_id``).

    ``holder``: the :attr:`Turn.holder` of a turn finished with ``keep_lease=True``:
    this turn goes on under the same lease, without a second claim (a send holding
    another lease meanwhile is impossible; if this raises, the lease is still held:
    give it back with :func:`release_turn`). ``model``: the request's model, for the
    ledger (default: the conversation's). ``attempt=False``: no intent row (a turn sent
    in a Message Batch: its usage is recorded when the results are collected).
    ``reserve``: checks the budgets in this transaction once the history held is
    current (the new user turn not appended yet) and returns the reservation the
    intent row carries; what it raises rolls everything back.

    Raises:
        ConversationBusy: another send holds the conversation (``holder`` and
            ``expires_at`` say who and until when).
        PendingTurn: a new turn was given but the last one still waits for its reply.
        NothingToRetry: no turn was given and none is pending.
        StoreError: with ``after``, turns were stored after that position meanwhile.
    """
    holder = holder or rows.new_holder()
    current = after is None or len(history) == after + 1
    one_statement = reserve is None and _one_statement(engine)  # budgets: see reserve
    if user_wire is not None and history.last_role != "user" and current and one_statement:
        turn = _begin_in_one_statement(
            engine, conversation_id, history, user_wire, lease, holder, reply_id, model, attempt
        )
        if turn is not None:
            KEEPER.hold(engine, turn)
            return turn
    count = 0 if user_wire is None else 1
    with transaction(engine) as connection:
        now = utcnow()
        taken = rows.take_turn(connection, conversation_id, holder, now, lease, count)
        if taken.busy is not None:
            held = taken.busy
            raise ConversationBusy(conversation_id, expires_at=held.expires_at, holder=held.holder)
        position = taken.position
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
        attempt_id = None
        model = model or taken.model
        if attempt:
            reserved = None if reserve is None else reserve(connection)
            attempt_id = rows.insert_attempt(
                connection,
                conversation_id=conversation_id,
                model=model,
                started_at=now,
                holder=holder,
                reserved=reserved,
            )
        if reply_id:
            _learn_reply_id(connection, conversation_id, history)
    if user_wire is not None:
        history.append("user", user_wire)
    turn = Turn(conversation_id, holder, len(history), now, attempt_id, lease, model=model)
    KEEPER.hold(engine, turn)
    return turn


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
    model: str | None,
    attempt: bool,
) -> Turn | None:
    """The common case in one statement: ``history`` is current and has no pending
    turn, the conversation is free. ``None``: not so (busy, stale history, gone): the
    caller takes the general path, which tells which."""
    with writing(engine) as connection:
        now = utcnow()
        attempt_id = rows.begin_user_turn_pg(
            connection,
            conversation_id,
            holder,
            now,
            now + lease,
            len(history),
            user_wire,
            model=model,
            attempt=attempt,
        )
        if attempt_id is None:
            return None
        if reply_id:
            _learn_reply_id(connection, conversation_id, history)
    history.append("user", user_wire)
    return Turn(conversation_id, holder, len(history), now, attempt_id or None, lease)


def _learn_reply_id(connection: Connection, conversation_id: str, history: History) -> None:
    """Read the newest reply's message id if ``history`` does not know it yet."""
    newest = history.newest_reply
    known = history.last_reply
    if newest is not None and (known is None or known[0] != newest):
        history.last_reply = (newest, rows.reply_message_id(connection, conversation_id, newest))


def _record_discarded(
    connection: Connection,
    turn: Turn,
    discarded: Sequence[MessagesResponseBody],
    now: datetime,
) -> None:
    """One ``interrupted`` usage row per billed partial message of an earlier attempt
    of the same request (a stream the client reopened)."""
    for partial in discarded:
        values = usage_values(
            partial,
            conversation_id=turn.conversation_id,
            position=None,
            started_at=turn.started_at,
            finished_at=now,
            latency_ms=0,
            outcome="interrupted",
        )
        values["holder"] = turn.holder
        rows.insert_usage(connection, values)


def finish_turn(
    engine: Engine,
    turn: Turn,
    history: History,
    response: MessagesResponseBody,
    latency_ms: int,
    *,
    keep_lease: bool = False,
    discarded: Sequence[MessagesResponseBody] = (),
) -> None:
    """Store the reply, complete the turn's attempt row with its usage, and release the
    lease, in one transaction (one statement on PostgreSQL). ``discarded``: billed
    partial messages of earlier attempts of this request, each recorded as its own
    ``interrupted`` row.

    With ``keep_lease`` the lease stays held (and renewed) for the next step of a tool
    loop: :func:`begin_turn` with ``holder=turn.holder`` goes on under it, and
    :func:`release_turn` gives it back if the loop stops there.

    Raises (the reply is not stored; its usage is, as ``interrupted``):
        LeaseLost: the lease was taken meanwhile (broken by an operator, or run out
            and claimed by another send).
        ConversationDeleted: the conversation was deleted while the request ran.
    """
    if not keep_lease:
        KEEPER.let_go(engine, turn)  # released below, whatever happens
    wire = assistant_wire(response)
    held: rows.Held | None = None
    with (transaction if discarded else writing)(engine) as connection:
        now = utcnow()
        values = usage_values(
            response,
            conversation_id=turn.conversation_id,
            position=turn.reply_position,
            started_at=turn.started_at,
            finished_at=now,
            latency_ms=latency_ms,
        )
        values["holder"] = turn.holder
        stored = rows.store_reply(
            connection,
            holder=turn.holder,
            expected_position=turn.reply_position,
            wire=wire,
            usage_values=values,
            now=now,
            attempt_id=turn.attempt_id,
            keep_lease=turn.lease if keep_lease else None,
            attempt_model=turn.model,
        )
        _record_discarded(connection, turn, discarded, now)
        if not stored:
            held = rows.lease_state(connection, turn.conversation_id)
    if not stored:
        KEEPER.let_go(engine, turn)
        turn.lost = True
        if held is None:
            turn.lost_reason = "deleted"
            raise ConversationDeleted(turn.conversation_id)
        turn.lost_reason = "taken"
        who = "nobody holds it now" if held.holder is None else f"{held.holder} holds it now"
        raise LeaseLost(turn.conversation_id, who)
    history.append("assistant", wire)
    history.last_reply = (turn.reply_position, response.id or None)


def abort_turn(
    engine: Engine,
    turn: Turn,
    billed: MessagesResponseBody | None = None,
    latency_ms: int = 0,
    *,
    discarded: Sequence[MessagesResponseBody] = (),
    outcome: str | None = None,
) -> None:
    """Give the conversation back after a failed send; the user turn stays pending.

    The turn's attempt row is completed: ``billed`` is the partial message of a stream
    that broke off after ``message_start`` (the API charged for it: outcome
    ``interrupted``, no message position); without it, outcome ``failed`` (the API
    answered with an error: nothing billed). ``outcome="unknown"`` leaves the attempt
    open, listed as of unknown outcome: for a request that may have been billed
    without a message reaching us (timed out or cut off after it was sent, a 200 whose
    body could not be read). An attempt already completed (by a :func:`finish_turn`
    that raised) is left as it is. ``discarded``: as for :func:`finish_turn`.
    """
    KEEPER.let_go(engine, turn)
    with transaction(engine) as connection:
        rows.release_lease(connection, turn.conversation_id, turn.holder)
        now = utcnow()
        values = None
        if billed is not None:
            values = usage_values(
                billed,
                conversation_id=turn.conversation_id,
                position=None,
                started_at=turn.started_at,
                finished_at=now,
                latency_ms=latency_ms,
                outcome="interrupted",
            )
            values["holder"] = turn.holder
        if turn.attempt_id is None:
            if values is not None:
                rows.insert_usage(connection, values)
        elif values is not None:
            rows.complete_attempt(connection, turn.attempt_id, values)
        elif outcome != "unknown":
            rows.fail_attempt(connection, turn.attempt_id, now, latency_ms)
        _record_discarded(connection, turn, discarded, now)


def release_turn(engine: Engine, turn: Turn) -> bool:
    """Give back the lease a turn kept (``finish_turn(..., keep_lease=True)``) when
    the tool loop stops before its next step; whether it was still held."""
    KEEPER.let_go(engine, turn)
    with writing(engine) as connection:
        return rows.release_lease(connection, turn.conversation_id, turn.holder)


def _claim(connection: Connection, conversation_id: str, holder: str, lease: timedelta) -> datetime:
    """Take the lease for ``holder`` in the caller's transaction; the time it was taken.

    Raises:
        ConversationBusy: another holder has it.
    """
    now = utcnow()
    busy: list[rows.Held] = []
    held_until = rows.acquire_lease(
        connection, conversation_id, holder, now, now + lease, busy=busy
    )
    if held_until is not None:
        raise ConversationBusy(conversation_id, expires_at=held_until, holder=busy[0].holder)
    return now


def hold_lease(engine: Engine, conversation_id: str, history: History, lease: timedelta) -> Turn:
    """Take the conversation's lease for a step that stores no user turn first (a
    resumed tool loop runs the last reply's tools under it), read the turns stored
    since ``history`` was read, and keep the lease renewed until it is released
    (:func:`release_turn`) or taken over by the next turn (``begin_turn(holder=...)``).

    Raises:
        ConversationBusy: another send holds the conversation.
    """
    holder = rows.new_holder()
    with transaction(engine) as connection:
        now = _claim(connection, conversation_id, holder, lease)
        sync_history(connection, conversation_id, history)
    turn = Turn(conversation_id, holder, len(history), now, None, lease)
    KEEPER.hold(engine, turn)
    return turn


def drop_attempt(engine: Engine, turn: Turn) -> None:
    """Delete the ledger's intent row of a turn refused before its request left (it
    was never sent, so it was not billed and must not count as maybe billed)."""
    if turn.attempt_id is not None:
        with writing(engine) as connection:
            rows.drop_attempt(connection, turn.attempt_id)


def discard_pending(
    engine: Engine, conversation_id: str, history: History, lease: timedelta
) -> None:
    """Drop the pending user turn, if any (under the lease: not during a send)."""
    holder = rows.new_holder()
    with transaction(engine) as connection:
        now = _claim(connection, conversation_id, holder, lease)
        sync_history(connection, conversation_id, history)
        if history.last_role == "user":
            position = len(history) - 1
            _refuse_if_in_batch(connection, conversation_id, position, now)
            rows.delete_messages_from(connection, conversation_id, position)
            history.truncate(position)
        rows.release_lease(connection, conversation_id, holder)


def begin_attempt(engine: Engine, conversation_id: str, model: str | None = None) -> int:
    """Write the usage ledger's intent row of a request sent outside a turn (outcome
    ``unknown`` until :func:`finish_attempt`); its id. ``model`` ``None``: the
    conversation's.

    Raises:
        ConversationNotFound: there is no such conversation (``model`` ``None``).
    """
    with writing(engine) as connection:
        try:
            return rows.insert_attempt(
                connection, conversation_id=conversation_id, model=model, started_at=utcnow()
            )
        except LookupError:
            raise ConversationNotFound(conversation_id) from None


def finish_attempt(
    engine: Engine,
    attempt_id: int,
    conversation_id: str,
    response: MessagesResponseBody | None,
    *,
    outcome: str,
    latency_ms: int,
) -> bool:
    """Complete the intent row of :func:`begin_attempt` with what ``response`` used
    and ``outcome`` (e.g. ``"summary"``, ``"interrupted"``); ``response`` ``None``:
    ``failed``, nothing billed. Whether it was still open (a completed one is left
    as it is). To complete it in a transaction of your own, use
    :func:`clust.store.repository.complete_attempt`."""
    with writing(engine) as connection:
        now = utcnow()
        if response is None:
            return rows.fail_attempt(connection, attempt_id, now, latency_ms)
        values = usage_values(
            response,
            conversation_id=conversation_id,
            position=None,
            started_at=now,
            finished_at=now,
            latency_ms=latency_ms,
            outcome=outcome,
        )
        return rows.complete_attempt(connection, attempt_id, values)
