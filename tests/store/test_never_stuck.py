"""A conversation never gets stuck (sync API): every way a call can go wrong raises a
typed error that names the way out, stores nothing and sends nothing, and the next
call works.

Real FakeClaude sockets, on an SQLite file and on PostgreSQL. The async API's twins
are in ``test_never_stuck_async.py`` (with the wrong-client cases, which need both
kinds of client).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from store.lease_support import database_now, lease_of, poll
from store.never_stuck_support import (
    BAD_CONTENT,
    WAIT,
    Gate,
    Unchanged,
    is_pending,
    last_user_turn_sent,
    message_requests,
    new_conversation,
    stored_rows,
    texts,
    usage_outcomes,
    weather_tool,
)

from clust import Client, Conversation, Store
from clust.messages import (
    ApiError,
    ContextWindowExceeded,
    ConversationBusy,
    ConversationDeleted,
    ConversationNotFound,
    InvalidParameter,
    LeaseLost,
    NothingToRetry,
    PendingTurn,
    TextContentBlock,
    ToolResultContentBlock,
    UnansweredToolCalls,
)
from clust.testing import FakeClaude, Reply

HOLDER_PREFIX = f"{socket.gethostname()[:32]}:{os.getpid()}:"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


@pytest.fixture
def other_client(fake: FakeClaude) -> Iterator[Client]:
    """A second client (its own connections), for the call running in a thread."""
    with Client(api_key="test-key", base_url=fake.base_url, max_retries=0) as c:
        yield c


def in_flight(pool: ThreadPoolExecutor, fake: FakeClaude, call: Any, *args: Any) -> Future[Any]:
    """Start ``call(*args)`` in a thread; return once FakeClaude has its request."""
    before = len(message_requests(fake))
    future = pool.submit(call, *args)
    poll(lambda: len(message_requests(fake)) > before or future.done(), WAIT, "the request")
    assert not future.done(), future.result()
    return future


def asked_for_tools(store: Store, fake: FakeClaude, client: Client) -> Conversation:
    """A conversation whose last reply asks for two tool calls (a plain send: no run)."""
    fake.enqueue(
        Reply.tool_uses(
            [
                ("get_weather", {"city": "Bern"}, "toolu_a"),
                ("get_weather", {"city": "Oslo"}, "toolu_b"),
            ]
        )
    )
    conv = new_conversation(store)
    reply = conv.send(client, "Weather in Bern and Oslo?")
    assert reply.stop_reason == "tool_use"
    return conv


# -- 1. a tool step holds the lease ----------------------------------------------------------


def test_a_send_while_a_tool_step_holds_the_lease_is_refused_then_works(
    store: Store,
    fake: FakeClaude,
    client: Client,
    other_client: Client,
    pool: ThreadPoolExecutor,
) -> None:
    gate = Gate()
    fake.enqueue(Reply.tool_use("slow_lookup", {"key": "k"}, id="toolu_slow"), Reply.text("Done."))
    conv = new_conversation(store)
    running = pool.submit(conv.run, other_client, "Look k up", tools=[gate.tool])
    try:
        assert gate.started.wait(WAIT)
        before = stored_rows(store, conv.id), len(fake.requests)
        # An object that never read the history: the lease refuses it.
        fresh = store.get_conversation(conv.id)
        with pytest.raises(ConversationBusy) as busy:
            fresh.send(client, "Meanwhile?")
        assert busy.value.holder is not None and busy.value.holder.startswith(HOLDER_PREFIX)
        assert isinstance(busy.value.expires_at, datetime)
        with pytest.raises(ConversationBusy):
            fresh.retry(client)
        with pytest.raises(ConversationBusy), fresh.stream(client, "Meanwhile?") as stream:
            list(stream)
        # An object that read the reply asking for the tool: refused before the lease.
        loaded = store.get_conversation(conv.id)
        assert len(loaded.history) == 2
        with pytest.raises(UnansweredToolCalls, match="toolu_slow"):
            loaded.send(client, "Meanwhile?")
        assert (stored_rows(store, conv.id), len(fake.requests)) == before
        assert not is_pending(store, conv.id)
    finally:
        gate.release.set()
    result = running.result(timeout=WAIT)
    assert result.text == "Done."
    # The tool step is over: the same objects send at once.
    assert fresh.send(client, "And now?").text() == "Echo: And now?"
    # One that read the reply asking for the tool is not held back by what it read.
    assert loaded.send(client, "And then?").text() == "Echo: And then?"
    assert texts(store, conv.id)[-4:] == [
        "And now?",
        "Echo: And now?",
        "And then?",
        "Echo: And then?",
    ]


def test_conversation_busy_names_the_holder_and_when_its_lease_runs_out(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    client: Client,
    other_client: Client,
    pool: ThreadPoolExecutor,
) -> None:
    conv = new_conversation(store)
    fake.enqueue(Reply.echo().delayed(1.0))
    sending = in_flight(pool, fake, conv.send, other_client, "first")
    holder, _ = lease_of(store, conv.id)
    with Store(db_url) as elsewhere:  # another store: as another process would
        other = elsewhere.get_conversation(conv.id)
        with pytest.raises(ConversationBusy) as busy:
            other.send(client, "second")
        assert busy.value.holder == holder and busy.value.holder is not None
        assert busy.value.holder.startswith(HOLDER_PREFIX)
        assert busy.value.holder in str(busy.value)
        expires_at = busy.value.expires_at
        assert isinstance(expires_at, datetime) and expires_at > database_now(store)
        assert sending.result(timeout=WAIT).text() == "Echo: first"
        # Nothing of the refused send was stored or sent; the next one goes through.
        assert texts(store, conv.id) == ["first", "Echo: first"]
        assert len(message_requests(fake)) == 1
        assert other.send(client, "second").text() == "Echo: second"


# -- 2. a plain send after a reply that asked for tools ---------------------------------------


def test_a_send_after_a_tool_use_reply_names_the_calls_and_the_ways_out(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = asked_for_tools(store, fake, client)
    unchanged = Unchanged(store, fake, conv)
    fresh = store.get_conversation(conv.id)  # has not read the reply yet
    for sender in (conv, fresh):
        with pytest.raises(UnansweredToolCalls) as refused:
            sender.send(client, "Hello?")
        error = refused.value
        assert isinstance(error, InvalidParameter) and error.field == "content"
        assert error.tool_use_ids == ["toolu_a", "toolu_b"]
        message = str(error)
        for needed in ("toolu_a", "toolu_b", "run(client, tools=", "tool_result"):
            assert needed in message
        assert "abandon_tool_calls=True" in message
        with pytest.raises(UnansweredToolCalls), sender.stream(client, "Hello?") as stream:
            list(stream)
        with pytest.raises(UnansweredToolCalls):  # a run with new content is a send too
            sender.run(client, "Hello?", tools=[weather_tool()])
        unchanged.check()
    # Nothing to resend: the user turn was never stored.
    with pytest.raises(NothingToRetry):
        conv.retry(client)
    with pytest.raises(NothingToRetry), conv.stream(client, None) as stream:
        list(stream)
    unchanged.check()


def test_way_out_run_runs_the_tools(store: Store, fake: FakeClaude, client: Client) -> None:
    conv = asked_for_tools(store, fake, client)
    fake.enqueue(Reply.text("Sunny in both."))
    result = conv.run(client, tools=[weather_tool()])
    assert result.text == "Sunny in both."
    assert last_user_turn_sent(fake) == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "Sunny in Bern"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": "Sunny in Oslo"},
        ],
    }
    assert conv.send(client, "Thanks").text() == "Echo: Thanks"


def test_way_out_send_the_tool_results(store: Store, fake: FakeClaude, client: Client) -> None:
    conv = asked_for_tools(store, fake, client)
    answer = [
        ToolResultContentBlock.new("toolu_a", "rain"),
        ToolResultContentBlock.new("toolu_b", "snow"),
    ]
    fake.enqueue(Reply.text("Rain and snow."))
    assert conv.send(client, answer).text() == "Rain and snow."
    assert [block["content"] for block in last_user_turn_sent(fake)["content"]] == ["rain", "snow"]
    assert conv.send(client, "Thanks").text() == "Echo: Thanks"


@pytest.mark.parametrize("how", ["send", "stream"])
@pytest.mark.parametrize("who", ["same object", "fresh object"])
def test_way_out_abandon_tool_calls(
    store: Store, fake: FakeClaude, client: Client, how: str, who: str
) -> None:
    conv = asked_for_tools(store, fake, client)
    sender = conv if who == "same object" else store.get_conversation(conv.id)
    if how == "send":
        reply = sender.send(client, "never mind", abandon_tool_calls=True)
    else:
        with sender.stream(client, "never mind", abandon_tool_calls=True) as stream:
            reply = stream.get_final_message()
    assert reply.text() == "Echo: never mind"
    # FakeClaude validates requests as the API does: it took this one.
    sent = last_user_turn_sent(fake)
    results, rest = sent["content"][:2], sent["content"][2:]
    assert [(r["type"], r["tool_use_id"], r["is_error"]) for r in results] == [
        ("tool_result", "toolu_a", True),
        ("tool_result", "toolu_b", True),
    ]
    assert all("not run" in r["content"] for r in results)
    assert rest == [{"type": "text", "text": "never mind"}]
    assert stored_rows(store, conv.id) == (4, 2)
    # The conversation goes on, from any object (conv may not know the calls were
    # answered: it looks again before refusing).
    assert conv.send(client, "next").text() == "Echo: next"
    assert sender.send(client, "and next").text() == "Echo: and next"
    assert store.get_conversation(conv.id).send(client, "again").text() == "Echo: again"
    assert not is_pending(store, conv.id)


def test_abandon_tool_calls_answers_only_the_calls_left_unanswered(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = asked_for_tools(store, fake, client)
    answer = [ToolResultContentBlock.new("toolu_a", "rain"), TextContentBlock.new("go on")]
    conv.send(client, answer, abandon_tool_calls=True)
    content = last_user_turn_sent(fake)["content"]
    assert [(block["type"], block.get("tool_use_id")) for block in content] == [
        ("tool_result", "toolu_b"),
        ("tool_result", "toolu_a"),
        ("text", None),
    ]
    assert content[0]["is_error"] is True and "is_error" not in content[1]
    # With nothing left to answer, abandon_tool_calls changes nothing.
    conv.send(client, "plain", abandon_tool_calls=True)
    assert last_user_turn_sent(fake) == {"role": "user", "content": "plain"}


# -- 3. bad content, refused before anything ----------------------------------------------


def sent_once(store: Store, fake: FakeClaude, client: Client) -> Conversation:
    conv = new_conversation(store)
    conv.send(client, "hi")
    return conv


def test_bad_content_is_refused_by_send_before_anything(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = sent_once(store, fake, client)
    unchanged = Unchanged(store, fake, conv)
    for content in BAD_CONTENT:
        with pytest.raises(InvalidParameter) as refused:
            conv.send(client, content)
        assert refused.value.field.startswith("content"), content
        assert "content" in str(refused.value)
        unchanged.check()
    assert conv.send(client, "fine").text() == "Echo: fine"


def test_bad_content_is_refused_by_stream_before_anything(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = sent_once(store, fake, client)
    unchanged = Unchanged(store, fake, conv)
    for content in BAD_CONTENT:
        if content is None:
            # stream(client, None) resends a pending turn, as retry does: with none
            # pending, NothingToRetry, when the stream is iterated.
            with pytest.raises(NothingToRetry), conv.stream(client, None) as stream:
                list(stream)
        else:
            with pytest.raises(InvalidParameter) as refused:
                conv.stream(client, content)
            assert refused.value.field.startswith("content"), content
        unchanged.check()
    with conv.stream(client, "fine") as stream:
        assert stream.get_final_message().text() == "Echo: fine"


def test_bad_content_is_refused_by_run_before_anything(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = sent_once(store, fake, client)
    unchanged = Unchanged(store, fake, conv)
    for content in BAD_CONTENT:
        # None: resume the run; here there is nothing to resume.
        with pytest.raises(InvalidParameter) as refused:
            conv.run(client, content, tools=[weather_tool()])
        assert refused.value.field.startswith("content"), content
        unchanged.check()
    assert conv.run(client, "fine", tools=[weather_tool()]).text == "Echo: fine"


def test_a_turn_too_big_for_the_window_leaves_no_row_not_even_a_ledger_intent(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    """Refused after the turn began (the count needs the history): the user turn and
    the request's intent row are both taken back, so the ledger lists no attempt of
    unknown outcome for a request that never left."""
    conv = new_conversation(store)
    with pytest.raises(ContextWindowExceeded, match="nothing was sent"):
        conv.send(client, "word " * 1_200_000)
    assert stored_rows(store, conv.id) == (0, 0)
    assert message_requests(fake) == []
    assert conv.usage().unknown_attempts == 0 and not conv.pending
    assert conv.send(client, "short").text() == "Echo: short"


# -- 5. leaving a stream early ------------------------------------------------------------------


def test_breaking_out_of_a_stream_releases_the_lease_at_once(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = new_conversation(store)
    fake.enqueue(Reply.text("a long answer " * 20).slow(0.02))
    for event in conv.stream(client, "x"):  # no `with`: the loop's `break` must do
        assert event.type == "message_start"
        break
    assert lease_of(store, conv.id) == (None, None)
    other = store.get_conversation(conv.id)
    assert other.pending  # the user turn waits for retry
    with pytest.raises(PendingTurn):
        other.send(client, "y")  # not ConversationBusy
    assert other.retry(client).text() == "Echo: x"
    assert texts(store, conv.id) == ["x", "Echo: x"]
    assert usage_outcomes(store, conv.id) == ["interrupted", "reply"]


# -- 6. deleted, or its lease broken, mid-send --------------------------------------------------


def test_a_conversation_deleted_mid_send_raises_conversation_deleted_and_keeps_the_usage(
    store: Store,
    fake: FakeClaude,
    client: Client,
    other_client: Client,
    pool: ThreadPoolExecutor,
) -> None:
    conv = new_conversation(store)
    fake.enqueue(Reply.echo().delayed(1.0))
    sending = in_flight(pool, fake, conv.send, other_client, "going")
    store.delete_conversation(conv.id)
    with pytest.raises(ConversationDeleted) as deleted:
        sending.result(timeout=WAIT)
    assert isinstance(deleted.value, ConversationNotFound)
    assert conv.id in str(deleted.value) and "deleted" in str(deleted.value)
    # Usage rows outlive the conversation: what the API billed is recorded.
    assert usage_outcomes(store, conv.id) == ["interrupted"]
    assert stored_rows(store, conv.id) == (0, 1)
    with pytest.raises(ConversationNotFound):
        store.get_conversation(conv.id)
    # The store goes on.
    again = new_conversation(store)
    assert again.send(client, "hello").text() == "Echo: hello"


def test_a_lease_broken_mid_send_raises_lease_lost_and_the_conversation_goes_on(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    client: Client,
    other_client: Client,
    pool: ThreadPoolExecutor,
) -> None:
    conv = new_conversation(store)
    fake.enqueue(Reply.echo().delayed(1.5))
    sending = in_flight(pool, fake, conv.send, other_client, "first")
    with Store(db_url) as elsewhere:
        taker = elsewhere.get_conversation(conv.id)
        assert elsewhere.break_lease(conv.id) is True
        assert taker.retry(client).text() == "Echo: first"  # takes the conversation
    with pytest.raises(LeaseLost) as lost:
        sending.result(timeout=WAIT)
    assert lost.value.conversation_id == conv.id and "usage is recorded" in str(lost.value)
    assert texts(store, conv.id) == ["first", "Echo: first"]
    assert sorted(usage_outcomes(store, conv.id)) == ["interrupted", "reply"]
    assert conv.usage().requests == 2
    # The object that lost its lease carries on from the stored turns.
    assert conv.send(client, "second").text() == "Echo: second"
    assert texts(store, conv.id) == ["first", "Echo: first", "second", "Echo: second"]


def test_an_api_error_leaves_the_turn_pending_not_stuck(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    """The baseline the other cases are held to: a failed request stores the user turn,
    no reply, frees the lease; retry completes it."""
    conv = new_conversation(store)
    fake.enqueue(Reply.error(400, "invalid_request_error", "no"))
    with pytest.raises(ApiError):
        conv.send(client, "q")
    assert lease_of(store, conv.id) == (None, None)
    assert is_pending(store, conv.id)
    assert store.get_conversation(conv.id).retry(client).text() == "Echo: q"
