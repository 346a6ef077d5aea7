"""The queries of Message Batches sent for conversations (``clust_batches`` and
``clust_batch_items``): one function per statement, in the caller's transaction.

The query a turn may run (:func:`open_batch_of`, asked only when a conversation has a
pending turn) is led by ``ix_clust_batch_items_conversation``; a result is matched to
its item by the items' primary key ``(batch_id, custom_id)``; storing a reply updates
the conversation by its primary key. ``tests/store/test_batch_send.py`` checks the plans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, and_, delete, func, insert, or_, select, update

from clust.store import repository as rows
from clust.store.schema import BatchItemRow, BatchRow, ConversationRow

__all__ = [
    "batches",
    "close_open_items",
    "conversation_lease",
    "delete_items",
    "finish_item",
    "get_batch",
    "get_item",
    "insert_batch",
    "insert_items",
    "item_states",
    "items",
    "list_batches",
    "open_batch_of",
    "store_batch_reply",
    "update_batch",
]

batches = cast(Table, BatchRow.__table__)
items = cast(Table, BatchItemRow.__table__)
_conversations = cast(Table, ConversationRow.__table__)


def insert_batch(connection: Connection, values: Mapping[str, Any]) -> None:
    """Add a batch row (``values`` keyed by column name)."""
    connection.execute(insert(batches), [dict(values)])


def update_batch(connection: Connection, batch_id: str, values: Mapping[str, Any]) -> None:
    """Set columns of the batch with our id ``batch_id``."""
    connection.execute(update(batches).where(batches.c.id == batch_id).values(**values))


def get_batch(connection: Connection, key: str) -> Row[Any] | None:
    """The batch whose id, or whose API id (``msgbatch_...``), is ``key``."""
    found = connection.execute(select(batches).where(batches.c.id == key)).first()
    if found is None:
        found = connection.execute(select(batches).where(batches.c.api_id == key)).first()
    return found


def list_batches(
    connection: Connection, *, limit: int, states: Sequence[str] | None = None
) -> Sequence[Row[Any]]:
    """Batches newest first; only those in ``states`` when given."""
    query = select(batches).order_by(batches.c.created_at.desc(), batches.c.id.desc())
    if states is not None:
        query = query.where(batches.c.state.in_(list(states)))
    return connection.execute(query.limit(limit)).all()


def insert_items(connection: Connection, values: Sequence[Mapping[str, Any]]) -> None:
    """Add item rows (each keyed by column name)."""
    if values:
        connection.execute(insert(items), [dict(item) for item in values])


def delete_items(connection: Connection, batch_id: str, custom_ids: Sequence[str]) -> None:
    """Remove items of a batch (a submission taken back)."""
    connection.execute(
        delete(items).where(items.c.batch_id == batch_id, items.c.custom_id.in_(list(custom_ids)))
    )


def get_item(connection: Connection, batch_id: str, custom_id: str) -> Row[Any] | None:
    """The item of ``batch_id`` with this ``custom_id``, or ``None``."""
    return connection.execute(
        select(items).where(items.c.batch_id == batch_id, items.c.custom_id == custom_id)
    ).first()


def finish_item(
    connection: Connection,
    batch_id: str,
    custom_id: str,
    *,
    state: str,
    now: datetime,
    from_state: str = "open",
    reply_position: int | None = None,
    error_type: str | None = None,
    error: str | None = None,
) -> bool:
    """Record an item's outcome if it is still ``from_state``; whether it was (the
    update also locks the row: of two collectors, one gets the item)."""
    result = connection.execute(
        update(items)
        .where(
            items.c.batch_id == batch_id,
            items.c.custom_id == custom_id,
            items.c.state == from_state,
        )
        .values(
            state=state,
            reply_position=reply_position,
            error_type=error_type,
            error=error,
            finished_at=now,
        )
    )
    return bool(result.rowcount)


def close_open_items(
    connection: Connection, batch_id: str, *, state: str, error: str | None, now: datetime
) -> int:
    """Give every still-open item of a batch this final ``state``; how many there were."""
    result = connection.execute(
        update(items)
        .where(items.c.batch_id == batch_id, items.c.state == "open")
        .values(state=state, error=error, finished_at=now)
    )
    return int(result.rowcount)


def item_states(connection: Connection, batch_id: str) -> dict[str, int]:
    """How many items of the batch are in each state."""
    found = connection.execute(
        select(items.c.state, func.count())
        .where(items.c.batch_id == batch_id)
        .group_by(items.c.state)
    ).all()
    return {str(state): int(count) for state, count in found}


def open_batch_of(
    connection: Connection, conversation_id: str, position: int, now: datetime
) -> str | None:
    """The batch the user turn at ``position`` waits in, if any: its API id (our id
    while it is being submitted). A submission whose claim ran out holds nothing."""
    found = connection.execute(
        select(batches.c.id, batches.c.api_id)
        .select_from(items.join(batches, batches.c.id == items.c.batch_id))
        .where(
            items.c.conversation_id == conversation_id,
            items.c.position == position,
            items.c.state == "open",
            or_(
                batches.c.state == "submitted",
                and_(batches.c.state == "submitting", batches.c.claim_expires_at > now),
            ),
        )
        .limit(1)
    ).first()
    if found is None:
        return None
    return str(found.api_id or found.id)


def conversation_lease(
    connection: Connection, conversation_id: str
) -> tuple[bool, datetime | None]:
    """Whether the conversation exists, and its lease's expiry (``None``: not leased)."""
    found = connection.execute(
        select(_conversations.c.id, _conversations.c.lease_expires_at).where(
            _conversations.c.id == conversation_id
        )
    ).first()
    if found is None:
        return False, None
    return True, found.lease_expires_at


def store_batch_reply(
    connection: Connection,
    *,
    conversation_id: str,
    position: int,
    wire: bytes,
    usage_values: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Store the reply to the user turn at ``position`` (at ``position + 1``) and its
    usage row, if that turn is still the conversation's newest; ``False`` otherwise
    (the conversation was deleted or moved on), and nothing is written."""
    moved = connection.execute(
        update(_conversations)
        .where(
            _conversations.c.id == conversation_id, _conversations.c.next_position == position + 1
        )
        .values(next_position=position + 2, updated_at=now)
    )
    if not moved.rowcount:
        return False
    rows.insert_messages(connection, conversation_id, position + 1, [("assistant", wire)], now)
    rows.insert_usage(connection, usage_values)
    return True
