"""The lease and a turn's statements: claim the conversation, reserve positions, store
the turns and complete the usage ledger's attempt row, renew, release or break.

The lease lives on the conversation row: claiming it, reserving positions and
releasing it are one UPDATE of the row the counter is on anyway. A lease is free when
nobody holds it, when its expiry has passed, or for its own holder (a tool loop keeps
its lease from one step to the next).

Clocks: on PostgreSQL every lease time comes from the database server's clock
(``clock_timestamp()`` in the SQL; the caller's ``now`` and ``expires_at`` only give
the lease's length), so application servers whose clocks disagree cannot take a live
lease from each other. SQLite runs on one machine: its lease times are Python's.

Waiting in line across processes: a process may reserve a conversation's next turn
(:mod:`clust.store.reservations`); while its reservation is live, a free lease goes
to no other process (``:me`` in the claims). Every statement that releases a lease
tells this process's waiters (:func:`clust.store.waiters.released`).

On PostgreSQL a turn's two writes are each one statement (data-modifying CTEs), all or
nothing even in autocommit: ``begin`` takes the lease, stores the user turn and writes
the attempt's intent row; ``store_reply`` releases the lease, stores the reply and
completes the attempt row, or, when the lease is no longer ours, completes it alone
(the reply was billed all the same).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection

from clust.messages.errors import ConversationNotFound
from clust.protocol.markers import stored_ttls
from clust.store import waiters
from clust.store.message_rows import insert_messages
from clust.store.sql import Sql, db_time, read_time
from clust.store.usage_rows import (
    ATTEMPT_SELECT,
    COMPLETION_SET,
    USAGE_COLUMNS,
    complete_attempt,
    completion_params,
    insert_usage,
)

__all__ = [
    "Held",
    "Taken",
    "acquire_lease",
    "begin_user_turn_pg",
    "break_lease",
    "claim_and_take",
    "lease_state",
    "new_holder",
    "release_lease",
    "renew_lease",
    "renew_leases",
    "store_reply",
    "take_turn",
    "this_process",
]

_HOST = socket.gethostname()[:32]
_prefix = f"{_HOST}:{os.getpid()}:"


def _forked() -> None:
    global _prefix
    _prefix = f"{_HOST}:{os.getpid()}:"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def new_holder() -> str:
    """A new lease holder id, ``host:pid:random``: unique per turn, and it tells an
    operator which process holds a conversation."""
    return _prefix + secrets.token_hex(8)


def this_process() -> str:
    """The prefix of this process's lease holder ids, ``host:pid:``."""
    return _prefix


class Held(NamedTuple):
    """Who holds a conversation's lease, and until when (``None``: nobody)."""

    holder: str | None
    expires_at: datetime | None


def _postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def _lease_params(connection: Connection, now: datetime, expires_at: datetime) -> dict[str, Any]:
    """``now`` and the expiry for SQLite, the lease's length for PostgreSQL's clock."""
    if _postgres(connection):
        return {"now": now, "lease": expires_at - now}
    return {"now": db_time(connection, now), "expires_at": db_time(connection, expires_at)}


def _free(now: str) -> str:
    """The lease may be taken: it is the taker's own, or it is free (nobody holds it,
    or it ran out) and no other process reserved the next turn (``:me``: this one)."""
    return (
        f"(lease_holder = :holder OR ((lease_holder IS NULL OR lease_expires_at <= {now}) "
        f"AND (lease_next IS NULL OR lease_next = :me OR lease_next_until <= {now})))"
    )


# A claim serves this process's reservation of the next turn, if it had one.
_SERVED = "lease_next = CASE WHEN lease_next = :me THEN NULL ELSE lease_next END"


_SQLITE_NOW, _PG_NOW = ":now", "clock_timestamp()"
_SQLITE_EXPIRY, _PG_EXPIRY = ":expires_at", "clock_timestamp() + :lease"


def _both(template: str) -> tuple[Sql, Sql]:
    """``template`` for SQLite and for PostgreSQL (``{free}``, ``{expiry}``, ``{now}``)."""
    return (
        Sql(template.format(free=_free(_SQLITE_NOW), expiry=_SQLITE_EXPIRY, now=_SQLITE_NOW)),
        Sql(template.format(free=_free(_PG_NOW), expiry=_PG_EXPIRY, now=_PG_NOW)),
    )


