"""The lease moves onto the conversation row.

``clust_conversations`` gains ``lease_holder`` and ``lease_expires_at`` (null: nobody
is sending); the leases held in ``clust_leases`` are copied over and the table is
dropped. Claiming a conversation and reserving its next positions become one update
of one row, where they were an insert or delete on a second table plus that update.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clust_conversations") as batch:
        batch.add_column(sa.Column("lease_holder", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        """UPDATE clust_conversations SET
            lease_holder = (SELECT holder FROM clust_leases
                WHERE clust_leases.conversation_id = clust_conversations.id),
            lease_expires_at = (SELECT expires_at FROM clust_leases
                WHERE clust_leases.conversation_id = clust_conversations.id)
        WHERE id IN (SELECT conversation_id FROM clust_leases)"""
    )
    op.drop_table("clust_leases")


def downgrade() -> None:
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
    op.execute(
        """INSERT INTO clust_leases (conversation_id, holder, expires_at)
        SELECT id, lease_holder, lease_expires_at FROM clust_conversations
        WHERE lease_holder IS NOT NULL AND lease_expires_at IS NOT NULL"""
    )
    # Plain ALTERs (SQLite >= 3.35): a batch rebuild of clust_conversations would drop
    # the table every other one refers to, cascading deletes.
    op.drop_column("clust_conversations", "lease_expires_at")
    op.drop_column("clust_conversations", "lease_holder")
