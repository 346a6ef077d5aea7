"""Waiting in line across processes: ``clust_conversations.lease_next``,
``lease_next_since`` and ``lease_next_until``.

A sender that waits for a busy conversation (``wait=``) reserves the next turn for its
process: while the reservation is live, a free lease goes only to that process, and
the sender that began to wait first takes the reservation over. Waits across
processes are then served in order instead of going to whoever polls first. Existing
rows have no reservation (null).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = ("lease_next", "lease_next_since", "lease_next_until")


def upgrade() -> None:
    # Plain ALTERs: a batch rebuild of clust_conversations would drop the table every
    # other one refers to, cascading deletes (see 0007).
    op.add_column("clust_conversations", sa.Column("lease_next", sa.String(64), nullable=True))
    for name in _COLUMNS[1:]:
        op.add_column(
            "clust_conversations", sa.Column(name, sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    for name in reversed(_COLUMNS):
        op.drop_column("clust_conversations", name)
