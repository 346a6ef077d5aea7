"""The usage ledger is complete by construction: every request has its row before it
leaves (outcome ``unknown``), completed when its outcome is known; an attempt whose
process died stays ``unknown`` and is listed as such by ``conv.usage()``, the usage
report and ``clust usage``. Migration 0008 carries existing rows both ways.

Every test runs on an SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import event, inspect, text
from store.lease_support import (
    MODEL,
    STARTUP,
    Child,
    clust_cli,
    ledger,
    message_requests,
    poll,
    response,
)

from clust import Client, Store
from clust.conversation.history import History, user_wire
from clust.conversation.turns import (
    abort_turn,
    begin_attempt,
    begin_turn,
    finish_attempt,
    finish_turn,
)
from clust.messages import ConversationNotFound
from clust.store.engine import WRITE
from clust.store.migrate import HEAD_REVISION, MIGRATIONS
from clust.testing import FakeClaude, Reply
from clust.usage import usage_report

LEASE = timedelta(seconds=30)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def outcomes(store: Store, conversation_id: str) -> list[tuple[int | None, str]]:
    return [(row["message_position"], row["outcome"]) for row in ledger(store, conversation_id)]


def test_an_attempt_is_in_the_ledger_before_its_request_leaves(
    db_url: str, store: Store, fake: FakeClaude, client: Client, pool: ThreadPoolExecutor
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    fake.enqueue(Reply.echo().delayed(1.5))
    sending = pool.submit(conv.send, client, "hello")
    poll(lambda: message_requests(fake) == 1, 10, "the request")

    [row] = ledger(store, conv.id)
    assert (row["outcome"], row["message_position"], row["model"]) == ("unknown", None, MODEL)
    assert (row["input_tokens"], row["output_tokens"]) == (0, 0)
    with Store(db_url) as elsewhere:
        seen = elsewhere.get_conversation(conv.id)
        totals = seen.usage()
        # Its sender holds the lease: in flight, not lost.
        assert (totals.requests, totals.in_flight_attempts, totals.unknown_attempts) == (0, 1, 0)
        [report] = usage_report(elsewhere, conversation_id=conv.id)
        assert (report.requests, report.in_flight_attempts, report.unknown_attempts) == (0, 1, 0)

    sending.result(timeout=10)
    [row] = ledger(store, conv.id)
    assert (row["outcome"], row["message_position"]) == ("reply", 1)
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["holder"] is not None and row["finished_at"] >= row["started_at"]
    totals = conv.usage()
    assert (totals.requests, totals.in_flight_attempts, totals.unknown_attempts) == (1, 0, 0)


def test_a_sender_killed_mid_request_leaves_an_attempt_of_unknown_outcome(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    client: Client,
    lease_child: Callable[[dict[str, Any]], Child],
) -> None:
    lease = 1.0
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    fake.enqueue(Reply.echo().delayed(60))
    child = lease_child(
        {
            "db_url": db_url,
            "base_url": fake.base_url,
            "id": conv.id,
            "content": "doomed",
            "lease_seconds": lease,
        }
    )
    child.expect("ready", STARTUP)
    poll(lambda: message_requests(fake) == 1, STARTUP, "the child's request")
    child.proc.send_signal(signal.SIGKILL)
    assert child.proc.wait(timeout=10) == -signal.SIGKILL

    reply = conv.retry(client, wait=lease + 30)  # once the dead sender's lease ran out
    assert reply.text() == "Echo: doomed"
    assert outcomes(store, conv.id) == [(None, "unknown"), (1, "reply")]

    totals = conv.usage()
    assert (totals.requests, totals.unknown_attempts, totals.in_flight_attempts) == (1, 1, 0)
    [report] = usage_report(store, conversation_id=conv.id)
    assert (report.requests, report.unknown_attempts, report.in_flight_attempts) == (1, 1, 0)
    [everything] = usage_report(store)
    assert everything.unknown_attempts == 1

    shown = clust_cli("usage", "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    assert "unknown outcome: 1 attempt that may have been billed" in shown.stdout
    as_json = clust_cli("usage", "--by", "total", "--format", "json", "--db", db_url)
    assert '"unknown_attempts": 1' in as_json.stdout, as_json.stderr
    detail = clust_cli("conversations", "show", conv.id, "--db", db_url)
    assert "unknown outcome: 1 attempt that may have been billed" in detail.stdout, detail.stderr


def test_abort_and_finish_complete_the_attempt_and_record_discarded_partials(
    store: Store,
) -> None:
    engine = store.engine
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    history = History()

    failed = begin_turn(engine, conv.id, history, user_wire("q"), LEASE)
    abort_turn(engine, failed, None, 12)  # an HTTP error: nothing billed
    cut = begin_turn(engine, conv.id, history, None, LEASE)  # resend the pending turn
    partial = response("half", input_tokens=50, output_tokens=5)
    earlier = [response("a", input_tokens=50, output_tokens=1), response("b", output_tokens=2)]
    abort_turn(engine, cut, partial, 30, discarded=earlier)
    unsure = begin_turn(engine, conv.id, history, None, LEASE)
    abort_turn(engine, unsure, None, 40, outcome="unknown")  # e.g. a timeout once sent
    done = begin_turn(engine, conv.id, history, None, LEASE, model="claude-opus-4-1")
    finish_turn(
        engine, done, history, response("whole"), 50, discarded=[response("c", output_tokens=3)]
    )

    rows = ledger(store, conv.id)
    assert [(row["message_position"], row["outcome"]) for row in rows] == [
        (None, "failed"),
        (None, "interrupted"),  # the turn's own attempt
        (None, "interrupted"),  # the partials of its reopened stream
        (None, "interrupted"),
        (None, "unknown"),
        (1, "reply"),
        (None, "interrupted"),
    ]
    assert (rows[0]["input_tokens"], rows[0]["latency_ms"]) == (0, 12)
    assert [row["output_tokens"] for row in rows[1:4]] == [5, 1, 2]
    assert rows[5]["model"] == MODEL  # completed with the model the API reported
    totals = store.get_conversation(conv.id).usage()
    assert (totals.requests, totals.unknown_attempts) == (5, 1)
    assert totals.output_tokens == 5 + 1 + 2 + 30 + 3


def test_requests_outside_a_turn_have_an_attempt_too(store: Store) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    engine = store.engine
    summary = begin_attempt(engine, conv.id)
    assert outcomes(store, conv.id) == [(None, "unknown")]
    assert finish_attempt(engine, summary, conv.id, response(), outcome="summary", latency_ms=9)
    assert not finish_attempt(engine, summary, conv.id, response(), outcome="summary", latency_ms=9)
    failing = begin_attempt(engine, conv.id, "claude-opus-4-1")
    assert finish_attempt(engine, failing, conv.id, None, outcome="failed", latency_ms=3)
    rows = ledger(store, conv.id)
    assert [(row["outcome"], row["model"]) for row in rows] == [
        ("summary", MODEL),
        ("failed", "claude-opus-4-1"),
    ]
    assert rows[0]["output_tokens"] == 30
    with pytest.raises(ConversationNotFound):
        begin_attempt(engine, "no-such-conversation")


def test_a_turn_is_still_two_statements_on_postgres(store: Store) -> None:
    """The intent row rides in begin's statement, its completion in the reply's: a
    turn costs what it cost before the ledger recorded attempts."""
    engine = store.engine
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    history = History()
    sent: list[str] = []

    def count(*args: Any) -> None:
        statement = args[2]
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        turn = begin_turn(engine, conv.id, history, user_wire("q"), LEASE)
        finish_turn(engine, turn, history, response(), 5)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    expected = 2 if engine.dialect.name == "postgresql" else 6
    assert len(sent) == expected, sent
    assert outcomes(store, conv.id) == [(1, "reply")]


# -- migration 0008 -----------------------------------------------------------------------


def migrate(store: Store, revision: str, *, down: bool) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect().execution_options(**WRITE) as connection, connection.begin():
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def usage_columns(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return {column["name"] for column in inspect(connection).get_columns("clust_usage")}


def test_migration_0008_carries_the_ledger_both_ways(
    db_url: str, fake: FakeClaude, client: Client
) -> None:
    with Store(db_url) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        conv.send(client, "before")  # a row written at 0008, then carried down and up
        migrate(store, "0007", down=True)
        assert "holder" not in usage_columns(store)
        # A row as 0007 wrote them: no holder column, an outcome of its vocabulary.
        with store.engine.connect() as connection, connection.begin():
            connection.execute(
                text(
                    "INSERT INTO clust_usage (conversation_id, model, input_tokens, "
                    "output_tokens, cache_creation_input_tokens, "
                    "cache_creation_5m_input_tokens, cache_creation_1h_input_tokens, "
                    "cache_read_input_tokens, web_search_requests, web_fetch_requests, "
                    "latency_ms, started_at, finished_at, outcome) VALUES (:id, :model, "
                    "7, 3, 0, 0, 0, 0, 0, 0, 10, :at, :at, 'interrupted')"
                ),
                {"id": conv.id, "model": MODEL, "at": conv.created_at},
            )

    with Store(db_url) as store:  # 0008 on open
        assert "holder" in usage_columns(store)
        rows = ledger(store, conv.id)
        assert [(row["outcome"], row["holder"]) for row in rows] == [
            ("reply", None),
            ("interrupted", None),
        ]
        assert store.get_conversation(conv.id).usage().requests == 2

        # Down again with attempts of the new vocabulary: "failed" rows (never billed)
        # go, "unknown" ones become "interrupted" (billed, no turn: 0007's nearest).
        history = History()
        engine = store.engine
        turn = begin_turn(engine, conv.id, history, user_wire("fails"), LEASE)
        abort_turn(engine, turn)
        begin_attempt(engine, conv.id)  # left unknown
        assert [row["outcome"] for row in ledger(store, conv.id)] == [
            "reply",
            "interrupted",
            "failed",
            "unknown",
        ]
        migrate(store, "0007", down=True)
        with store.engine.connect() as connection:
            found = connection.execute(
                text(
                    "SELECT outcome, output_tokens FROM clust_usage "
                    "WHERE conversation_id = :id ORDER BY id"
                ),
                {"id": conv.id},
            ).all()
        assert [tuple(row) for row in found] == [
            ("reply", rows[0]["output_tokens"]),
            ("interrupted", 3),
            ("interrupted", 0),
        ]
        migrate(store, HEAD_REVISION, down=False)
        assert [row["outcome"] for row in ledger(store, conv.id)] == [
            "reply",
            "interrupted",
            "interrupted",
        ]
