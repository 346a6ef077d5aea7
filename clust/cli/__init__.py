"""The ``clust`` command (``python -m clust`` works too).

``clust db upgrade [--url URL]`` brings a database's clust tables to the current
schema; ``clust db current`` prints the revision it is at. The URL defaults to
``$CLUST_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _url(given: str | None) -> str:
    url = given or os.environ.get("CLUST_DATABASE_URL")
    if not url:
        raise SystemExit("clust: give --url or set CLUST_DATABASE_URL (e.g. sqlite:///chat.db)")
    return url


def _db_upgrade(args: argparse.Namespace) -> int:
    from clust.store.engine import make_engine
    from clust.store.migrate import HEAD_REVISION, current_revision, upgrade

    engine = make_engine(_url(args.url))
    try:
        upgrade(engine, args.revision)
        with engine.connect() as connection:
            reached = current_revision(connection)
    finally:
        engine.dispose()
    state = "the newest" if reached == HEAD_REVISION else f"the newest is {HEAD_REVISION}"
    print(f"clust schema at {reached or 'base (no clust tables)'} ({state})")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    from clust.store.engine import make_engine
    from clust.store.migrate import HEAD_REVISION, current_revision

    engine = make_engine(_url(args.url))
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    finally:
        engine.dispose()
    state = "current" if revision == HEAD_REVISION else f"newest is {HEAD_REVISION}"
    print(f"{revision or 'none (no clust tables yet)'} ({state})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clust", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="the conversation store's schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    up = db_commands.add_parser("upgrade", help="migrate the clust tables to a revision")
    up.add_argument("--url", help="database URL (default: $CLUST_DATABASE_URL)")
    up.add_argument("revision", nargs="?", default="head", help="target revision (head)")
    up.set_defaults(run=_db_upgrade)
    current = db_commands.add_parser("current", help="print the schema revision")
    current.add_argument("--url", help="database URL (default: $CLUST_DATABASE_URL)")
    current.set_defaults(run=_db_current)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ImportError as exc:  # the URL names a driver that is not installed
        hint = " (for PostgreSQL: pip install 'clust[postgres]' and a postgresql+psycopg:// URL)"
        print(f"clust: cannot load the database driver: {exc}{hint}", file=sys.stderr)
        return 1
    except Exception as exc:  # a clear one-line message, not a traceback
        from clust.messages.errors import MessagesError

        if isinstance(exc, MessagesError) or type(exc).__module__.startswith("sqlalchemy"):
            print(f"clust: {_one_line(exc)}", file=sys.stderr)
            return 1
        raise


def _one_line(error: BaseException) -> str:
    """The error's message on one line, without SQLAlchemy's "Background on this error" link."""
    text = str(error).split("(Background on this error at:")[0]
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
