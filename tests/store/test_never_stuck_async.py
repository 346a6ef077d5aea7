"""A conversation never gets stuck (async API, under asyncio and trio): the twins of
``test_never_stuck.py``, the wrong-client cases (which need both kinds of client) and
leaving an ``astream`` by ``break`` without ``async with``.

Real FakeClaude sockets, on an SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import gc
import inspect
import os
import socket
import sys
import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

import anyio
import pytest
from store.lease_support import database_now, lease_of
from store.never_stuck_support import (
    BAD_CONTENT,
    WAIT,
    AsyncGate,
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

from clust import AsyncClient, Client, Conversation, Store
from clust.messages import (
    ConversationBusy,
    ConversationDeleted,
    ConversationNotFound,
    InvalidParameter,
    LeaseLost,
    NothingToRetry,
    PendingTurn,
    ToolResultContentBlock,
    UnansweredToolCalls,
    WrongClient,
)
from clust.testing import FakeClaude, Reply

pytestmark = pytest.mark.anyio

HOLDER_PREFIX = f"{socket.gethostname()[:32]}:{os.getpid()}:"


class Outcome:
    """What a call run in a task gave: its result or the exception it raised."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    async def run(self, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        try:
            self.value = await call(*args, **kwargs)
        except Exception as exc:
            self.error = exc
        finally:
            self.done.set()

    async def result(self) -> Any:
        with anyio.fail_after(WAIT):
            await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``condition()``, letting the event loop run."""
    with anyio.fail_after(WAIT):
        while not condition():
            await anyio.sleep(0.01)


async def request_arrived(fake: FakeClaude, before: int, outcome: Outcome) -> None:
    await until(lambda: len(message_requests(fake)) > before or outcome.done.is_set(), "request")
    assert not outcome.done.is_set(), (outcome.value, outcome.error)


async def asked_for_tools(store: Store, fake: FakeClaude, aclient: AsyncClient) -> Conversation:
    """A conversation whose last reply asks for two tool calls (a plain asend: no arun)."""
    calls = [
        ("get_weather", {"city": "Bern"}, "toolu_a"),
        ("get_weather", {"city": "Oslo"}, "toolu_b"),
    ]
    fake.enqueue(Reply.tool_uses(calls))
    conv = new_conversation(store)
    reply = await conv.asend(aclient, "Weather in Bern and Oslo?")
    assert reply.stop_reason == "tool_use"
    return conv


# -- 1. a tool step holds the lease ----------------------------------------------------------


async def test_an_asend_while_a_tool_step_holds_the_lease_is_refused_then_works(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    gate = AsyncGate()
    fake.enqueue(Reply.tool_use("slow_lookup", {"key": "k"}, id="toolu_slow"), Reply.text("Done."))
    conv = new_conversation(store)
    running = Outcome()
    async with anyio.create_task_group() as group:
        group.start_soon(running.run, partial(conv.arun, aclient, "Look k up", tools=[gate.tool]))
        try:
            with anyio.fail_after(WAIT):
                await gate.started.wait()
            before = stored_rows(store, conv.id), len(fake.requests)
            fresh = await store.aget_conversation(conv.id)
            with pytest.raises(ConversationBusy) as busy:
                await fresh.asend(aclient, "Meanwhile?")
            assert busy.value.holder is not None and busy.value.holder.startswith(HOLDER_PREFIX)
            assert isinstance(busy.value.expires_at, datetime)
            with pytest.raises(ConversationBusy):
                await fresh.aretry(aclient)
            with pytest.raises(ConversationBusy):
                async with fresh.astream(aclient, "Meanwhile?") as stream:
                    async for _ in stream:
                        pass
            loaded = await store.aget_conversation(conv.id)
            assert len(await loaded.ahistory()) == 2
            with pytest.raises(UnansweredToolCalls, match="toolu_slow"):
                await loaded.asend(aclient, "Meanwhile?")
            assert (stored_rows(store, conv.id), len(fake.requests)) == before
            assert not await fresh.apending()
        finally:
            gate.release.set()
    assert (await running.result()).text == "Done."
    assert (await fresh.asend(aclient, "And now?")).text() == "Echo: And now?"
    assert (await loaded.asend(aclient, "And then?")).text() == "Echo: And then?"
    assert texts(store, conv.id)[-2:] == ["And then?", "Echo: And then?"]


async def test_conversation_busy_names_the_holder_and_when_its_lease_runs_out(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = new_conversation(store)
    fake.enqueue(Reply.echo().delayed(1.0))
    sending = Outcome()
    async with anyio.create_task_group() as group:
        group.start_soon(sending.run, conv.asend, aclient, "first")
        await request_arrived(fake, 0, sending)
        holder, _ = lease_of(store, conv.id)
        other = await store.aget_conversation(conv.id)
        with pytest.raises(ConversationBusy) as busy:
            await other.asend(aclient, "second")
        assert busy.value.holder == holder and busy.value.holder is not None
        assert busy.value.holder.startswith(HOLDER_PREFIX)
        expires_at = busy.value.expires_at
        assert isinstance(expires_at, datetime) and expires_at > database_now(store)
    assert (await sending.result()).text() == "Echo: first"
    assert len(message_requests(fake)) == 1
    assert (await other.asend(aclient, "second")).text() == "Echo: second"


# -- 2. an asend after a reply that asked for tools --------------------------------------------


async def test_an_asend_after_a_tool_use_reply_names_the_calls_and_the_ways_out(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = await asked_for_tools(store, fake, aclient)
    unchanged = Unchanged(store, fake, conv)
    fresh = await store.aget_conversation(conv.id)
    for sender in (conv, fresh):
        with pytest.raises(UnansweredToolCalls) as refused:
            await sender.asend(aclient, "Hello?")
        assert refused.value.tool_use_ids == ["toolu_a", "toolu_b"]
        for needed in ("run(client, tools=", "tool_result", "abandon_tool_calls=True"):
            assert needed in str(refused.value)
        with pytest.raises(UnansweredToolCalls):
            async with sender.astream(aclient, "Hello?") as stream:
                await stream.get_final_message()
        with pytest.raises(UnansweredToolCalls):
            await sender.arun(aclient, "Hello?", tools=[weather_tool()])
        unchanged.check()
    with pytest.raises(NothingToRetry):
        await conv.aretry(aclient)
    unchanged.check()


async def test_way_out_arun_runs_the_tools(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = await asked_for_tools(store, fake, aclient)
    fake.enqueue(Reply.text("Sunny in both."))
    result = await conv.arun(aclient, tools=[weather_tool()])
    assert result.text == "Sunny in both."
    assert [block["content"] for block in last_user_turn_sent(fake)["content"]] == [
        "Sunny in Bern",
        "Sunny in Oslo",
    ]
    assert (await conv.asend(aclient, "Thanks")).text() == "Echo: Thanks"


async def test_way_out_asend_the_tool_results(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = await asked_for_tools(store, fake, aclient)
    answer = [
        ToolResultContentBlock.new("toolu_a", "rain"),
        ToolResultContentBlock.new("toolu_b", "snow"),
    ]
    fake.enqueue(Reply.text("Rain and snow."))
    assert (await conv.asend(aclient, answer)).text() == "Rain and snow."
    assert (await conv.asend(aclient, "Thanks")).text() == "Echo: Thanks"


@pytest.mark.parametrize("how", ["asend", "astream"])
async def test_way_out_abandon_tool_calls(
    store: Store, fake: FakeClaude, aclient: AsyncClient, how: str
) -> None:
    conv = await asked_for_tools(store, fake, aclient)
    sender = await store.aget_conversation(conv.id)
    if how == "asend":
        reply = await sender.asend(aclient, "never mind", abandon_tool_calls=True)
    else:
        async with sender.astream(aclient, "never mind", abandon_tool_calls=True) as stream:
            reply = await stream.get_final_message()
    assert reply.text() == "Echo: never mind"
    content = last_user_turn_sent(fake)["content"]
    assert [(b["type"], b.get("tool_use_id"), b.get("is_error")) for b in content] == [
        ("tool_result", "toolu_a", True),
        ("tool_result", "toolu_b", True),
        ("text", None, None),
    ]
    assert (await conv.asend(aclient, "next")).text() == "Echo: next"
    assert not is_pending(store, conv.id)


# -- 3. bad content --------------------------------------------------------------------------


async def test_bad_content_is_refused_by_asend_astream_and_arun_before_anything(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = new_conversation(store)
    await conv.asend(aclient, "hi")
    unchanged = Unchanged(store, fake, conv)
    for content in BAD_CONTENT:
        with pytest.raises(InvalidParameter) as refused:
            await conv.asend(aclient, content)
        assert refused.value.field.startswith("content"), content
        unchanged.check()
        with pytest.raises(InvalidParameter) as refused:
            await conv.arun(aclient, content, tools=[weather_tool()])
        assert refused.value.field.startswith("content"), content
        unchanged.check()
        if content is None:  # astream(client, None) resends a pending turn: none is
            with pytest.raises(NothingToRetry):
                async with conv.astream(aclient, None) as stream:
                    await stream.get_final_message()
        else:
            with pytest.raises(InvalidParameter) as refused:
                conv.astream(aclient, content)
            assert refused.value.field.startswith("content"), content
        unchanged.check()
    assert (await conv.asend(aclient, "fine")).text() == "Echo: fine"


# -- 4. the wrong kind of client ----------------------------------------------------------------


async def test_a_wrong_client_is_refused_before_anything_is_stored_or_sent(
    store: Store, fake: FakeClaude, client: Client, aclient: AsyncClient
) -> None:
    conv = new_conversation(store)
    await conv.asend(aclient, "hi")
    unchanged = Unchanged(store, fake, conv)
    tools = [weather_tool()]
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("asend", lambda: conv.asend(client, "x")),  # type: ignore[arg-type]
        ("send", lambda: conv.send(aclient, "x")),  # type: ignore[arg-type]
        ("stream", lambda: conv.stream(aclient, "x")),  # type: ignore[arg-type]
        ("astream", lambda: conv.astream(client, "x")),  # type: ignore[arg-type]
        ("run", lambda: conv.run(aclient, "x", tools=tools)),  # type: ignore[arg-type]
        ("arun", lambda: conv.arun(client, "x", tools=tools)),  # type: ignore[arg-type]
        ("retry", lambda: conv.retry(aclient)),  # type: ignore[arg-type]
        ("aretry", lambda: conv.aretry(client)),  # type: ignore[arg-type]
        ("count_tokens", lambda: conv.count_tokens(aclient, "x")),  # type: ignore[arg-type]
        ("acount_tokens", lambda: conv.acount_tokens(client, "x")),  # type: ignore[arg-type]
        ("batch_send", lambda: store.batch_send(aclient, [(conv, "x")])),  # type: ignore[arg-type]
        ("abatch_send", lambda: store.abatch_send(client, [(conv, "x")])),  # type: ignore[arg-type]
        ("collect_batch", lambda: store.collect_batch(aclient, "b")),  # type: ignore[arg-type]
        ("acollect_batch", lambda: store.acollect_batch(client, "b")),  # type: ignore[arg-type]
        ("send", lambda: conv.send(None, "x")),  # type: ignore[arg-type]
        ("asend", lambda: conv.asend("a client", "x")),  # type: ignore[arg-type]
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for method, call in calls:
            with pytest.raises(WrongClient) as wrong:
                made = call()  # raises, or is a coroutine that raises when awaited
                if inspect.isawaitable(made):
                    await made
            assert wrong.value.method == method
            assert isinstance(wrong.value, TypeError)
            expected = "AsyncClient" if method.startswith("a") else "Client"
            assert f"{method}() needs {expected}" in str(wrong.value)
            unchanged.check()
            assert not await conv.apending()
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    # The right client works at once.
    assert (await conv.asend(aclient, "async")).text() == "Echo: async"
    assert conv.send(client, "sync").text() == "Echo: sync"


# -- 5. leaving an astream by `break` --------------------------------------------------------


async def test_breaking_out_of_astream_without_async_with_releases_the_lease_promptly(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    """Both asyncio and trio finalize an async generator left by ``break`` as soon as it
    is dropped (their asyncgen hooks run its ``aclose()``): the turn is given back
    then, in well under the 30 s lease."""
    conv = new_conversation(store)
    fake.enqueue(Reply.text("a long answer " * 20).slow(0.02))
    async for event in conv.astream(aclient, "x"):
        assert event.type == "message_start"
        break
    with anyio.fail_after(5):  # the lease is 30 s: only the finalizer frees it this fast
        while lease_of(store, conv.id) != (None, None):
            await anyio.sleep(0.01)
    other = await store.aget_conversation(conv.id)
    assert await other.apending()  # the user turn waits for retry
    with pytest.raises(PendingTurn):  # not ConversationBusy
        await other.asend(aclient, "y")
    assert (await other.aretry(aclient)).text() == "Echo: x"
    assert usage_outcomes(store, conv.id) == ["interrupted", "reply"]


async def test_an_astream_dropped_without_being_finalized_frees_the_lease_within_lease_seconds(
    db_url: str, fake: FakeClaude, aclient: AsyncClient
) -> None:
    """Were the event loop never to finalize the abandoned stream (no asyncgen hooks,
    as in a loop closed without shutting its generators down), the turn is given back
    all the same: once nothing refers to it, the lease keeper stops renewing its lease,
    which runs out within ``lease_seconds``; the attempt stays of unknown outcome."""
    lease = 2.0
    async with await Store.aopen(db_url, lease_seconds=lease) as store:
        conv = new_conversation(store)
        fake.enqueue(Reply.text("a long answer " * 20).slow(0.02))
        hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=None, finalizer=lambda agen: None)
        try:
            stream = conv.astream(aclient, "x")
            async for _event in stream:
                break
            del stream, _event
            gc.collect()
        finally:
            sys.set_asyncgen_hooks(*hooks)
        holder, _ = lease_of(store, conv.id)
        assert holder is not None  # nobody gave it back
        other = await store.aget_conversation(conv.id)
        with pytest.raises(ConversationBusy):
            await other.aretry(aclient)
        reply = await other.aretry(aclient, wait=lease + 3)  # ... but it runs out
        assert reply.text() == "Echo: x"
        assert usage_outcomes(store, conv.id) == ["unknown", "reply"]
        assert (await other.ausage()).unknown_attempts == 1


# -- 6. deleted, or its lease broken, mid-send ---------------------------------------------------


async def test_a_conversation_deleted_mid_asend_raises_conversation_deleted(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = new_conversation(store)
    fake.enqueue(Reply.echo().delayed(1.0))
    sending = Outcome()
    async with anyio.create_task_group() as group:
        group.start_soon(sending.run, conv.asend, aclient, "going")
        await request_arrived(fake, 0, sending)
        await store.adelete_conversation(conv.id)
    with pytest.raises(ConversationDeleted) as deleted:
        await sending.result()
    assert isinstance(deleted.value, ConversationNotFound)
    assert usage_outcomes(store, conv.id) == ["interrupted"]  # outlives the conversation
    assert stored_rows(store, conv.id) == (0, 1)
    again = new_conversation(store)
    assert (await again.asend(aclient, "hello")).text() == "Echo: hello"


async def test_a_lease_broken_mid_asend_raises_lease_lost_and_the_conversation_goes_on(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    conv = new_conversation(store)
    fake.enqueue(Reply.echo().delayed(1.5))
    sending = Outcome()
    async with anyio.create_task_group() as group:
        group.start_soon(sending.run, conv.asend, aclient, "first")
        await request_arrived(fake, 0, sending)
        taker = await store.aget_conversation(conv.id)
        assert await store.abreak_lease(conv.id) is True
        assert (await taker.aretry(aclient)).text() == "Echo: first"
    with pytest.raises(LeaseLost):
        await sending.result()
    assert texts(store, conv.id) == ["first", "Echo: first"]
    assert sorted(usage_outcomes(store, conv.id)) == ["interrupted", "reply"]
    assert (await conv.asend(aclient, "second")).text() == "Echo: second"
    assert texts(store, conv.id)[2:] == ["second", "Echo: second"]
