"""The usage ledger records attempts: ``clust_usage.holder``, and outcomes
``unknown`` and ``failed``.

A usage row is now written before its request leaves (outcome ``unknown``, no tokens
yet) and completed when the outcome is known; ``holder`` names the lease holder that
sent it, so an ``unknown`` row whose holder still holds the conversation is told
apart (in flight) from one whose process died (maybe billed). Existing rows are all
completed: their ``holder`` stays null.

Downgrade: the old ledger had no unbilled rows, so ``failed`` rows are deleted;
``unknown`` ones become ``interrupted`` (billed, no turn stored: the old vocabulary's
nearest word), then the column is dropped.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER (no table rebuild): a nullable column without a default.
    op.add_column("clust_usage", sa.Column("holder", sa.String(64), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM clust_usage WHERE outcome = 'failed'")
    op.execute("UPDATE clust_usage SET outcome = 'interrupted' WHERE outcome = 'unknown'")
    op.drop_column("clust_usage", "holder")
