"""``clust batches list|status|collect``: Message Batches sent with ``Store.batch_send``.

``list`` shows what the database knows (no API call); ``status`` asks the API how a
batch is doing (``--stored``: only the database); ``collect`` waits for batches to end,
with a progress bar on stderr, then stores their replies and says what it did. Without
an id, ``collect`` takes every batch still to collect: what a restarted job runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from clust.cli.common import CliError, database_url, open_store
from clust.cli.render import shorten
from clust.cli.table import format_table

if TYPE_CHECKING:
    from clust.client import Client
    from clust.conversation import Store
    from clust.conversation.batching import BatchCollection, StoredBatch
    from clust.messages.batches import MessageBatch

__all__ = ["ProgressBar", "add_parser"]

_BAR_WIDTH = 30


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid value {text}: use a number of seconds > 0")
    return value


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"invalid --limit {value}: use 1..1000")
    return value


def add_parser(commands: Any) -> None:
    """Register ``clust batches ...``."""
    group = commands.add_parser(
        "batches",
        help="message batches sent for many conversations: list, status, collect",
        description="Message Batches sent with Store.batch_send: the next turn of many "
        "conversations at the batch price.",
    )
    sub = group.add_subparsers(dest="batches_command", required=True, metavar="COMMAND")

    listing = sub.add_parser("list", help="the batches of this database, newest first")
    listing.add_argument("--open", action="store_true", help="only those still to collect")
    listing.add_argument("--limit", type=_limit, default=20, help="how many (20)")
    listing.add_argument("--json", action="store_true", help="as a JSON list")
    listing.set_defaults(run=_list)

    status = sub.add_parser("status", help="how a batch is doing (asks the API)")
    status.add_argument("id", help="the batch id (msgbatch_... or the store's id)")
    status.add_argument(
        "--stored", action="store_true", help="what the database knows, without asking the API"
    )
    status.add_argument("--json", action="store_true", help="as JSON")
    status.set_defaults(run=_status)

    collect = sub.add_parser(
        "collect", help="wait for batches to end and store their replies in the conversations"
    )
    collect.add_argument(
        "ids", nargs="*", metavar="ID", help="batch ids (default: every batch still to collect)"
    )
    collect.add_argument(
        "--no-wait", action="store_true", help="store what has ended, do not wait for the rest"
    )
    collect.add_argument(
        "--poll", type=_positive, metavar="SECONDS", help="first wait between polls (5)"
    )
    collect.add_argument(
        "--timeout", type=_positive, metavar="SECONDS", help="give up waiting after this long"
    )
    collect.set_defaults(run=_collect)

    for parser in (listing, status, collect):
        parser.add_argument("--db", metavar="URL", help="database URL (see `clust --help`)")


def _client() -> Client:
    from clust.client import Client

    if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        raise CliError(
            "ANTHROPIC_API_KEY is not set: export ANTHROPIC_API_KEY=<your key> "
            "(or ANTHROPIC_AUTH_TOKEN); `clust batches list` works without one",
            code=2,
        )
    return Client.from_env()


def _get(store: Store, key: str) -> StoredBatch:
    from clust.messages.errors import StoreError

    try:
        return store.get_batch(key)
    except StoreError:
        raise CliError(
            f"no batch {key!r} in this database (`clust batches list` shows them)"
        ) from None


def _when(batch: StoredBatch) -> str:
    return batch.created_at.strftime("%Y-%m-%d %H:%M UTC")


def _progress(batch: StoredBatch) -> str:
    """One phrase: where the batch is, or what came of it."""
    if batch.state == "submitted":
        counts = batch.request_counts
        done = batch.request_count - counts["processing"]
        return f"{batch.processing_status}: {done}/{batch.request_count} processed"
    if batch.state == "collected":
        items = batch.items
        pending = sum(items.get(s, 0) for s in ("errored", "expired", "canceled", "missing"))
        text = f"{items.get('succeeded', 0)} replies stored, {pending} turns pending"
        skipped = items.get("skipped", 0)
        return text + (f", {skipped} skipped" if skipped else "")
    if batch.state == "failed":
        return shorten(f"not created: {batch.error or 'unknown error'}", 70)
    if batch.state == "abandoned":
        return "its process died before the API answered: the turns are pending"
    return "being submitted"


def _as_json(batch: StoredBatch) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": batch.id,
        "api_id": batch.api_id,
        "state": batch.state,
        "request_count": batch.request_count,
        "processing_status": batch.processing_status,
        "request_counts": batch.request_counts,
        "items": batch.items,
        "error": batch.error,
        "created_at": when(batch.created_at),
        "submitted_at": when(batch.submitted_at),
        "ended_at": when(batch.ended_at),
        "expires_at": when(batch.expires_at),
        "collected_at": when(batch.collected_at),
    }


def _list(args: argparse.Namespace) -> int:
    with open_store(database_url(args.db)) as store:
        found = store.open_batches() if args.open else store.batches(limit=args.limit)
    if args.json:
        print(json.dumps([_as_json(batch) for batch in found], indent=2, ensure_ascii=False))
    elif not found:
        print("no batches to collect" if args.open else "no batches yet")
    else:
        rows = [
            [batch.name, batch.state, _when(batch), str(batch.request_count), _progress(batch)]
            for batch in found
        ]
        headers = ["batch", "state", "created", "requests", "progress"]
        print(format_table(headers, rows, right=[False, False, False, True, False]))
    return 0


def _status(args: argparse.Namespace) -> int:
    with open_store(database_url(args.db)) as store:
        batch = _get(store, args.id)
        if not args.stored and batch.api_id is not None:
            with _client() as client:
                batch = store.batch_status(client, batch)
    if args.json:
        print(json.dumps(_as_json(batch), indent=2, ensure_ascii=False))
        return 0
    print(f"batch {batch.name}")
    if batch.api_id is not None:
        print(f"  store id:  {batch.id}")
    print(f"  state:     {batch.state} ({_progress(batch)})")
    print(f"  requests:  {batch.request_count} conversations")
    print(f"  created:   {_when(batch)}")
    if batch.processing_status is not None:
        counts = ", ".join(f"{name} {value}" for name, value in batch.request_counts.items())
        print(f"  API:       {batch.processing_status}; {counts}")
    if batch.expires_at is not None and batch.state == "submitted":
        print(f"  expires:   {batch.expires_at.strftime('%Y-%m-%d %H:%M UTC')}")
    if batch.items:
        items = ", ".join(f"{name} {value}" for name, value in sorted(batch.items.items()))
        print(f"  turns:     {items}")
    if batch.error:
        print(f"  error:     {batch.error}")
    if batch.state == "submitted":
        print(f"collect it with: clust batches collect {batch.name}")
    return 0


class ProgressBar:
    """A one-line text bar of a batch's processed requests, redrawn on a terminal (one
    line per change otherwise): the ``on_progress`` of ``wait_for_message_batch``."""

    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.redraw = self.stream.isatty()
        self._last = ""

    def __call__(self, batch: MessageBatch) -> None:
        counts = batch.request_counts
        total = counts.total or 1
        done = total - counts.processing
        filled = round(_BAR_WIDTH * done / total)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        line = (
            f"{self.name} [{bar}] {done}/{counts.total} processed "
            f"({counts.succeeded} succeeded, {counts.errored} errored, "
            f"{counts.expired} expired, {counts.canceled} canceled) {batch.processing_status}"
        )
        if line == self._last:
            return
        self._last = line
        if self.redraw:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line."""
        if self.redraw and self._last:
            self.stream.write("\n")
            self.stream.flush()


