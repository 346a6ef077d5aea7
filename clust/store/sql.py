"""Fixed SQL run straight on the driver's cursor, and the store's time values.

The statements of a turn are fixed SQL, run on the driver's cursor inside the
SQLAlchemy transaction (through ``exec_driver_sql`` when an event listener or SQL
logging should see them): building and compiling Core statements cost more than the
database work itself (a turn took 0.9 ms on SQLite with Core statements, 0.3 ms this
way). The SQL is written with ``:name`` parameters; only the parameter style is
translated for psycopg.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from clust.store.engine import DIRECT, statements_watched
from clust.store.faults import fault

__all__ = ["Sql", "db_time", "driver_error", "read_time", "watched"]


class Sql:
    """One fixed statement, written with ``:name`` parameters, for either driver."""

    __slots__ = ("named", "pyformat")

    def __init__(self, sql: str) -> None:
        self.named = " ".join(sql.split())
        self.pyformat = re.sub(r"(?<!:):(\w+)", r"%(\1)s", self.named)

    def run(
        self, connection: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> Any:
        """Execute as driver SQL; the result is a DB-API cursor (``fetchone``, ``rowcount``).

        When nothing listens (no cursor-execute event, no SQL logging), the statement
        goes straight to the driver's cursor in the connection's transaction: a turn
        is a few short statements, and SQLAlchemy's per-statement work is most of its
        Python time. Driver errors are raised as SQLAlchemy raises them
        (``IntegrityError``, ``OperationalError``), and a connection the driver lost is
        invalidated, as SQLAlchemy would.
        """
        postgres = connection.dialect.name == "postgresql"
        sql = self.pyformat if postgres else self.named
        if watched(connection):
            return connection.exec_driver_sql(sql, params)
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            if isinstance(params, Mapping):
                cursor.execute(sql, params)
            else:
                cursor.executemany(sql, params)
        except connection.dialect.loaded_dbapi.Error as error:
            raise driver_error(connection, sql, params, error, cursor) from error
        return cursor

    def one(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """Execute and return the first row (``None`` if there is none)."""
        cursor = self.run(connection, params)
        row = cursor.fetchone()
        cursor.close()
        return row

    def count(self, connection: Connection, params: Mapping[str, Any]) -> int:
        """Execute and return how many rows it changed."""
        cursor = self.run(connection, params)
        changed = int(cursor.rowcount)
        cursor.close()
        return changed


def driver_error(
    connection: Connection, sql: str, params: Any, error: Any, cursor: Any
) -> Exception:
    """``error`` of a statement run on the driver's cursor, wrapped as SQLAlchemy wraps
    it, or the typed error of a database fault (:func:`clust.store.faults.fault`).
    When the driver reports the connection lost, SQLAlchemy's own rule applies: the
    connection is invalidated, and so is every connection the pool held then (a server
    that dropped one has usually dropped them all)."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    with contextlib.suppress(dialect.loaded_dbapi.Error):
        cursor.close()
    if lost:
        connection.invalidate(error)
        # A fresh pool: the connections of the old one are dropped, not reused.
        connection.engine.dispose(close=False)
    typed = fault(error, connection.engine, lost=lost)
    if typed is not None:
        return typed
    wrapped = DBAPIError.instance(
        sql,
        params,
        error,
        dialect.loaded_dbapi.Error,
        dialect=dialect,
        connection_invalidated=lost,
    )
    return cast(DBAPIError, wrapped)


def watched(connection: Connection) -> bool:
    """Whether SQLAlchemy's events or SQL logging should see this connection's statements
    (as found when the connection was opened by ``reading``/``writing``, else now)."""
    direct = connection.get_execution_options().get(DIRECT)
    return statements_watched(connection) if direct is None else not direct


# The last SQLite conversion: a turn writes the same ``now`` in several statements.
_last_text: tuple[datetime | None, str] = (None, "")


def db_time(connection: Connection, value: datetime) -> Any:
    """A UTC time as the column stores it (SQLite: SQLAlchemy's text format,
    ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    global _last_text
    if connection.dialect.name == "postgresql":
        return value
    last = _last_text  # one read: another thread may replace it meanwhile
    if last[0] is value:
        return last[1]
    utc = value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)
    converted = utc.replace(tzinfo=None).isoformat(" ", "microseconds")
    _last_text = (value, converted)
    return converted


def read_time(value: Any) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands back text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return cast(datetime, value if value.tzinfo else value.replace(tzinfo=timezone.utc))
