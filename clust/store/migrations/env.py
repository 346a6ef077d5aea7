"""Alembic environment of the clust store (run by :mod:`clust.store.migrate`).

The connection comes from ``config.attributes["connection"]``; the version table is
``clust_alembic_version`` so that an application's own Alembic history in the same
database is left alone.
"""

from __future__ import annotations

from alembic import context

from clust.store.schema import Base

VERSION_TABLE = "clust_alembic_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
