"""Bring a database's clust tables to the current schema with Alembic.

The migration scripts ship inside the package (``clust/store/migrations``), so
``clust db upgrade`` and ``Store(url)`` work from an installed wheel. Opening a store
whose schema is already current costs one small query: Alembic is only imported
when there is something to do.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from clust.messages.errors import DatabaseReadOnly, StoreError
from clust.store.engine import transaction

__all__ = ["HEAD_REVISION", "MIGRATIONS", "VERSION_TABLE", "current_revision", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "clust_alembic_version"
HEAD_REVISION = "0011"
"""The newest revision in ``migrations/versions`` (a test keeps the two in step)."""

# Any 64-bit number of our own: serialises concurrent upgrades on PostgreSQL.
_PG_LOCK_KEY = 0x636C757374


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` when the store was never created."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def is_current(engine: Engine) -> bool:
    """Whether the database is at :data:`HEAD_REVISION` (one query when it is)."""
    with engine.connect() as connection:
        try:
            revision = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        except Exception:  # no version table yet: the store was never created
            connection.rollback()
            return False
        connection.rollback()
    return revision == HEAD_REVISION


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` in one transaction.

    Concurrent upgrades (several processes opening a new database at once) take
    turns: ``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL; the later
    ones find the work done.
    """
    from alembic import command
    from alembic.config import Config
    from alembic.util.exc import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, revision)
        except CommandError as exc:
            raise StoreError(f"cannot upgrade the clust schema: {exc}") from exc
        except DatabaseReadOnly as exc:  # an old file shared read-only: say what to do
            raise DatabaseReadOnly(
                f"the clust schema is out of date and cannot be upgraded: {exc}; "
                "run `clust db upgrade` once with write access"
            ) from exc
