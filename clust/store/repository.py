"""The store's queries: rows in, rows out, one function per statement (no HTTP here).

Every function takes a connection inside a transaction opened by the caller, so a
turn's statements commit or roll back together. Hot queries are led by the
conversation id: opening a conversation is a primary key lookup, loading its history
a range scan of the ``(conversation_id, position)`` primary key, and appending a turn
one update of the conversation row (lease and counter together) plus inserts.
``tests/store/test_query_plans.py`` checks the plans.

This module holds the conversations, tool calls and summaries, and gathers the rest
under one name: the turns are in :mod:`clust.store.message_rows`, the lease and a
turn's statements in :mod:`clust.store.lease_rows`, the usage ledger in
:mod:`clust.store.usage_rows`, and the fixed-SQL runner in :mod:`clust.store.sql`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    delete,
    exists,
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

from clust.store.lease_rows import (
    Held,
    Taken,
    acquire_lease,
    begin_user_turn_pg,
    break_lease,
    claim_and_take,
    lease_state,
    new_holder,
    release_lease,
    renew_lease,
    renew_leases,
    store_reply,
    take_turn,
)
from clust.store.message_rows import (
    Turns,
    delete_messages_from,
    insert_messages,
    load_turns,
    messages,
)
from clust.store.nul_text import decode_json, decode_text, encode_json
from clust.store.schema import ConversationRow, SummaryRow, ToolCallRow
from clust.store.sql import Sql, read_time
from clust.store.usage_rows import (
    complete_attempt,
    drop_attempt,
    fail_attempt,
    insert_attempt,
    insert_usage,
    load_usage,
    missing_usage_columns,
    reply_message_id,
    stop_reason_at,
    usage,
    usage_totals,
)

__all__ = [
    "Held",
    "Taken",
    "Turns",
    "acquire_lease",
    "begin_user_turn_pg",
    "break_lease",
    "claim_and_take",
    "complete_attempt",
    "conversations",
    "delete_conversation",
    "delete_messages_from",
    "drop_attempt",
    "fail_attempt",
    "finish_tool_call",
    "get_conversation",
    "insert_attempt",
    "insert_conversation",
    "insert_messages",
    "insert_summary",
    "insert_tool_calls",
    "insert_usage",
    "latest_summary",
    "lease_state",
    "list_conversations",
    "load_tool_calls",
    "load_turns",
    "load_usage",
    "messages",
    "metadata_entries",
    "metadata_matches",
    "missing_usage_columns",
    "new_holder",
    "open_conversation",
    "release_lease",
    "renew_lease",
    "renew_leases",
    "reply_message_id",
    "start_tool_call",
    "stop_reason_at",
    "store_reply",
    "take_turn",
    "usage",
    "usage_totals",
]

conversations = cast(Table, ConversationRow.__table__)


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
    value, with JSON types compared as PostgreSQL's ``@>`` compares them. Keys and
    values are encoded as the column stores them (:mod:`clust.store.nul_text`)."""
    column = conversations.c.metadata
    encoded: dict[str, Any] = encode_json(dict(wanted))
    if connection.dialect.name == "postgresql":
        return column.op("@>")(literal(encoded, JSONB))
    conditions = []
    for number, (key, value) in enumerate(encoded.items()):
        # json_each, not a JSON path: SQLite's paths cannot spell every key (a '"').
        entry = metadata_entries(f"wanted_{number}")
        terms = [entry.c.key == key]
        if value is None:
            terms.append(entry.c.type == "null")
        elif isinstance(value, bool):
            terms.append(entry.c.type == ("true" if value else "false"))
        else:
            # json_each gives 1 for true: match the JSON type too, as `@>` does.
            kinds = ("text",) if isinstance(value, str) else ("integer", "real")
            terms.append(entry.c.type.in_(kinds))
            terms.append(entry.c.value == value)
        conditions.append(exists().select_from(entry).where(*terms))
    return and_(*conditions)


def metadata_entries(name: str) -> Any:
    """SQLite: the entries of the conversation's ``metadata`` object (``key``, ``value``
    and JSON ``type``), a table-valued ``json_each`` named ``name``."""
    entries = func.json_each(conversations.c.metadata)
    return entries.table_valued("key", "value", "type", name=name)


def delete_conversation(connection: Connection, conversation_id: str) -> bool:
    """Delete a conversation and its messages; whether it existed."""
    result = connection.execute(delete(conversations).where(conversations.c.id == conversation_id))
    return bool(result.rowcount)


_OPEN_CONVERSATION = Sql(
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
        "title": None if title is None else decode_text(title),
        "metadata": decode_json(metadata),
        "parent_id": parent_id,
        "fork_position": fork_position,
        "created_at": read_time(created_at),
        "request_head": request_head,
    }


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
        index_elements=[
            tool_calls.c.conversation_id,
            tool_calls.c.message_position,
            tool_calls.c.tool_use_id,
        ]
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
    position: int,
    tool_use_id: str,
    expected_status: str,
    now: datetime,
) -> bool:
    """Mark the call ``tool_use_id`` of the reply at ``position`` running (one more
    attempt) if it is still ``expected_status``; whether this caller got it."""
    result = connection.execute(
        update(tool_calls)
        .where(
            tool_calls.c.conversation_id == conversation_id,
            tool_calls.c.message_position == position,
            tool_calls.c.tool_use_id == tool_use_id,
            tool_calls.c.status == expected_status,
        )
        .values(status="running", attempts=tool_calls.c.attempts + 1, started_at=now)
    )
    return bool(result.rowcount)


def finish_tool_call(
    connection: Connection,
    conversation_id: str,
    position: int,
    tool_use_id: str,
    *,
    status: str,
    result: str,
    is_error: bool,
    error: str | None,
    now: datetime,
) -> None:
    """Store the outcome (``succeeded`` or ``failed``) of the call ``tool_use_id`` of the
    reply at ``position`` and its tool_result content."""
    connection.execute(
        update(tool_calls)
        .where(
            tool_calls.c.conversation_id == conversation_id,
            tool_calls.c.message_position == position,
            tool_calls.c.tool_use_id == tool_use_id,
        )
        .values(status=status, result=result, is_error=is_error, error=error, finished_at=now)
    )


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
