"""The turns of a conversation (``clust_messages``): insert, load, drop.

Loading a history is a range scan of the ``(conversation_id, position)`` primary key.
History comes back as UTF-8 bytes (``CAST(wire AS BLOB)`` on SQLite, a binary cursor
on PostgreSQL), so it reaches the request body without a decode and re-encode.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, delete, update

from clust.protocol.markers import stored_ttls
from clust.store.schema import ConversationRow, MessageRow
from clust.store.sql import Sql, db_time, driver_error, watched

__all__ = ["Turns", "delete_messages_from", "insert_messages", "load_turns", "messages"]

conversations = cast(Table, ConversationRow.__table__)
messages = cast(Table, MessageRow.__table__)

_INSERT_MESSAGE = Sql(
    """INSERT INTO clust_messages (conversation_id, position, role, wire, created_at, cache_ttls)
    VALUES (:id, :position, :role, :wire, :now, :ttls)"""
)


def insert_messages(
    connection: Connection,
    conversation_id: str,
    first_position: int,
    turns: Sequence[tuple[str, bytes]],
    now: datetime,
) -> None:
    """Insert ``(role, wire JSON)`` turns at consecutive positions from ``first_position``."""
    at = db_time(connection, now)
    params = [
        {
            "id": conversation_id,
            "position": first_position + offset,
            "role": role,
            "wire": wire.decode(),
            "now": at,
            "ttls": stored_ttls(wire),
        }
        for offset, (role, wire) in enumerate(turns)
    ]
    _INSERT_MESSAGE.run(connection, params[0] if len(params) == 1 else params).close()


_LOAD_TURNS = Sql(
    """SELECT role, CAST(wire AS BLOB), cache_ttls FROM clust_messages
    WHERE conversation_id = :id AND position >= :start ORDER BY position"""
)
# No ORDER BY on PostgreSQL: the planner's choice between an ordered index scan and a
# bitmap scan plus a sort rests on row estimates that are far off for long histories
# (a sort of megabytes of wire JSON, spilled to disk, on a custom plan). Rows come in
# the order the scan meets them, almost always position order, and are put in order here.
_LOAD_TURNS_PG = Sql(
    """SELECT position, role, wire, CAST(cache_ttls AS varchar) FROM clust_messages
    WHERE conversation_id = :id AND position >= :start"""
)


class Turns(NamedTuple):
    """Stored turns in position order: roles, wire JSON (UTF-8 bytes) and the TTLs of
    their cache markers (the ``cache_ttls`` column: ``None`` for none)."""

    roles: Sequence[str]
    wires: Sequence[bytes]
    ttls: Sequence[str | None]


def _speaks_utf8(dbapi: Any) -> bool:
    """Whether text comes from the server as UTF-8 (the client encoding: a connection
    may ask for another, e.g. with ``PGCLIENTENCODING``), so its bytes are the wire's."""
    return str(dbapi.info.encoding).replace("-", "").replace("_", "").lower() == "utf8"


def _raw_text_cursor(dbapi: Any) -> Any:
    """A binary psycopg cursor that hands ``text`` columns over as their UTF-8 bytes
    (``wire``; ``role`` is a varchar and stays a string): no decoding in the client, no
    conversion in the server."""
    from psycopg.types.string import ByteaBinaryLoader

    cursor = dbapi.cursor(binary=True)
    cursor.adapters.register_loader("text", ByteaBinaryLoader)
    return cursor


def load_turns(connection: Connection, conversation_id: str, start: int = 0) -> Turns:
    """The turns from position ``start`` on, in one statement.

    On PostgreSQL, when nothing listens to SQLAlchemy's events, the rows come through
    a binary psycopg cursor that takes ``wire`` as the bytes it is stored as (see
    :func:`_raw_text_cursor`).
    """
    params = {"id": conversation_id, "start": start}
    if connection.dialect.name != "postgresql":
        cursor = _LOAD_TURNS.run(connection, params)
        found = cursor.fetchall()
        cursor.close()
        if not found:
            return Turns((), (), ())
        roles, wires, ttls = zip(*found, strict=True)
        return Turns(roles, wires, ttls)
    found = _load_turns_pg(connection, params)
    if not found:
        return Turns((), (), ())
    positions, roles, wires, ttls = zip(*found, strict=True)
    if positions != tuple(range(start, start + len(positions))):
        found.sort()  # positions are unique: the sort never compares the texts
        positions, roles, wires, ttls = zip(*found, strict=True)
    return Turns(roles, wires, ttls)


def _load_turns_pg(connection: Connection, params: dict[str, Any]) -> list[Any]:
    """The rows of :data:`_LOAD_TURNS_PG`, ``wire`` as UTF-8 bytes (``cache_ttls`` is
    read as a varchar, so it stays a string)."""
    dbapi_connection = connection.connection.dbapi_connection
    if watched(connection) or not _speaks_utf8(dbapi_connection):
        result = connection.exec_driver_sql(_LOAD_TURNS_PG.pyformat, params)
        return [(position, role, wire.encode(), ttls) for position, role, wire, ttls in result]
    cursor = _raw_text_cursor(dbapi_connection)
    try:
        cursor.execute(_LOAD_TURNS_PG.pyformat, params)
        found: list[Any] = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        raise driver_error(connection, _LOAD_TURNS_PG.pyformat, params, error, cursor) from error
    cursor.close()
    return found


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
