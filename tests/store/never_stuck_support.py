"""Helpers of the never-stuck tests (``test_never_stuck*.py``): what a conversation has
stored, what FakeClaude received, and tools that wait for the test to let them end."""

from __future__ import annotations

import threading
from typing import Any

import anyio
from sqlalchemy import func, select
from store.lease_support import lease_of

from clust import Conversation, Store
from clust.store.schema import MessageRow, UsageRow
from clust.testing import FakeClaude
from clust.tools import tool

MODEL = "claude-sonnet-5-5"
WAIT = 10.0
"""Seconds any wait of these tests may take before it fails (never reached when green)."""

BAD_CONTENT: list[Any] = ["", "   ", [], [{"type": "text", "text": ""}], None, 42, b"x"]
"""Content the API would refuse, or that is no content at all."""


def new_conversation(store: Store) -> Conversation:
    return store.create_conversation(model=MODEL, max_tokens=64)


def stored_rows(store: Store, conversation_id: str) -> tuple[int, int]:
    """How many rows ``clust_messages`` and ``clust_usage`` hold for the conversation."""
    counts = []
    with store.engine.connect() as connection:
        for table in (MessageRow.__table__, UsageRow.__table__):
            query = select(func.count()).where(table.c.conversation_id == conversation_id)
            counts.append(int(connection.execute(query).scalar_one()))
    return counts[0], counts[1]


def usage_outcomes(store: Store, conversation_id: str) -> list[str]:
    """The ledger's outcomes for the conversation, in the order written (rows outlive
    a deleted conversation)."""
    table = UsageRow.__table__
    query = select(table.c.outcome).where(table.c.conversation_id == conversation_id)
    with store.engine.connect() as connection:
        return [str(outcome) for outcome in connection.scalars(query.order_by(table.c.id))]


def message_requests(fake: FakeClaude) -> list[Any]:
    """The bodies of the POST /v1/messages requests FakeClaude received."""
    return [request.body for request in fake.requests if request.path == "/v1/messages"]


def texts(store: Store, conversation_id: str) -> list[str]:
    """The stored turns' text, read by a fresh object."""
    return [message.text() for message in store.get_conversation(conversation_id).history]


def is_pending(store: Store, conversation_id: str) -> bool:
    """``pending`` as a fresh object sees it."""
    return store.get_conversation(conversation_id).pending


class Unchanged:
    """What a refused call must leave as it was: the rows stored, the requests sent."""

    def __init__(self, store: Store, fake: FakeClaude, conv: Conversation) -> None:
        self.store, self.fake, self.conv = store, fake, conv
        self.rows = stored_rows(store, conv.id)
        self.requests = len(fake.requests)
        self.pending = is_pending(store, conv.id)

    def check(self) -> None:
        assert stored_rows(self.store, self.conv.id) == self.rows
        assert len(self.fake.requests) == self.requests
        assert is_pending(self.store, self.conv.id) == self.pending
        assert lease_of(self.store, self.conv.id) == (None, None)


def last_user_turn_sent(fake: FakeClaude) -> Any:
    return message_requests(fake)[-1]["messages"][-1]


class Gate:
    """A tool that says it started, then waits until the test opens the gate."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        gate = self

        @tool
        def slow_lookup(key: str) -> str:
            """Look a key up (slowly).

            Args:
                key: What to look up.
            """
            gate.started.set()
            if not gate.release.wait(WAIT):
                raise TimeoutError("the test never opened the gate")
            return f"value of {key}"

        self.tool = slow_lookup


class AsyncGate:
    """:class:`Gate` for ``arun``: an async tool waiting on anyio events (made in the
    test's event loop)."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()
        gate = self

        @tool
        async def slow_lookup(key: str) -> str:
            """Look a key up (slowly).

            Args:
                key: What to look up.
            """
            gate.started.set()
            with anyio.fail_after(WAIT):
                await gate.release.wait()
            return f"value of {key}"

        self.tool = slow_lookup


def weather_tool() -> Any:
    @tool
    def get_weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: The city name.
        """
        return f"Sunny in {city}"

    return get_weather
