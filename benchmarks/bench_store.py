"""Conversation store: clust against three anchors, on an SQLite file and on PostgreSQL.

Run: ``python -m benchmarks.bench_store [--quick] [--no-postgres] [--ascii]``
(``pip install -e '.[bench]'``; PostgreSQL from ``CLUST_BENCH_POSTGRES_URL`` or
``CLUST_TEST_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).

One run measures, on an SQLite file in a temporary directory and in a fresh
PostgreSQL schema (dropped at the end), the median wall time of:

- persisting one turn (a user message and an assistant message; for clust also the
  usage row) with 10 and with 1,000 turns of history;
- opening one conversation by id among 10,000;
- assembling a conversation's request body (every prior message) with 10, 1,000 and
  10,000 turns of history, from a freshly opened handle so nothing is cached.

A turn is a user message (~300 characters) plus an assistant message (~800), so
N turns are 2N stored messages. Systems, all on the same databases:

- clust: ``Store``/``Conversation``. Persist = ``user_wire`` + ``begin_turn`` (lease,
  position, user row, the ledger's intent row: one write transaction) + ``finish_turn``
  (assistant row, usage row completed, lease released: a second one), as the
  conversation engine calls them, with a prebuilt reply and no HTTP.
  Open = ``store.get_conversation(id)``. Assemble = open + ``refresh()`` + the request
  bytes the client would send (``History.request``).
- OpenAI Agents SDK ``SQLAlchemySession`` (async engine: aiosqlite / psycopg async)
  and ``SQLiteSession`` (SQLite only). Persist = one ``add_items([user, assistant])``.
  Open = construct the session + ``get_items(limit=1)`` (they keep no conversation
  row to read; this is their cheapest read of a conversation). Assemble = construct
  + ``get_items()``.
- LangChain ``SQLChatMessageHistory`` (sync engine). Persist = one
  ``add_messages([human, ai])``. Open = the constructor (it checks the table; there
  is no smaller read). Assemble = constructor + ``.messages``.

The anchors store no usage row, and their assemble figure stops at the list of
items/messages: encoding it into a request body is not timed (both favour them).
The other conversations hold 1 to 9 turns each. Setup (untimed) inserts rows in bulk
straight into each system's own tables, in the format each system writes (clust's
are copies of a conversation and a turn clust wrote itself). ``--ascii`` uses texts
without non-ASCII characters, to show what they cost.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, cast

from sqlalchemy import Engine, Table, create_engine, delete, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from clust import Store
from clust.conversation.history import assistant_wire, user_wire
from clust.conversation.turns import begin_turn, finish_turn
from clust.messages import MessagesResponseBody
from clust.store.schema import ConversationRow, MessageRow, UsageRow

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # langchain-community announces its sunset on import
    from langchain_community.chat_message_histories import SQLChatMessageHistory
from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from agents.memory import SQLiteSession
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, message_to_dict

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MODEL = "claude-sonnet-5-5"
SYSTEM_PROMPT = [
    {
        "type": "text",
        "text": (
            "You are a careful assistant for a team of developers. Answer precisely, "
            "cite the files you rely on, and say when you are unsure. "
        )
        * 8,
        "cache_control": {"type": "ephemeral"},
    }
]
USER_CHARS = 300
ASSISTANT_CHARS = 800
VARIANTS = 64  # distinct texts of each kind, cycled
BACKGROUND_TURNS = 9

CLUST = "clust"
SA_SESSION = "Agents SQLAlchemySession"
LITE_SESSION = "Agents SQLiteSession"
LANGCHAIN = "LangChain SQLChatHistory"
LITE_TABLES = {"sessions_table": "lite_sessions", "messages_table": "lite_messages"}

PERSIST_10 = "persist a turn @ 10 turns"
PERSIST_1K = "persist a turn @ 1,000 turns"
OPEN = "open 1 of 10,000 conversations"
ASSEMBLE = {
    10: "assemble body @ 10 turns",
    1_000: "assemble body @ 1,000 turns",
    10_000: "assemble body @ 10,000 turns",
}
WORKLOADS = [PERSIST_10, PERSIST_1K, OPEN, *ASSEMBLE.values()]


@dataclass(frozen=True)
class Plan:
    """How many timed samples of each workload (after ``warmup`` untimed ones)."""

    conversations: int
    persist: int
    open: int
    assemble: dict[int, int]
    warmup: int


FULL = Plan(10_000, persist=41, open=301, assemble={10: 51, 1_000: 31, 10_000: 9}, warmup=3)
QUICK = Plan(10_000, persist=11, open=51, assemble={10: 11, 1_000: 7, 10_000: 3}, warmup=2)


# -- the data every system stores ----------------------------------------------------------


_WORDS_TEXT = (
    "the model reads each stored turn and answers with care about the schema, index, "
    "query plan, cache marker, transaction, request body position lease usage tokens "
    "latency conversation history assistant user"
)
# Real replies carry em dashes, curly quotes and accents; one such character anywhere in
# a history changes how Python stores and encodes the whole body (see --ascii).
_NON_ASCII = ["café,", "naïve", "—", "“quoted”"]


def _texts(rng: random.Random, length: int, ascii_only: bool) -> list[str]:
    words = _WORDS_TEXT.split() + ([] if ascii_only else _NON_ASCII)
    out = []
    for _ in range(VARIANTS):
        parts: list[str] = []
        size = 0
        while size < length:
            word = rng.choice(words)
            parts.append(word)
            size += len(word) + 1
        out.append(" ".join(parts)[:length])
    return out


def _reply(text_: str, index: int) -> MessagesResponseBody:
    response = MessagesResponseBody.model_validate(
        {
            "id": f"msg_bench{index:06d}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": text_}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 420,
                "output_tokens": 210,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1200,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "service_tier": "standard",
            },
        }
    )
    response._request_id = f"req_bench{index:06d}"
    return response


@dataclass
class Corpus:
    """The texts, in each system's own stored form, and which conversation has what."""

    user: list[str]
    assistant: list[str]
    replies: list[MessagesResponseBody]
    ids: list[str]
    assemble: dict[int, str]
    long: str  # persist @ 1,000 turns: turns are appended to this one
    pool: list[str]  # persist @ 10 turns: one turn into each
    turns: dict[str, int] = field(default_factory=dict)

    def layout(self) -> Iterator[tuple[str, int]]:
        """``(conversation id, turns of history)`` of every conversation."""
        return iter(self.turns.items())