_CLAIM = _both(
    """UPDATE clust_conversations SET lease_holder = :holder, lease_expires_at = {expiry},
    """
    + _SERVED
    + """ WHERE id = :id AND {free} RETURNING lease_holder"""
)
_LEASE_STATE = Sql("SELECT lease_holder, lease_expires_at FROM clust_conversations WHERE id = :id")
_RENEW = _both(
    """UPDATE clust_conversations SET lease_expires_at = {expiry}
    WHERE id = :id AND lease_holder = :holder"""
)
_RELEASE = Sql(
    """UPDATE clust_conversations SET lease_holder = NULL, lease_expires_at = NULL
    WHERE id = :id AND lease_holder = :holder"""
)


def lease_state(connection: Connection, conversation_id: str) -> Held | None:
    """The conversation's lease as stored (an expired one included), or ``None`` when
    there is no such conversation."""
    row = _LEASE_STATE.one(connection, {"id": conversation_id})
    if row is None:
        return None
    return Held(row[0], None if row[1] is None else read_time(row[1]))


def _busy(connection: Connection, conversation_id: str, fallback: datetime) -> Held:
    """After a refused claim: the current holder (``fallback`` as expiry if the lease
    was given back in between).

    Raises:
        ConversationNotFound: there is no such conversation.
    """
    held = lease_state(connection, conversation_id)
    if held is None:
        raise ConversationNotFound(conversation_id)
    return held if held.expires_at is not None else Held(held.holder, fallback)


def acquire_lease(
    connection: Connection,
    conversation_id: str,
    holder: str,
    now: datetime,
    expires_at: datetime,
    *,
    busy: list[Held] | None = None,
) -> datetime | None:
    """Claim the conversation for ``holder`` until ``expires_at`` (on PostgreSQL: for
    ``expires_at - now`` by the server's clock); ``None`` on success, else the current
    holder's expiry (and, with ``busy``, its :class:`Held` appended there). An expired
    lease is taken over.

    Raises:
        ConversationNotFound: there is no such conversation.
    """
    params = _lease_params(connection, now, expires_at)
    params.update(id=conversation_id, holder=holder, me=_prefix)
    if _CLAIM[_postgres(connection)].one(connection, params) is not None:
        return None
    held = _busy(connection, conversation_id, expires_at)
    if busy is not None:
        busy.append(held)
    return held.expires_at


def renew_lease(
    connection: Connection, conversation_id: str, holder: str, expires_at: datetime
) -> bool:
    """Extend ``holder``'s lease to ``expires_at`` (on PostgreSQL: by the time left
    until then, from the server's clock); whether it still held it."""
    now = datetime.now(expires_at.tzinfo)
    params = _lease_params(connection, now, expires_at)
    params.update(id=conversation_id, holder=holder)
    return _RENEW[_postgres(connection)].count(connection, params) > 0


# The keeper renews every lease of an engine at once. PostgreSQL: rows another
# transaction has locked are skipped (never waited for: no lock-order deadlock with a
# transaction that holds several conversations) and asked about one by one.
_RENEW_MANY_PG = Sql(
    """WITH wanted AS (
        SELECT c.id FROM clust_conversations c
        JOIN unnest(CAST(:ids AS varchar[]), CAST(:holders AS varchar[])) AS w(id, holder)
            ON c.id = w.id AND c.lease_holder = w.holder
        FOR UPDATE OF c SKIP LOCKED
    )
    UPDATE clust_conversations SET lease_expires_at = clock_timestamp() + :lease
    FROM wanted WHERE clust_conversations.id = wanted.id
    RETURNING clust_conversations.id"""
)


