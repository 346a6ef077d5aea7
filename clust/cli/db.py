"""``clust db upgrade`` / ``clust db current``: the conversation store's schema.

The URL is ``--url`` (or ``--db``), else ``$CLUST_DATABASE_URL``: these commands never
fall back to the default database, so a migration always names its target.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from clust.cli.common import ENV_DATABASE_URL, CliError, check_url, driver_missing

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["add_parser"]


def _url(given: str | None) -> str:
    url = given or os.environ.get(ENV_DATABASE_URL)
    if not url:
        raise CliError(f"give --url or set {ENV_DATABASE_URL} (e.g. sqlite:///chat.db)", code=2)
    return check_url(url)


def _engine(given: str | None) -> Engine:
    from clust.store.engine import make_engine

    url = _url(given)
    try:
        return make_engine(url)
    except ImportError as exc:  # the URL names a driver that is not installed
        raise driver_missing(url, exc) from None


def _upgrade(args: argparse.Namespace) -> int:
    from clust.store.migrate import HEAD_REVISION, current_revision, upgrade

    engine = _engine(args.url)
    try:
        upgrade(engine, args.revision)
        with engine.connect() as connection:
            reached = current_revision(connection)
    finally:
        engine.dispose()
    state = "the newest" if reached == HEAD_REVISION else f"the newest is {HEAD_REVISION}"
    print(f"clust schema at {reached or 'base (no clust tables)'} ({state})")
    return 0


def _current(args: argparse.Namespace) -> int:
    from clust.store.migrate import HEAD_REVISION, current_revision

    engine = _engine(args.url)
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    finally:
        engine.dispose()
    state = "current" if revision == HEAD_REVISION else f"newest is {HEAD_REVISION}"
    print(f"{revision or 'none (no clust tables yet)'} ({state})")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``clust db upgrade|current``."""
    db = commands.add_parser("db", help="the conversation store's schema (migrations)")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = db_commands.add_parser("upgrade", help="migrate the clust tables to a revision")
    up.add_argument(
        "--url", "--db", dest="url", help=f"database URL (default: ${ENV_DATABASE_URL})"
    )
    up.add_argument("revision", nargs="?", default="head", help="target revision (head)")
    up.set_defaults(run=_upgrade)
    current = db_commands.add_parser("current", help="print the schema revision")
    current.add_argument(
        "--url", "--db", dest="url", help=f"database URL (default: ${ENV_DATABASE_URL})"
    )
    current.set_defaults(run=_current)
