"""Engines for the store: SQLite tuned for several writers, PostgreSQL as it comes.

SQLite gets WAL (readers never wait for the writer), a busy timeout, foreign keys,
and explicit transactions: pysqlite's own implicit ``BEGIN`` is switched off, and
write transactions start with ``BEGIN IMMEDIATE``. A deferred transaction that
reads and then writes fails at once with "database is locked" when another writer
got in between, whatever the busy timeout; ``BEGIN IMMEDIATE`` takes the write lock
first, so it waits its turn instead.

A file this process may only read is opened for reading (immutable when its WAL
index cannot be created): history, listings and usage reports work, and a write
raises :class:`~clust.messages.DatabaseReadOnly`. Database faults are raised as
typed errors (:mod:`clust.store.faults`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from clust.messages.errors import DatabaseReadOnly
from clust.store.faults import (
    DEFAULT_RECONNECT,
    database_url,
    driver_missing,
    fault,
    is_own,
    read_only,
    watch,
)

__all__ = [
    "DIRECT",
    "WRITE",
    "make_engine",
    "reading",
    "statements_watched",
    "transaction",
    "writing",
]

WRITE = {"clust_write": True}
"""Execution options of a connection whose transaction will write."""


def make_engine(
    url: str | URL,
    *,
    busy_timeout: float = 30.0,
    connections: int | None = None,
    reconnect_seconds: float = DEFAULT_RECONNECT,
    **engine_options: Any,
) -> Engine:
    """An engine for ``url`` (``sqlite:///file.db`` or ``postgresql+psycopg://...``;
    ``postgres://`` and ``postgresql://`` mean the latter).

    ``connections`` sizes the pool: it keeps up to that many connections open (one per
    worker thread of a store, so threads never queue for a connection), plus
    SQLAlchemy's 10 overflow ones for other callers; ``None`` keeps SQLAlchemy's 5.
    ``reconnect_seconds``: see :func:`clust.store.faults.watch`.

    Raises:
        InvalidParameter: ``url`` is not a database URL, or not SQLite or PostgreSQL.
        DatabaseDriverMissing: its driver is not installed.
    """
    parsed = database_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    in_memory = sqlite and parsed.database in (None, "", ":memory:")
    if connections is not None and "poolclass" not in engine_options and not in_memory:
        engine_options.setdefault("pool_size", connections)  # QueuePool, on both backends
    if not sqlite:
        engine_options.setdefault("pool_pre_ping", False)  # checked at checkout instead
        engine = _create(parsed, engine_options)
        watch(engine, reconnect_seconds)
        return engine
    connect_args = engine_options.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)  # async calls use worker threads
    connect_args.setdefault("timeout", busy_timeout)
    engine = _create(parsed, {"connect_args": connect_args, **engine_options})
    watch(engine, reconnect_seconds)
    timeout_ms = int(busy_timeout * 1000)

    if not in_memory:

        @event.listens_for(engine, "do_connect")
        def _open(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            return _open_sqlite(dialect.loaded_dbapi, list(cargs), dict(cparams))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={timeout_ms}")
            if not in_memory:
                _use_wal(cursor, busy_timeout)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("clust_write")
        # Straight to sqlite3: a statement with no result, on every transaction.
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        try:
            connection.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]
        except sqlite3.Error as error:  # "database is locked" past the busy timeout
            typed = fault(error, connection.engine, lost=False)
            if typed is not None:  # a read-only file
                raise typed from error
            raise DBAPIError.instance(
                statement, {}, error, sqlite3.Error, dialect=connection.dialect
            ) from error

    return engine


def _create(url: URL, options: dict[str, Any]) -> Engine:
    try:
        return create_engine(url, **options)
    except ImportError as exc:  # the URL's driver is not installed
        raise driver_missing(url, exc) from exc


def _open_sqlite(dbapi: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
    """Connect to an SQLite file. One this process cannot write, in WAL mode, whose
    WAL index (``-shm``) it can neither open nor create (a read-only directory), is
    opened read-only and immutable: nobody writes it (a writer would have made that
    index), so there is nothing to coordinate with."""
    connection = dbapi.connect(*cargs, **cparams)
    if cparams.get("uri"):
        return connection
    try:
        connection.execute("PRAGMA journal_mode").fetchone()
        return connection
    except sqlite3.Error as error:
        connection.close()
        if not read_only(error):
            raise
        path = os.path.abspath(cargs[0])
        if os.path.exists(f"{path}-wal") and os.path.getsize(f"{path}-wal") > 0:
            raise DatabaseReadOnly(
                f"cannot read the SQLite database {path}: it is read-only for this process "
                "and changes wait in its -wal file, which cannot be read without its "
                "-shm index; open it once with write access to checkpoint them"
            ) from error
    uri = f"file:{urllib.parse.quote(path)}?mode=ro&immutable=1"
    return dbapi.connect(uri, **{**cparams, "uri": True})


def _use_wal(cursor: Any, busy_timeout: float) -> None:
    """Switch the file to WAL (it stays so); wait out other first openers.

    Changing the journal mode needs the database to itself and does not go through
    the busy handler, so several processes opening a new file at once retry here. A
    file opened read-only keeps its mode (a reader needs no WAL).
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if read_only(error):
                return
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for a short read. On PostgreSQL it autocommits: under READ
    COMMITTED each statement sees its own snapshot whether or not a transaction wraps
    them, and BEGIN and COMMIT would cost two round trips. On SQLite (in process) the
    statements share one transaction, and so one snapshot."""
    with _short(engine, write=False) as connection:
        yield connection


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection for a write that is one statement on PostgreSQL, atomic by itself
    (data-modifying CTEs), so it autocommits and saves BEGIN and COMMIT; on SQLite a
    ``BEGIN IMMEDIATE`` transaction around its several statements."""
    with _short(engine, write=True) as connection:
        yield connection


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction, committed when the block ends (rolled
    back if it raises): ``BEGIN IMMEDIATE`` on SQLite, an ordinary transaction on
    PostgreSQL."""
    with engine.connect() as connection:
        connection.execution_options(**WRITE, **_direct(connection))
        with connection.begin():
            yield connection


@contextmanager
def _short(engine: Engine, *, write: bool) -> Iterator[Connection]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT", **_direct(connection))
            yield connection
            return
        connection.execution_options(**(WRITE if write else {}), **_direct(connection))
        with connection.begin():
            yield connection


def _direct(connection: Connection) -> dict[str, bool]:
    # Looked up once for the connection's few statements (see repository._Sql.run).
    return {DIRECT: not statements_watched(connection)}


DIRECT = "clust_direct"
"""Execution option: nothing listens to this connection's statements, so fixed SQL may
go straight to the driver's cursor (set by :func:`reading` and :func:`writing`)."""


def statements_watched(connection: Connection) -> bool:
    """Whether SQLAlchemy's events (cursor execution, errors, the dialect's execute
    hook) or SQL logging (``echo``, or the engine's logger at INFO, its own
    ``logging_name`` included) should see this connection's statements."""
    dispatch = connection.dispatch
    engine = connection.engine
    dialect_dispatch = engine.dialect.dispatch
    return bool(
        dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or any(not is_own(listener) for listener in dialect_dispatch.handle_error)
        or dialect_dispatch.do_execute
        or dialect_dispatch.do_executemany
        or engine.echo
        or engine.logger.isEnabledFor(logging.INFO)
    )
