"""``Conversation.arun``: the async tool loop, under asyncio and trio, on SQLite and PostgreSQL.

The tool calls of one reply run concurrently (async tools as tasks, sync tools in
worker threads), which the timing tests show against FakeClaude; ``approve`` and
``on_step`` may be coroutines. The rest mirrors the sync tests: every outcome is a
``tool_result`` sent back in ``tool_use`` order, every call a stored row.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest
from tools.loop_support import (
    Tally,
    insert_running_call,
    messages_sent,
    new_conversation,
    row_by_id,
    stored_result,
    tool_results_sent,
    tool_rows,
)

from clust import AsyncClient, Store
from clust.conversation.loop import Step
from clust.messages import ApiError, InvalidParameter, ServerToolDefinition, ToolUseContentBlock
from clust.testing import FakeClaude, Reply
from clust.tools import tool

pytestmark = pytest.mark.anyio


def async_weather_tool(tally: Tally) -> Any:
    @tool
    async def get_weather(city: str) -> str:
        """The current weather in a city.

        Args:
            city: The city name.
        """
        await anyio.sleep(0)
        tally.add(city)
        return f"Sunny in {city}"

    return get_weather


# -- the basic loop ------------------------------------------------------------------------


async def test_single_async_tool(store: Store, fake: FakeClaude, aclient: AsyncClient) -> None:
    tally = Tally()
    get_weather = async_weather_tool(tally)
    web_search = ServerToolDefinition.new("web_search_20250305", "web_search", max_uses=1)
    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Paris"}, id="toolu_w1"),
        Reply.text("It is sunny in Paris."),
    )
    conv = new_conversation(store)

    result = await conv.arun(aclient, "Weather in Paris?", tools=[get_weather, web_search])

    assert result.stop == "end_turn" and result.text == "It is sunny in Paris."
    assert tally.calls == ["Paris"]
    (outcome,) = result.steps[0].tool_calls
    assert (outcome.content, outcome.is_error, outcome.attempts, outcome.reused) == (
        "Sunny in Paris",
        False,
        1,
        False,
    )
    assert tool_results_sent(fake) == [
        {"type": "tool_result", "tool_use_id": "toolu_w1", "content": "Sunny in Paris"}
    ]
    expected_tools = [
        get_weather.definition.to_wire(),
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 1},
    ]
    assert expected_tools[0]["input_schema"]["properties"]["city"] == {
        "description": "The city name.",
        "type": "string",
    }
    assert [request.body["tools"] for request in fake.requests] == [expected_tools] * 2
    (row,) = tool_rows(store, conv.id)
    assert (row["status"], row["attempts"], row["message_position"]) == ("succeeded", 1, 1)
    assert stored_result(row) == "Sunny in Paris"


async def test_parallel_async_tools_run_concurrently(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    spans: dict[str, tuple[float, float]] = {}

    @tool
    async def slow_lookup(key: str) -> str:
        """Takes 0.3 s."""
        begun = time.monotonic()
        await anyio.sleep(0.3)
        spans[key] = (begun, time.monotonic())
        return f"value of {key}"

    fake.enqueue(
        Reply.tool_uses([("slow_lookup", {"key": k}, f"toolu_{k}") for k in ("a", "b", "c")]),
        Reply.text("Done."),
    )
    conv = new_conversation(store)
    started = time.monotonic()
    result = await conv.arun(aclient, "Look up a, b, c", tools=[slow_lookup])
    elapsed = time.monotonic() - started

    assert result.stop == "end_turn"
    # One after another they would take 0.9 s at least; the spans below overlapping
    # is the proof that does not depend on the machine's load.
    assert elapsed < 0.9, f"three 0.3 s tools took {elapsed:.2f} s: not concurrent"
    assert max(begin for begin, _ in spans.values()) < min(end for _, end in spans.values())
    assert tool_results_sent(fake) == [
        {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": f"value of {k}"}
        for k in ("a", "b", "c")
    ]
    rows = tool_rows(store, conv.id)
    assert [row["status"] for row in rows] == ["succeeded"] * 3
    # The stored spans overlap too.
    assert max(row["started_at"] for row in rows) < min(row["finished_at"] for row in rows)


async def test_parallel_sync_tools_run_in_worker_threads(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    threads: set[int] = set()

    @tool
    def blocking_lookup(key: str) -> str:
        """Blocks for 0.3 s."""
        threads.add(threading.get_ident())
        time.sleep(0.3)
        return key.upper()

    fake.enqueue(
        Reply.tool_uses([("blocking_lookup", {"key": k}, f"toolu_s{k}") for k in ("x", "y", "z")]),
        Reply.text("Done."),
    )
    started = time.monotonic()
    await new_conversation(store).arun(aclient, "Look up", tools=[blocking_lookup])
    elapsed = time.monotonic() - started

    assert elapsed < 0.75, f"three 0.3 s sync tools took {elapsed:.2f} s: not concurrent"
    assert len(threads) == 3 and threading.get_ident() not in threads
    assert [block["content"] for block in tool_results_sent(fake)] == ["X", "Y", "Z"]


async def test_results_keep_tool_use_order_when_tools_finish_out_of_order(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    finished: list[str] = []

    @tool
    async def wait_then_echo(text: str, seconds: float) -> str:
        """Echo after a delay."""
        await anyio.sleep(seconds)
        finished.append(text)
        return text

    fake.enqueue(
        Reply.tool_uses(
            [
                ("wait_then_echo", {"text": "first", "seconds": 0.2}, "toolu_o1"),
                ("wait_then_echo", {"text": "second", "seconds": 0.0}, "toolu_o2"),
                ("wait_then_echo", {"text": "third", "seconds": 0.1}, "toolu_o3"),
            ]
        ),
        Reply.text("ok"),
    )
    result = await new_conversation(store).arun(aclient, "Go", tools=[wait_then_echo])

    assert finished == ["second", "third", "first"]
    sent = tool_results_sent(fake)
    assert [(b["tool_use_id"], b["content"]) for b in sent] == [
        ("toolu_o1", "first"),
        ("toolu_o2", "second"),
        ("toolu_o3", "third"),
    ]
    assert [o.tool_use_id for o in result.steps[0].tool_calls] == [
        "toolu_o1",
        "toolu_o2",
        "toolu_o3",
    ]
    assert [m["role"] for m in messages_sent(fake)] == ["user", "assistant", "user"]


async def test_chained_steps(store: Store, fake: FakeClaude, aclient: AsyncClient) -> None:
    @tool
    async def find_city(landmark: str) -> str:
        """The city of a landmark."""
        return "Paris"

    @tool
    def get_weather(city: str) -> str:
        """Weather."""
        return f"rain in {city}"

    fake.enqueue(
        Reply.tool_use("find_city", {"landmark": "Eiffel Tower"}, id="toolu_c1"),
        Reply.tool_use("get_weather", {"city": "Paris"}, id="toolu_c2"),
        Reply.text("Bring an umbrella."),
    )
    conv = new_conversation(store)
    result = await conv.arun(aclient, "Weather there?", tools=[find_city, get_weather])

    assert result.text == "Bring an umbrella."
    assert [len(messages_sent(fake, i)) for i in range(3)] == [1, 3, 5]
    assert tool_results_sent(fake, 1)[0]["content"] == "Paris"
    assert tool_results_sent(fake, 2)[0]["content"] == "rain in Paris"
    assert [(r["tool_use_id"], r["message_position"]) for r in tool_rows(store, conv.id)] == [
        ("toolu_c1", 1),
        ("toolu_c2", 3),
    ]


# -- tool errors ----------------------------------------------------------------------------


async def test_errors_become_error_results_and_the_loop_goes_on(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    tally = Tally()
    get_weather = async_weather_tool(tally)

    @tool
    async def explode(reason: str) -> str:
        """Always fails."""
        raise RuntimeError(f"boom: {reason}")

    fake.enqueue(
        Reply.tool_uses(
            [
                ("explode", {"reason": "test"}, "toolu_x1"),
                ("get_weather", {"town": "Paris"}, "toolu_x2"),
                ("teleport", {"to": "Mars"}, "toolu_x3"),
                ("get_weather", {"city": "Lyon"}, "toolu_x4"),
            ]
        ),
        Reply.text("One of four worked."),
    )
    conv = new_conversation(store)
    result = await conv.arun(aclient, "Try things", tools=[explode, get_weather])

    assert result.stop == "end_turn"
    assert tally.calls == ["Lyon"]
    raised, invalid, unknown, fine = tool_results_sent(fake)
    assert raised["is_error"] is True and "RuntimeError: boom: test" in raised["content"]
    assert invalid["is_error"] is True
    assert "city: Field required" in invalid["content"]
    assert "town: Extra inputs are not permitted" in invalid["content"]
    assert unknown["is_error"] is True and "no tool named 'teleport'" in unknown["content"]
    assert fine == {"type": "tool_result", "tool_use_id": "toolu_x4", "content": "Sunny in Lyon"}
    rows = row_by_id(store, conv.id)
    assert rows["toolu_x1"]["error"] == "RuntimeError: boom: test"
    assert rows["toolu_x1"]["attempts"] == 1
    assert rows["toolu_x2"]["error"].startswith("ToolInputError: invalid input for tool")
    assert rows["toolu_x3"]["error"] == "UnknownTool: teleport"
    assert [rows[k]["status"] for k in sorted(rows)] == ["failed"] * 3 + ["succeeded"]
    assert all(rows[k]["is_error"] for k in ("toolu_x1", "toolu_x2", "toolu_x3"))


async def test_timeouts_of_async_and_sync_tools(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    cancelled = anyio.Event()
    release = threading.Event()

    @tool
    async def async_stuck(x: str) -> str:
        """Sleeps far past the loop's tool_timeout."""
        try:
            await anyio.sleep(10)
        finally:
            cancelled.set()
        return "late"

    @tool(timeout=0.15)
    def sync_stuck(x: str) -> str:
        """Blocks far past its own timeout."""
        release.wait(10)
        return "late"

    @tool
    async def quick(x: str) -> str:
        """Answers at once."""
        return "quick answer"

    fake.enqueue(
        Reply.tool_uses(
            [
                ("async_stuck", {"x": "a"}, "toolu_t1"),
                ("sync_stuck", {"x": "b"}, "toolu_t2"),
                ("quick", {"x": "c"}, "toolu_t3"),
            ]
        ),
        Reply.text("Partial."),
    )
    conv = new_conversation(store)
    started = time.monotonic()
    try:
        result = await conv.arun(
            aclient, "Go", tools=[async_stuck, sync_stuck, quick], tool_timeout=0.25
        )
    finally:
        release.set()  # let the abandoned worker thread end
    elapsed = time.monotonic() - started

    assert elapsed < 2 and result.stop == "end_turn"
    assert cancelled.is_set()
    t1, t2, t3 = tool_results_sent(fake)
    assert t1["is_error"] is True and "async_stuck timed out after 0.25 s" in t1["content"]
    assert t2["is_error"] is True and "sync_stuck timed out after 0.15 s" in t2["content"]
    assert t3 == {"type": "tool_result", "tool_use_id": "toolu_t3", "content": "quick answer"}
    rows = row_by_id(store, conv.id)
    assert [(rows[k]["status"], rows[k]["error"]) for k in ("toolu_t1", "toolu_t2")] == [
        ("failed", "timed out"),
        ("failed", "timed out"),
    ]


