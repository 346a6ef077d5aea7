"""Message Batches that advance many conversations: the batch and one item per turn.

``clust_batches`` records a batch sent by ``Store.batch_send`` (our id, the API's id
once known, its state and the request counts last seen); ``clust_batch_items`` holds
one row per conversation: the ``custom_id`` and the position of the user turn it
sends, and what became of it. A restarted process finds the batches to collect there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "clust_batches",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("api_id", sa.String(200), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _time("claim_expires_at", True),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("processing_status", sa.String(32), nullable=True),
        sa.Column("processing", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("errored", sa.Integer(), nullable=False),
        sa.Column("canceled", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _time("created_at", False),
        _time("submitted_at", True),
        _time("ended_at", True),
        _time("expires_at", True),
        _time("collected_at", True),
        sa.PrimaryKeyConstraint("id", name="pk_clust_batches"),
    )
    op.create_index("ix_clust_batches_api_id", "clust_batches", ["api_id"], unique=True)
    op.create_index("ix_clust_batches_state_created", "clust_batches", ["state", "created_at"])
    op.create_index("ix_clust_batches_created", "clust_batches", ["created_at"])
    op.create_table(
        "clust_batch_items",
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("custom_id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(36), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reply_position", sa.Integer(), nullable=True),
        sa.Column("error_type", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _time("finished_at", True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["clust_batches.id"],
            name="fk_clust_batch_items_batch_id_clust_batches",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["clust_conversations.id"],
            name="fk_clust_batch_items_conversation_id_clust_conversations",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("batch_id", "custom_id", name="pk_clust_batch_items"),
    )
    op.create_index(
        "ix_clust_batch_items_conversation",
        "clust_batch_items",
        ["conversation_id", "position"],
    )


def downgrade() -> None:
    op.drop_table("clust_batch_items")
    op.drop_table("clust_batches")
