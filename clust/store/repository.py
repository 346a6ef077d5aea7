"""The store's queries: rows in, rows out, one function per statement (no HTTP here).

Every function takes a connection inside a transaction opened by the caller, so a
turn's statements commit or roll back together. Hot queries are led by the
conversation id: opening a conversation is a primary key lookup, loading its history
a range scan of the ``(conversation_id, position)`` primary key, and appending a turn
one update of the conversation row (lease and counter together) plus inserts.
``tests/store/test_query_plans.py`` checks the plans.

The statements of a turn (lease and counter, inserts, history reads) are fixed SQL,
run on the driver's cursor inside the SQLAlchemy transaction (through
``exec_driver_sql`` when an event listener or SQL logging should see them): building
and compiling Core statements cost more than the database work itself (a turn took
0.9 ms on SQLite with Core statements, 0.3 ms this way). The SQL is plain enough to
be the same on SQLite and PostgreSQL but for the data-modifying CTEs; only the
parameter style is translated. History comes back as UTF-8 bytes (``CAST(wire AS
BLOB)`` on SQLite, a binary cursor on PostgreSQL), so it reaches the request body
without a decode and re-encode.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    case,
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
from sqlalchemy.exc import DBAPIError

from clust.messages.errors import ConversationNotFound
from clust.protocol.markers import stored_ttls
from clust.store.engine import DIRECT, statements_watched
from clust.store.schema import (
    ConversationRow,
    MessageRow,
    SummaryRow,
    ToolCallRow,
    UsageRow,
)

__all__ = [
    "Turns",
    "acquire_lease",
    "begin_user_turn_pg",
    "claim_and_take",
    "delete_conversation",
    "delete_messages_from",
    "finish_tool_call",
    "get_conversation",
    "insert_conversation",
    "insert_messages",
    "insert_summary",
    "insert_tool_calls",
    "insert_usage",
    "latest_summary",
    "list_conversations",
    "load_tool_calls",
    "load_turns",
    "load_usage",
    "metadata_matches",
    "missing_usage_columns",
    "open_conversation",
    "release_lease",
    "renew_lease",
    "reply_message_id",
    "start_tool_call",
    "stop_reason_at",
    "store_reply",
    "usage_totals",
]

conversations = cast(Table, ConversationRow.__table__)
messages = cast(Table, MessageRow.__table__)
usage = cast(Table, UsageRow.__table__)


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
        query = query.where(metadata_matches(connection, metadata))
    return connection.execute(query.limit(limit)).all()


def metadata_matches(connection: Connection, wanted: Mapping[str, Any]) -> Any:
    """A condition on ``clust_conversations.metadata``: every key has the given scalar
    value, with JSON types compared as PostgreSQL's ``@>`` compares them."""
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


