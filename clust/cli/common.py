"""What the subcommands share: the database URL, opening the store, errors, times."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clust.conversation import Store

__all__ = [
    "ENV_DATABASE_URL",
    "CliError",
    "check_url",
    "data_dir",
    "database_url",
    "default_database_url",
    "driver_missing",
    "one_line",
    "open_store",
    "parse_time",
    "shown_url",
]

ENV_DATABASE_URL = "CLUST_DATABASE_URL"


class CliError(Exception):
    """A failure the user can act on: printed as one ``clust: ...`` line, exit ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def data_dir() -> Path:
    """Where clust keeps its files for this user (not created here).

    ``%APPDATA%\\clust`` on Windows, ``~/Library/Application Support/clust`` on macOS,
    else ``$XDG_DATA_HOME/clust`` or ``~/.local/share/clust``.
    """
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        base = Path(appdata) if appdata else Path.home() / "AppData" / "Roaming"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        # The XDG spec says to ignore a relative path.
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "clust"


def default_database_url() -> str:
    """An SQLite file in :func:`data_dir` (the directory is created if missing)."""
    directory = data_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(
            f"cannot create {directory} for the default database ({exc.strerror}): "
            f"give --db URL or set {ENV_DATABASE_URL}"
        ) from None
    return f"sqlite:///{(directory / 'clust.db').as_posix()}"


def database_url(given: str | None) -> str:
    """``--db``, else ``$CLUST_DATABASE_URL``, else :func:`default_database_url`."""
    return check_url(given or os.environ.get(ENV_DATABASE_URL) or default_database_url())


def check_url(url: str) -> str:
    """``url`` if it looks like a database URL; else a :class:`CliError` saying what would."""
    if "://" in url:
        return url
    if url.endswith((".db", ".sqlite", ".sqlite3")):
        raise CliError(f"{url!r} is not a database URL: did you mean sqlite:///{url}?")
    raise CliError(
        f"{url!r} is not a database URL (e.g. sqlite:///path/to/chat.db or "
        "postgresql+psycopg://user@host/dbname)"
    )


def shown_url(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parsable: say it as given (it holds no usable password)
        return url


def one_line(error: BaseException) -> str:
    """The error's message on one line, without SQLAlchemy's "Background on this error" link."""
    text = str(error).split("(Background on this error at:")[0]
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def driver_missing(url: str, error: ImportError) -> CliError:
    """The error for a URL whose database driver is not installed."""
    return CliError(
        f"cannot load the database driver for {shown_url(url)}: {error} (for PostgreSQL: "
        "pip install 'psycopg[binary]' and a postgresql+psycopg:// URL)"
    )


def open_store(url: str) -> Store:
    """Open (and create or upgrade) the store at ``url``; a failure is a :class:`CliError`."""
    from clust.conversation import Store

    try:
        return Store(url)
    except ImportError as exc:  # the URL names a driver that is not installed
        raise driver_missing(url, exc) from None
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy"):
            raise CliError(f"cannot open the database {shown_url(url)}: {one_line(exc)}") from None
        raise


def parse_time(text: str) -> datetime:
    """An ISO date or date-time for ``--since``/``--until`` (naive and dates are UTC).

    For argparse (``type=``): a bad value raises ``ValueError``, a usage error.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):  # fromisoformat takes "Z" only from Python 3.11 on
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = datetime.combine(date.fromisoformat(value), datetime.min.time())
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
