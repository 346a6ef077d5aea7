"""The store's queries: rows in, rows out, one function per statement (no HTTP here).

Every function takes a connection inside a transaction opened by the caller, so a
turn's statements commit or roll back together. Hot queries are led by the
conversation id: opening a conversation is a primary key lookup, loading its history
a range scan of the ``(conversation_id, position)`` primary key, and appending a turn
one counter update plus inserts. ``tests/store/test_query_plans.py`` checks the plans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from clust.store.schema import ConversationRow, LeaseRow, MessageRow, UsageRow

__all__ = [
    "acquire_lease",
    "delete_conversation",
    "delete_messages_from",
    "get_conversation",
    "insert_conversation",
    "insert_messages",
    "insert_usage",
    "list_conversations",
    "load_messages",
    "load_usage",
    "release_lease",
    "take_positions",
    "usage_totals",
]

conversations = cast(Table, ConversationRow.__table__)
messages = cast(Table, MessageRow.__table__)
usage = cast(Table, UsageRow.__table__)
leases = cast(Table, LeaseRow.__table__)


def insert_conversation(connection: Connection, values: Mapping[str, Any]) -> None:
    """Add a conversation row (``values`` keyed by column name)."""
    connection.execute(insert(conversations), [dict(values)])


def get_conversation(connection: Connection, conversation_id: str) -> Row[Any] | None:
    """The conversation row with this id, or ``None``."""
    return connection.execute(
        select(conversations).where(conversations.c.id == conversation_id)
    ).first()


def list_conversations(
    connection: Connection,
    *,
    limit: int,
    after: str | None,
    metadata: Mapping[str, Any] | None,
) -> Sequence[Row[Any]]:
    """Conversations newest first; ``after`` is the id of the last row of the previous page."""
    query = select(conversations).order_by(
        conversations.c.created_at.desc(), conversations.c.id.desc()
    )
    if after is not None:
        cursor = (
            select(conversations.c.created_at, conversations.c.id)
            .where(conversations.c.id == after)
            .subquery()
        )
        query = query.where(
            tuple_(conversations.c.created_at, conversations.c.id)
            < tuple_(
                select(cursor.c.created_at).scalar_subquery(),
                select(cursor.c.id).scalar_subquery(),
            )
        )
    if metadata:
        query = query.where(_metadata_matches(connection, metadata))
    return connection.execute(query.limit(limit)).all()


def _metadata_matches(connection: Connection, wanted: Mapping[str, Any]) -> Any:
    column = conversations.c.metadata
    if connection.dialect.name == "postgresql":
        return column.op("@>")(literal(dict(wanted), JSONB))
    conditions = []
    for key, value in wanted.items():
        path = '$."' + key.replace('"', '""') + '"'
        kind = func.json_type(column, path)
        if value is None:
            conditions.append(kind == "null")
        elif isinstance(value, bool):
            conditions.append(kind == ("true" if value else "false"))
        else:
            # json_extract gives 1 for true: match the JSON type too, as `@>` does.
            kinds = ("text",) if isinstance(value, str) else ("integer", "real")
            conditions.append(kind.in_(kinds))
            conditions.append(func.json_extract(column, path) == value)
    return and_(*conditions)


def delete_conversation(connection: Connection, conversation_id: str) -> bool:
    """Delete a conversation and its messages; whether it existed."""
    result = connection.execute(delete(conversations).where(conversations.c.id == conversation_id))
    return bool(result.rowcount)


def take_positions(
    connection: Connection, conversation_id: str, count: int, now: datetime
) -> int | None:
    """Reserve ``count`` message positions; return the first (``None``: no such conversation).

    The counter update locks the conversation row (PostgreSQL) or runs under the
    write lock (SQLite), so concurrent writers get consecutive, distinct positions.
    """
    next_position = connection.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(next_position=conversations.c.next_position + count, updated_at=now)
        .returning(conversations.c.next_position)
    ).scalar()
    return None if next_position is None else int(next_position) - count


def insert_messages(
    connection: Connection,
    conversation_id: str,
    first_position: int,
    turns: Sequence[tuple[str, str]],
    now: datetime,
) -> None:
    """Insert ``(role, wire JSON)`` turns at consecutive positions from ``first_position``."""
    connection.execute(
        insert(messages),
        [
            {
                "conversation_id": conversation_id,
                "position": first_position + offset,
                "role": role,
                "wire": wire,
                "created_at": now,
            }
            for offset, (role, wire) in enumerate(turns)
        ],
    )


def load_messages(
    connection: Connection, conversation_id: str, start: int = 0, stop: int | None = None
) -> Sequence[Row[int, str, str]]:
    """``(position, role, wire)`` of the turns from ``start`` (up to ``stop``), in order."""
    query = select(messages.c.position, messages.c.role, messages.c.wire).where(
        messages.c.conversation_id == conversation_id, messages.c.position >= start
    )
    if stop is not None:
        query = query.where(messages.c.position < stop)
    return connection.execute(query.order_by(messages.c.position)).all()


def delete_messages_from(connection: Connection, conversation_id: str, position: int) -> None:
    """Drop the turns from ``position`` on and give their positions back."""
    connection.execute(
        delete(messages).where(
            messages.c.conversation_id == conversation_id, messages.c.position >= position
        )
    )
    connection.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(next_position=position)
    )


def insert_usage(connection: Connection, values: Mapping[str, Any]) -> None:
    """Record what one request cost."""
    connection.execute(insert(usage), [dict(values)])


def load_usage(connection: Connection, conversation_id: str) -> Sequence[Row[Any]]:
    """The usage rows of a conversation, oldest first."""
    return connection.execute(
        select(usage)
        .where(usage.c.conversation_id == conversation_id)
        .order_by(usage.c.message_position)
    ).all()


_TOTALLED = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "web_search_requests",
    "web_fetch_requests",
)


def usage_totals(connection: Connection, conversation_id: str) -> dict[str, int]:
    """Sums of every token count of a conversation, and ``requests``."""
    row = connection.execute(
        select(
            func.count().label("requests"),
            *(func.coalesce(func.sum(usage.c[name]), 0).label(name) for name in _TOTALLED),
        ).where(usage.c.conversation_id == conversation_id)
    ).one()
    return {name: int(value) for name, value in row._mapping.items()}


def acquire_lease(
    connection: Connection,
    conversation_id: str,
    holder: str,
    now: datetime,
    expires_at: datetime,
) -> datetime | None:
    """Claim the conversation for ``holder``; ``None`` on success, else the current
    holder's expiry. An expired lease is taken over."""
    dialect = connection.dialect.name
    make_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = make_insert(leases).values(
        conversation_id=conversation_id, holder=holder, expires_at=expires_at
    )
    claim = statement.on_conflict_do_update(
        index_elements=[leases.c.conversation_id],
        set_={"holder": holder, "expires_at": expires_at},
        where=leases.c.expires_at <= now,
    ).returning(leases.c.holder)
    if connection.execute(claim).first() is not None:
        return None
    expiry = connection.execute(
        select(leases.c.expires_at).where(leases.c.conversation_id == conversation_id)
    ).scalar()
    return expiry if expiry is not None else expires_at


def renew_lease(
    connection: Connection, conversation_id: str, holder: str, expires_at: datetime
) -> bool:
    """Extend ``holder``'s lease; whether it still held it."""
    result = connection.execute(
        update(leases)
        .where(leases.c.conversation_id == conversation_id, leases.c.holder == holder)
        .values(expires_at=expires_at)
    )
    return bool(result.rowcount)


def release_lease(connection: Connection, conversation_id: str, holder: str) -> bool:
    """Give the conversation back; whether ``holder`` still held it."""
    result = connection.execute(
        delete(leases).where(leases.c.conversation_id == conversation_id, leases.c.holder == holder)
    )
    return bool(result.rowcount)
