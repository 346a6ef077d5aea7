"""The ``clust`` command (``python -m clust`` works too).

Subcommands: ``chat`` (an interactive, stored, resumable chat), ``conversations``
(list, show, export, delete), ``usage`` (tokens, cost and cache savings), ``batches``
(list, status, collect: Message Batches of many conversations), ``db`` (``upgrade`` /
``current``: the schema) and ``demo`` (everything, offline).

The database of ``chat``, ``conversations`` and ``usage`` is ``--db URL``, else
``$CLUST_DATABASE_URL``, else an SQLite file in the user's data directory, created
on first use. Exit status: 0 done, 1 failed (one ``clust: ...`` line says why, never
a traceback), 2 usage error or a missing or unusable API key, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from clust.cli import batches, chat, conversations, db, demo, usage
from clust.cli.common import CliError, data_dir, one_line

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    epilog = (
        "database (chat, conversations, usage, batches): --db URL, else $CLUST_DATABASE_URL, else "
        f"{data_dir() / 'clust.db'} (SQLite, created on first use). URLs: "
        "sqlite:///path/to/file.db or postgresql+psycopg://user@host/dbname "
        "(pip install 'psycopg[binary]')."
    )
    parser = argparse.ArgumentParser(
        prog="clust",
        description="A Claude client with conversations stored in SQLite or PostgreSQL.",
        epilog=epilog,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(commands)
    chat.add_parser(commands)
    conversations.add_parser(commands)
    usage.add_parser(commands)
    batches.add_parser(commands)
    db.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as exc:
        _fail(str(exc))
        return exc.code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `clust conversations export ID | head`
        # The reader left: point stdout at devnull so the flush at exit stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # a clear one-line message, never a traceback
        from clust.messages.errors import InvalidApiKey, MessagesError, MissingCredentials

        if isinstance(exc, MissingCredentials | InvalidApiKey):
            _fail(one_line(exc))
            return 2
        if isinstance(exc, MessagesError) or type(exc).__module__.startswith("sqlalchemy"):
            _fail(one_line(exc))
            return 1
        # A fault clust has no type for (a bug): still one line, with the type to report.
        _fail(f"unexpected {type(exc).__name__}: {one_line(exc) or 'no message'}")
        return 1


def _fail(message: str) -> None:
    print(f"clust: {message}", file=sys.stderr)
