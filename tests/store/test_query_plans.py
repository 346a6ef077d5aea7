"""The hot queries are index lookups or range scans led by the conversation id.

Each repository function runs against a populated database (2,000 conversations of 10
turns, usage rows, leases; ``ANALYZE``d, so the planner chooses freely); the SQL it
sends is captured with a ``before_cursor_execute`` listener and explained with the
same parameters: ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (FORMAT JSON)`` on
PostgreSQL. The planner settings are left as they are.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, insert, inspect

from clust import Store
from clust.store import repository as rows

CONVERSATIONS = 2_000
TURNS = 10
# Now, not a fixed date: on PostgreSQL a lease's expiry is compared with the server's clock.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
IDS = [str(uuid.UUID(int=i + 1)) for i in range(CONVERSATIONS)]
TARGET = IDS[CONVERSATIONS // 2 + 1]  # its lease is held (odd index): acquire_lease is refused
PK = "<primary key>"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A store of 2,000 conversations with 10 turns each, statistics gathered."""
    with Store(db_url) as store:
        populate(store.engine)
        yield store.engine


def populate(engine: Engine) -> None:
    conversations = [
        {
            "id": conversation_id,
            "title": f"conversation {index}",
            "model": "claude-sonnet-5-5",
            "request_head": '{"model":"claude-sonnet-5-5","max_tokens":1024}',
            "params": {"max_tokens": 1024},
            "system": [{"type": "text", "text": "Be brief."}],
            "tools": None,
            "metadata": {"user": f"u{index % 50}"},
            "parent_id": None,
            "fork_position": None,
            "next_position": TURNS,
            "created_at": NOW - timedelta(minutes=CONVERSATIONS - index),
            "updated_at": NOW,
            # Every conversation has a lease; the odd ones' are still held.
            "lease_holder": f"holder-{index}",
            "lease_expires_at": NOW + timedelta(hours=1 if index % 2 else -1),
        }
        for index, conversation_id in enumerate(IDS)
    ]
    messages = [
        {
            "conversation_id": conversation_id,
            "position": position,
            "role": "user" if position % 2 == 0 else "assistant",
            "wire": json.dumps({"role": "user", "content": f"turn {position} " + "x" * 200}),
            "created_at": NOW,
        }
        for conversation_id in IDS
        for position in range(TURNS)
    ]
    usage = [
        {
            "conversation_id": conversation_id,
            "message_position": position,
            "model": "claude-sonnet-5-5",
            "request_id": f"req_{position}",
            "stop_reason": "end_turn",
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_creation_input_tokens": 0,
            "cache_creation_5m_input_tokens": 0,
            "cache_creation_1h_input_tokens": 0,
            "cache_read_input_tokens": 50,
            "web_search_requests": 0,
            "web_fetch_requests": 0,
            "service_tier": "standard",
            "latency_ms": 300,
            "started_at": NOW,
            "finished_at": NOW,
        }
        for conversation_id in IDS
        for position in range(1, TURNS, 2)
    ]
    with engine.connect() as connection, connection.begin():
        connection.execute(insert(rows.conversations), conversations)
        connection.execute(insert(rows.messages), messages)
        connection.execute(insert(rows.usage), usage)
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()


# -- capturing and explaining -------------------------------------------------------------


@dataclass
class Sent:
    """One statement as it reached the driver."""

    sql: str
    parameters: Any