def _summary(done: BatchCollection) -> str:
    batch = done.batch
    if not done.ended:
        return f"batch {batch.name} is {_progress(batch)}: nothing stored yet"
    parts = [f"{done.stored} replies stored"]
    for name in ("errored", "expired", "canceled", "missing"):
        count = getattr(done, name)
        if count:
            parts.append(f"{count} {name}")
    if done.skipped:
        parts.append(f"{done.skipped} skipped (conversation deleted or moved on)")
    text = f"batch {batch.name}: " + ", ".join(parts)
    if done.pending:
        text += f"; {done.pending} turns are pending (conv.retry(client) resends them)"
    if not (done.stored or done.pending or done.skipped):
        text = f"batch {batch.name}: already collected, nothing new"
    return text


def _collect(args: argparse.Namespace) -> int:
    with open_store(database_url(args.db)) as store:
        targets = [_get(store, key) for key in args.ids] if args.ids else store.open_batches()
        if not targets:
            print("no batches to collect")
            return 0
        with _client() as client:
            for batch in targets:
                bar = ProgressBar(batch.name)
                try:
                    done = store.collect_batch(
                        client,
                        batch,
                        wait=not args.no_wait,
                        poll_interval=args.poll,
                        timeout=args.timeout,
                        on_progress=bar,
                    )
                finally:
                    bar.close()
                print(_summary(done))
    return 0
