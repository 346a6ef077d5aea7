"""Budget reservations on the usage ledger's intent rows:
``clust_usage.reserved_input_tokens`` and ``reserved_output_tokens``.

When budgets apply, the intent row written before a request leaves carries the
request's estimate (input tokens estimated from its size, ``max_tokens`` of output),
checked against the budget in the same write transaction; spending counts it while
the row is ``unknown``, so concurrent senders cannot all pass one limit. Existing rows
have no reservation (null).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTERs (no table rebuild): nullable columns without a default.
    op.add_column("clust_usage", sa.Column("reserved_input_tokens", sa.Integer(), nullable=True))
    op.add_column("clust_usage", sa.Column("reserved_output_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain ALTERs (SQLite >= 3.35), as 0008's downgrade.
    op.drop_column("clust_usage", "reserved_output_tokens")
    op.drop_column("clust_usage", "reserved_input_tokens")
