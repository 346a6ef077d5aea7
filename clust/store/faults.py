"""Database faults as clust's typed errors, and connections checked before use.

Everything the store runs goes through SQLAlchemy (or, on the hot path, straight to
the driver: :func:`clust.store.sql.driver_error`), so one ``handle_error`` listener
per engine turns the driver's errors that are the database's condition rather than
a statement's into :class:`~clust.messages.StoreError` subclasses, the driver's
error chained as the cause:

- :class:`~clust.messages.DatabaseUnavailable`: connecting failed, or an open
  connection was lost (``in_doubt`` when a statement or commit had been sent);
- :class:`~clust.messages.DatabaseReadOnly`: a write refused by a read-only SQLite
  file or a PostgreSQL standby;
- :class:`~clust.messages.DatabaseFull`: the disk is full.

Other errors (constraint violations, locks) stay SQLAlchemy's: the callers that
expect them catch them.

A PostgreSQL connection that lay idle in the pool while the server restarted is dead
without knowing it. It is checked at checkout: its socket should have nothing to
read while idle; if it has (the server's goodbye, or the end of the stream), it is
pinged, and replaced if the ping fails. That costs a system call, not a round trip,
so the first operation after a restart just works.
"""

from __future__ import annotations

import select
import sqlite3
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError

from clust.messages.errors import (
    DatabaseDriverMissing,
    DatabaseFull,
    DatabaseReadOnly,
    DatabaseUnavailable,
    InvalidParameter,
    StoreError,
)

__all__ = [
    "DEFAULT_RECONNECT",
    "database_url",
    "driver_missing",
    "fault",
    "is_own",
    "read_only",
    "reconnect_seconds",
    "sqlite_code",
    "watch",
]

DEFAULT_RECONNECT = 15.0
"""Seconds a turn's database step is tried again over reconnects (the default of
``Store(reconnect_seconds=...)``)."""

_RECONNECT = "clust_reconnect"  # the engine's execution option holding its window
_SUPPORTED = (
    "an SQLAlchemy URL: 'sqlite:///path/to/chat.db' or 'postgresql+psycopg://user@host/dbname'"
)
_SQLITE_IOERR, _SQLITE_READONLY, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 8, 13, 14
_PG_READ_ONLY, _PG_DISK_FULL = "25006", "53100"
_PG_GONE = ("57P01", "57P02", "57P03")  # admin/crash shutdown, cannot connect now


def database_url(url: str | URL) -> URL:
    """``url`` parsed, with PostgreSQL's short schemes (``postgres://``,
    ``postgresql://``) meaning ``postgresql+psycopg://``, the driver clust uses.

    Raises:
        InvalidParameter: not a URL (a bare path: the message names the
            ``sqlite:///`` form), or a database other than SQLite and PostgreSQL.
    """
    if isinstance(url, str):
        if "://" not in url:
            allowed = f"a database URL, e.g. 'sqlite:///{url}' for an SQLite file ({_SUPPORTED})"
            raise InvalidParameter("url", url, allowed)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise InvalidParameter("url", url, _SUPPORTED) from exc
    elif isinstance(url, URL):
        parsed = url
    else:
        raise InvalidParameter("url", url, _SUPPORTED)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        shown = parsed.render_as_string(hide_password=True)
        raise InvalidParameter(
            "url", shown, f"{_SUPPORTED} (clust stores conversations in SQLite or PostgreSQL)"
        )
    return parsed


def driver_missing(url: URL, error: ImportError) -> DatabaseDriverMissing:
    """The error for ``url`` whose driver cannot be imported (raise it ``from error``)."""
    return DatabaseDriverMissing(
        f"cannot load the database driver for {url.render_as_string(hide_password=True)}: "
        f"{error}; for PostgreSQL install it with pip install 'psycopg[binary]' and use a "
        "postgresql+psycopg:// URL"
    )


def reconnect_seconds(engine: Engine) -> float:
    """How long a turn's database step on ``engine`` is tried again over reconnects."""
    return float(engine.get_execution_options().get(_RECONNECT, DEFAULT_RECONNECT))


def watch(engine: Engine, reconnect: float = DEFAULT_RECONNECT) -> None:
    """Give ``engine`` clust's typed errors and (PostgreSQL) the checkout check, once;
    ``reconnect``: its window for tries over reconnects (set again on every call)."""
    watched = _RECONNECT in engine.get_execution_options()
    engine.update_execution_options(**{_RECONNECT: reconnect})
    if watched:
        return
    event.listen(engine, "handle_error", _on_error)
    if engine.dialect.name == "postgresql":

        def alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            _check_alive(engine, dbapi_connection)

        event.listen(engine, "checkout", alive)


