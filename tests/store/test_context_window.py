"""Staying inside the context window: the truncation strategies of a conversation.

A model registered with a 4,000-token window (in clust's models table and in
FakeClaude's, which refuses a longer prompt as the API does) keeps the chats short.
FakeClaude validates every request (tool_use/tool_result pairs, roles, breakpoints), so
each send succeeding is part of every test; the stored turns are read back from the
database to show that no strategy deletes or changes any of them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from clust import AsyncClient, Client, Store
from clust.conversation import (
    Conversation,
    DropOldest,
    RaiseOnOverflow,
    Summarize,
    TruncationStrategy,
)
from clust.conversation.window import DEFAULT_SUMMARY_INSTRUCTION, DEFAULT_SUMMARY_PREAMBLE
from clust.messages import (
    ContextWindowExceeded,
    InvalidParameter,
    InvalidRequestError,
    PendingTurn,
)
from clust.messages.claude_models import register_model
from clust.store import MessageRow, UsageRow
from clust.store.schema import SummaryRow
from clust.testing import DEFAULT_MODELS, FakeClaude, ModelInfo, RecordedRequest, Reply
from clust.testing import count_tokens as fake_count
from clust.tools import tool

MODEL = "claude-window-test"
UNKNOWN = "claude-window-unregistered"  # FakeClaude knows its window, clust does not
WINDOW = 4_000
MAX_TOKENS = 200
LIMIT = WINDOW - MAX_TOKENS  # what DropOldest and Summarize keep free for the reply
TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}

register_model(MODEL, max_output_tokens=1_000, context_window=WINDOW)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeClaude]:
    """The conftest's server, with the small-window models added to its table."""
    small = [
        ModelInfo(MODEL, "Window test", max_input_tokens=WINDOW, max_tokens=1_000),
        ModelInfo(UNKNOWN, "Window test 2", max_input_tokens=WINDOW, max_tokens=1_000),
    ]
    with FakeClaude(models=[*DEFAULT_MODELS, *small]) as fake:
        yield fake


def question(i: int) -> str:
    """About 400 tokens (FakeClaude counts 4 bytes a token)."""
    return f"Question {i}: " + "lorem ipsum " * 130


def new_conversation(
    store: Store, strategy: TruncationStrategy | None = None, **fields: Any
) -> Conversation:
    conv = store.create_conversation(model=MODEL, max_tokens=MAX_TOKENS, **fields)
    if strategy is not None:
        conv.truncation = strategy
    return conv


def message_bodies(fake: FakeClaude) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if r.path == "/v1/messages"]


def count_requests(fake: FakeClaude) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.path == "/v1/messages/count_tokens"]


def normal(message: dict[str, Any]) -> dict[str, Any]:
    """A message with string content as a text block and no cache markers (the cache
    policy marks the newest turn in the request only)."""
    content = message["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    return {
        "role": message["role"],
        "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in blocks],
    }


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def stored(store: Store, conversation_id: str) -> list[tuple[str, str]]:
    table = MessageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table.c.role, table.c.wire)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.position)
        ).all()
    return [(row[0], row[1]) for row in found]


def usage_rows(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    table = UsageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table).where(table.c.conversation_id == conversation_id)
        ).all()
    return [dict(row._mapping) for row in found]


def summary_rows(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    table = SummaryRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.through_position)
        ).all()
    return [dict(row._mapping) for row in found]


def check_valid_start(body: dict[str, Any]) -> None:
    """The first message is a user turn of the user's own input, and every tool_result
    answers a tool_use of the message before it (FakeClaude checks this too)."""
    messages = body["messages"]
    first = normal(messages[0])
    assert first["role"] == "user"
    assert all(block["type"] != "tool_result" for block in first["content"])
    for before, message in itertools.pairwise(messages):
        asked = {b["id"] for b in normal(before)["content"] if b["type"] == "tool_use"}
        for block in normal(message)["content"]:
            if block["type"] == "tool_result":
                assert block["tool_use_id"] in asked