class _Sql:
    """One fixed statement, written with ``:name`` parameters, for either driver."""

    __slots__ = ("named", "pyformat")

    def __init__(self, sql: str) -> None:
        self.named = " ".join(sql.split())
        self.pyformat = re.sub(r"(?<!:):(\w+)", r"%(\1)s", self.named)

    def run(
        self, connection: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> Any:
        """Execute as driver SQL; the result is a DB-API cursor (``fetchone``, ``rowcount``).

        When nothing listens (no cursor-execute event, no SQL logging), the statement
        goes straight to the driver's cursor in the connection's transaction: a turn
        is a few short statements, and SQLAlchemy's per-statement work is most of its
        Python time. Driver errors are raised as SQLAlchemy raises them
        (``IntegrityError``, ``OperationalError``), and a connection the driver lost is
        invalidated, as SQLAlchemy would.
        """
        postgres = connection.dialect.name == "postgresql"
        sql = self.pyformat if postgres else self.named
        if _watched(connection):
            return connection.exec_driver_sql(sql, params)
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            if isinstance(params, Mapping):
                cursor.execute(sql, params)
            else:
                cursor.executemany(sql, params)
        except connection.dialect.loaded_dbapi.Error as error:
            raise _driver_error(connection, sql, params, error, cursor) from error
        return cursor


def _driver_error(
    connection: Connection, sql: str, params: Any, error: Any, cursor: Any
) -> DBAPIError:
    """``error`` of a statement run on the driver's cursor, wrapped as SQLAlchemy wraps
    it. When the driver reports the connection lost, SQLAlchemy's own rule applies: the
    connection is invalidated, and so is every connection the pool held then (a server
    that dropped one has usually dropped them all)."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    with contextlib.suppress(dialect.loaded_dbapi.Error):
        cursor.close()
    if lost:
        connection.engine.pool._invalidate(connection.connection, error)
        connection.invalidate(error)
    wrapped = DBAPIError.instance(
        sql,
        params,
        error,
        dialect.loaded_dbapi.Error,
        dialect=dialect,
        connection_invalidated=lost,
    )
    return cast(DBAPIError, wrapped)


def _watched(connection: Connection) -> bool:
    """Whether SQLAlchemy's events or SQL logging should see this connection's statements
    (as found when the connection was opened by ``reading``/``writing``, else now)."""
    direct = connection.get_execution_options().get(DIRECT)
    return statements_watched(connection) if direct is None else not direct


def _time(connection: Connection, value: datetime) -> Any:
    """A UTC time as the column stores it (SQLite: SQLAlchemy's text format,
    ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if connection.dialect.name == "postgresql":
        return value
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _read_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return cast(datetime, value if value.tzinfo else value.replace(tzinfo=timezone.utc))


_OPEN_CONVERSATION = _Sql(
    """SELECT id, title, metadata, parent_id, fork_position, created_at, request_head
    FROM clust_conversations WHERE id = :id"""
)


def open_conversation(connection: Connection, conversation_id: str) -> dict[str, Any] | None:
    """What opening a conversation reads of its row (not the JSON columns kept for
    queries: the request head holds them as sent), or ``None``. Fixed SQL, one
    primary-key lookup."""
    cursor = _OPEN_CONVERSATION.run(connection, {"id": conversation_id})
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        return None
    found_id, title, metadata, parent_id, fork_position, created_at, request_head = row
    if isinstance(metadata, str | bytes):  # SQLite keeps JSON as text
        metadata = json.loads(metadata)
    return {
        "id": found_id,
        "title": title,
        "metadata": metadata,
        "parent_id": parent_id,
        "fork_position": fork_position,
        "created_at": _read_time(created_at),
        "request_head": request_head,
    }


_INSERT_MESSAGE = _Sql(
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
    at = _time(connection, now)
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
    _INSERT_MESSAGE.run(connection, params).close()


_LOAD_TURNS = _Sql(
    """SELECT role, CAST(wire AS BLOB), cache_ttls FROM clust_messages
    WHERE conversation_id = :id AND position >= :start ORDER BY position"""
)
# No ORDER BY on PostgreSQL: the planner's choice between an ordered index scan and a
# bitmap scan plus a sort rests on row estimates that are far off for long histories
# (a sort of megabytes of wire JSON, spilled to disk, on a custom plan). Rows come in
# the order the scan meets them, almost always position order, and are put in order here.
_LOAD_TURNS_PG = _Sql(
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
    if _watched(connection) or not _speaks_utf8(dbapi_connection):
        result = connection.exec_driver_sql(_LOAD_TURNS_PG.pyformat, params)
        return [(position, role, wire.encode(), ttls) for position, role, wire, ttls in result]
    cursor = _raw_text_cursor(dbapi_connection)
    try:
        cursor.execute(_LOAD_TURNS_PG.pyformat, params)
        found: list[Any] = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        raise _driver_error(connection, _LOAD_TURNS_PG.pyformat, params, error, cursor) from error
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


_USAGE_COLUMNS = (
    "conversation_id",
    "message_position",
    "model",
    "request_id",
    "stop_reason",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "web_search_requests",
    "web_fetch_requests",
    "service_tier",
    "latency_ms",
    "started_at",
    "finished_at",
    "outcome",
    "message_id",
    "cache_miss_reason",
    "cache_missed_input_tokens",
)
# Columns a usage row may lack (exports written before they existed).
_OPTIONAL_USAGE = frozenset({"message_id", "cache_miss_reason", "cache_missed_input_tokens"})
_INSERT_USAGE = _Sql(
    f"INSERT INTO clust_usage ({', '.join(_USAGE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in _USAGE_COLUMNS)})"
)


def missing_usage_columns(values: Mapping[str, Any]) -> list[str]:
    """The columns a usage row needs that ``values`` lacks (``conversation_id`` aside)."""
    return [
        name
        for name in _USAGE_COLUMNS
        if name not in values and name not in _OPTIONAL_USAGE and name != "conversation_id"
    ]


def insert_usage(connection: Connection, values: Mapping[str, Any]) -> None:
    """Record what one request cost (``values`` keyed by column name)."""
    params = {
        name: values.get(name) if name in _OPTIONAL_USAGE else values[name]
        for name in _USAGE_COLUMNS
    }
    params["started_at"] = _time(connection, values["started_at"])
    params["finished_at"] = _time(connection, values["finished_at"])
    _INSERT_USAGE.run(connection, params).close()


_REPLY_ID = _Sql(
    """SELECT message_id FROM clust_usage
    WHERE conversation_id = :id AND message_position = :position AND outcome = 'reply'"""
)


def reply_message_id(connection: Connection, conversation_id: str, position: int) -> str | None:
    """The message id of the reply stored at ``position`` (``None``: not recorded)."""
    cursor = _REPLY_ID.run(connection, {"id": conversation_id, "position": position})
    row = cursor.fetchone()
    cursor.close()
    return None if row is None else row[0]


def load_usage(connection: Connection, conversation_id: str) -> Sequence[Row[Any]]:
    """The usage rows of a conversation, in the order they were recorded."""
    return connection.execute(
        select(usage).where(usage.c.conversation_id == conversation_id).order_by(usage.c.id)
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
    """Sums of every token count of a conversation, ``requests``, and ``cache_hits``
    (requests that read from the prompt cache)."""
    row = connection.execute(
        select(
            func.count().label("requests"),
            *(func.coalesce(func.sum(usage.c[name]), 0).label(name) for name in _TOTALLED),
            func.count(case((usage.c.cache_read_input_tokens > 0, 1))).label("cache_hits"),
        ).where(usage.c.conversation_id == conversation_id)
    ).one()
    return {name: int(value) for name, value in row._mapping.items()}


# The lease lives on the conversation row: claiming it, reserving positions and
# releasing it are one UPDATE of the row the counter is on anyway.
_FREE = "(lease_holder IS NULL OR lease_expires_at <= :now)"
_CLAIM = _Sql(
    f"""UPDATE clust_conversations SET lease_holder = :holder, lease_expires_at = :expires_at
    WHERE id = :id AND {_FREE} RETURNING lease_holder"""
)
_LEASE_EXPIRY = _Sql("SELECT lease_expires_at FROM clust_conversations WHERE id = :id")
_RENEW = _Sql(
    """UPDATE clust_conversations SET lease_expires_at = :expires_at
    WHERE id = :id AND lease_holder = :holder"""
)
_RELEASE = _Sql(
    """UPDATE clust_conversations SET lease_holder = NULL, lease_expires_at = NULL
    WHERE id = :id AND lease_holder = :holder"""
)


def _busy_until(connection: Connection, conversation_id: str, fallback: datetime) -> datetime:
    """After a refused claim: the current holder's expiry (``fallback`` if the lease was
    given back in between).

    Raises:
        ConversationNotFound: there is no such conversation.
    """
    cursor = _LEASE_EXPIRY.run(connection, {"id": conversation_id})
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        raise ConversationNotFound(conversation_id)
    return fallback if row[0] is None else _read_time(row[0])


def acquire_lease(
    connection: Connection,
    conversation_id: str,
    holder: str,
    now: datetime,
    expires_at: datetime,
) -> datetime | None:
    """Claim the conversation for ``holder``; ``None`` on success, else the current
    holder's expiry. An expired lease is taken over.

    Raises:
        ConversationNotFound: there is no such conversation.
    """
    cursor = _CLAIM.run(
        connection,
        {
            "id": conversation_id,
            "holder": holder,
            "expires_at": _time(connection, expires_at),
            "now": _time(connection, now),
        },
    )
    claimed = cursor.fetchone()
    cursor.close()
    if claimed is not None:
        return None
    return _busy_until(connection, conversation_id, expires_at)


def renew_lease(
    connection: Connection, conversation_id: str, holder: str, expires_at: datetime
) -> bool:
    """Extend ``holder``'s lease; whether it still held it."""
    cursor = _RENEW.run(
        connection,
        {"id": conversation_id, "holder": holder, "expires_at": _time(connection, expires_at)},
    )
    renewed = cursor.rowcount > 0
    cursor.close()
    return bool(renewed)


def release_lease(connection: Connection, conversation_id: str, holder: str) -> bool:
    """Give the conversation back; whether ``holder`` still held it."""
    cursor = _RELEASE.run(connection, {"id": conversation_id, "holder": holder})
    released = cursor.rowcount > 0
    cursor.close()
    return bool(released)


tool_calls = cast(Table, ToolCallRow.__table__)


def insert_tool_calls(
    connection: Connection,
    conversation_id: str,
    position: int,
    calls: Sequence[tuple[str, str, Any]],
    now: datetime,
) -> None:
    """Record ``(tool_use_id, name, input)`` calls of the assistant turn at ``position``
    as pending; calls already recorded are left as they are."""
    dialect = connection.dialect.name
    make_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = make_insert(tool_calls).on_conflict_do_nothing(
        index_elements=[tool_calls.c.conversation_id, tool_calls.c.tool_use_id]
    )
    connection.execute(
        statement,
        [
            {
                "conversation_id": conversation_id,
                "tool_use_id": tool_use_id,
                "message_position": position,
                "name": name,
                "input": tool_input,
                "status": "pending",
                "result": None,
                "is_error": False,
                "error": None,
                "attempts": 0,
                "created_at": now,
                "started_at": None,
                "finished_at": None,
            }
            for tool_use_id, name, tool_input in calls
        ],
    )


def load_tool_calls(
    connection: Connection, conversation_id: str, position: int
) -> Sequence[Row[Any]]:
    """The tool calls of the assistant turn at ``position``."""
    return connection.execute(
        select(tool_calls).where(
            tool_calls.c.conversation_id == conversation_id,
            tool_calls.c.message_position == position,
        )
    ).all()


def start_tool_call(
    connection: Connection,
    conversation_id: str,
    tool_use_id: str,
    expected_status: str,
    now: datetime,
) -> bool:
    """Mark a call running (one more attempt) if it is still ``expected_status``;
    whether this caller got it."""
    result = connection.execute(
        update(tool_calls)
        .where(
            tool_calls.c.conversation_id == conversation_id,
            tool_calls.c.tool_use_id == tool_use_id,
            tool_calls.c.status == expected_status,
        )
        .values(status="running", attempts=tool_calls.c.attempts + 1, started_at=now)
    )
    return bool(result.rowcount)


def finish_tool_call(
    connection: Connection,
    conversation_id: str,
    tool_use_id: str,
    *,
    status: str,
    result: str,
    is_error: bool,
    error: str | None,
    now: datetime,
) -> None:
    """Store a call's outcome (``succeeded`` or ``failed``) and its tool_result content."""
    connection.execute(
        update(tool_calls)
        .where(
            tool_calls.c.conversation_id == conversation_id,
            tool_calls.c.tool_use_id == tool_use_id,
        )
        .values(status=status, result=result, is_error=is_error, error=error, finished_at=now)
    )


def stop_reason_at(connection: Connection, conversation_id: str, position: int) -> str | None:
    """The stop reason recorded for the reply at ``position`` (``None`` if none is)."""
    return connection.execute(
        select(usage.c.stop_reason).where(
            usage.c.conversation_id == conversation_id, usage.c.message_position == position
        )
    ).scalar()


_STORE_REPLY_PG = _Sql(
    f"""WITH moved AS (
        UPDATE clust_conversations SET lease_holder = NULL, lease_expires_at = NULL,
            next_position = next_position + 1, updated_at = :now
        WHERE id = :conversation_id AND lease_holder = :holder AND next_position = :expected
        RETURNING next_position - 1 AS position
    ), message AS (
        INSERT INTO clust_messages (conversation_id, position, role, wire, created_at, cache_ttls)
        SELECT :conversation_id, position, 'assistant', :wire, :now, :ttls FROM moved
        RETURNING position
    )
    INSERT INTO clust_usage ({", ".join(_USAGE_COLUMNS)})
    SELECT {", ".join("position" if c == "message_position" else ":" + c for c in _USAGE_COLUMNS)}
    FROM message
    RETURNING message_position"""
)
_RELEASE_AND_TAKE = _Sql(
    """UPDATE clust_conversations SET lease_holder = NULL, lease_expires_at = NULL,
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
) -> bool:
    """Release ``holder``'s lease, store the assistant turn at ``expected_position`` and
    its usage row; ``False`` (nothing written) if the lease or the position was lost.

    On PostgreSQL this is one statement (data-modifying CTEs), all or nothing even
    outside a transaction, so the caller may run it in autocommit: a turn's commit is
    mostly round trips there. SQLite runs in process and takes the plain statements.
    """
    conversation_id = usage_values["conversation_id"]
    if connection.dialect.name == "postgresql":
        params = {name: usage_values[name] for name in _USAGE_COLUMNS}
        params.update(
            holder=holder,
            expected=expected_position,
            wire=wire.decode(),
            ttls=stored_ttls(wire),
            now=now,
            message_position=expected_position,
        )
        cursor = _STORE_REPLY_PG.run(connection, params)
        stored = cursor.fetchone() is not None
        cursor.close()
        return stored
    cursor = _RELEASE_AND_TAKE.run(
        connection,
        {
            "id": conversation_id,
            "holder": holder,
            "expected": expected_position,
            "now": _time(connection, now),
        },
    )
    moved = cursor.fetchone()
    cursor.close()
    if moved is None:
        return False
    insert_messages(connection, conversation_id, expected_position, [("assistant", wire)], now)
    insert_usage(connection, usage_values)
    return True


# On PostgreSQL, setting synchronous_commit off for the statement's own transaction
# lets a turn's first write commit without waiting for its WAL flush (see claim_and_take).
_CLAIM_AND_TAKE_SQL = f"""UPDATE clust_conversations SET lease_holder = :holder,
    lease_expires_at = :expires_at, next_position = next_position + :count, updated_at = :now
    WHERE id = :id AND {_FREE} RETURNING next_position"""
_CLAIM_AND_TAKE = _Sql(_CLAIM_AND_TAKE_SQL)
_CLAIM_AND_TAKE_PG = _Sql(_CLAIM_AND_TAKE_SQL + ", set_config('synchronous_commit', 'off', true)")
_BEGIN_TURN_PG = _Sql(
    f"""WITH moved AS (
        UPDATE clust_conversations SET lease_holder = :holder, lease_expires_at = :expires_at,
            next_position = next_position + 1, updated_at = :now
        WHERE id = :id AND next_position = :expected AND {_FREE}
        RETURNING next_position - 1 AS position,
            set_config('synchronous_commit', 'off', true) AS relaxed
    )
    INSERT INTO clust_messages (conversation_id, position, role, wire, created_at, cache_ttls)
    SELECT :id, position, 'user', :wire, :now, :ttls FROM moved
    RETURNING position"""
)


def begin_user_turn_pg(
    connection: Connection,
    conversation_id: str,
    holder: str,
    now: datetime,
    expires_at: datetime,
    expected_position: int,
    wire: bytes,
) -> bool:
    """PostgreSQL, in one statement: take the lease and store the user turn at
    ``expected_position``, only if the conversation is free and that is its next
    position (the caller's history is current). Whether it was done; if not, nothing
    was written.

    All or nothing, so it may run in autocommit (one round trip, and its commit does
    not wait for the WAL flush: see :func:`claim_and_take`).
    """
    params = {
        "id": conversation_id,
        "holder": holder,
        "expires_at": expires_at,
        "now": now,
        "expected": expected_position,
        "wire": wire.decode(),
        "ttls": stored_ttls(wire),
    }
    cursor = _BEGIN_TURN_PG.run(connection, params)
    stored = cursor.fetchone() is not None
    cursor.close()
    return stored


def claim_and_take(
    connection: Connection,
    conversation_id: str,
    holder: str,
    now: datetime,
    expires_at: datetime,
    count: int,
) -> tuple[datetime | None, int]:
    """Start a turn's transaction: take the lease and reserve ``count`` positions, in
    one statement.

    Returns ``(None, first_position)`` on success, ``(holder_expiry, -1)`` when the
    conversation is busy. On PostgreSQL the statement also lets this transaction commit
    without waiting for its WAL flush: the reply's commit, which waits, flushes it too,
    and if a server crash undid it, the reply finds its lease gone and is not stored
    either. (SQLite in WAL mode with synchronous=NORMAL commits without an fsync anyway.)

    Raises:
        ConversationNotFound: there is no such conversation.
    """
    statement = _CLAIM_AND_TAKE_PG if connection.dialect.name == "postgresql" else _CLAIM_AND_TAKE
    params = {
        "id": conversation_id,
        "holder": holder,
        "expires_at": _time(connection, expires_at),
        "now": _time(connection, now),
        "count": count,
    }
    cursor = statement.run(connection, params)
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        return _busy_until(connection, conversation_id, expires_at), -1
    return None, int(row[0]) - count


# -- summaries of older turns (context-window strategy ``Summarize``) ---------------------

summaries = cast(Table, SummaryRow.__table__)


def latest_summary(connection: Connection, conversation_id: str) -> tuple[int, str] | None:
    """The newest summary of a conversation, the one with the highest
    ``through_position``: ``(through_position, wire)``, or ``None``."""
    row = connection.execute(
        select(summaries.c.through_position, summaries.c.wire)
        .where(summaries.c.conversation_id == conversation_id)
        .order_by(summaries.c.through_position.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def insert_summary(
    connection: Connection,
    conversation_id: str,
    through_position: int,
    wire: str,
    model: str,
    now: datetime,
) -> bool:
    """Store a summary of the turns before ``through_position``; ``False`` (nothing
    written) when that conversation already has one through the same position."""
    values = {
        "conversation_id": conversation_id,
        "through_position": through_position,
        "wire": wire,
        "model": model,
        "created_at": now,
    }
    dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    result = connection.execute(dialect_insert(summaries).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)