def is_own(listener: object) -> bool:
    """Whether ``listener`` is this module's ``handle_error`` listener (it watches no
    statement, so statements may still go straight to the driver)."""
    return listener is _on_error


def _on_error(context: Any) -> BaseException | None:
    if context.is_pre_ping:
        return None  # the pool replaces the connection
    dbapi = context.dialect.loaded_dbapi
    error = context.original_exception
    if dbapi is None or not isinstance(error, dbapi.Error):
        return None
    return fault(
        error,
        context.engine,
        lost=bool(context.is_disconnect),
        connecting=context.connection is None,
    )


def _check_alive(engine: Engine, dbapi_connection: Any) -> None:
    """Raise ``DisconnectionError`` (the pool then connects anew) for a pooled
    connection the server closed while it lay idle."""
    try:
        fileno = dbapi_connection.fileno()
    except Exception as exc:  # closed already
        raise DisconnectionError("the pooled connection is closed") from exc
    if not _readable(fileno):
        return
    try:
        engine.dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise DisconnectionError("the pooled connection was closed by the server") from exc


def _readable(fileno: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fileno, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fileno], [], [], 0)
    return bool(readable)


def fault(
    error: BaseException, engine: Engine, *, lost: bool, connecting: bool = False
) -> StoreError | None:
    """The typed error for the driver's ``error`` on ``engine``, or ``None`` when it is
    a statement's own error (a constraint, a lock). ``lost``: the driver reports the
    connection lost; ``connecting``: it failed while connecting (nothing was sent)."""
    url = engine.url.render_as_string(hide_password=True)
    detail = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    if isinstance(error, sqlite3.Error):
        return _sqlite_fault(error, engine, detail, connecting=connecting)
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if state == _PG_READ_ONLY:
        return DatabaseReadOnly(
            f"the database {url} is read-only ({detail}): write through the primary server"
        )
    if state == _PG_DISK_FULL:
        return _full(f"the database {url}", detail)
    if connecting and type(error).__name__ == "OperationalError":
        return DatabaseUnavailable(
            f"cannot connect to the database {url}: {detail}; check that the server is "
            "running and that the URL's host, port, user and database name are right",
            False,
            reconnect_seconds(engine),
        )
    if lost or (state is not None and (state.startswith("08") or state in _PG_GONE)):
        doubt = "; what was being written may or may not have been stored" if not connecting else ""
        return DatabaseUnavailable(
            f"the connection to the database {url} was lost (the server stopped or "
            f"restarted, or the network failed): {detail}{doubt}",
            not connecting,
            reconnect_seconds(engine),
        )
    return None


def _sqlite_fault(
    error: sqlite3.Error, engine: Engine, detail: str, *, connecting: bool
) -> StoreError | None:
    path = engine.url.database
    code = sqlite_code(error)
    if code == _SQLITE_READONLY:
        return DatabaseReadOnly(
            f"the SQLite database {path} is read-only for this process ({detail}): "
            "reading works; writing needs write permission on the file and its directory"
        )
    if code == _SQLITE_FULL:
        return _full(f"the SQLite database {path}", detail)
    if code == _SQLITE_IOERR:  # the transaction was rolled back: nothing in doubt
        return DatabaseUnavailable(
            f"the SQLite database {path} could not be read or written ({detail}): "
            "check the disk and the file size limit (ulimit -f) of this process",
            False,
            reconnect_seconds(engine),
        )
    if code == _SQLITE_CANTOPEN:
        return DatabaseUnavailable(
            f"cannot open the SQLite database {path} ({detail}): check that its "
            "directory exists and that this process may read it",
            False,
            reconnect_seconds(engine),
        )
    return None


def _full(where: str, detail: str) -> DatabaseFull:
    return DatabaseFull(
        f"the disk of {where} is full ({detail}): the write was not applied; "
        "free some space and try again"
    )


def sqlite_code(error: sqlite3.Error) -> int | None:
    """The primary SQLite result code of ``error`` (read from its message before
    Python 3.11, which added ``sqlite_errorcode``)."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(error)
    for needle, value in (
        ("readonly database", _SQLITE_READONLY),
        ("database or disk is full", _SQLITE_FULL),
        ("unable to open database file", _SQLITE_CANTOPEN),
        ("disk I/O error", _SQLITE_IOERR),
    ):
        if needle in text:
            return value
    return None


def read_only(error: sqlite3.Error) -> bool:
    """Whether ``error`` is SQLite refusing to write (a read-only file or directory)."""
    return sqlite_code(error) == _SQLITE_READONLY