@tool
def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: What to look up.
    """
    return f"Notes on {topic}: " + "detail " * 200  # about 350 tokens


def tool_then_answer(request: RecordedRequest) -> Reply:
    """Ask for ``lookup`` after a question, answer after its result."""
    last = request.body["messages"][-1]
    if any(block.get("type") == "tool_result" for block in normal(last)["content"]):
        return Reply.text("Found it.")
    return Reply.tool_use("lookup", {"topic": text_of(last)[:12]})


class Summarizer:
    """Answers a summary request with ``SUMMARY <n>``, anything else with the echo."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        if text_of(request.body["messages"][-1]) == DEFAULT_SUMMARY_INSTRUCTION:
            self.made += 1
            return Reply.text(f"SUMMARY {self.made}: the user asked numbered questions.")
        return Reply.echo()


def is_summary_request(body: dict[str, Any]) -> bool:
    return text_of(body["messages"][-1]) == DEFAULT_SUMMARY_INSTRUCTION


# -- the default: raise, with the numbers, before anything is sent ------------------------


def test_default_raises_with_the_numbers_before_sending(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = new_conversation(store)
    assert isinstance(conv.truncation, RaiseOnOverflow)
    big = "word " * 4_000  # 5,000 tokens

    with pytest.raises(ContextWindowExceeded) as caught:
        conv.send(client, big)

    error = caught.value
    expected = fake_count({"model": MODEL, "messages": [{"role": "user", "content": big}]})
    assert expected > WINDOW
    assert (error.model, error.tokens, error.counted) == (MODEL, expected, True)
    assert (error.context_window, error.reserved, error.limit) == (WINDOW, 0, WINDOW)
    assert f"needs {expected:,} input tokens (counted)" in str(error)
    assert f"{WINDOW:,} tokens" in str(error) and "nothing was sent" in str(error)
    # One count_tokens request (the estimate was near the limit), no message request.
    assert [r.path for r in fake.requests] == ["/v1/messages/count_tokens"]
    assert fake_count(fake.requests[0].body) == expected
    # The new user turn was not stored: the conversation goes on.
    assert stored(store, conv.id) == [] and not conv.pending and conv.history == []
    assert conv.send(client, "Hello").text() == "Echo: Hello"


def test_default_raises_when_the_history_grows_past_the_window(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = new_conversation(store)
    sent = 0
    with pytest.raises(ContextWindowExceeded) as caught:
        for i in range(20):
            conv.send(client, question(i))
            sent += 1

    error = caught.value
    bodies = message_bodies(fake)
    assert len(bodies) == sent and 6 <= sent < 20
    # Exact: the last request sent fit, the refused one (counted) did not.
    assert fake_count(bodies[-1]) <= WINDOW < error.tokens
    # count_tokens is asked only near the limit: the estimate from the last reply's
    # usage answered for the first turns.
    counts = count_requests(fake)
    assert 1 <= len(counts) < sent / 2
    assert fake_count(counts[-1].body) == error.tokens
    rows = stored(store, conv.id)
    assert len(rows) == 2 * sent and rows[-1][0] == "assistant"


def test_reserving_the_reply_raises_earlier(store: Store, fake: FakeClaude, client: Client) -> None:
    conv = new_conversation(store, RaiseOnOverflow(reserve_output=True))
    text = "word " * 3_100  # 3,875 tokens: inside the window, not beside max_tokens
    with pytest.raises(ContextWindowExceeded) as caught:
        conv.send(client, text)
    assert (caught.value.reserved, caught.value.limit) == (MAX_TOKENS, LIMIT)
    assert LIMIT < caught.value.tokens <= WINDOW
    assert "200 of them reserved for max_tokens: at most 3,800 fit" in str(caught.value)
    conv.truncation = RaiseOnOverflow()
    assert conv.send(client, text).usage.total_input_tokens == caught.value.tokens


def test_stream_raises_before_sending(store: Store, fake: FakeClaude, client: Client) -> None:
    conv = new_conversation(store)
    with pytest.raises(ContextWindowExceeded), conv.stream(client, "word " * 4_000) as stream:
        for _ in stream:
            pass
    assert message_bodies(fake) == [] and stored(store, conv.id) == []


def test_fake_refuses_a_prompt_longer_than_the_window(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = new_conversation(store)
    conv.truncation = None  # no check: the API judges
    with pytest.raises(InvalidRequestError) as caught:
        conv.send(client, "word " * 4_000)
    tokens = fake_count(message_bodies(fake)[0])
    assert caught.value.message == f"prompt is too long: {tokens} tokens > {WINDOW} maximum"
    assert count_requests(fake) == []
    # count_tokens still counts it, and says what the send would send (the pending turn).
    assert conv.pending and conv.count_tokens(client).input_tokens == tokens


class NoCounting(httpx.BaseTransport):
    """A network path where count_tokens answers 404 (as behind a proxy without it)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/count_tokens"):
            error = {"type": "not_found_error", "message": "no token counting here"}
            return httpx.Response(404, json={"type": "error", "error": error})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_without_count_tokens_the_estimate_decides(store: Store, fake: FakeClaude) -> None:
    with (
        httpx.Client(transport=NoCounting()) as http,
        Client(api_key="test-key", base_url=fake.base_url, http_client=http) as client,
    ):
        conv = new_conversation(store)
        with pytest.raises(ContextWindowExceeded) as caught:
            conv.send(client, "word " * 4_000)
        assert not caught.value.counted and caught.value.tokens > WINDOW
        assert "(estimated)" in str(caught.value)
        # Near the limit but inside it by the estimate: sent, and the API accepts it.
        conv.send(client, "word " * 2_000)
        assert message_bodies(fake) and stored(store, conv.id)


def test_unknown_window_is_not_checked(store: Store, fake: FakeClaude, client: Client) -> None:
    conv = store.create_conversation(model=UNKNOWN, max_tokens=MAX_TOKENS)
    assert isinstance(conv.truncation, RaiseOnOverflow)
    with pytest.raises(InvalidRequestError, match="prompt is too long"):
        conv.send(client, "word " * 4_000)
    assert count_requests(fake) == []  # no count_tokens call: no window to hold it to


def test_strategy_parameters_are_checked() -> None:
    for bad in (0, 1.5, -0.1, True):
        with pytest.raises(InvalidParameter):
            DropOldest(target=bad)
    with pytest.raises(InvalidParameter):
        Summarize(max_tokens=0)
    with pytest.raises(InvalidParameter):
        Summarize(instruction="  ")
    assert DropOldest().limit(WINDOW, MAX_TOKENS) == LIMIT
    assert RaiseOnOverflow().limit(WINDOW, MAX_TOKENS) == WINDOW


# -- DropOldest ----------------------------------------------------------------------------


def test_drop_oldest_cuts_in_coarse_steps_and_keeps_the_cache(
    db_url: str, fake: FakeClaude, client: Client
) -> None:
    with Store(db_url, truncation=DropOldest()) as store:
        conv = new_conversation(store)
        replies = [conv.send(client, question(i)) for i in range(24)]
        rows = stored(store, conv.id)

    bodies = message_bodies(fake)
    assert len(bodies) == 24
    cuts = [
        i
        for i in range(1, 24)
        if normal(bodies[i]["messages"][0]) != normal(bodies[i - 1]["messages"][0])
    ]
    assert 2 <= len(cuts) <= 5, cuts
    first_cut = cuts[0]
    for i, (body, reply) in enumerate(zip(bodies, replies, strict=True)):
        check_valid_start(body)
        assert reply.usage.total_input_tokens == fake_count(body) <= LIMIT
        if i == 0:
            continue
        before = [normal(m) for m in bodies[i - 1]["messages"]]
        now = [normal(m) for m in body["messages"]]
        if i in cuts:
            # One coarse step: several exchanges at once, down to about 60% of the limit.
            assert len(before) + 2 - len(now) >= 6
            assert reply.usage.total_input_tokens <= 0.65 * LIMIT
        else:
            # Between cuts each request extends the one before: the same prefix, which
            # the previous turn wrote to the cache and this one reads.
            assert now[: len(before)] == before
            if i > first_cut:
                assert (reply.usage.cache_read_input_tokens or 0) > 0
    # Stored history intact: every turn, byte for byte as sent when it was new.
    assert len(rows) == 48
    assert [role for role, _ in rows] == ["user", "assistant"] * 24
    assert [json.loads(wire)["content"] for role, wire in rows if role == "user"] == [
        question(i) for i in range(24)
    ]
    assert json.loads(rows[1][1])["content"][0]["text"] == replies[0].text()
    # Each request's first message is a stored user turn.
    contents = [normal(json.loads(wire)) for _, wire in rows]
    assert all(normal(body["messages"][0]) in contents for body in bodies)


def test_drop_oldest_never_splits_tool_pairs(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = new_conversation(store, DropOldest())
    fake.set_responder(tool_then_answer)
    snapshot: list[tuple[str, str]] = []
    for i in range(12):
        result = conv.run(client, f"Run {i}: " + "please look this up " * 30, tools=[lookup])
        assert result.stop == "end_turn" and result.text == "Found it."
        if i == 2:
            snapshot = stored(store, conv.id)

    bodies = message_bodies(fake)
    assert len(bodies) == 24
    for body in bodies:
        check_valid_start(body)
        assert fake_count(body) <= LIMIT
    # Turns were left out (of both kinds of request: after a question, after results) ...
    whole = [4 * (i // 2) + 1 + 2 * (i % 2) for i in range(24)]
    shortened = [i for i, body in enumerate(bodies) if len(body["messages"]) < whole[i]]
    assert any(i % 2 == 0 for i in shortened) and any(i % 2 == 1 for i in shortened)
    # ... never the pair the request ends with, never a half pair.
    for body in bodies[1::2]:
        assert [m["role"] for m in body["messages"][-3:]] == ["user", "assistant", "user"]
    rows = stored(store, conv.id)
    assert len(rows) == 48 and rows[: len(snapshot)] == snapshot
    assert len(conv.history) == 48


def test_drop_oldest_raises_when_the_newest_exchange_alone_is_too_long(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    @tool
    def dump(path: str) -> str:
        """Read a big file.

        Args:
            path: The file.
        """
        return "byte " * 4_000

    conv = new_conversation(store, DropOldest())
    conv.send(client, "Hello")
    fake.enqueue(Reply.tool_use("dump", {"path": "/big"}, id="toolu_big"))
    with pytest.raises(ContextWindowExceeded) as caught:
        conv.run(client, "Read /big", tools=[dump])
    assert caught.value.counted and caught.value.tokens > LIMIT
    assert "tool_use/tool_result" in str(caught.value)
    # The tool_result turn was not stored: the reply asking for the tool is the last turn.
    rows = stored(store, conv.id)
    assert [role for role, _ in rows] == ["user", "assistant", "user", "assistant"]
    assert not conv.pending
    assert all(fake_count(body) <= LIMIT for body in message_bodies(fake))


# -- Summarize -----------------------------------------------------------------------------


def test_summarize_stores_sends_and_reuses_a_summary(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    summarizer = Summarizer()
    fake.set_responder(summarizer)
    conv = new_conversation(store, Summarize(max_tokens=300), tools=[TOOL])
    replies = [conv.send(client, question(i)) for i in range(16)]
    snapshot = stored(store, conv.id)[:8]
    for i in range(16, 20):
        replies.append(conv.send(client, question(i)))

    summaries = summary_rows(store, conv.id)
    assert len(summaries) == summarizer.made >= 2
    throughs = [row["through_position"] for row in summaries]
    assert throughs == sorted(set(throughs)) and all(t % 2 == 0 for t in throughs)
    # Each summary is a user message: the preamble, then what the model wrote.
    for n, row in enumerate(summaries, 1):
        assert row["model"] == MODEL
        assert json.loads(row["wire"]) == {
            "role": "user",
            "content": f"{DEFAULT_SUMMARY_PREAMBLE}SUMMARY {n}: the user asked numbered questions.",
        }
    # Its request: the turns it covers, the instruction last, no tool call allowed.
    bodies = fake.requests
    summary_bodies = [
        r.body for r in bodies if r.path == "/v1/messages" and is_summary_request(r.body)
    ]
    assert len(summary_bodies) == len(summaries)
    for body in summary_bodies:
        assert body["max_tokens"] == 300 and body["tool_choice"] == {"type": "none"}
        assert body["tools"][0]["name"] == TOOL["name"]
        check_valid_start(body)
    assert "SUMMARY 1" in text_of(summary_bodies[1]["messages"][0])  # a summary of the summary
    # Every reply's usage row, and one per summary (no message position).
    usage = usage_rows(store, conv.id)
    assert sorted(row["outcome"] for row in usage) == ["reply"] * 20 + ["summary"] * len(summaries)
    assert all(row["message_position"] is None for row in usage if row["outcome"] == "summary")
    # The turns sent after a summary: one user message, the summary then the first kept
    # turn; the same first message until the next summary.
    sent = [b for b in message_bodies(fake) if not is_summary_request(b)]
    assert len(sent) == 20
    rows = stored(store, conv.id)
    for body in sent:
        check_valid_start(body)
        assert fake_count(body) <= LIMIT
        first = normal(body["messages"][0])
        if "SUMMARY" in text_of(body["messages"][0]):
            n = int(first["content"][0]["text"].split("SUMMARY ")[1].split(":")[0])
            kept = normal(json.loads(rows[throughs[n - 1]][1]))
            assert first["content"][1:] == kept["content"]
    firsts = [text_of(b["messages"][0]) for b in sent]
    assert len({f for f in firsts if "SUMMARY" in f}) == len(summaries)
    # Stored history intact.
    assert len(rows) == 40 and rows[:8] == snapshot and len(conv.history) == 40

    # Another process finds the summary: no new summary request, the same first message.
    fake.clear()
    again = store.get_conversation(conv.id)
    again.truncation = Summarize(max_tokens=300)
    again.send(client, "Short?")
    (body,) = message_bodies(fake)
    assert text_of(body["messages"][0]) == firsts[-1]
    assert f"SUMMARY {summarizer.made}:" in firsts[-1]


# -- count_tokens ------------------------------------------------------------------------


def test_count_tokens_counts_what_send_sends(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = new_conversation(store, DropOldest())
    assert conv.count_tokens(client, "Hi").input_tokens == fake_count(
        {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    )
    compared_after_cut = 0
    previous_first: Any = None
    for i in range(16):
        counted = conv.count_tokens(client, question(i)).input_tokens
        reply = conv.send(client, question(i))
        body = message_bodies(fake)[-1]
        first = normal(body["messages"][0])
        cut_now = previous_first is not None and first != previous_first
        previous_first = first
        if cut_now:
            assert counted > LIMIT  # what the send would have sent without its new cut
        else:
            assert counted == reply.usage.total_input_tokens == fake_count(body)
            if len(body["messages"]) < 2 * i + 1:
                compared_after_cut += 1
    assert compared_after_cut >= 3

    # A pending turn: what retry resends.
    fake.enqueue(Reply.error(400, "invalid_request_error", "try again"))
    with pytest.raises(InvalidRequestError):
        conv.send(client, "One more")
    with pytest.raises(PendingTurn):
        conv.count_tokens(client, "Another")
    counted = conv.count_tokens(client).input_tokens
    assert conv.retry(client).usage.total_input_tokens == counted


# -- async ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_drop_oldest_and_count_tokens(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = new_conversation(store, DropOldest())
    for i in range(12):
        await conv.asend(aclient, question(i))
    counted = (await conv.acount_tokens(aclient, "Last")).input_tokens
    reply = await conv.asend(aclient, "Last")
    assert reply.usage.total_input_tokens == counted
    bodies = message_bodies(fake)
    assert any(len(body["messages"]) < 2 * i + 1 for i, body in enumerate(bodies))
    for body in bodies:
        check_valid_start(body)
        assert fake_count(body) <= LIMIT
    assert len(stored(store, conv.id)) == 26


@pytest.mark.anyio
async def test_async_tool_loop_and_summary(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = new_conversation(store, DropOldest())
    fake.set_responder(tool_then_answer)
    for i in range(9):
        await conv.arun(aclient, f"Run {i}: " + "please look this up " * 30, tools=[lookup])
    for body in message_bodies(fake):
        check_valid_start(body)
    assert len(stored(store, conv.id)) == 36

    fake.reset()
    summarizer = Summarizer()
    fake.set_responder(summarizer)
    conv = new_conversation(store, Summarize(max_tokens=300))
    for i in range(10):
        async with conv.astream(aclient, question(i)) as stream:
            await stream.get_final_message()
    assert summarizer.made >= 1 and len(summary_rows(store, conv.id)) == summarizer.made
    usage = usage_rows(store, conv.id)
    assert [row["outcome"] for row in usage].count("summary") == summarizer.made
    assert len(stored(store, conv.id)) == 20


@pytest.mark.anyio
async def test_async_default_raises_and_stores_nothing(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = new_conversation(store)
    with pytest.raises(ContextWindowExceeded):
        await conv.asend(aclient, "word " * 4_000)
    with pytest.raises(ContextWindowExceeded):
        async with conv.astream(aclient, "word " * 4_000) as stream:
            async for _ in stream:
                pass
    assert message_bodies(fake) == [] and stored(store, conv.id) == []
    assert (await conv.asend(aclient, "Hello")).text() == "Echo: Hello"
