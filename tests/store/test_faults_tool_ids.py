"""A ``tool_use`` id that already appeared earlier in the conversation (issue 9).

FakeClaude restarts its id counter with each server, so a database reused across two
FakeClaude runs sees ``toolu_fake_0001`` again; the real API could repeat an id too
(after an edit or a fork). A tool call is keyed by (conversation, position of the
reply, id): a new reply's call with an old id is a new call that runs, while a resumed
run still never runs a completed call again. Every test runs on an SQLite file and on
PostgreSQL.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from clust import AsyncClient, Client, Store
from clust.store import ToolCallRow
from clust.store.engine import WRITE
from clust.store.migrate import HEAD_REVISION, MIGRATIONS
from clust.testing import FakeClaude, Reply
from clust.tools import tool

MODEL = "claude-sonnet-5-5"
CALLS = ToolCallRow.__table__


class Crash(BaseException):
    """Stands in for the process dying inside a tool (no ``except Exception`` catches it)."""


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[Any] = []

    def add(self, value: Any) -> None:
        with self.lock:
            self.calls.append(value)


def call_rows(store: Store, conversation_id: str) -> list[tuple[int, str, str, int, str | None]]:
    """(position, id, status, attempts, result) of every stored call, in order."""
    with store.engine.connect() as connection:
        found = connection.execute(
            select(CALLS.c.message_position, CALLS.c.tool_use_id, CALLS.c.status)
            .add_columns(CALLS.c.attempts, CALLS.c.result)
            .where(CALLS.c.conversation_id == conversation_id)
            .order_by(CALLS.c.message_position, CALLS.c.tool_use_id)
        ).all()
    return [tuple(row) for row in found]  # type: ignore[misc]


def results_sent(fake: FakeClaude) -> list[dict[str, Any]]:
    last = fake.requests[-1].body["messages"][-1]
    assert last["role"] == "user"
    return [block for block in last["content"] if block["type"] == "tool_result"]


def test_a_repeated_id_in_a_later_reply_is_a_new_call(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    counter = Counter()

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        counter.add((a, b))
        return a + b

    fake.enqueue(
        Reply.tool_use("add", {"a": 1, "b": 2}, id="toolu_same"),
        Reply.text("3."),
        Reply.tool_use("add", {"a": 10, "b": 20}, id="toolu_same"),
        Reply.text("30."),
    )
    conv = store.create_conversation(model=MODEL, max_tokens=256)
    assert conv.run(client, "1 + 2?", tools=[add]).text == "3."

    result = conv.run(client, "10 + 20?", tools=[add])

    assert result.text == "30."
    assert counter.calls == [(1, 2), (10, 20)]  # the new call ran, with its own input
    assert results_sent(fake) == [
        {"type": "tool_result", "tool_use_id": "toolu_same", "content": "30"}
    ]
    (outcome,) = result.steps[0].tool_calls
    assert (outcome.reused, outcome.attempts, outcome.content) == (False, 1, "30")
    assert call_rows(store, conv.id) == [
        (1, "toolu_same", "succeeded", 1, '"3"'),
        (5, "toolu_same", "succeeded", 1, '"30"'),
    ]


def test_a_database_reused_across_fakeclaude_servers(store: Store) -> None:
    """Two FakeClaude servers in turn, each counting tool_use ids from 1."""
    counter = Counter()

    @tool
    def shout(word: str) -> str:
        """Shout a word."""
        counter.add(word)
        return word.upper()

    conv = store.create_conversation(model=MODEL, max_tokens=256)
    for word in ("hello", "again"):
        with FakeClaude() as fake, Client(api_key="k", base_url=fake.base_url) as client:
            fake.enqueue(Reply.tool_use("shout", {"word": word}), Reply.text(word.upper()))
            assert conv.run(client, f"Shout {word}", tools=[shout]).text == word.upper()
            assert results_sent(fake)[0]["content"] == word.upper()
    assert counter.calls == ["hello", "again"]
    assert [row[:3] for row in call_rows(store, conv.id)] == [
        (1, "toolu_fake_0001", "succeeded"),
        (5, "toolu_fake_0001", "succeeded"),
    ]


def test_resume_after_a_crash_never_reruns_a_completed_call_with_a_repeated_id(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    """The second reply repeats both ids of the first; the run dies inside its second
    call. The resumed run reuses the completed call of that reply (not the old one of
    the same id) and never runs it again."""
    runs = Counter()
    crash = [False]

    @tool
    def charge(amount: int) -> str:
        """Charge a card (not idempotent)."""
        runs.add(("charge", amount))
        return f"charged {amount}"

    @tool(idempotent=True)
    def lookup(item: str) -> str:
        """Look an item up."""
        runs.add(("lookup", item))
        if crash[0]:
            crash[0] = False
            raise Crash
        return f"{item}: 42"

    tools = [charge, lookup]
    first = [("charge", {"amount": 1}, "toolu_a"), ("lookup", {"item": "pen"}, "toolu_b")]
    second = [("charge", {"amount": 7}, "toolu_a"), ("lookup", {"item": "ink"}, "toolu_b")]
    fake.enqueue(Reply.tool_uses(first), Reply.text("Done."), Reply.tool_uses(second))
    conv = store.create_conversation(model=MODEL, max_tokens=256)
    conv.run(client, "Buy a pen", tools=tools)
    crash[0] = True
    with pytest.raises(Crash):
        conv.run(client, "Buy ink", tools=tools)
    assert [row[:4] for row in call_rows(store, conv.id)] == [
        (1, "toolu_a", "succeeded", 1),
        (1, "toolu_b", "succeeded", 1),
        (5, "toolu_a", "succeeded", 1),
        (5, "toolu_b", "running", 1),
    ]

    fake.enqueue(Reply.text("Bought ink."))
    result = store.get_conversation(conv.id).run(client, tools=tools)

    assert result.text == "Bought ink."
    assert runs.calls == [
        ("charge", 1),
        ("lookup", "pen"),
        ("charge", 7),
        ("lookup", "ink"),  # the crash
        ("lookup", "ink"),  # idempotent: run again
    ]
    charged, looked_up = result.steps[0].tool_calls
    assert (charged.reused, charged.content) == (True, "charged 7")
    assert (looked_up.reused, looked_up.attempts) == (False, 2)
    assert [block["content"] for block in results_sent(fake)] == ["charged 7", "ink: 42"]


@pytest.mark.anyio
async def test_async_run_with_a_repeated_id(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    counter = Counter()

    @tool
    async def double(n: int) -> int:
        """Double a number."""
        counter.add(n)
        await anyio.sleep(0)
        return 2 * n

    fake.enqueue(
        Reply.tool_uses([("double", {"n": 1}, "toolu_x"), ("double", {"n": 2}, "toolu_y")]),
        Reply.text("2 and 4."),
        Reply.tool_uses([("double", {"n": 3}, "toolu_y"), ("double", {"n": 4}, "toolu_x")]),
        Reply.text("6 and 8."),
    )
    conv = store.create_conversation(model=MODEL, max_tokens=256)
    await conv.arun(aclient, "Double 1 and 2", tools=[double])

    result = await conv.arun(aclient, "Double 3 and 4", tools=[double])

    assert result.text == "6 and 8."
    assert sorted(counter.calls) == [1, 2, 3, 4]
    assert [(b["tool_use_id"], b["content"]) for b in results_sent(fake)] == [
        ("toolu_y", "6"),
        ("toolu_x", "8"),
    ]


def primary_key(store: Store) -> list[str]:
    with store.engine.connect() as connection:
        return list(
            inspect(connection).get_pk_constraint("clust_tool_calls")["constrained_columns"]
        )


def migrate(store: Store, revision: str, *, down: bool) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect().execution_options(**WRITE) as connection, connection.begin():
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_the_key_migrates_down_and_up(store: Store, fake: FakeClaude, client: Client) -> None:
    """Revision 0010 keys the calls by position too; going down keeps the newest call of
    a repeated id (the old key allows one), going up again restores the key."""

    @tool
    def echo(word: str) -> str:
        """Echo a word."""
        return word

    assert primary_key(store) == ["conversation_id", "message_position", "tool_use_id"]
    for word in ("one", "two"):
        fake.enqueue(Reply.tool_use("echo", {"word": word}, id="toolu_e"), Reply.text(word))
    conv = store.create_conversation(model=MODEL, max_tokens=256)
    conv.run(client, "one", tools=[echo])
    conv.run(client, "two", tools=[echo])

    migrate(store, "0009", down=True)
    assert primary_key(store) == ["conversation_id", "tool_use_id"]
    assert [row[:2] for row in call_rows(store, conv.id)] == [(5, "toolu_e")]
    migrate(store, HEAD_REVISION, down=False)
    assert primary_key(store) == ["conversation_id", "message_position", "tool_use_id"]
    assert [row[:2] for row in call_rows(store, conv.id)] == [(5, "toolu_e")]