def sent_by(connection: Connection, call: Callable[[Connection], object]) -> list[Sent]:
    sent: list[Sent] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if statement.strip().upper() in {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"}:
            return
        sent.append(Sent(statement, parameters[0] if many else parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        call(connection)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    return sent


@dataclass
class Plan:
    """What the planner would do: the tables it reads and through which index."""

    text: str
    # (verb, table, index): verb "SEARCH"/"SCAN" (SQLite) or the node type (PostgreSQL);
    # index None for a full table scan.
    accesses: list[tuple[str, str, str | None]] = field(default_factory=list)
    sorts: bool = False


_SQLITE_ACCESS = re.compile(
    r"^(SEARCH|SCAN) (\w+)(?: AS \w+)?"
    r"(?: USING (?:(?:COVERING )?INDEX (\w+)|(INTEGER PRIMARY KEY|PRIMARY KEY)))?"
)


def explain(connection: Connection, sent: Sent) -> Plan:
    if connection.dialect.name == "sqlite":
        details = [
            row[3]
            for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sent.sql, sent.parameters)
        ]
        plan = Plan("\n".join(details))
        for detail in details:
            match = _SQLITE_ACCESS.match(detail)
            if match:
                verb, table, index, primary_key = match.groups()
                plan.accesses.append((verb, table, index or (PK if primary_key else None)))
            plan.sorts |= "USE TEMP B-TREE" in detail
        return plan
    document: Any = connection.exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + sent.sql, sent.parameters
    ).scalar()
    if isinstance(document, str):
        document = json.loads(document)
    plan = Plan(json.dumps(document, indent=1))
    index_tables = {
        index: table for table, indexes in _pg_indexes(connection).items() for index in indexes
    }

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if kind == "Seq Scan":
            plan.accesses.append((kind, node["Relation Name"], None))
        elif kind in {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}:
            index = node["Index Name"]
            plan.accesses.append((kind, node.get("Relation Name", index_tables[index]), index))
        plan.sorts |= kind in {"Sort", "Incremental Sort"}
        for child in node.get("Plans", []):
            walk(child)

    walk(document[0]["Plan"])
    return plan


def _pg_indexes(connection: Connection) -> dict[str, list[str]]:
    inspector = inspect(connection)
    tables = [name for name in inspector.get_table_names() if name.startswith("clust_")]
    return {
        table: [str(inspector.get_pk_constraint(table)["name"])]
        + [str(index["name"]) for index in inspector.get_indexes(table)]
        for table in tables
    }


def primary_key_index(connection: Connection, table: str) -> str:
    """The index that enforces ``table``'s primary key, by its name in the plans."""
    if connection.dialect.name == "sqlite":
        found = [
            row[1]
            for row in connection.exec_driver_sql(f"PRAGMA index_list({table})")
            if row[3] == "pk"
        ]
        return found[0] if found else PK  # INTEGER PRIMARY KEY: the rowid itself
    return str(inspect(connection).get_pk_constraint(table)["name"])


# -- the hot queries ---------------------------------------------------------------------


@dataclass
class Expect:
    """What one statement's plan may read: exactly these (table, index) pairs."""

    reads: set[tuple[str, str]]
    # SQLite shows "SCAN t USING INDEX i" for an index walked in order under a LIMIT.
    ordered_walk: bool = False


def _acquire(connection: Connection) -> object:
    return rows.acquire_lease(connection, TARGET, "me", NOW, NOW + timedelta(minutes=15))


CASES: dict[str, tuple[Callable[[Connection], object], list[Expect]]] = {
    "get_conversation": (
        lambda c: rows.get_conversation(c, TARGET),
        [Expect({("clust_conversations", PK)})],
    ),
    "open_conversation": (
        lambda c: rows.open_conversation(c, TARGET),
        [Expect({("clust_conversations", PK)})],
    ),
    "load_turns": (
        lambda c: rows.load_turns(c, TARGET, 3),
        [Expect({("clust_messages", PK)})],
    ),
    "claim_and_take": (
        lambda c: rows.claim_and_take(c, IDS[2], "me", NOW, NOW + timedelta(minutes=15), 2),
        [Expect({("clust_conversations", PK)})],
    ),
    "insert_messages": (
        lambda c: rows.insert_messages(
            c, TARGET, TURNS, [("user", b'{"role":"user","content":"hi"}')], NOW
        ),
        [Expect(set())],
    ),
    "acquire_lease": (
        _acquire,
        # refused (the lease is held), so the holder's expiry is read too
        [Expect({("clust_conversations", PK)}), Expect({("clust_conversations", PK)})],
    ),
    "release_lease": (
        lambda c: rows.release_lease(c, TARGET, "holder-1002"),
        [Expect({("clust_conversations", PK)})],
    ),
    "usage_totals": (
        lambda c: rows.usage_totals(c, TARGET),
        [Expect({("clust_usage", "ix_clust_usage_conversation")})],
    ),
    "reply_message_id": (
        lambda c: rows.reply_message_id(c, TARGET, 1),
        [Expect({("clust_usage", "ix_clust_usage_conversation")})],
    ),
    "list_conversations": (
        lambda c: rows.list_conversations(c, limit=50, after=None, metadata=None),
        [Expect({("clust_conversations", "ix_clust_conversations_created")}, ordered_walk=True)],
    ),
    "list_conversations_after": (
        lambda c: rows.list_conversations(c, limit=50, after=IDS[1000], metadata=None),
        [
            Expect(
                {
                    ("clust_conversations", "ix_clust_conversations_created"),
                    ("clust_conversations", PK),  # the cursor row, by id
                }
            )
        ],
    ),
}


def test_hot_query_plans(engine: Engine, subtests: pytest.Subtests) -> None:
    """One populated database, every hot query a subtest (populating takes most of the time)."""
    for case, (call, expected) in CASES.items():
        with subtests.test(case), engine.connect() as connection:
            transaction = connection.begin()
            try:
                sent = sent_by(connection, call)
                assert len(sent) == len(expected), [s.sql for s in sent]
                for statement, expect in zip(sent, expected, strict=True):
                    check(connection, statement, explain(connection, statement), expect)
            finally:
                transaction.rollback()


def check(connection: Connection, statement: Sent, plan: Plan, expect: Expect) -> None:
    shown = f"\n{statement.sql}\n{statement.parameters!r}\nplan:\n{plan.text}"
    wanted = {
        (table, primary_key_index(connection, table) if index == PK else index)
        for table, index in expect.reads
    }
    for verb, table, index in plan.accesses:
        assert index is not None, f"full scan of {table}" + shown
        assert (table, index) in wanted, f"unexpected access {verb} {table} {index}" + shown
        if verb == "SCAN":  # SQLite: walking a whole index is fine only in order, limited
            assert expect.ordered_walk, f"scan of {table}" + shown
            assert table != "clust_messages", shown
    assert {(table, index) for _, table, index in plan.accesses} == wanted, shown
    assert not plan.sorts, "sorts instead of reading in index order" + shown


def test_foreign_keys_are_indexed(store: Store) -> None:
    """Deleting a conversation (cascades, SET NULL on usage) finds the referencing rows
    through an index led by the referencing columns, never a scan."""
    with store.engine.connect() as connection:
        inspector = inspect(connection)
        for table in ("clust_conversations", "clust_messages", "clust_usage"):
            leading: list[list[str | None]] = [
                list(inspector.get_pk_constraint(table)["constrained_columns"])
            ]
            leading += [list(index["column_names"]) for index in inspector.get_indexes(table)]
            for foreign_key in inspector.get_foreign_keys(table):
                columns: list[str | None] = list(foreign_key["constrained_columns"])
                assert any(cols[: len(columns)] == columns for cols in leading), (
                    table,
                    columns,
                )
