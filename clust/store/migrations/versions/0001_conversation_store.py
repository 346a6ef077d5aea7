"""The conversation store: conversations, messages, usage, leases.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "clust_conversations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("request_head", sa.Text(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("system", _json(), nullable=True),
        sa.Column("tools", _json(), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("parent_id", sa.String(36), nullable=True),
        sa.Column("fork_position", sa.Integer(), nullable=True),
        sa.Column("next_position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["clust_conversations.id"],
            name="fk_clust_conversations_parent_id_clust_conversations",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_clust_conversations"),
    )
    op.create_index("ix_clust_conversations_created", "clust_conversations", ["created_at", "id"])
    op.create_index("ix_clust_conversations_parent", "clust_conversations", ["parent_id"])

    op.create_table(
        "clust_messages",
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("wire", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["clust_conversations.id"],
            name="fk_clust_messages_conversation_id_clust_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "position", name="pk_clust_messages"),
    )

    op.create_table(
        "clust_usage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(36), nullable=True),
        sa.Column("message_position", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("stop_reason", sa.String(64), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_creation_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_creation_5m_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_creation_1h_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_read_input_tokens", sa.Integer(), nullable=False),
        sa.Column("web_search_requests", sa.Integer(), nullable=False),
        sa.Column("web_fetch_requests", sa.Integer(), nullable=False),
        sa.Column("service_tier", sa.String(64), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id", "message_position"],
            ["clust_messages.conversation_id", "clust_messages.position"],
            name="fk_clust_usage_conversation_id_message_position_clust_messages",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_clust_usage"),
    )
    op.create_index(
        "ix_clust_usage_conversation", "clust_usage", ["conversation_id", "message_position"]
    )
    op.create_index("ix_clust_usage_model_started", "clust_usage", ["model", "started_at"])
    op.create_index("ix_clust_usage_started", "clust_usage", ["started_at"])

    op.create_table(
        "clust_leases",
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["clust_conversations.id"],
            name="fk_clust_leases_conversation_id_clust_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_clust_leases"),
    )


def downgrade() -> None:
    op.drop_table("clust_leases")
    op.drop_table("clust_usage")
    op.drop_table("clust_messages")
    op.drop_table("clust_conversations")