async def test_a_timeout_error_raised_by_the_tool_is_a_failure_not_a_timeout(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    @tool
    async def fetch(url: str) -> str:
        """Fetch a page."""
        raise TimeoutError("connect to example.com timed out")

    fake.enqueue(Reply.tool_use("fetch", {"url": "https://example.com"}), Reply.text("ok"))
    conv = new_conversation(store)
    await conv.arun(aclient, "Fetch", tools=[fetch], tool_timeout=30)

    (sent,) = tool_results_sent(fake)
    assert sent["is_error"] is True
    assert "TimeoutError: connect to example.com timed out" in sent["content"]
    (row,) = tool_rows(store, conv.id)
    assert row["error"] == "TimeoutError: connect to example.com timed out"


# -- when the loop stops ----------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["end_turn", "max_tokens", "stop_sequence", "refusal"])
async def test_stop_reasons_end_the_loop(
    store: Store, fake: FakeClaude, aclient: AsyncClient, stop: str
) -> None:
    fake.enqueue(
        Reply.text(
            "Here.", stop_reason=stop, stop_sequence="END" if stop == "stop_sequence" else None
        ),
        Reply.text("never sent"),
    )
    result = await new_conversation(store).arun(aclient, "Hi", tools=[async_weather_tool(Tally())])
    assert result.stop == stop
    assert len(fake.requests) == 1 and fake.pending == 1
    assert len(result.steps) == 1


async def test_max_steps_stops_then_arun_resumes_without_rerunning_tools(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    tally = Tally()
    get_weather = async_weather_tool(tally)
    fake.enqueue(
        Reply.tool_uses(
            [
                ("get_weather", {"city": "Bern"}, "toolu_m1"),
                ("get_weather", {"city": "Graz"}, "toolu_m2"),
            ]
        )
    )
    conv = new_conversation(store)

    first = await conv.arun(aclient, "Weather?", tools=[get_weather], max_steps=1)

    assert first.stop == "max_steps" and len(fake.requests) == 1
    assert sorted(tally.calls) == ["Bern", "Graz"]
    assert [row["status"] for row in tool_rows(store, conv.id)] == ["succeeded"] * 2

    fake.enqueue(Reply.text("Sunny in both."))
    second = await store.get_conversation(conv.id).arun(aclient, tools=[get_weather])

    assert second.stop == "end_turn" and second.text == "Sunny in both."
    assert sorted(tally.calls) == ["Bern", "Graz"]  # not executed again
    assert tool_results_sent(fake) == [
        {"type": "tool_result", "tool_use_id": "toolu_m1", "content": "Sunny in Bern"},
        {"type": "tool_result", "tool_use_id": "toolu_m2", "content": "Sunny in Graz"},
    ]
    resumed = second.steps[0]
    assert resumed.response is None and all(o.reused for o in resumed.tool_calls)
    assert [row["attempts"] for row in tool_rows(store, conv.id)] == [1, 1]


async def test_pause_turn_is_continued_with_the_history_as_is(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    paused_content = [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_s1",
            "name": "web_search",
            "input": {"query": "weather Paris"},
        }
    ]
    fake.enqueue(
        Reply(content=paused_content, stop_reason="pause_turn"), Reply.text("It is sunny.")
    )
    web_search = ServerToolDefinition.new("web_search_20250305", "web_search")
    result = await new_conversation(store).arun(aclient, "Weather?", tools=[web_search])

    assert result.stop == "end_turn" and result.text == "It is sunny."
    first, second = messages_sent(fake, 0), messages_sent(fake, 1)
    assert second == [*first, {"role": "assistant", "content": paused_content}]


# -- hooks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["coroutine", "function"])
async def test_approve_hook_denies(
    store: Store, fake: FakeClaude, aclient: AsyncClient, kind: str
) -> None:
    deleted = Tally()

    @tool
    async def read_file(path: str) -> str:
        """Read a file."""
        return "contents"

    @tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.add(path)
        return "deleted"

    asked: list[str] = []

    async def approve_async(block: ToolUseContentBlock) -> bool:
        await anyio.sleep(0.01)
        asked.append(block.id)
        return block.name != "delete_file"

    def approve_sync(block: ToolUseContentBlock) -> bool:
        asked.append(block.id)
        return block.name != "delete_file"

    fake.enqueue(
        Reply.tool_uses(
            [
                ("read_file", {"path": "a.txt"}, "toolu_d1"),
                ("delete_file", {"path": "a.txt"}, "toolu_d2"),
            ]
        ),
        Reply.text("Not allowed."),
    )
    conv = new_conversation(store)
    result = await conv.arun(
        aclient,
        "Read then delete a.txt",
        tools=[read_file, delete_file],
        approve=approve_async if kind == "coroutine" else approve_sync,
    )

    assert result.stop == "end_turn"
    assert sorted(asked) == ["toolu_d1", "toolu_d2"]
    assert deleted.calls == []
    ok, denied = tool_results_sent(fake)
    assert ok == {"type": "tool_result", "tool_use_id": "toolu_d1", "content": "contents"}
    assert denied["is_error"] is True and "denied" in denied["content"]
    row = row_by_id(store, conv.id)["toolu_d2"]
    assert (row["status"], row["error"], row["attempts"]) == ("failed", "denied", 0)


async def test_async_on_step(store: Store, fake: FakeClaude, aclient: AsyncClient) -> None:
    get_weather = async_weather_tool(Tally())
    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Rome"}, id="toolu_s1"),
        Reply.tool_use("get_weather", {"city": "Oslo"}, id="toolu_s2"),
        Reply.text("Done."),
    )
    conv = new_conversation(store)
    seen: list[tuple[int, int, list[str], str | None]] = []

    async def on_step(step: Step) -> None:
        await anyio.sleep(0)
        stop = None if step.response is None else str(step.response.stop_reason)
        seen.append((step.index, len(fake.requests), [o.content for o in step.tool_calls], stop))

    result = await conv.arun(aclient, "Weather?", tools=[get_weather], on_step=on_step)

    assert seen == [
        (0, 1, ["Sunny in Rome"], "tool_use"),
        (1, 2, ["Sunny in Oslo"], "tool_use"),
        (2, 3, [], "end_turn"),
    ]
    assert [step.index for step in result.steps] == [0, 1, 2]


# -- resuming -----------------------------------------------------------------------------------


async def test_http_error_leaves_the_question_pending_and_arun_resends_it(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    tally = Tally()
    get_weather = async_weather_tool(tally)
    fake.enqueue(Reply.error(529, "overloaded_error", "Overloaded"))
    conv = new_conversation(store)
    with pytest.raises(ApiError):
        await conv.arun(aclient, "Weather in Riga?", tools=[get_weather], max_retries=0)
    assert conv.pending

    fake.enqueue(Reply.tool_use("get_weather", {"city": "Riga"}), Reply.text("Sunny."))
    result = await store.get_conversation(conv.id).arun(aclient, tools=[get_weather])

    assert result.text == "Sunny." and tally.calls == ["Riga"]
    assert messages_sent(fake, 1) == [{"role": "user", "content": "Weather in Riga?"}]
    assert len(store.get_conversation(conv.id).history) == 4


async def test_calls_that_never_started_are_executed(
    store: Store, fake: FakeClaude, aclient: AsyncClient
) -> None:
    tally = Tally()
    get_weather = async_weather_tool(tally)
    fake.enqueue(
        Reply.tool_uses(
            [
                ("get_weather", {"city": "Quito"}, "toolu_n1"),
                ("get_weather", {"city": "Lima"}, "toolu_n2"),
            ]
        )
    )
    conv = new_conversation(store)
    await conv.asend(aclient, "Weather?", tools=[get_weather.definition])  # no call rows

    fake.enqueue(Reply.text("Sunny."))
    result = await store.get_conversation(conv.id).arun(aclient, tools=[get_weather])

    assert sorted(tally.calls) == ["Lima", "Quito"]
    assert [o.reused for o in result.steps[0].tool_calls] == [False, False]
    assert [b["content"] for b in tool_results_sent(fake)] == ["Sunny in Quito", "Sunny in Lima"]


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_call_found_running_after_a_crash(
    store: Store, fake: FakeClaude, aclient: AsyncClient, idempotent: bool
) -> None:
    charged = Tally()
    looked_up = Tally()

    @tool(idempotent=idempotent)
    async def charge_card(amount: int) -> str:
        """Charge the card."""
        charged.add(amount)
        return f"charged {amount}"

    @tool
    def lookup_price(item: str) -> int:
        """The price of an item."""
        looked_up.add(item)
        return 42

    tools = [lookup_price, charge_card]
    fake.enqueue(
        Reply.tool_uses(
            [
                ("lookup_price", {"item": "book"}, "toolu_k1"),
                ("charge_card", {"amount": 42}, "toolu_k2"),
                ("lookup_price", {"item": "pen"}, "toolu_k3"),
            ]
        )
    )
    conv = new_conversation(store)
    await conv.asend(aclient, "Buy a book", tools=[t.definition for t in tools])
    # The process that ran this step died inside charge_card: it had marked the call
    # running (attempt 1) and never finished it. Written directly, see the helper.
    insert_running_call(
        store, conv.id, position=1, tool_use_id="toolu_k2", name="charge_card", input={"amount": 42}
    )

    fake.enqueue(Reply.text("Bought."))
    result = await store.get_conversation(conv.id).arun(aclient, tools=tools)

    assert result.text == "Bought."
    assert sorted(looked_up.calls) == ["book", "pen"]  # never started: executed
    k1, k2, k3 = tool_results_sent(fake)
    assert (k1["content"], k3["content"]) == ("42", "42")
    row = row_by_id(store, conv.id)["toolu_k2"]
    if idempotent:
        assert charged.calls == [42]
        assert k2 == {"type": "tool_result", "tool_use_id": "toolu_k2", "content": "charged 42"}
        assert (row["status"], row["attempts"]) == ("succeeded", 2)
    else:
        assert charged.calls == []
        assert k2["is_error"] is True and "interrupted" in k2["content"]
        assert (row["status"], row["error"], row["attempts"]) == (
            "failed",
            "interrupted while running",
            1,
        )

    # Completed now: another arun finds nothing to resume and runs nothing.
    with pytest.raises(InvalidParameter):
        await store.get_conversation(conv.id).arun(aclient, tools=tools)
    assert len(charged) == (1 if idempotent else 0) and len(looked_up) == 2