def renew_leases(
    connection: Connection, held: Sequence[tuple[str, str]], lease: timedelta, now: datetime
) -> set[str]:
    """Extend by ``lease`` each ``(conversation_id, holder)`` lease still held; the ids
    of those renewed. One statement on PostgreSQL (a row locked meanwhile is retried
    alone), one per lease in the caller's transaction on SQLite."""
    if not held:
        return set()
    if _postgres(connection):
        params = {"ids": [i for i, _ in held], "holders": [h for _, h in held], "lease": lease}
        cursor = _RENEW_MANY_PG.run(connection, params)
        renewed = {str(row[0]) for row in cursor.fetchall()}
        cursor.close()
        for conversation_id, holder in held:
            if conversation_id not in renewed:
                alone = {"id": conversation_id, "holder": holder, "lease": lease}
                if _RENEW[True].count(connection, alone):
                    renewed.add(conversation_id)
        return renewed
    expires_at = db_time(connection, now + lease)
    return {
        conversation_id
        for conversation_id, holder in held
        if _RENEW[False].count(
            connection, {"id": conversation_id, "holder": holder, "expires_at": expires_at}
        )
    }


def release_lease(connection: Connection, conversation_id: str, holder: str) -> bool:
    """Give the conversation back; whether ``holder`` still held it."""
    released = _RELEASE.count(connection, {"id": conversation_id, "holder": holder}) > 0
    if released:
        waiters.released(connection.engine.url, conversation_id)
    return released


_LIVE_LEASE = _both(
    """SELECT lease_holder, lease_expires_at, lease_expires_at > {now}
    FROM clust_conversations WHERE id = :id"""
)
_CLEAR = Sql(
    """UPDATE clust_conversations SET lease_holder = NULL, lease_expires_at = NULL
    WHERE id = :id AND lease_holder IS NOT NULL"""
)


def break_lease(connection: Connection, conversation_id: str, now: datetime) -> Held | None:
    """Take the lease from whoever holds it (an operator's repair: its holder's reply
    will be refused, with ``LeaseLost``). Returns the lease that was live, or ``None``
    (nobody held it, or it had run out; a stale holder is cleared too). Run it in a
    write transaction.

    Raises:
        ConversationNotFound: there is no such conversation.
    """
    postgres = _postgres(connection)
    params: dict[str, Any] = {"id": conversation_id}
    if not postgres:
        params["now"] = db_time(connection, now)
    row = _LIVE_LEASE[postgres].one(connection, params)
    if row is None:
        raise ConversationNotFound(conversation_id)
    holder, expires_at, live = row
    if holder is None:
        return None
    _CLEAR.run(connection, {"id": conversation_id}).close()
    waiters.released(connection.engine.url, conversation_id)
    return Held(holder, read_time(expires_at)) if live else None


# -- a turn's statements -----------------------------------------------------------------

# On PostgreSQL, setting synchronous_commit off for the statement's own transaction
# lets a turn's first write commit without waiting for its WAL flush (see claim_and_take).
_CLAIM_AND_TAKE_SQL = (
    """UPDATE clust_conversations SET lease_holder = :holder,
    lease_expires_at = {expiry}, next_position = next_position + :count, updated_at = :now, """
    + _SERVED
    + """ WHERE id = :id AND {free} RETURNING next_position, model"""
)
_CLAIM_AND_TAKE = (
    _both(_CLAIM_AND_TAKE_SQL)[0],
    Sql(
        _CLAIM_AND_TAKE_SQL.format(free=_free(_PG_NOW), expiry=_PG_EXPIRY)
        + ", set_config('synchronous_commit', 'off', true)"
    ),
)


class Taken(NamedTuple):
    """What :func:`take_turn` found: the first position reserved and the conversation's
    model, or (``position`` -1) who holds the conversation."""

    position: int
    model: str | None
    busy: Held | None


def take_turn(
    connection: Connection,
    conversation_id: str,
    holder: str,
    now: datetime,
    lease: timedelta,
    count: int,
) -> Taken:
    """Start a turn's transaction: take the lease for ``lease`` (by the server's clock
    on PostgreSQL) and reserve ``count`` positions, in one statement.

    On PostgreSQL the statement also lets this transaction commit without waiting for
    its WAL flush: the reply's commit, which waits, flushes it too, and if a server
    crash undid it, the reply finds its lease gone and is not stored either. (SQLite in
    WAL mode with synchronous=NORMAL commits without an fsync anyway.)

    Raises:
        ConversationNotFound: there is no such conversation.
    """
    params = _lease_params(connection, now, now + lease)
    params.update(id=conversation_id, holder=holder, count=count, me=_prefix)
    row = _CLAIM_AND_TAKE[_postgres(connection)].one(connection, params)
    if row is None:
        return Taken(-1, None, _busy(connection, conversation_id, now + lease))
    return Taken(int(row[0]) - count, row[1], None)


