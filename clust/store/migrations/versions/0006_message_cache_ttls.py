"""The TTLs of each stored turn's cache markers, kept beside its JSON.

``clust_messages.cache_ttls`` lists the TTLs of the ``cache_control`` markers a turn
holds ("5m,1h"; null for none), written with the turn: loading a long history then
needs no scan of its text to find the few turns that hold a marker. Existing turns
are filled in here (only those whose text mentions ``cache_control`` are parsed).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from clust.protocol.markers import stored_ttls

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 1_000


def upgrade() -> None:
    with op.batch_alter_table("clust_messages") as batch:
        batch.add_column(sa.Column("cache_ttls", sa.Text(), nullable=True))
    messages = sa.table(
        "clust_messages",
        sa.column("conversation_id", sa.String()),
        sa.column("position", sa.Integer()),
        sa.column("wire", sa.Text()),
        sa.column("cache_ttls", sa.Text()),
    )
    statement = (
        sa.update(messages)
        .where(
            messages.c.conversation_id == sa.bindparam("cid"),
            messages.c.position == sa.bindparam("pos"),
        )
        .values(cache_ttls=sa.bindparam("ttls"))
    )
    connection = op.get_bind()
    after: tuple[str, int] | None = None
    while True:  # in pages, in key order: memory stays flat on a large store
        query = (
            sa.select(messages.c.conversation_id, messages.c.position, messages.c.wire)
            .where(messages.c.wire.like('%"cache_control"%'))
            .order_by(messages.c.conversation_id, messages.c.position)
            .limit(_BATCH)
        )
        if after is not None:
            query = query.where(
                sa.tuple_(messages.c.conversation_id, messages.c.position) > sa.tuple_(*after)
            )
        page = connection.execute(query).all()
        if not page:
            return
        updates = [
            {"cid": cid, "pos": position, "ttls": ttls}
            for cid, position, wire in page
            if (ttls := stored_ttls(wire.encode())) is not None
        ]
        if updates:
            connection.execute(statement, updates)
        after = (page[-1][0], page[-1][1])


def downgrade() -> None:
    # A plain ALTER (SQLite >= 3.35): a batch rebuild of clust_messages would drop the
    # table its usage rows refer to, and their references with it.
    op.drop_column("clust_messages", "cache_ttls")
