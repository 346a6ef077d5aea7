"""Tool calls: one row per tool_use block, for crash-safe tool loops.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "clust_tool_calls",
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("tool_use_id", sa.String(200), nullable=False),
        sa.Column("message_position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("input", _json(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("is_error", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["clust_conversations.id"],
            name="fk_clust_tool_calls_conversation_id_clust_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "tool_use_id", name="pk_clust_tool_calls"),
    )
    op.create_index(
        "ix_clust_tool_calls_message", "clust_tool_calls", ["conversation_id", "message_position"]
    )


def downgrade() -> None:
    op.drop_table("clust_tool_calls")
