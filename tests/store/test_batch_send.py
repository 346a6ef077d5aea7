"""``Store.batch_send`` / ``collect_batch``: many conversations advanced by one Message
Batch, on SQLite and on PostgreSQL (issue 9).

The acceptance test submits in one child process and collects in another (a restart
in between); FakeClaude runs here, keeps batches in progress until the test moves its
clock, and decides each item's outcome with a resolver.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, insert, select

from clust import AsyncClient, Client, Store
from clust.conversation import Conversation
from clust.messages import (
    ConnectionFailed,
    ContextWindowExceeded,
    ConversationBusy,
    ConversationNotFound,
    InternalServerError,
    InvalidParameter,
    InvalidRequestError,
    NothingToRetry,
    PendingTurn,
    StoreError,
    TurnInBatch,
)
from clust.protocol.retry import RetryPolicy
from clust.store import batches as batch_rows
from clust.store import repository as rows
from clust.store.schema import BatchItemRow, MessageRow, UsageRow
from clust.testing import FakeClaude, RecordedRequest, Reply
from clust.usage import PriceTable, usage_report
from clust.usage.cost import cost_of

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "procs" / "batch_worker.py"
MODEL = "claude-sonnet-5-5"
PRICED = "claude-sonnet-4-5"  # a model with a list price
PROCESSING = 3600.0  # seconds a batch stays in progress on the fake clock
LONG_SYSTEM = "You answer questions about the sea. " * 400  # long enough to be cached


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeClaude]:
    """Batches stay ``in_progress`` until the test advances the clock."""
    with FakeClaude(batch_processing_seconds=PROCESSING) as fake:
        yield fake


def end_batches(fake: FakeClaude) -> None:
    fake.advance_time(PROCESSING + 1)


def batch_creates(fake: FakeClaude) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v1/messages/batches"]


def message_posts(fake: FakeClaude) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v1/messages"]


def conversation_of(custom_id: str) -> str:
    return custom_id.rsplit("_", 1)[0]


def stored_turns(store: Store, conversation_id: str) -> list[tuple[int, str]]:
    with store.engine.connect() as connection:
        found = connection.execute(
            select(MessageRow.position, MessageRow.role)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.position)
        ).all()
    return [(row[0], row[1]) for row in found]


def usage_rows(store: Store) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(UsageRow).order_by(UsageRow.id)).all())


# -- child processes -----------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_job(job: str, config: dict[str, Any], timeout: float = 120.0) -> list[dict[str, Any]]:
    """Run one child to completion; its stdout lines, parsed."""
    done = subprocess.run(
        [sys.executable, str(WORKER), job, json.dumps(config)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{job} exited with {done.returncode}:\n{done.stderr}"
    return [json.loads(line) for line in done.stdout.splitlines()]


# -- the acceptance test ------------------------------------------------------------------


def test_200_conversations_with_a_restart_between_submit_and_collect(
    db_url: str, fake: FakeClaude, client: Client
) -> None:
    with Store(db_url) as store:
        convs = [
            store.create_conversation(model=PRICED, max_tokens=64, metadata={"n": index})
            for index in range(200)
        ]
        for conv in convs[::10]:  # some have history already (standard-priced)
            conv.send(client, "an earlier question")
        before = {conv.id: len(conv.history) for conv in convs}
    errored = {convs[i].id for i in range(3, 200, 17)}
    expired = {convs[i].id for i in range(5, 200, 23)} - errored
    failed = errored | expired

    def resolve(custom_id: str, _params: Any) -> str | None:
        conversation_id = conversation_of(custom_id)
        if conversation_id in errored:
            return "errored"
        return "expired" if conversation_id in expired else None

    fake.set_batch_resolver(resolve)
    config = {"db_url": db_url, "base_url": fake.base_url}
    pairs = [[conv.id, f"question {index}"] for index, conv in enumerate(convs)]
    *_, submitted = run_job("submit", {**config, "pairs": pairs})
    assert submitted["event"] == "submitted" and submitted["state"] == "submitted"

    [create] = batch_creates(fake)  # one batch for all 200
    assert isinstance(create.body, dict)
    sent = create.body["requests"]
    assert len(sent) == 200
    assert {conversation_of(item["custom_id"]) for item in sent} == set(before)
    assert all(len(item["custom_id"]) <= 64 for item in sent)

    # Between the two processes: the batch is open and holds its conversations.
    with Store(db_url) as store:
        [waiting] = store.open_batches()
        assert waiting.id == submitted["id"] and waiting.api_id == submitted["api_id"]
        assert waiting.items == {"open": 200}
        assert waiting.processing_status == "in_progress"
        held = store.get_conversation(convs[7].id)
        assert held.pending
        with pytest.raises(TurnInBatch) as refused:
            held.retry(client)
        assert refused.value.batch_id == submitted["api_id"]

    end_batches(fake)
    [collected] = run_job("collect", config)
    assert collected["batches"] == [
        {
            "id": submitted["id"],
            "ended": True,
            "stored": 200 - len(failed),
            "errored": len(errored),
            "expired": len(expired),
            "canceled": 0,
            "skipped": 0,
            "missing": 0,
        }
    ]

    with Store(db_url) as store:
        for index, conv in enumerate(convs):
            turns = stored_turns(store, conv.id)
            start = before[conv.id]
            history = store.get_conversation(conv.id).history
            assert history[start].content == f"question {index}"
            if conv.id in failed:  # a pending turn, nothing more
                assert turns[start:] == [(start, "user")], conv.id
            else:  # exactly one new assistant turn
                assert turns[start:] == [(start, "user"), (start + 1, "assistant")], conv.id
                assert history[-1].text() == f"Echo: question {index}"

        batch_usage = [row for row in usage_rows(store) if row.service_tier == "batch"]
        assert len(batch_usage) == 200 - len(failed)
        assert {row.conversation_id for row in batch_usage} == set(before) - failed
        for row in batch_usage:
            assert row.message_position == before[row.conversation_id] + 1
            assert row.outcome == "reply"

        # Priced at the batch discount: half of what the same tokens cost one by one.
        price = PriceTable.default().price_for(PRICED, datetime.now(timezone.utc))
        assert price is not None and price.batch_discount == Decimal("0.5")
        fresh = next(conv for conv in convs[1:10] if conv.id not in failed)
        [row] = [row for row in batch_usage if row.conversation_id == fresh.id]
        [report] = usage_report(store, conversation_id=fresh.id)
        assert report.cost == cost_of(row, price, batch=False) / 2
        assert report.cost > 0

        # Collecting again is a no-op, from any process.
        again = store.collect_batch(client, submitted["api_id"])
        assert (again.ended, again.stored, again.pending, again.skipped) == (True, 0, 0, 0)
        assert len(usage_rows(store)) == len(before) // 10 + 200 - len(failed)
        assert again.batch.state == "collected" and store.open_batches() == []

        # The errored and expired turns are pending: retry sends them as usual.
        for conversation_id in sorted(failed):
            conv = store.get_conversation(conversation_id)
            assert conv.pending
            reply = conv.retry(client)
            assert reply.text().startswith("Echo: question ")
            assert stored_turns(store, conversation_id)[-1][1] == "assistant"
        assert len(usage_rows(store)) == len(before) // 10 + 200


# -- what is sent --------------------------------------------------------------------------


def test_each_request_is_what_send_would_send(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    """Twin conversations: one sends its turn, the other batches it. Same body, cache
    breakpoints and beta header included (the reply id each asks about aside)."""
    twins = [
        store.create_conversation(model=MODEL, max_tokens=128, system=LONG_SYSTEM) for _ in range(2)
    ]
    for conv in twins:
        conv.send(client, "Hello")
    sender, batched = twins
    sender.send(client, [{"type": "text", "text": "And the tides?"}])
    sent = json.loads(message_posts(fake)[-1].raw)
    batch = store.batch_send(client, [(batched, [{"type": "text", "text": "And the tides?"}])])
    [create] = batch_creates(fake)
    assert isinstance(create.body, dict)
    [item] = create.body["requests"]
    assert item["custom_id"] == f"{batched.id}_2"
    params = item["params"]
    assert params["system"][-1]["cache_control"]["type"] == "ephemeral"
    assert (
        sent["diagnostics"]["previous_message_id"] != params["diagnostics"]["previous_message_id"]
    )
    with store.engine.connect() as connection:
        for conv, body in ((sender, sent), (batched, params)):
            assert body["diagnostics"]["previous_message_id"] == rows.reply_message_id(
                connection, conv.id, 1
            )
    del sent["diagnostics"], params["diagnostics"]
    assert list(params) == list(sent) and params == sent
    assert batch.request_count == 1 and batch.items == {"open": 1}


def test_one_hour_markers_add_the_beta_to_the_batch(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = store.create_conversation(
        model=MODEL,
        max_tokens=64,
        system=[
            {
                "type": "text",
                "text": LONG_SYSTEM,
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
    )
    store.batch_send(client, [(conv, "hi")], betas=["some-beta-2026-01-01"])
    [create] = batch_creates(fake)
    given = [b.strip() for b in (create.header("anthropic-beta") or "").split(",")]
    assert sorted(given) == ["extended-cache-ttl-2025-04-11", "some-beta-2026-01-01"]


# -- the turn waits in the batch -----------------------------------------------------------


def test_an_open_batch_holds_its_conversations(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    batch = store.batch_send(client, [(conv.id, "hi")])
    assert conv.pending and len(conv.history) == 1
    with pytest.raises(TurnInBatch):
        conv.send(client, "another")
    with pytest.raises(TurnInBatch):
        conv.retry(client)
    with pytest.raises(TurnInBatch):
        conv.discard_pending()
    with pytest.raises(TurnInBatch), conv.stream(client, None) as stream:
        for _ in stream:
            pass
    other = store.get_conversation(conv.id)  # another object, as another process has
    with pytest.raises(TurnInBatch):
        other.retry(client)
    with pytest.raises(TurnInBatch):
        store.batch_send(client, [(other, None)])
    assert message_posts(fake) == [] and len(batch_creates(fake)) == 1

    not_yet = store.collect_batch(client, batch)
    assert not not_yet.ended and not_yet.stored == 0 and conv.pending
    end_batches(fake)
    done = store.collect_batch(client, batch.id)
    assert done.ended and done.stored == 1
    conv.refresh()
    assert not conv.pending and conv.history[-1].text() == "Echo: hi"
    assert conv.send(client, "next").text() == "Echo: next"  # free again


def test_errored_turns_can_be_batched_again(store: Store, fake: FakeClaude, client: Client) -> None:
    convs = [store.create_conversation(model=MODEL, max_tokens=64) for _ in range(3)]
    fake.set_batch_resolver(lambda custom_id, _: "errored")
    first = store.batch_send(client, [(conv, f"q{i}") for i, conv in enumerate(convs)])
    end_batches(fake)
    done = store.collect_batch(client, first)
    assert (done.stored, done.errored, done.pending) == (0, 3, 3)
    with store.engine.connect() as connection:
        [item] = connection.execute(
            select(BatchItemRow).where(BatchItemRow.conversation_id == convs[0].id)
        ).all()
    assert (item.state, item.error_type, item.error) == (
        "errored",
        "api_error",
        "Internal server error",
    )

    fake.set_batch_resolver(None)
    second = store.batch_send(client, [(conv, None) for conv in convs])  # resend pending
    end_batches(fake)
    assert store.collect_batch(client, second).stored == 3
    for index, conv in enumerate(convs):
        history = store.get_conversation(conv.id).history
        assert [m.role.value for m in history] == ["user", "assistant"]
        assert history[-1].text() == f"Echo: q{index}"


def test_deleted_and_canceled_conversations(store: Store, fake: FakeClaude, client: Client) -> None:
    gone, canceled, kept = (store.create_conversation(model=MODEL, max_tokens=64) for _ in range(3))
    fake.script_batch_result(f"{canceled.id}_0", "canceled")
    batch = store.batch_send(client, [(gone, "a"), (canceled, "b"), (kept, "c")])
    store.delete_conversation(gone.id)
    end_batches(fake)
    done = store.collect_batch(client, batch.api_id or "")
    assert (done.stored, done.canceled, done.skipped, done.missing) == (1, 1, 1, 0)
    assert done.batch.items == {"succeeded": 1, "canceled": 1, "skipped": 1}
    assert canceled.pending and canceled.retry(client).text() == "Echo: b"
    with store.engine.connect() as connection:
        states = dict(
            connection.execute(select(BatchItemRow.custom_id, BatchItemRow.conversation_id)).all()
        )
    assert states[f"{gone.id}_0"] is None  # the item stays, detached
    assert [row.conversation_id for row in usage_rows(store)].count(kept.id) == 1


def test_a_cancelled_batch_leaves_every_turn_pending(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    convs = [store.create_conversation(model=MODEL, max_tokens=64) for _ in range(2)]
    batch = store.batch_send(client, [(conv, "x") for conv in convs])
    assert batch.api_id is not None
    client.cancel_message_batch(batch.api_id)
    done = store.collect_batch(client, batch)
    assert (done.ended, done.canceled, done.stored) == (True, 2, 0)
    assert all(store.get_conversation(conv.id).pending for conv in convs)
    assert store.get_batch(batch.api_id).state == "collected"


# -- checked before anything is written or sent ---------------------------------------------


def test_bad_input_fails_before_anything_is_stored_or_sent(
    db_url: str, store: Store, fake: FakeClaude, client: Client
) -> None:
    a, b = (store.create_conversation(model=MODEL, max_tokens=64) for _ in range(2))
    fake.enqueue(Reply.error(500, "api_error", "down"))
    pending = store.create_conversation(model=MODEL, max_tokens=64)
    with pytest.raises(InternalServerError):
        pending.send(client, "lost", max_retries=0)
    assert pending.pending
    fake.clear()

    def refused(error: type[Exception], requests: Any, **options: Any) -> Any:
        with pytest.raises(error) as caught:
            store.batch_send(client, requests, **options)
        return caught.value

    assert refused(InvalidParameter, []).field == "requests"
    assert refused(InvalidParameter, [(a, "x"), (b, "y"), (a.id, "z")]).field == "requests[2]"
    bad = refused(InvalidParameter, [(a, "x"), (b, [{"type": "text"}])])
    assert bad.field == "requests[1].content"
    assert refused(InvalidParameter, [(a, "x")], max_tokens=-1).field == "max_tokens"
    assert refused(InvalidParameter, [a]).field == "requests[0]"
    refused(ConversationNotFound, [(a, "x"), ("no-such-id", "y")])
    refused(PendingTurn, [(a, "x"), (pending, "y")])
    refused(NothingToRetry, [(a, None)])
    with Store(db_url) as other:
        refused(InvalidParameter, [(other.get_conversation(a.id), "x")])
    with store.engine.connect() as connection, connection.begin():
        now = datetime.now(timezone.utc)
        rows.acquire_lease(connection, b.id, "someone", now, now + timedelta(minutes=5))
    refused(ConversationBusy, [(a, "x"), (b, "y")])

    assert batch_creates(fake) == [] and store.batches() == []
    assert stored_turns(store, a.id) == [] and stored_turns(store, b.id) == []
    assert len(a.history) == 0 and pending.pending


def test_a_failed_create_takes_every_turn_back(store: Store, fake: FakeClaude) -> None:
    """Nothing listens on the port: the create request fails, the turns are removed
    (a resent pending turn stays pending), and the same call works afterwards."""
    fresh, pending = (store.create_conversation(model=MODEL, max_tokens=64) for _ in range(2))
    fake.enqueue(Reply.error(400, "invalid_request_error", "no"))
    with Client(api_key="k", base_url=fake.base_url) as client, pytest.raises(InvalidRequestError):
        pending.send(client, "again")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    pairs: list[tuple[Conversation, str | None]] = [(fresh, "hello"), (pending, None)]
    with (
        Client(api_key="k", base_url=dead, retry_policy=RetryPolicy(max_retries=0)) as down,
        pytest.raises(ConnectionFailed),
    ):
        store.batch_send(down, pairs)
    [failed] = store.batches()
    assert failed.state == "failed" and failed.api_id is None
    assert failed.error is not None and failed.error.startswith("ConnectionFailed")
    assert failed.items == {}
    assert stored_turns(store, fresh.id) == [] and len(fresh.history) == 0
    assert stored_turns(store, pending.id) == [(0, "user")] and pending.pending
    with pytest.raises(StoreError, match="cannot be collected"):
        store.collect_batch(down, failed)

    with Client(api_key="k", base_url=fake.base_url) as client:
        batch = store.batch_send(client, pairs)
        end_batches(fake)
        assert store.collect_batch(client, batch).stored == 2
    fresh.refresh()
    assert fresh.history[-1].text() == "Echo: hello"


def test_a_request_over_the_context_window_takes_the_batch_back(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    """Each request goes through the conversation's truncation strategy, as a send's
    does: the default refuses one that cannot fit, before the batch is created."""
    fits, too_long = (store.create_conversation(model=MODEL, max_tokens=64) for _ in range(2))
    with pytest.raises(ContextWindowExceeded):
        store.batch_send(client, [(fits, "hi"), (too_long, "word " * 1_200_000)])
    assert batch_creates(fake) == []
    assert stored_turns(store, fits.id) == [] and stored_turns(store, too_long.id) == []
    [failed] = store.batches()
    assert failed.state == "failed" and "ContextWindowExceeded" in (failed.error or "")


def test_a_submitter_killed_mid_create_leaves_pending_turns(
    db_url: str, store: Store, client: Client
) -> None:
    """The create request never gets an answer and the process is killed: the turns stay
    pending, held until the batch's claim runs out, then retry resends them."""
    convs = [store.create_conversation(model=MODEL, max_tokens=64) for _ in range(3)]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(60)
        config = {
            "db_url": db_url,
            "base_url": f"http://127.0.0.1:{listener.getsockname()[1]}",
            "lease_seconds": 4.0,
            "pairs": [[conv.id, "hi"] for conv in convs],
        }
        child = subprocess.Popen(
            [sys.executable, str(WORKER), "submit", json.dumps(config)],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            connection, _ = listener.accept()  # the create request is on its way
            with connection:
                connection.settimeout(30)
                assert connection.recv(65536).startswith(b"POST /v1/messages/batches")
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
            assert child.stderr is not None
            child.stderr.close()
    [batch] = store.batches()
    assert batch.items == {"open": 3}
    for conv in convs:
        assert conv.pending
    with store.engine.connect() as connection:
        claim = connection.execute(
            select(batch_rows.batches.c.claim_expires_at).where(batch_rows.batches.c.id == batch.id)
        ).scalar_one()
    if claim - datetime.now(timezone.utc) > timedelta(seconds=1):  # still held: turns wait
        with pytest.raises(TurnInBatch) as held:
            convs[0].retry(client)
        assert held.value.batch_id == batch.id
    deadline = time.monotonic() + 30
    while store.get_batch(batch.id).state != "abandoned":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert store.open_batches() == []
    for conv in convs:
        assert conv.retry(client).text() == "Echo: hi"


# -- async -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_batch_send_and_collect(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    convs = [store.create_conversation(model=MODEL, max_tokens=64) for _ in range(3)]
    fake.script_batch_result(f"{convs[1].id}_0", "expired")
    batch = await store.abatch_send(aclient, [(conv, f"q{i}") for i, conv in enumerate(convs)])
    assert (await store.abatch_status(aclient, batch)).processing_status == "in_progress"
    seen: list[str] = []

    async def progress(remote: Any) -> None:
        seen.append(str(remote.processing_status))
        end_batches(fake)

    done = await store.acollect_batch(
        aclient, batch, wait=True, poll_interval=0.01, on_progress=progress
    )
    assert seen[-1] == "ended"
    assert (done.stored, done.expired) == (2, 1)
    assert convs[1].pending and not store.get_conversation(convs[0].id).pending


# -- query plans -------------------------------------------------------------------------------


@pytest.fixture
def batch_engine(db_url: str) -> Iterator[Engine]:
    """2,000 conversations (from the store's query plan test) and 500 batches of 4."""
    from store.test_query_plans import IDS, NOW, populate

    with Store(db_url) as opened:
        populate(opened.engine)
        with opened.engine.connect() as connection, connection.begin():
            for number in range(500):
                batch_id = f"b{number:03d}"
                connection.execute(
                    insert(batch_rows.batches),
                    [
                        {
                            "id": batch_id,
                            "api_id": f"msgbatch_{number:03d}",
                            "state": "collected" if number < 499 else "submitted",
                            "claim_expires_at": None,
                            "request_count": 4,
                            "processing_status": "ended",
                            "processing": 0,
                            "succeeded": 4,
                            "errored": 0,
                            "canceled": 0,
                            "expired": 0,
                            "error": None,
                            "created_at": NOW,
                            "submitted_at": NOW,
                            "ended_at": None,
                            "expires_at": None,
                            "collected_at": None,
                        }
                    ],
                )
                connection.execute(
                    insert(batch_rows.items),
                    [
                        {
                            "batch_id": batch_id,
                            "custom_id": f"{conversation_id}_9",
                            "conversation_id": conversation_id,
                            "position": 9,
                            "state": "succeeded" if number < 499 else "open",
                            "reply_position": None,
                            "error_type": None,
                            "error": None,
                            "finished_at": None,
                        }
                        for conversation_id in IDS[number * 4 : (number + 1) * 4]
                    ],
                )
        with opened.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
        yield opened.engine


def test_batch_query_plans(batch_engine: Engine, subtests: Any) -> None:
    """The queries a turn or a collection runs per conversation are index lookups."""
    from store.test_query_plans import IDS, NOW, Expect, check, explain, sent_by

    target = IDS[1998]  # in the open batch b499
    items_pk = ("clust_batch_items", "<primary key>")
    by_conversation = ("clust_batch_items", "ix_clust_batch_items_conversation")
    # Led by the item of this conversation's turn; its batch by primary key, or (the
    # planner's choice on PostgreSQL, few batches being open) by the state index.
    cases: dict[str, tuple[Callable[[Connection], object], list[Expect]]] = {
        "open_batch_of": (
            lambda c: batch_rows.open_batch_of(c, target, 9, NOW),
            [
                Expect({by_conversation, ("clust_batches", "<primary key>")}),
                Expect({by_conversation, ("clust_batches", "ix_clust_batches_state_created")}),
            ],
        ),
        "get_item": (lambda c: batch_rows.get_item(c, "b499", f"{target}_9"), [Expect({items_pk})]),
        "finish_item": (
            lambda c: batch_rows.finish_item(c, "b499", f"{target}_9", state="errored", now=NOW),
            [Expect({items_pk})],
        ),
    }
    for case, (call, alternatives) in cases.items():
        with subtests.test(case), batch_engine.connect() as connection:
            transaction = connection.begin()
            try:
                [statement] = sent_by(connection, call)
                plan = explain(connection, statement)
                failures: list[AssertionError] = []
                for expect in alternatives:
                    try:
                        check(connection, statement, plan, expect)
                    except AssertionError as failure:
                        failures.append(failure)
                assert len(failures) < len(alternatives), failures[0]
                if case == "open_batch_of":
                    assert plan.accesses[0][1:] == by_conversation, plan.text
            finally:
                transaction.rollback()
    with batch_engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(batch_rows.items)).scalar() == 2000
        )