def claim_and_take(
    connection: Connection,
    conversation_id: str,
    holder: str,
    now: datetime,
    expires_at: datetime,
    count: int,
) -> tuple[datetime | None, int]:
    """:func:`take_turn` until ``expires_at`` (on PostgreSQL: for ``expires_at - now``
    by the server's clock). Returns ``(None, first_position)`` on success,
    ``(holder_expiry, -1)`` when the conversation is busy.

    Raises:
        ConversationNotFound: there is no such conversation.
    """
    taken = take_turn(connection, conversation_id, holder, now, expires_at - now, count)
    if taken.busy is not None:
        return taken.busy.expires_at, -1
    return None, taken.position


_BEGIN_TURN_PG = Sql(
    f"""WITH moved AS (
        UPDATE clust_conversations SET lease_holder = :holder,
            lease_expires_at = {_PG_EXPIRY}, next_position = next_position + 1,
            updated_at = :now, {_SERVED}
        WHERE id = :id AND next_position = :expected AND {_free(_PG_NOW)}
        RETURNING id, next_position - 1 AS position, model,
            set_config('synchronous_commit', 'off', true) AS relaxed
    ), message AS (
        INSERT INTO clust_messages (conversation_id, position, role, wire, created_at, cache_ttls)
        SELECT :id, position, 'user', :wire, :now, :ttls FROM moved
        RETURNING position
    ), attempt AS (
        INSERT INTO clust_usage ({", ".join(USAGE_COLUMNS)})
        {ATTEMPT_SELECT} FROM moved
        RETURNING id
    )
    SELECT attempt.id FROM attempt, message"""
)
_BEGIN_TURN_NO_ATTEMPT_PG = Sql(
    _BEGIN_TURN_PG.named[: _BEGIN_TURN_PG.named.index(", attempt AS (")] + " SELECT 0 FROM message"
)


def begin_user_turn_pg(
    connection: Connection,
    conversation_id: str,
    holder: str,
    now: datetime,
    expires_at: datetime,
    expected_position: int,
    wire: bytes,
    *,
    model: str | None = None,
    attempt: bool = True,
) -> int | None:
    """PostgreSQL, in one statement: take the lease (for ``expires_at - now`` by the
    server's clock), store the user turn at ``expected_position`` and write the
    attempt's intent row (``model``: the request's, ``None`` for the conversation's),
    only if the conversation is free (or held by ``holder``) and that is its next
    position. Returns the attempt row's id (0 with ``attempt=False``: no intent row
    is written), or ``None`` if it was not done (then nothing was written).

    All or nothing, so it may run in autocommit (one round trip, and its commit does
    not wait for the WAL flush: see :func:`claim_and_take`).
    """
    params = {
        "id": conversation_id,
        "conversation_id": conversation_id,
        "holder": holder,
        "me": _prefix,
        "lease": expires_at - now,
        "now": now,
        "started_at": now,
        "model": model,
        "expected": expected_position,
        "wire": wire.decode(),
        "ttls": stored_ttls(wire),
    }
    row = (_BEGIN_TURN_PG if attempt else _BEGIN_TURN_NO_ATTEMPT_PG).one(connection, params)
    return None if row is None else int(row[0])


# The reply: the lease is released (or, keeping it, extended), the position taken,
# the turn inserted and the attempt completed: "reply" with its position, or
# "interrupted" when the lease or position was lost (nothing else written then).
_KEEP = """lease_holder = CASE WHEN :keep THEN lease_holder END,
    lease_expires_at = CASE WHEN :keep THEN {expiry} END"""
_REPLY_PG = f"""WITH moved AS (
        UPDATE clust_conversations SET {_KEEP.format(expiry=_PG_EXPIRY)},
            next_position = next_position + 1, updated_at = :now
        WHERE id = :conversation_id AND lease_holder = :holder AND next_position = :expected
        RETURNING next_position - 1 AS position
    ), message AS (
        INSERT INTO clust_messages (conversation_id, position, role, wire, created_at, cache_ttls)
        SELECT :conversation_id, position, 'assistant', :wire, :now, :ttls FROM moved
        RETURNING position
    )"""
