"""``clust chat``: an interactive, resumable chat; replies stream as they arrive.

Each line typed is one user turn, sent with the stored history; the reply is stored
with its usage when it completes. ``/quit`` or end of input (Ctrl-D) ends the chat,
and ``clust chat --conversation ID`` picks it up again, in any process, later.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

from clust.cli.common import CliError, database_url, one_line, open_store
from clust.cli.render import turn_lines

if TYPE_CHECKING:
    from clust.client import Client
    from clust.conversation import Conversation, Store

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "add_parser"]

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_TOKENS = 4096
PROMPT = "> "
HELP = (
    "type a message and press Enter; /quit (or Ctrl-D) ends, /retry resends a message "
    "that got no reply, /discard drops it, /help shows this"
)


def add_parser(commands: Any) -> None:
    """Register ``clust chat``."""
    parser = commands.add_parser(
        "chat",
        help="an interactive chat, stored and resumable",
        description="An interactive chat, stored as it goes; resume it with --conversation ID.",
    )
    parser.add_argument("--conversation", "-c", metavar="ID", help="resume this conversation")
    parser.add_argument("--model", help=f"model id (new chats: {DEFAULT_MODEL})")
    parser.add_argument("--system", metavar="TEXT", help="system prompt")
    parser.add_argument(
        "--max-tokens", type=int, metavar="N", help=f"reply limit (new chats: {DEFAULT_MAX_TOKENS})"
    )
    parser.add_argument("--title", help="title of a new conversation")
    parser.add_argument("--db", metavar="URL", help="database URL (see `clust --help`)")
    parser.set_defaults(run=run)


def _require_key() -> None:
    """Fail before anything else (the database included) when there is no API key."""
    if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        raise CliError(
            "ANTHROPIC_API_KEY is not set: export ANTHROPIC_API_KEY=<your key> "
            "(or ANTHROPIC_AUTH_TOKEN); `clust demo` runs offline without one",
            code=2,
        )


def _open(store: Store, args: argparse.Namespace) -> tuple[Conversation, bool]:
    """The conversation to talk in, and whether it was just created."""
    from clust.messages.errors import ConversationNotFound

    if args.conversation:
        try:
            return store.get_conversation(args.conversation), False
        except ConversationNotFound:
            raise CliError(
                f"no conversation with id {args.conversation!r} in this database "
                "(`clust conversations list` shows the ids; --db picks another database)"
            ) from None
    conv = store.create_conversation(
        model=args.model or DEFAULT_MODEL,
        max_tokens=args.max_tokens or DEFAULT_MAX_TOKENS,
        system=args.system,
        title=args.title,
    )
    return conv, True


def _overrides(args: argparse.Namespace, resumed: bool) -> dict[str, Any]:
    """Per-call overrides: what was given on the command line for a resumed chat."""
    if not resumed:
        return {}
    given = {"model": args.model, "max_tokens": args.max_tokens, "system": args.system}
    return {name: value for name, value in given.items() if value is not None}


def _read(prompt: str) -> str | None:
    """One line from the user, or ``None`` at end of input."""
    try:
        return input(prompt)
    except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at the prompt: the chat ends
        return None


def run(args: argparse.Namespace) -> int:
    from clust.client import Client

    _require_key()
    url = database_url(args.db)
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):  # no readline on Windows
            import readline  # noqa: F401  (line editing and history for input())
    with Client.from_env() as client, open_store(url) as store:
        conv, created = _open(store, args)
        chat = _Chat(conv, client, _overrides(args, not created))
        chat.greet(created)
        chat.loop()
        if created and not conv.history:
            store.delete_conversation(conv.id)
            print("nothing was said: the conversation was not kept")
        else:
            print(f"resume with: clust chat --conversation {conv.id}")
    return 0


class _Chat:
    """The read-send-print loop over one conversation."""

    def __init__(self, conv: Conversation, client: Client, overrides: dict[str, Any]) -> None:
        self.conv = conv
        self.client = client
        self.overrides = overrides

    def greet(self, created: bool) -> None:
        conv = self.conv
        model = self.overrides.get("model", conv.model)
        if created:
            print(f"new conversation {conv.id} ({model})")
        else:
            history = [message.to_wire() for message in conv.history]
            print(f"resumed conversation {conv.id} ({model}), {len(history)} turns so far:")
            for line in turn_lines(history[-10:] if len(history) > 10 else history):
                print(line)
            if conv.pending:
                print("the last message got no reply: /retry sends it again, /discard drops it")
        print(HELP)

    def loop(self) -> None:
        while True:
            line = _read(PROMPT)
            if line is None:
                print()
                return
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit", "/q"):
                return
            if text == "/help":
                print(HELP)
            elif text == "/discard":
                self.discard()
            elif text == "/retry":
                self.send(None)
            elif text.startswith("/") and " " not in text:
                print(f"unknown command {text}: {HELP}")
            else:
                self.send(line)

    def discard(self) -> None:
        if self.conv.pending:
            self.conv.discard_pending()
            print("dropped the message that got no reply")
        else:
            print("nothing to drop: the last message has its reply")

    def send(self, content: str | None) -> None:
        """Send ``content`` (``None``: resend the pending turn) and stream the reply."""
        from clust.messages.errors import MessagesError, PendingTurn

        if content is None and not self.conv.pending:
            print("nothing to retry: the last message has its reply")
            return
        streamed = False
        try:
            with self.conv.stream(self.client, content, **self.overrides) as stream:
                for text in stream.text_stream:
                    streamed = True
                    sys.stdout.write(text)
                    sys.stdout.flush()
                reply = stream.get_final_message()
        except PendingTurn:
            print("the last message got no reply yet: /retry sends it again, /discard drops it")
            return
        except KeyboardInterrupt:
            print("\n(interrupted: the reply was not stored; /retry asks again)")
            return
        except MessagesError as exc:
            if streamed:
                print()
            sys.stdout.flush()
            print(f"clust: {one_line(exc)}", file=sys.stderr)
            print("(the message is kept without a reply: /retry sends it again)")
            return
        tools = [block.name for block in reply.tool_uses()]
        if tools:  # clust chat runs no tools; say so rather than hang on a tool_use stop
            print(f"\n[the model asked for tools {', '.join(tools)}; clust chat runs none]")
        elif reply.stop_reason == "max_tokens":
            print("\n[cut at max_tokens]")
        else:
            print()
