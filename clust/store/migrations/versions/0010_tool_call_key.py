"""Tool calls are keyed by (conversation, message position, tool_use id).

A later reply may repeat a ``tool_use`` id that an earlier one used (an edited or
forked history; a test server that counts ids from 1 again): its call is a new call,
with a row of its own. The old key (conversation, tool_use id) made the new call
collide with the old row. The index on (conversation, message position) goes: the new
key leads with those columns.

Downgrade: where an id repeats, only its newest call is kept (the old key allows one).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-17
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PK = "pk_clust_tool_calls"
_INDEX = "ix_clust_tool_calls_message"


def upgrade() -> None:
    # SQLite rebuilds the table (nothing refers to it, so nothing cascades).
    with op.batch_alter_table("clust_tool_calls", recreate="auto") as batch:
        batch.drop_index(_INDEX)
        batch.drop_constraint(_PK, type_="primary")
        batch.create_primary_key(_PK, ["conversation_id", "message_position", "tool_use_id"])


def downgrade() -> None:
    op.execute(
        """DELETE FROM clust_tool_calls WHERE EXISTS (
            SELECT 1 FROM clust_tool_calls AS newer
            WHERE newer.conversation_id = clust_tool_calls.conversation_id
                AND newer.tool_use_id = clust_tool_calls.tool_use_id
                AND newer.message_position > clust_tool_calls.message_position)"""
    )
    with op.batch_alter_table("clust_tool_calls", recreate="auto") as batch:
        batch.drop_constraint(_PK, type_="primary")
        batch.create_primary_key(_PK, ["conversation_id", "tool_use_id"])
        batch.create_index(_INDEX, ["conversation_id", "message_position"])