def make_corpus(plan: Plan, *, ascii_only: bool = False, seed: int = 5) -> Corpus:
    rng = random.Random(seed)
    user = _texts(rng, USER_CHARS, ascii_only)
    assistant = _texts(rng, ASSISTANT_CHARS, ascii_only)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(plan.conversations)]
    assemble = {10: ids[0], 1_000: ids[1], 10_000: ids[2]}
    long = ids[3]
    pool = ids[4 : 4 + plan.warmup + plan.persist]
    corpus = Corpus(
        user=user,
        assistant=assistant,
        replies=[_reply(t, i) for i, t in enumerate(assistant)],
        ids=ids,
        assemble=assemble,
        long=long,
        pool=pool,
    )
    for cid in ids:
        # the other conversations: 1 to 9 turns each (5 on average)
        corpus.turns[cid] = rng.randint(1, BACKGROUND_TURNS)
    for turns, cid in assemble.items():
        corpus.turns[cid] = turns
    corpus.turns[long] = 1_000
    for cid in pool:
        corpus.turns[cid] = 10
    return corpus


def _chunks(rows: Iterator[dict[str, Any]], size: int = 5_000) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- timing ------------------------------------------------------------------------------


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


async def _atimed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


class System:
    """One store under test. ``persist``/``open``/``assemble`` return seconds."""

    name: str

    def setup(self, corpus: Corpus) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Create what must live in the event loop (async engines)."""

    async def handle(self, cid: str) -> Any:
        """A ready-to-use handle for persisting turns (untimed)."""
        raise NotImplementedError

    async def persist(self, handle: Any, index: int) -> float:
        raise NotImplementedError

    async def release(self, handle: Any) -> None:
        """Close a handle from :meth:`handle` (untimed)."""

    async def open(self, cid: str) -> float:
        raise NotImplementedError

    async def assemble(self, cid: str) -> tuple[float, int]:
        """Seconds, and how many messages the body holds (checked by the caller)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Dispose engines."""


# -- clust -------------------------------------------------------------------------------


def _persist(conv: Any, wire: bytes, reply: MessagesResponseBody) -> None:
    """What a send writes around its request: ``begin_turn`` (lease, position, user row,
    the ledger's intent row: one commit) and ``finish_turn`` (assistant row, the intent
    row completed, lease released: a second), as the conversation engine calls them."""
    state = conv.state
    started = time.monotonic()
    with state.steps:
        turn = begin_turn(state.engine, state.id, state.history, wire, state.lease)
    latency_ms = round((time.monotonic() - started) * 1000)
    with state.steps:
        finish_turn(state.engine, turn, state.history, reply, latency_ms)


class ClustSystem(System):
    name = CLUST

    def __init__(self, url: str, corpus: Corpus) -> None:
        self.url = url
        self.corpus = corpus
        self.store = Store(url)
        self.user_wires = [user_wire(t) for t in corpus.user]
        self.assistant_wires = [assistant_wire(r) for r in corpus.replies]
        self.body_bytes: dict[int, int] = {}

    def setup(self, corpus: Corpus) -> None:
        # One conversation and one turn made by clust itself give the rows to copy, so
        # the copies hold whatever columns the schema has (only keys and wires change).
        template = self.store.create_conversation(
            model=MODEL, max_tokens=1024, system=SYSTEM_PROMPT
        )
        _persist(template, self.user_wires[0], self.corpus.replies[0])
        conversations = cast(Table, ConversationRow.__table__)
        messages = cast(Table, MessageRow.__table__)
        usage = cast(Table, UsageRow.__table__)
        with self.store.engine.begin() as connection:
            conversation = dict(
                connection.execute(select(conversations).where(conversations.c.id == template.id))
                .one()
                ._mapping
            )
            user_row, assistant_row = (
                dict(row._mapping)
                for row in connection.execute(
                    select(messages)
                    .where(messages.c.conversation_id == template.id)
                    .order_by(messages.c.position)
                )
            )
            usage_row = dict(
                connection.execute(select(usage).where(usage.c.conversation_id == template.id))
                .one()
                ._mapping
            )
            connection.execute(delete(usage).where(usage.c.id == usage_row.pop("id")))
            connection.execute(delete(conversations).where(conversations.c.id == template.id))

        def conversation_rows() -> Iterator[dict[str, Any]]:
            for cid, turns in corpus.layout():
                yield {**conversation, "id": cid, "next_position": 2 * turns}

        def message_rows() -> Iterator[dict[str, Any]]:
            k = 0
            for cid, turns in corpus.layout():
                for turn in range(turns):
                    v = k % VARIANTS
                    k += 1
                    for offset, row, wire in (
                        (0, user_row, self.user_wires[v]),
                        (1, assistant_row, self.assistant_wires[v]),
                    ):
                        yield {
                            **row,
                            "conversation_id": cid,
                            "position": 2 * turn + offset,
                            "wire": wire.decode(),
                        }

        def usage_rows() -> Iterator[dict[str, Any]]:
            for cid, turns in corpus.layout():
                for turn in range(turns):
                    yield {**usage_row, "conversation_id": cid, "message_position": 2 * turn + 1}

        with self.store.engine.begin() as connection:
            for table, rows in (
                (conversations, conversation_rows()),
                (messages, message_rows()),
                (usage, usage_rows()),
            ):
                for batch in _chunks(rows):
                    connection.execute(insert(table), batch)

    async def handle(self, cid: str) -> Any:
        conv = self.store.get_conversation(cid)
        conv.refresh()  # a chat in progress holds its history
        return conv

    async def persist(self, handle: Any, index: int) -> float:
        conv = handle
        text_ = self.corpus.user[index % VARIANTS]
        reply = self.corpus.replies[index % VARIANTS]

        def turn() -> None:
            _persist(conv, user_wire(text_), reply)

        return _timed(turn)

    async def open(self, cid: str) -> float:
        return _timed(lambda: self.store.get_conversation(cid))

    async def assemble(self, cid: str) -> tuple[float, int]:
        body = b""

        def run() -> None:
            nonlocal body
            conv = self.store.get_conversation(cid)
            conv.refresh()
            state = conv.state
            body = state.history.request(state.head, stream=False, cache=conv.cache).content

        seconds = _timed(run)
        count = len(json.loads(body)["messages"])
        self.body_bytes[count // 2] = len(body)
        return seconds, count

    async def stop(self) -> None:
        self.store.close()


# -- OpenAI Agents SDK -------------------------------------------------------------------


def _agents_user(text_: str) -> dict[str, Any]:
    return {"role": "user", "content": text_}


def _agents_assistant(text_: str, index: int) -> dict[str, Any]:
    return {
        "id": f"msg_bench{index:06d}",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text_, "annotations": []}],
    }


def _agents_rows(
    corpus: Corpus, encode: Callable[[dict[str, Any]], str]
) -> tuple[list[dict[str, Any]], Iterator[dict[str, Any]]]:
    users = [encode(_agents_user(t)) for t in corpus.user]
    assistants = [encode(_agents_assistant(t, i)) for i, t in enumerate(corpus.assistant)]
    sessions = [{"session_id": cid} for cid, _ in corpus.layout()]

    def messages() -> Iterator[dict[str, Any]]:
        k = 0
        for cid, turns in corpus.layout():
            for _ in range(turns):
                v = k % VARIANTS
                k += 1
                yield {"session_id": cid, "message_data": users[v]}
                yield {"session_id": cid, "message_data": assistants[v]}

    return sessions, messages()


class AgentsSQLAlchemySystem(System):
    name = SA_SESSION

    def __init__(self, url: str, corpus: Corpus) -> None:
        self.url = url
        self.corpus = corpus
        self.engine: AsyncEngine | None = None

    def _async_url(self) -> str:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            return parsed.set(drivername="sqlite+aiosqlite").render_as_string(False)
        return self.url  # postgresql+psycopg: create_async_engine picks psycopg's async API

    def setup(self, corpus: Corpus) -> None:
        # The session's own table definitions, created as create_tables=True would.
        probe = SQLAlchemySession("setup", engine=create_async_engine(self._async_url()))
        engine = create_engine(self.url)
        try:
            probe._metadata.create_all(engine)
            # SQLAlchemySession serialises with compact separators and ensure_ascii=True.
            sessions, messages = _agents_rows(
                corpus, lambda item: json.dumps(item, ensure_ascii=True, separators=(",", ":"))
            )
            with engine.begin() as connection:
                connection.execute(insert(probe._sessions), sessions)
                for batch in _chunks(messages):
                    connection.execute(insert(probe._messages), batch)
        finally:
            engine.dispose()

    async def start(self) -> None:
        self.engine = create_async_engine(self._async_url())

    def _session(self, cid: str) -> SQLAlchemySession:
        assert self.engine is not None
        return SQLAlchemySession(cid, engine=self.engine)

    async def handle(self, cid: str) -> Any:
        session = self._session(cid)
        await session.get_items(limit=1)
        return session

    async def persist(self, handle: Any, index: int) -> float:
        v = index % VARIANTS
        assistant = _agents_assistant(self.corpus.assistant[v], index)
        user = self.corpus.user[v]
        return await _atimed(lambda: handle.add_items([_agents_user(user), assistant]))

    async def open(self, cid: str) -> float:
        return await _atimed(lambda: self._session(cid).get_items(limit=1))

    async def assemble(self, cid: str) -> tuple[float, int]:
        items: list[Any] = []

        async def run() -> None:
            nonlocal items
            items = await self._session(cid).get_items()

        return await _atimed(run), len(items)

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


class AgentsSQLiteSystem(System):
    name = LITE_SESSION

    def __init__(self, path: Path, corpus: Corpus) -> None:
        self.path = path
        self.corpus = corpus

    def setup(self, corpus: Corpus) -> None:
        SQLiteSession("setup", self.path, **LITE_TABLES).close()  # creates its schema
        sessions, messages = _agents_rows(corpus, json.dumps)  # SQLiteSession: json.dumps(item)
        with sqlite3.connect(self.path) as connection:
            connection.executemany(
                "INSERT INTO lite_sessions (session_id) VALUES (:session_id)", sessions
            )
            connection.executemany(
                "INSERT INTO lite_messages (session_id, message_data) "
                "VALUES (:session_id, :message_data)",
                messages,
            )
        connection.close()

    def _session(self, cid: str) -> SQLiteSession:
        return SQLiteSession(cid, self.path, **LITE_TABLES)

    async def handle(self, cid: str) -> Any:
        session = self._session(cid)
        await session.get_items(limit=1)  # opens its per-thread connection
        return session

    async def persist(self, handle: Any, index: int) -> float:
        v = index % VARIANTS
        assistant = _agents_assistant(self.corpus.assistant[v], index)
        user = self.corpus.user[v]
        return await _atimed(lambda: handle.add_items([_agents_user(user), assistant]))

    async def release(self, handle: Any) -> None:
        handle.close()

    async def open(self, cid: str) -> float:
        session: SQLiteSession | None = None

        async def run() -> None:
            nonlocal session
            session = self._session(cid)
            await session.get_items(limit=1)

        seconds = await _atimed(run)
        assert session is not None
        session.close()
        return seconds

    async def assemble(self, cid: str) -> tuple[float, int]:
        session: SQLiteSession | None = None
        items: list[Any] = []

        async def run() -> None:
            nonlocal session, items
            session = self._session(cid)
            items = await session.get_items()

        seconds = await _atimed(run)
        assert session is not None
        session.close()
        return seconds, len(items)


# -- LangChain ---------------------------------------------------------------------------


class LangChainSystem(System):
    name = LANGCHAIN

    def __init__(self, url: str, corpus: Corpus) -> None:
        self.corpus = corpus
        self.engine: Engine = create_engine(url)
        self.replies = [
            AIMessage(content=t, id=f"msg_bench{i:06d}") for i, t in enumerate(corpus.assistant)
        ]

    def _history(self, cid: str) -> SQLChatMessageHistory:
        return SQLChatMessageHistory(cid, connection=self.engine)

    def setup(self, corpus: Corpus) -> None:
        table = self._history("setup").sql_model_class.__table__  # creates message_store

        def encode(message: BaseMessage) -> str:  # DefaultMessageConverter's format
            return json.dumps(message_to_dict(message))

        users = [encode(HumanMessage(content=t)) for t in corpus.user]
        assistants = [encode(m) for m in self.replies]

        def rows() -> Iterator[dict[str, Any]]:
            k = 0
            for cid, turns in corpus.layout():
                for _ in range(turns):
                    v = k % VARIANTS
                    k += 1
                    yield {"session_id": cid, "message": users[v]}
                    yield {"session_id": cid, "message": assistants[v]}

        with self.engine.begin() as connection:
            for batch in _chunks(rows()):
                connection.execute(insert(table), batch)

    async def handle(self, cid: str) -> Any:
        return self._history(cid)

    async def persist(self, handle: Any, index: int) -> float:
        v = index % VARIANTS
        reply = self.replies[v]
        user = self.corpus.user[v]
        return _timed(lambda: handle.add_messages([HumanMessage(content=user), reply]))

    async def open(self, cid: str) -> float:
        return _timed(lambda: self._history(cid))

    async def assemble(self, cid: str) -> tuple[float, int]:
        messages: list[BaseMessage] = []

        def run() -> None:
            nonlocal messages
            messages = self._history(cid).messages

        return _timed(run), len(messages)

    async def stop(self) -> None:
        self.engine.dispose()


# -- the run -----------------------------------------------------------------------------

Results = dict[str, dict[str, list[float]]]  # system -> workload -> seconds


async def measure(
    system: System, corpus: Corpus, plan: Plan, rng: random.Random
) -> dict[str, list[float]]:
    """Every workload of one system, in one event loop."""
    out: dict[str, list[float]] = {}
    await system.start()
    try:
        # persist @ 10 turns: one turn into each conversation of the pool
        handles = [await system.handle(cid) for cid in corpus.pool]
        samples = [await system.persist(h, i) for i, h in enumerate(handles)]
        for h in handles:
            await system.release(h)
        out[PERSIST_10] = samples[plan.warmup :]

        # persist @ 1,000 turns: consecutive turns appended to one conversation
        handle = await system.handle(corpus.long)
        samples = [await system.persist(handle, i) for i in range(plan.warmup + plan.persist)]
        await system.release(handle)
        out[PERSIST_1K] = samples[plan.warmup :]

        # open one conversation by id among all of them
        chosen = rng.sample(corpus.ids, plan.warmup + plan.open)
        samples = [await system.open(cid) for cid in chosen]
        out[OPEN] = samples[plan.warmup :]

        for turns, cid in corpus.assemble.items():
            samples = []
            for _ in range(plan.warmup + plan.assemble[turns]):
                gc.collect()
                seconds, count = await system.assemble(cid)
                if count != 2 * turns:
                    raise AssertionError(f"{system.name}: {count} messages, expected {2 * turns}")
                samples.append(seconds)
            out[ASSEMBLE[turns]] = samples[plan.warmup :]
    finally:
        await system.stop()
    return out


@dataclass
class BackendRun:
    """One database's results."""

    label: str
    sqlite: bool
    results: Results
    messages: int
    body_bytes: dict[int, int]


