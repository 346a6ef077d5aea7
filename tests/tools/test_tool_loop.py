"""``Conversation.run``: the sync tool loop against FakeClaude, on SQLite and PostgreSQL.

FakeClaude plays the model from scripted replies and records every request, so each
test checks what the loop sent back (tool results, their order, ``is_error``), what
it stored (messages and ``clust_tool_calls`` rows) and how often each tool really ran.
Resume cases are built through the public API: a run stopped by ``max_steps``, a
send that failed over HTTP, a "crash" (an exception no handler catches) inside a tool.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from tools.loop_support import (
    Tally,
    messages_sent,
    new_conversation,
    row_by_id,
    stored_result,
    tool_results_sent,
    tool_rows,
)

from clust import Client, Store
from clust.conversation.loop import Step
from clust.messages import (
    ApiError,
    ConversationBusy,
    InvalidParameter,
    ServerToolDefinition,
    StoreError,
    TextContentBlock,
    ToolInputError,
    ToolResultContentBlock,
    ToolUseContentBlock,
    UnansweredToolCalls,
)
from clust.testing import FakeClaude, Reply
from clust.tools import tool


class Crash(BaseException):
    """Stands in for the process dying inside a tool: no ``except Exception`` catches
    it, so the loop stops right there, as a killed process would."""


def weather_tool(tally: Tally) -> Any:
    @tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        """The current weather in a city.

        Args:
            city: The city name, e.g. "Paris".
            unit: Degrees Celsius or Fahrenheit.
        """
        tally.add(city)
        return f"Sunny, 21 {unit.upper()} in {city}"

    return get_weather


# -- the basic loop ------------------------------------------------------------------------


def test_single_tool(store: Store, fake: FakeClaude, client: Client) -> None:
    tally = Tally()
    get_weather = weather_tool(tally)
    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Paris"}, id="toolu_w1", text="Let me look."),
        Reply.text("It is sunny in Paris."),
    )
    conv = new_conversation(store)

    result = conv.run(client, "Weather in Paris?", tools=[get_weather])

    assert result.stop == "end_turn"
    assert result.text == "It is sunny in Paris."
    assert tally.calls == ["Paris"]
    assert [step.index for step in result.steps] == [0, 1]
    first, last = result.steps
    assert first.response is not None and first.response.stop_reason == "tool_use"
    (outcome,) = first.tool_calls
    assert (outcome.tool_use_id, outcome.name, outcome.input) == (
        "toolu_w1",
        "get_weather",
        {"city": "Paris"},
    )
    assert outcome.content == "Sunny, 21 C in Paris"
    assert (outcome.is_error, outcome.error, outcome.status) == (False, None, "succeeded")
    assert (outcome.attempts, outcome.reused) == (1, False)
    assert last.response is result.response and last.tool_calls == []

    assert len(fake.requests) == 2
    assert tool_results_sent(fake) == [
        {"type": "tool_result", "tool_use_id": "toolu_w1", "content": "Sunny, 21 C in Paris"}
    ]
    stored = store.get_conversation(conv.id).history
    assert [m.role.value for m in stored] == ["user", "assistant", "user", "assistant"]
    assert stored[-1].text() == "It is sunny in Paris."


def test_request_carries_tool_schemas_and_server_tools(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    get_weather = weather_tool(Tally())
    web_search = ServerToolDefinition.new("web_search_20250305", "web_search", max_uses=2)
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Oslo"}), Reply.text("Cold."))

    new_conversation(store).run(client, "Weather?", tools=[get_weather, web_search])

    expected = [
        {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "city": {"description": 'The city name, e.g. "Paris".', "type": "string"},
                    "unit": {
                        "default": "c",
                        "description": "Degrees Celsius or Fahrenheit.",
                        "enum": ["c", "f"],
                        "type": "string",
                    },
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
    ]
    assert [request.body["tools"] for request in fake.requests] == [expected, expected]


def test_structured_return_value_is_sent_as_json(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    @tool
    def forecast(city: str, days: int) -> dict[str, Any]:
        """A forecast."""
        return {"city": city, "highs": [20 + day for day in range(days)], "note": "ensoleillé"}

    fake.enqueue(Reply.tool_use("forecast", {"city": "Nice", "days": "3"}), Reply.text("ok"))
    conv = new_conversation(store)
    conv.run(client, "Forecast?", tools=[forecast])

    content = '{"city":"Nice","highs":[20,21,22],"note":"ensoleillé"}'
    (sent,) = tool_results_sent(fake)
    assert sent["content"] == content
    (row,) = tool_rows(store, conv.id)
    assert stored_result(row) == content


def test_parallel_tools_answered_in_one_turn_in_tool_use_order(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    order: list[str] = []

    @tool
    def get_weather(city: str) -> str:
        """Weather."""
        order.append(f"weather:{city}")
        return f"sunny in {city}"

    @tool
    def get_time(city: str) -> str:
        """Local time."""
        order.append(f"time:{city}")
        return f"noon in {city}"

    fake.enqueue(
        Reply.tool_uses(
            [
                ("get_weather", {"city": "Rome"}, "toolu_p1"),
                ("get_time", {"city": "Rome"}, "toolu_p2"),
                ("get_weather", {"city": "Lima"}, "toolu_p3"),
            ],
            text="Three lookups.",
        ),
        Reply.text("Done."),
    )
    conv = new_conversation(store)
    result = conv.run(client, "Rome and Lima?", tools=[get_weather, get_time])

    assert order == ["weather:Rome", "time:Rome", "weather:Lima"]
    assert tool_results_sent(fake) == [
        {"type": "tool_result", "tool_use_id": "toolu_p1", "content": "sunny in Rome"},
        {"type": "tool_result", "tool_use_id": "toolu_p2", "content": "noon in Rome"},
        {"type": "tool_result", "tool_use_id": "toolu_p3", "content": "sunny in Lima"},
    ]
    # All three results in the one user turn that follows the assistant turn.
    assert [m["role"] for m in messages_sent(fake)] == ["user", "assistant", "user"]
    assert [o.tool_use_id for o in result.steps[0].tool_calls] == [
        "toolu_p1",
        "toolu_p2",
        "toolu_p3",
    ]
    rows = tool_rows(store, conv.id)
    assert [(r["tool_use_id"], r["message_position"], r["status"]) for r in rows] == [
        ("toolu_p1", 1, "succeeded"),
        ("toolu_p2", 1, "succeeded"),
        ("toolu_p3", 1, "succeeded"),
    ]


def test_chained_steps(store: Store, fake: FakeClaude, client: Client) -> None:
    @tool
    def find_city(landmark: str) -> str:
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
    result = conv.run(client, "Weather at the Eiffel Tower?", tools=[find_city, get_weather])

    assert result.stop == "end_turn" and result.text == "Bring an umbrella."
    assert [len(messages_sent(fake, i)) for i in range(3)] == [1, 3, 5]
    assert tool_results_sent(fake, 1)[0]["content"] == "Paris"
    assert tool_results_sent(fake, 2)[0]["content"] == "rain in Paris"
    assert [[o.name for o in step.tool_calls] for step in result.steps] == [
        ["find_city"],
        ["get_weather"],
        [],
    ]
    rows = tool_rows(store, conv.id)
    assert [(r["tool_use_id"], r["message_position"]) for r in rows] == [
        ("toolu_c1", 1),
        ("toolu_c2", 3),
    ]
    assert len(store.get_conversation(conv.id).history) == 6


# -- tool errors ----------------------------------------------------------------------------


def test_tool_exception_becomes_error_result_and_loop_goes_on(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    @tool
    def get_weather(city: str) -> str:
        """Weather."""
        raise LookupError(f"no station in {city}")

    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Atlantis"}, id="toolu_e1"),
        Reply.text("Sorry, I could not find it."),
    )
    conv = new_conversation(store)
    result = conv.run(client, "Weather in Atlantis?", tools=[get_weather])

    assert result.stop == "end_turn"
    (sent,) = tool_results_sent(fake)
    assert sent["is_error"] is True
    assert "LookupError: no station in Atlantis" in sent["content"]
    (outcome,) = result.steps[0].tool_calls
    assert outcome.is_error and outcome.status == "failed"
    assert outcome.error == "LookupError: no station in Atlantis"
    (row,) = tool_rows(store, conv.id)
    assert row["status"] == "failed" and row["is_error"] is True
    assert row["error"] == "LookupError: no station in Atlantis"
    assert row["attempts"] == 1
    assert stored_result(row) == sent["content"]


def test_invalid_input_sends_the_validation_message(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    tally = Tally()
    get_weather = weather_tool(tally)
    bad_input = {"town": "Paris", "unit": "kelvin"}
    fake.enqueue(Reply.tool_use("get_weather", bad_input, id="toolu_i1"), Reply.text("Oops."))
    conv = new_conversation(store)
    result = conv.run(client, "Weather?", tools=[get_weather])

    with pytest.raises(ToolInputError) as raised:
        get_weather.validate(bad_input)
    message = str(raised.value)
    assert "city: Field required" in message and "town: Extra inputs" in message
    assert "unit: Input should be 'c' or 'f'" in message

    assert tally.calls == []  # never called with input it cannot take
    (sent,) = tool_results_sent(fake)
    assert sent == {
        "type": "tool_result",
        "tool_use_id": "toolu_i1",
        "content": f"Error: {message}",
        "is_error": True,
    }
    assert result.stop == "end_turn"
    (row,) = tool_rows(store, conv.id)
    assert (row["status"], row["attempts"], row["started_at"]) == ("failed", 0, None)
    assert row["error"] == f"ToolInputError: {message}"
    assert row["input"] == bad_input


def test_unknown_tool(store: Store, fake: FakeClaude, client: Client) -> None:
    get_weather = weather_tool(Tally())
    fake.enqueue(
        Reply.tool_use("launch_rocket", {"target": "moon"}, id="toolu_u1"),
        Reply.text("I cannot do that."),
    )
    conv = new_conversation(store)
    result = conv.run(client, "Go to the moon", tools=[get_weather])

    (sent,) = tool_results_sent(fake)
    assert sent["is_error"] is True
    assert "no tool named 'launch_rocket'" in sent["content"]
    assert "get_weather" in sent["content"]  # the model is told what it can call
    assert result.stop == "end_turn"
    (row,) = tool_rows(store, conv.id)
    assert (row["name"], row["status"], row["error"]) == (
        "launch_rocket",
        "failed",
        "UnknownTool: launch_rocket",
    )


# -- timeouts ---------------------------------------------------------------------------------


def test_tool_timeout_argument(store: Store, fake: FakeClaude, client: Client) -> None:
    release = threading.Event()

    @tool
    def slow_lookup(query: str) -> str:
        """Slow."""
        release.wait(10)
        return "late"

    @tool
    def quick_lookup(query: str) -> str:
        """Quick."""
        return "fast answer"

    fake.enqueue(
        Reply.tool_uses(
            [
                ("slow_lookup", {"query": "a"}, "toolu_t1"),
                ("quick_lookup", {"query": "b"}, "toolu_t2"),
            ]
        ),
        Reply.text("Partial answer."),
    )
    conv = new_conversation(store)
    started = time.monotonic()
    try:
        result = conv.run(client, "Look up", tools=[slow_lookup, quick_lookup], tool_timeout=0.2)
    finally:
        release.set()  # let the abandoned worker thread end

    assert time.monotonic() - started < 5
    assert result.stop == "end_turn"
    slow, quick = tool_results_sent(fake)
    assert slow["is_error"] is True and "timed out after 0.2 s" in slow["content"]
    assert quick == {"type": "tool_result", "tool_use_id": "toolu_t2", "content": "fast answer"}
    rows = row_by_id(store, conv.id)
    assert (rows["toolu_t1"]["status"], rows["toolu_t1"]["error"]) == ("failed", "timed out")
    assert rows["toolu_t2"]["status"] == "succeeded"


def test_a_tools_own_timeout_wins(store: Store, fake: FakeClaude, client: Client) -> None:
    release = threading.Event()

    @tool(timeout=0.15)
    def slow_lookup(query: str) -> str:
        """Slow."""
        release.wait(10)
        return "late"

    fake.enqueue(Reply.tool_use("slow_lookup", {"query": "a"}), Reply.text("ok"))
    started = time.monotonic()
    try:
        # The loop-wide limit is far longer: the tool's own 0.15 s applies.
        new_conversation(store).run(client, "Go", tools=[slow_lookup], tool_timeout=30)
    finally:
        release.set()
    assert time.monotonic() - started < 5
    (sent,) = tool_results_sent(fake)
    assert sent["is_error"] is True and "timed out after 0.15 s" in sent["content"]


def test_a_timeout_error_raised_by_the_tool_is_a_failure_not_a_timeout(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    @tool
    def fetch(url: str) -> str:
        """Fetch a page."""
        raise TimeoutError("connect to example.com timed out")

    fake.enqueue(Reply.tool_use("fetch", {"url": "https://example.com"}), Reply.text("ok"))
    conv = new_conversation(store)
    conv.run(client, "Fetch", tools=[fetch], tool_timeout=30)

    (sent,) = tool_results_sent(fake)
    assert sent["is_error"] is True
    assert "TimeoutError: connect to example.com timed out" in sent["content"]
    (row,) = tool_rows(store, conv.id)
    assert row["error"] == "TimeoutError: connect to example.com timed out"


def test_async_tools_run_in_the_sync_loop(store: Store, fake: FakeClaude, client: Client) -> None:
    cancelled = threading.Event()

    @tool
    async def lookup(query: str) -> str:
        """Async lookup."""
        await anyio.sleep(0)
        return f"found {query}"

    @tool(timeout=0.15)
    async def stuck(query: str) -> str:
        """Never answers in time."""
        try:
            await anyio.sleep(10)
        finally:
            cancelled.set()
        return "late"

    fake.enqueue(
        Reply.tool_uses(
            [("lookup", {"query": "a"}, "toolu_a1"), ("stuck", {"query": "b"}, "toolu_a2")]
        ),
        Reply.text("ok"),
    )
    started = time.monotonic()
    new_conversation(store).run(client, "Go", tools=[lookup, stuck])

    assert time.monotonic() - started < 5
    assert cancelled.is_set()  # an async tool past its timeout is cancelled, not abandoned
    found, late = tool_results_sent(fake)
    assert found == {"type": "tool_result", "tool_use_id": "toolu_a1", "content": "found a"}
    assert late["is_error"] is True and "timed out after 0.15 s" in late["content"]


# -- when the loop stops ----------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["end_turn", "max_tokens", "stop_sequence", "refusal"])
def test_stop_reasons_end_the_loop(
    store: Store, fake: FakeClaude, client: Client, stop: str
) -> None:
    fake.enqueue(
        Reply.text(
            "Here.", stop_reason=stop, stop_sequence="END" if stop == "stop_sequence" else None
        ),
        Reply.text("never sent"),
    )
    conv = new_conversation(store)
    steps: list[Step] = []
    result = conv.run(client, "Hi", tools=[weather_tool(Tally())], on_step=steps.append)

    assert result.stop == stop
    assert len(fake.requests) == 1 and fake.pending == 1
    assert len(result.steps) == 1 and steps == result.steps
    assert result.steps[0].response is result.response
    assert tool_rows(store, conv.id) == []


def test_max_steps_stops_then_run_resumes_without_rerunning_tools(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    tally = Tally()
    get_weather = weather_tool(tally)
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Bern"}, id="toolu_m1"))
    conv = new_conversation(store)

    first = conv.run(client, "Weather in Bern?", tools=[get_weather], max_steps=1)

    assert first.stop == "max_steps"
    assert first.response is not None and first.response.stop_reason == "tool_use"
    assert len(fake.requests) == 1 and tally.calls == ["Bern"]
    assert first.steps[0].tool_calls[0].content == "Sunny, 21 C in Bern"
    # The results are stored as call rows; the conversation ends on the tool_use reply.
    reopened = store.get_conversation(conv.id)
    assert [m.role.value for m in reopened.history] == ["user", "assistant"]
    (row,) = tool_rows(store, conv.id)
    assert (row["status"], row["attempts"]) == ("succeeded", 1)

    fake.enqueue(Reply.text("Sunny in Bern."))
    second = reopened.run(client, tools=[get_weather])

    assert second.stop == "end_turn" and second.text == "Sunny in Bern."
    assert tally.calls == ["Bern"]  # not executed again
    assert tool_results_sent(fake) == [
        {"type": "tool_result", "tool_use_id": "toolu_m1", "content": "Sunny, 21 C in Bern"}
    ]
    resumed = second.steps[0]
    assert resumed.response is None
    (outcome,) = resumed.tool_calls
    assert outcome.reused and outcome.attempts == 1 and outcome.status == "succeeded"
    (row,) = tool_rows(store, conv.id)
    assert row["attempts"] == 1
    with pytest.raises(InvalidParameter):  # nothing left to resume
        reopened.run(client, tools=[get_weather])


def test_a_new_turn_must_answer_the_pending_tool_calls(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    tally = Tally()
    get_weather = weather_tool(tally)
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Bern"}, id="toolu_q1"))
    conv = new_conversation(store)
    conv.run(client, "Weather in Bern?", tools=[get_weather], max_steps=1)

    # A plain question now would leave toolu_q1 unanswered (the API rejects that, and
    # the turn would stay pending): refused before anything is stored or sent.
    with pytest.raises(InvalidParameter, match="toolu_q1"):
        conv.run(client, "And in Zurich?", tools=[get_weather])
    assert len(fake.requests) == 1 and not conv.pending
    assert len(store.get_conversation(conv.id).history) == 2

    # Answering the call in the new turn is accepted, and sent as given.
    fake.enqueue(Reply.text("Noted."))
    answer = [ToolResultContentBlock.new("toolu_q1", "cloudy"), TextContentBlock.new("Thanks")]
    result = conv.run(client, answer, tools=[get_weather])
    assert result.text == "Noted." and tally.calls == ["Bern"]
    assert messages_sent(fake)[-1] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_q1", "content": "cloudy"},
            {"type": "text", "text": "Thanks"},
        ],
    }


def test_max_steps_counts_requests(store: Store, fake: FakeClaude, client: Client) -> None:
    tally = Tally()
    get_weather = weather_tool(tally)
    fake.enqueue(*(Reply.tool_use("get_weather", {"city": f"c{i}"}) for i in range(3)))
    result = new_conversation(store).run(client, "Go", tools=[get_weather], max_steps=2)
    assert result.stop == "max_steps"
    assert len(fake.requests) == 2 and tally.calls == ["c0", "c1"]
    assert len(result.steps) == 2
    with pytest.raises(InvalidParameter):
        new_conversation(store).run(client, "Go", tools=[get_weather], max_steps=0)


def test_pause_turn_is_continued_with_the_history_as_is(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    paused_content = [
        {"type": "text", "text": "Searching the web."},
        {
            "type": "server_tool_use",
            "id": "srvtoolu_s1",
            "name": "web_search",
            "input": {"query": "weather Paris"},
        },
    ]
    fake.enqueue(
        Reply(content=paused_content, stop_reason="pause_turn"),
        Reply.text("It is sunny."),
    )
    web_search = ServerToolDefinition.new("web_search_20250305", "web_search")
    conv = new_conversation(store)
    steps: list[Step] = []
    result = conv.run(client, "Weather?", tools=[web_search], on_step=steps.append)

    assert result.stop == "end_turn" and result.text == "It is sunny."
    assert len(fake.requests) == 2
    first, second = messages_sent(fake, 0), messages_sent(fake, 1)
    # The continuation is the same history plus the paused assistant turn, nothing else.
    assert second == [*first, {"role": "assistant", "content": paused_content}]
    assert [s.response.stop_reason for s in steps if s.response] == ["pause_turn", "end_turn"]
    assert steps == result.steps


def test_run_resumes_a_paused_reply(store: Store, fake: FakeClaude, client: Client) -> None:
    paused = [{"type": "text", "text": "Working on it."}]
    fake.enqueue(Reply(content=paused, stop_reason="pause_turn"))
    conv = new_conversation(store)
    conv.send(client, "Research this")

    fake.enqueue(Reply.text("Finished."))
    result = store.get_conversation(conv.id).run(client, tools=[weather_tool(Tally())])

    assert result.text == "Finished."
    assert messages_sent(fake) == [
        {"role": "user", "content": "Research this"},
        {"role": "assistant", "content": paused},
    ]


# -- hooks ----------------------------------------------------------------------------------------


def test_approve_hook_denies(store: Store, fake: FakeClaude, client: Client) -> None:
    deleted = Tally()
    read = Tally()

    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        read.add(path)
        return "contents"

    @tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.add(path)
        return "deleted"

    asked: list[ToolUseContentBlock] = []

    def approve(block: ToolUseContentBlock) -> bool:
        asked.append(block)
        return block.name != "delete_file"

    fake.enqueue(
        Reply.tool_uses(
            [
                ("read_file", {"path": "a.txt"}, "toolu_d1"),
                ("delete_file", {"path": "a.txt"}, "toolu_d2"),
            ]
        ),
        Reply.text("I was not allowed to delete it."),
    )
    conv = new_conversation(store)
    result = conv.run(
        client, "Read then delete a.txt", tools=[read_file, delete_file], approve=approve
    )

    assert result.stop == "end_turn"
    assert [(b.id, b.name, b.input) for b in asked] == [
        ("toolu_d1", "read_file", {"path": "a.txt"}),
        ("toolu_d2", "delete_file", {"path": "a.txt"}),
    ]
    assert read.calls == ["a.txt"] and deleted.calls == []
    ok, denied = tool_results_sent(fake)
    assert ok["content"] == "contents" and "is_error" not in ok
    assert denied["is_error"] is True and "denied" in denied["content"]
    rows = row_by_id(store, conv.id)
    assert (rows["toolu_d2"]["status"], rows["toolu_d2"]["error"]) == ("failed", "denied")
    assert (rows["toolu_d2"]["attempts"], rows["toolu_d2"]["started_at"]) == (0, None)


def test_on_step_sees_each_step_committed_before_the_next_request(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    get_weather = weather_tool(Tally())
    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Rome"}, id="toolu_s1"),
        Reply.tool_uses(
            [
                ("get_weather", {"city": "Oslo"}, "toolu_s2"),
                ("get_weather", {"city": "Kyiv"}, "toolu_s3"),
            ]
        ),
        Reply.text("All sunny."),
    )
    conv = new_conversation(store)
    seen: list[tuple[int, int, list[str], list[str], str | None]] = []

    def on_step(step: Step) -> None:
        statuses = [row["status"] for row in tool_rows(store, conv.id)]
        stop = None if step.response is None else str(step.response.stop_reason)
        seen.append(
            (
                step.index,
                len(fake.requests),
                [o.tool_use_id for o in step.tool_calls],
                statuses,
                stop,
            )
        )

    result = conv.run(client, "Weather?", tools=[get_weather], on_step=on_step)

    assert seen == [
        (0, 1, ["toolu_s1"], ["succeeded"], "tool_use"),
        (1, 2, ["toolu_s2", "toolu_s3"], ["succeeded"] * 3, "tool_use"),
        (2, 3, [], ["succeeded"] * 3, "end_turn"),
    ]
    assert [step.index for step in result.steps] == [0, 1, 2]
    assert [o.content for o in result.steps[1].tool_calls] == [
        "Sunny, 21 C in Oslo",
        "Sunny, 21 C in Kyiv",
    ]


# -- the rows -------------------------------------------------------------------------------------


def test_tool_call_rows(store: Store, fake: FakeClaude, client: Client) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        time.sleep(0.02)
        return a + b

    @tool
    def divide(a: int, b: int) -> float:
        """Divide."""
        return a / b

    fake.enqueue(
        Reply.tool_uses(
            [("add", {"a": 2, "b": 3}, "toolu_r1"), ("divide", {"a": 1, "b": 0}, "toolu_r2")]
        ),
        Reply.text("5, and division by zero."),
    )
    conv = new_conversation(store)
    conv.run(client, "Compute", tools=[add, divide])

    added, divided = tool_rows(store, conv.id)
    assert added["conversation_id"] == conv.id and added["message_position"] == 1
    assert (added["name"], added["input"]) == ("add", {"a": 2, "b": 3})
    assert (added["status"], added["is_error"], added["error"]) == ("succeeded", False, None)
    assert (stored_result(added), added["attempts"]) == ("5", 1)
    assert added["created_at"] <= added["started_at"] <= added["finished_at"]
    assert (added["finished_at"] - added["started_at"]).total_seconds() >= 0.02
    assert (divided["status"], divided["is_error"]) == ("failed", True)
    assert divided["error"] == "ZeroDivisionError: division by zero"
    assert divided["started_at"] >= added["finished_at"]  # the sync loop runs them in order


# -- resuming -----------------------------------------------------------------------------------


def test_http_error_leaves_the_question_pending_and_run_resends_it(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    tally = Tally()
    get_weather = weather_tool(tally)
    fake.enqueue(Reply.error(529, "overloaded_error", "Overloaded"))
    conv = new_conversation(store)
    with pytest.raises(ApiError):
        conv.run(client, "Weather in Riga?", tools=[get_weather], max_retries=0)
    assert conv.pending

    fake.enqueue(Reply.tool_use("get_weather", {"city": "Riga"}), Reply.text("Sunny."))
    result = store.get_conversation(conv.id).run(client, tools=[get_weather])

    assert result.text == "Sunny." and tally.calls == ["Riga"]
    assert messages_sent(fake, 1) == [{"role": "user", "content": "Weather in Riga?"}]
    assert [m.role.value for m in store.get_conversation(conv.id).history] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_http_error_after_tools_resends_their_results(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    tally = Tally()
    get_weather = weather_tool(tally)
    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Riga"}, id="toolu_h1"),
        Reply.error(529, "overloaded_error", "Overloaded"),
    )
    conv = new_conversation(store)
    with pytest.raises(ApiError):
        conv.run(client, "Weather in Riga?", tools=[get_weather], max_retries=0)
    assert conv.pending and tally.calls == ["Riga"]

    fake.enqueue(Reply.text("Sunny."))
    result = store.get_conversation(conv.id).run(client, tools=[get_weather])

    assert result.text == "Sunny." and tally.calls == ["Riga"]
    assert messages_sent(fake) == messages_sent(fake, 1)  # the same tool results turn
    assert tool_results_sent(fake)[0]["tool_use_id"] == "toolu_h1"


def test_calls_that_never_started_are_executed(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    tally = Tally()
    get_weather = weather_tool(tally)
    # A plain send stores the tool_use reply without running anything (no call rows).
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Quito"}, id="toolu_n1"))
    conv = new_conversation(store)
    conv.send(client, "Weather in Quito?", tools=[get_weather.definition])
    assert tool_rows(store, conv.id) == []

    fake.enqueue(Reply.text("Sunny in Quito."))
    result = store.get_conversation(conv.id).run(client, tools=[get_weather])

    assert result.text == "Sunny in Quito." and tally.calls == ["Quito"]
    (outcome,) = result.steps[0].tool_calls
    assert not outcome.reused and outcome.attempts == 1
    assert tool_results_sent(fake)[0]["content"] == "Sunny, 21 C in Quito"


@pytest.mark.parametrize("idempotent", [False, True])
def test_a_call_left_running_by_a_crash(
    store: Store, fake: FakeClaude, client: Client, idempotent: bool
) -> None:
    charged = Tally()
    looked_up = Tally()
    crash = [True]

    @tool(idempotent=idempotent)
    def charge_card(amount: int) -> str:
        """Charge the card."""
        charged.add(amount)
        if crash[0]:
            crash[0] = False
            raise Crash
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
    with pytest.raises(Crash):
        conv.run(client, "Buy a book", tools=tools)

    rows = row_by_id(store, conv.id)
    assert {key: row["status"] for key, row in rows.items()} == {
        "toolu_k1": "succeeded",
        "toolu_k2": "running",
        "toolu_k3": "pending",
    }
    assert rows["toolu_k2"]["attempts"] == 1 and rows["toolu_k2"]["finished_at"] is None
    assert charged.calls == [42] and looked_up.calls == ["book"]

    # "A new process": a fresh object from the store, run without content.
    fake.enqueue(Reply.text("Bought."))
    result = store.get_conversation(conv.id).run(client, tools=tools)

    assert result.text == "Bought."
    assert looked_up.calls == ["book", "pen"]  # the completed call was not run again
    k1, k2, k3 = tool_results_sent(fake)
    assert (k1["tool_use_id"], k1["content"]) == ("toolu_k1", "42")
    assert (k3["tool_use_id"], k3["content"]) == ("toolu_k3", "42")
    outcomes = {o.tool_use_id: o for o in result.steps[0].tool_calls}
    assert outcomes["toolu_k1"].reused and not outcomes["toolu_k3"].reused
    row = row_by_id(store, conv.id)["toolu_k2"]
    if idempotent:
        assert charged.calls == [42, 42]
        assert k2 == {"type": "tool_result", "tool_use_id": "toolu_k2", "content": "charged 42"}
        assert (row["status"], row["attempts"]) == ("succeeded", 2)
    else:
        assert charged.calls == [42]
        assert k2["is_error"] is True and "interrupted" in k2["content"]
        assert (row["status"], row["error"], row["attempts"]) == (
            "failed",
            "interrupted while running",
            1,
        )


def test_run_needs_something_to_do(store: Store, fake: FakeClaude, client: Client) -> None:
    conv = new_conversation(store)
    with pytest.raises(InvalidParameter):
        conv.run(client, tools=[])
    fake.enqueue(Reply.text("Hello."))
    conv.run(client, "Hi", tools=[])
    with pytest.raises(InvalidParameter):
        conv.run(client, tools=[])
    assert len(fake.requests) == 1


STUCK_TOOL_SCRIPT = """
import sys, time
from clust import Client, Store
from clust.testing import FakeClaude, Reply
from clust.tools import tool

