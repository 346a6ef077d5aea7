"""Cache diagnostics on usage rows, and summaries of older turns.

``clust_usage`` gains the reply's message id (what the next turn names as
``diagnostics.previous_message_id``) and the cache miss the API explained.
``clust_summaries`` keeps the summaries a context-window strategy made; stored turns
are never deleted, a summary only stands in for them when a request is assembled.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clust_usage") as batch:
        batch.add_column(sa.Column("message_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("cache_miss_reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("cache_missed_input_tokens", sa.Integer(), nullable=True))
    op.create_table(
        "clust_summaries",
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("through_position", sa.Integer(), nullable=False),
        sa.Column("wire", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["clust_conversations.id"],
            name="fk_clust_summaries_conversation_id_clust_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "through_position", name="pk_clust_summaries"),
    )


def downgrade() -> None:
    op.drop_table("clust_summaries")
    with op.batch_alter_table("clust_usage") as batch:
        batch.drop_column("cache_missed_input_tokens")
        batch.drop_column("cache_miss_reason")
        batch.drop_column("message_id")