_STORE_REPLY_PG = Sql(
    _REPLY_PG
    + f""", done AS (
        UPDATE clust_usage SET {COMPLETION_SET},
            message_position = (SELECT position FROM message),
            outcome = CASE WHEN EXISTS (SELECT 1 FROM message) THEN 'reply' ELSE 'interrupted' END
        WHERE id = :attempt AND outcome = 'unknown'
        RETURNING id
    )
    SELECT (SELECT position FROM message), (SELECT id FROM done)"""
)
_STORE_REPLY_NO_ATTEMPT_PG = Sql(
    _REPLY_PG
    + f"""
    INSERT INTO clust_usage ({", ".join(USAGE_COLUMNS)})
    SELECT {", ".join("position" if c == "message_position" else ":" + c for c in USAGE_COLUMNS)}
    FROM message
    RETURNING message_position"""
)
_RELEASE_AND_TAKE = Sql(
    f"""UPDATE clust_conversations SET {_KEEP.format(expiry=_SQLITE_EXPIRY)},
        next_position = next_position + 1, updated_at = :now
    WHERE id = :id AND lease_holder = :holder AND next_position = :expected
    RETURNING next_position"""
)


def store_reply(
    connection: Connection,
    *,
    holder: str,
    expected_position: int,
    wire: bytes,
    usage_values: Mapping[str, Any],
    now: datetime,
    attempt_id: int | None = None,
    keep_lease: timedelta | None = None,
    attempt_model: str | None = None,
) -> bool:
    """Release ``holder``'s lease, store the assistant turn at ``expected_position``
    and its usage: attempt ``attempt_id`` completed as ``reply`` (without an attempt, a
    new usage row). Whether it was stored; if the lease or the position was lost,
    nothing is stored but the attempt, completed as ``interrupted`` (billed all the
    same; without an attempt nothing is written). With ``keep_lease`` the lease is
    kept (and extended by that much) for the next step of a tool loop.
    ``attempt_model``: the model the attempt row holds, when known (SQLite then leaves
    an unchanged model, and its index entry, alone).

    On PostgreSQL this is one statement (data-modifying CTEs), all or nothing even
    outside a transaction, so the caller may run it in autocommit: a turn's commit is
    mostly round trips there. SQLite runs in process and takes the plain statements.
    """
    conversation_id = usage_values["conversation_id"]
    keep = keep_lease is not None
    if _postgres(connection):
        params = completion_params(connection, usage_values)
        params.update(
            conversation_id=conversation_id,
            holder=holder,
            expected=expected_position,
            wire=wire.decode(),
            ttls=stored_ttls(wire),
            now=now,
            keep=keep,
            lease=keep_lease or timedelta(0),
            attempt=attempt_id,
        )
        if attempt_id is None:
            params.update({name: usage_values[name] for name in USAGE_COLUMNS if name != "holder"})
            params.update(message_position=expected_position, holder=holder)
            stored = _STORE_REPLY_NO_ATTEMPT_PG.one(connection, params) is not None
        else:
            row = _STORE_REPLY_PG.one(connection, params)
            stored = row is not None and row[0] is not None
        if stored and not keep:
            waiters.released(connection.engine.url, conversation_id)
        return stored
    moved = _RELEASE_AND_TAKE.one(
        connection,
        {
            "id": conversation_id,
            "holder": holder,
            "expected": expected_position,
            "now": db_time(connection, now),
            "keep": keep,
            "expires_at": db_time(connection, now + (keep_lease or timedelta(0))),
        },
    )
    stored = moved is not None
    if stored:
        insert_messages(connection, conversation_id, expected_position, [("assistant", wire)], now)
        if not keep:
            waiters.released(connection.engine.url, conversation_id)
    if attempt_id is None:
        if stored:
            insert_usage(connection, usage_values)
        return stored
    complete_attempt(
        connection,
        attempt_id,
        usage_values,
        position=expected_position if stored else None,
        outcome="reply" if stored else "interrupted",
        attempt_model=attempt_model,
    )
    return stored