@tool(timeout=0.1)
def stuck(x: str) -> str:
    '''Never returns in time.'''
    time.sleep(60)
    return "late"

with FakeClaude() as fake, Store(sys.argv[1]) as store:
    with Client(api_key="k", base_url=fake.base_url) as client:
        fake.enqueue(Reply.tool_use("stuck", {"x": "a"}), Reply.text("done"))
        conv = store.create_conversation(model="claude-sonnet-5-5", max_tokens=100)
        print(conv.run(client, "hi", tools=[stuck]).text)
"""


def test_a_timed_out_sync_tool_does_not_hold_up_the_process_exit(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", STUCK_TOOL_SCRIPT, f"sqlite:///{tmp_path / 'store.db'}"],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert time.monotonic() - started < 30  # the tool's thread sleeps for 60 s


def test_results_of_a_tool_run_answered_meanwhile_are_not_stored(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    """Process A is inside a slow tool: it holds the conversation's lease, so process
    B is refused until an operator breaks that lease. B then resumes the loop, answers
    the call as interrupted and gets the final reply. A's late results must not land
    after that reply (the API would refuse the turn, and it would stay pending)."""
    started = threading.Event()

    @tool
    def slow_charge(amount: int) -> str:
        """Charge a card (not idempotent)."""
        started.set()
        time.sleep(0.6)
        return f"charged {amount}"

    fake.enqueue(
        Reply.tool_use("slow_charge", {"amount": 5}, id="toolu_s1"),
        Reply.text("The charge was interrupted; I will not retry it."),
    )
    conv = new_conversation(store)
    failures: list[BaseException] = []

    def process_a() -> None:
        try:
            conv.run(client, "Charge 5", tools=[slow_charge])
        except BaseException as exc:
            failures.append(exc)

    a = threading.Thread(target=process_a)
    a.start()
    assert started.wait(5)
    other = store.get_conversation(conv.id)  # process B, while A's tool runs
    with pytest.raises(ConversationBusy):
        other.run(client, None, tools=[slow_charge])
    with pytest.raises(UnansweredToolCalls):  # and never a 400 from the API
        other.send(client, "anything else?")
    assert store.break_lease(conv.id)  # the operator takes A for dead
    result = other.run(client, None, tools=[slow_charge])
    assert result.text == "The charge was interrupted; I will not retry it."
    a.join()

    assert len(failures) == 1 and isinstance(failures[0], StoreError)
    assert len(fake.requests) == 2  # A's results were never sent
    stored = store.get_conversation(conv.id)
    assert [m.role.value for m in stored.history] == ["user", "assistant", "user", "assistant"]
    assert not stored.pending
