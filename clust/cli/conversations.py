"""``clust conversations list|show|export|delete|break-lease``: the stored conversations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clust.cli.common import CliError, database_url, open_store
from clust.cli.render import shorten, turn_lines
from clust.cli.table import format_table
from clust.cli.usage import amount, attempt_notes, load_prices

if TYPE_CHECKING:
    from clust.conversation import Conversation, Store

__all__ = ["add_parser"]


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"invalid --limit {value}: use 1..1000")
    return value


def add_parser(commands: Any) -> None:
    """Register ``clust conversations ...``."""
    group = commands.add_parser(
        "conversations",
        aliases=["conv"],
        help="list, show, export or delete conversations, or break a lease",
    )
    sub = group.add_subparsers(dest="conversations_command", required=True, metavar="COMMAND")

    listing = sub.add_parser("list", help="the newest conversations first")
    listing.add_argument("--limit", type=_limit, default=20, help="how many (20)")
    listing.add_argument("--json", action="store_true", help="as a JSON list")
    listing.set_defaults(run=_list)

    show = sub.add_parser("show", help="a conversation's turns and usage")
    show.add_argument("id", help="the conversation id")
    show.add_argument(
        "--prices", metavar="FILE", help="a JSON price file added to the shipped list prices"
    )
    show.set_defaults(run=_show)

    export = sub.add_parser("export", help="a conversation as a JSON document")
    export.add_argument("id", help="the conversation id")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    export.set_defaults(run=_export)

    delete = sub.add_parser("delete", help="delete a conversation (its usage rows stay)")
    delete.add_argument("id", help="the conversation id")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask")
    delete.set_defaults(run=_delete)

    lease = sub.add_parser(
        "break-lease",
        help="free a conversation a send holds (its sender died or is stuck)",
        description=(
            "Free a conversation at once. A sender that died lets go within the store's "
            "lease_seconds anyway; if it is alive after all, its reply is refused "
            "(LeaseLost, its usage recorded) and its pending user turn can be resent."
        ),
    )
    lease.add_argument("id", help="the conversation id")
    lease.set_defaults(run=_break_lease)

    for parser in (listing, show, export, delete, lease):
        parser.add_argument(
            "--db", "--url", dest="db", metavar="URL", help="database URL (see `clust --help`)"
        )


def _get(store: Store, conversation_id: str) -> Conversation:
    from clust.messages.errors import ConversationNotFound

    try:
        return store.get_conversation(conversation_id)
    except ConversationNotFound:
        raise CliError(
            f"no conversation with id {conversation_id!r} in this database "
            "(`clust conversations list` shows the ids)"
        ) from None


def _created(conv: Conversation) -> str:
    return conv.created_at.strftime("%Y-%m-%d %H:%M UTC")


def _list(args: argparse.Namespace) -> int:
    with open_store(database_url(args.db)) as store:
        found = store.list_conversations(limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": conv.id,
                        "title": conv.title,
                        "model": conv.model,
                        "created_at": conv.created_at.isoformat(),
                        "metadata": conv.metadata,
                        "parent_id": conv.parent_id,
                    }
                    for conv in found
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
    elif not found:
        print("no conversations yet (start one with `clust chat`, or try `clust demo`)")
    else:
        rows = [
            [conv.id, _created(conv), conv.model, shorten(conv.title or "", 50)] for conv in found
        ]
        print(format_table(["id", "created", "model", "title"], rows))
    return 0


def _show(args: argparse.Namespace) -> int:
    from clust.usage import usage_report

    with open_store(database_url(args.db)) as store:
        conv = _get(store, args.id)
        document = store.export_conversation(conv)
        [report] = usage_report(store, conversation_id=conv.id, prices=load_prices(args.prices))
    messages = document["messages"]
    print(f"conversation {conv.id}")
    print(f"  title:   {conv.title or '(none)'}")
    print(f"  model:   {conv.model} (max_tokens {conv.max_tokens})")
    print(f"  created: {_created(conv)}")
    if conv.metadata:
        print(f"  metadata: {json.dumps(conv.metadata, ensure_ascii=False)}")
    if conv.parent_id:
        print(f"  forked from {conv.parent_id} at turn {conv.fork_position}")
    if conv.system is not None:
        system = conv.system
        text = system if isinstance(system, str) else " ".join(b.get("text", "") for b in system)
        print(f"  system:  {shorten(text, 120)}")
    if conv.tools:
        print(f"  tools:   {', '.join(str(t.get('name')) for t in conv.tools)}")
    print(f"\n{len(messages)} turns:" if messages else "\nno turns yet")
    for line in turn_lines(messages):
        print(line)
    if messages and messages[-1].get("role") == "user":
        print("  (the last user turn has no reply yet: `clust chat --conversation ID` resends it)")
    print(
        f"\nusage: {report.requests} requests, {report.input_tokens:,} input tokens, "
        f"{report.output_tokens:,} output tokens, cache writes {report.cache_write_5m_tokens:,} "
        f"(5m) + {report.cache_write_1h_tokens:,} (1h), cache reads {report.cache_read_tokens:,}"
    )
    for note in attempt_notes(report):
        print(note)
    if report.cost is None:
        print(
            f"cost: n/a, no known price for {', '.join(report.unpriced_models)} "
            "(give one with --prices FILE)"
        )
    elif report.cache_savings is not None:
        print(
            f"cost: {amount(report.cost)} USD (prompt caching saved "
            f"{amount(report.cache_savings)} USD)"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    with open_store(database_url(args.db)) as store:
        document = store.export_conversation(_get(store, args.id))
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"exported conversation {args.id} ({len(document['messages'])} turns) to {args.output}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with open_store(database_url(args.db)) as store:
        conv = _get(store, args.id)
        if not args.yes:
            if not sys.stdin.isatty():
                raise CliError(
                    f"not deleting {conv.id} without confirmation: pass --yes "
                    "(stdin is not a terminal to ask on)"
                )
            title = f" ({conv.title!r})" if conv.title else ""
            answer = input(
                f"delete conversation {conv.id}{title}, {len(conv.history)} turns? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                print("not deleted")
                return 1
        store.delete_conversation(conv.id)
    print(f"deleted conversation {conv.id} (its usage rows stay, for accounting)")
    return 0


def _break_lease(args: argparse.Namespace) -> int:
    from clust.messages.errors import ConversationNotFound
    from clust.store import repository as rows
    from clust.store.engine import reading

    with open_store(database_url(args.db)) as store:
        try:
            with reading(store.engine) as connection:
                state = rows.lease_state(connection, args.id)
            held = store.break_lease(args.id)
        except ConversationNotFound:
            raise CliError(
                f"no conversation with id {args.id!r} in this database "
                "(`clust conversations list` shows the ids)"
            ) from None
    if held:
        who = "" if state is None or state.holder is None else f" held by {state.holder}"
        print(f"broke the lease{who} on conversation {args.id}: it is free now")
    else:
        print(f"conversation {args.id} was not held by any send")
    return 0