def run_backend(
    label: str, url: str, sqlite_path: Path | None, plan: Plan, corpus: Corpus
) -> BackendRun:
    clust = ClustSystem(url, corpus)
    systems: list[System] = [clust, AgentsSQLAlchemySystem(url, corpus)]
    if sqlite_path is not None:
        systems.append(AgentsSQLiteSystem(sqlite_path, corpus))
    systems.append(LangChainSystem(url, corpus))

    started = time.perf_counter()
    for system in systems:
        system.setup(corpus)
    if sqlite_path is None:
        _analyze(url)  # what autovacuum would soon do on PostgreSQL
    print(f"  {label}: setup {time.perf_counter() - started:.1f} s (untimed)", flush=True)
    gc.collect()
    gc.freeze()  # setup objects out of the collector's way

    results: Results = {}
    try:
        for system in systems:
            started = time.perf_counter()
            results[system.name] = asyncio.run(measure(system, corpus, plan, random.Random(7)))
            took = time.perf_counter() - started
            print(f"  {label}: {system.name} measured in {took:.1f} s", flush=True)
    finally:
        gc.unfreeze()
    messages = 2 * sum(turns for _, turns in corpus.layout())
    return BackendRun(label, sqlite_path is not None, results, messages, clust.body_bytes)


def _analyze(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            tables = connection.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            ).scalars()
            for table in list(tables):
                connection.execute(text(f'ANALYZE "{table}"'))
    finally:
        engine.dispose()


