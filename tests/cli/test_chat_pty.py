"""``clust chat`` driven through a pseudo-terminal, as a person would use it: two
messages, quit, resume with ``--conversation``, one more, Ctrl-D."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli.cli_support import PtySession, clean_env

from clust import Store
from clust.testing import FakeClaude, Reply

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no pseudo-terminals")

ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_chat_quit_and_resume(fake: FakeClaude, tmp_path: Path, sqlite_url: str) -> None:
    env = clean_env(tmp_path, fake.base_url)
    fake.enqueue(
        Reply.text("Hi! How can I help?"),
        Reply.text("Paris is the capital of France."),
        Reply.text("You asked about the capital of France."),
    )

    first = PtySession(["chat", "--db", sqlite_url], env)
    conversation_id = first.expect(rf"new conversation ({ID})").group(1)
    first.expect(r"\n> ")
    first.send("Hello\r")
    first.expect(r"Hi! How can I help\?")
    first.expect(r"\n> ")
    first.send("What is the capital of France?\r")
    first.expect(r"Paris is the capital of France\.")
    first.expect(r"\n> ")
    first.send("/quit\r")
    first.expect(rf"resume with: clust chat --conversation {conversation_id}")
    assert first.wait() == 0, first.output
    assert fake.requests[1].body["messages"][0]["content"] == "Hello"  # history sent along

    second = PtySession(["chat", "--conversation", conversation_id, "--db", sqlite_url], env)
    second.expect(rf"resumed conversation {conversation_id} \(claude-sonnet-5-5\), 4 turns")
    second.expect(r"\[0\] user: Hello")
    second.expect(r"\[3\] assistant: Paris is the capital of France\.")
    second.expect(r"\n> ")
    second.send("What did I ask?\r")
    second.expect(r"You asked about the capital of France\.")
    second.expect(r"\n> ")
    second.send("\x04")  # Ctrl-D ends the chat too
    second.expect(rf"resume with: clust chat --conversation {conversation_id}")
    assert second.wait() == 0, second.output

    assert len(fake.last_request.body["messages"]) == 5  # the whole stored history
    with Store(sqlite_url) as store:
        conv = store.get_conversation(conversation_id)
        assert [(m.role, m.text()) for m in conv.history] == [
            ("user", "Hello"),
            ("assistant", "Hi! How can I help?"),
            ("user", "What is the capital of France?"),
            ("assistant", "Paris is the capital of France."),
            ("user", "What did I ask?"),
            ("assistant", "You asked about the capital of France."),
        ]
        assert conv.usage().requests == 3


def test_delete_asks_on_a_terminal(fake: FakeClaude, tmp_path: Path, sqlite_url: str) -> None:
    env = clean_env(tmp_path)
    with Store(sqlite_url) as store:
        keep = store.create_conversation(model="claude-sonnet-5-5", max_tokens=100).id
        drop = store.create_conversation(model="claude-sonnet-5-5", max_tokens=100).id

    session = PtySession(["conversations", "delete", keep, "--db", sqlite_url], env)
    session.expect(rf"delete conversation {keep}, 0 turns\? \[y/N\] ")
    session.send("n\r")
    session.expect("not deleted")
    assert session.wait() == 1

    session = PtySession(["conversations", "delete", drop, "--db", sqlite_url], env)
    session.expect(r"\[y/N\] ")
    session.send("y\r")
    session.expect(rf"deleted conversation {drop}")
    assert session.wait() == 0

    with Store(sqlite_url) as store:
        assert [conv.id for conv in store.list_conversations()] == [keep]