def postgres_base_url() -> str:
    return (
        os.environ.get("CLUST_BENCH_POSTGRES_URL")
        or os.environ.get("CLUST_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_URL
    )


def run_postgres(plan: Plan, corpus: Corpus) -> BackendRun | str:
    """Results in a schema of their own (dropped after), or why PostgreSQL was skipped."""
    base = postgres_base_url()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # no server: report SQLite alone
        admin.dispose()
        return f"PostgreSQL skipped: {make_url(base).render_as_string()} unreachable: {exc!s:.200}"
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options=-csearch_path%3D{schema}"
    try:
        return run_backend("PostgreSQL", url, None, plan, corpus)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- report ------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    if ms < 10:
        return f"{ms:.3f}"
    return f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def print_results(run: BackendRun, plan: Plan, corpus: Corpus) -> None:
    names = list(run.results)
    widths = [max(len(name), 17) + 2 for name in names]
    where = "SQLite file (WAL)" if run.sqlite else "PostgreSQL"
    print(
        f"\n{where}: {len(corpus.ids):,} conversations, {run.messages:,} messages per system; "
        "median ms (xN = system / clust)"
    )
    print(f"{'workload':<31}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True)))
    for workload in WORKLOADS:
        base = median(run.results[CLUST][workload])
        line = f"{workload:<31}"
        for name, width in zip(names, widths, strict=True):
            value = median(run.results[name][workload])
            cell = _ms(value) if name == CLUST else f"{_ms(value)} (x{value / base:.1f})"
            line += f"{cell:>{width}}"
        print(line)
    sizes = ", ".join(f"{t:,} turns {b / 1e6:.2f} MB" for t, b in run.body_bytes.items())
    print(f"clust request body: {sizes}")


def check_targets(run: BackendRun) -> list[tuple[str, bool]]:
    clust = {w: median(s) for w, s in run.results[CLUST].items()}
    label = "SQLite" if run.sqlite else "PostgreSQL"
    checks: list[tuple[str, bool]] = []
    if run.sqlite:
        for workload in (PERSIST_10, PERSIST_1K):
            checks.append((f"{label}: {workload} < 1.5 ms", clust[workload] < 1.5e-3))
    checks.append((f"{label}: {ASSEMBLE[1_000]} < 5 ms", clust[ASSEMBLE[1_000]] < 5e-3))
    checks.append((f"{label}: {ASSEMBLE[10_000]} < 50 ms", clust[ASSEMBLE[10_000]] < 50e-3))
    checks.append((f"{label}: {OPEN} < 1 ms", clust[OPEN] < 1e-3))
    for workload in WORKLOADS:
        faster = [
            name
            for name, samples in run.results.items()
            if name != CLUST and median(samples[workload]) <= clust[workload]
        ]
        what = f"{label}: {workload}: clust faster than every anchor"
        if faster:
            what += f" (not than {', '.join(faster)})"
        checks.append((what, not faster))
    return checks


NOTES = """\
What is timed (a turn = a user message + an assistant message; N turns = 2N rows):
  clust persist    user_wire + begin_turn (lease, position, user row, intent row: commit) +
                   finish_turn (assistant row + usage row, lease released: commit); two
                   durable write transactions, as a real send makes; prebuilt reply, no HTTP.
  anchors persist  one add_items([user, assistant]) / add_messages([human, ai]): one
                   transaction; no usage row (the anchors keep none), no lease.
  clust open       Store.get_conversation(id): a primary-key read of the conversation row.
  Agents open      construct the session + get_items(limit=1) (no conversation row to read).
  LangChain open   SQLChatMessageHistory(id, connection=engine) (checks its table; no read).
  clust assemble   open + refresh() + History.request(): the request body bytes.
  anchor assemble  construct + get_items() / .messages: a list of items or messages; encoding
                   them into a request body is not timed (in the anchors' favour).
  persist @ 10: one turn into each of a pool of 10-turn conversations; @ 1,000: consecutive
  turns appended to a 1,000-turn conversation. Same databases for all systems: one SQLite
  file in a temp dir, one fresh PostgreSQL schema (ANALYZE run after the bulk setup)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--ascii", action="store_true", help="ASCII-only texts (default: some non-ASCII)"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    corpus = make_corpus(plan, ascii_only=args.ascii)

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    runs: list[BackendRun] = []
    with tempfile.TemporaryDirectory(prefix="clust-bench-") as tmp:
        path = Path(tmp) / "store.db"
        runs.append(run_backend("SQLite", f"sqlite:///{path}", path, plan, corpus))
    skipped = "PostgreSQL skipped (--no-postgres)" if args.no_postgres else None
    if not args.no_postgres:
        outcome = run_postgres(plan, corpus)
        if isinstance(outcome, str):
            skipped = outcome
        else:
            runs.append(outcome)

    for run in runs:
        print_results(run, plan, corpus)
    if skipped:
        print(f"\n{skipped}")
    assemble = " / ".join(f"{n}" for n in plan.assemble.values())
    print(
        f"\nsamples per cell: persist {plan.persist}, open {plan.open}, assemble "
        f"{assemble} (10 / 1,000 / 10,000 turns), after {plan.warmup} warm-up; texts "
        f"{'ASCII only' if args.ascii else 'with some non-ASCII characters'}; load average "
        f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )
    print()
    print(NOTES)
    print("\nTargets (clust medians):")
    checks = [check for run in runs for check in check_targets(run)]
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    missed = sum(1 for _, ok in checks if not ok)
    took = time.perf_counter() - started
    print(f"targets: {len(checks) - missed} met, {missed} missed; run took {took:.0f} s")
    if missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
