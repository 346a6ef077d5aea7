"""Acceptance: the official ``anthropic`` SDK, pointed at FakeClaude, works end to end.

This is the proof that the fake speaks the real protocol, independent of clust's own client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import pytest
from anthropic.types import MessageParam

from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"
USER: list[MessageParam] = [{"role": "user", "content": "Hello, Claude"}]


@pytest.fixture
def client(fake: FakeClaude) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.base_url, api_key="test") as sdk:
        yield sdk


def test_messages_create(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: Hello, Claude"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 10
    assert message._request_id is not None and message._request_id.startswith("req_fake_")
    sent = fake.last_request
    assert sent.headers["authorization"] == "Bearer test"
    assert sent.headers["anthropic-version"]


def test_messages_create_with_tools_and_thinking(
    fake: FakeClaude, client: anthropic.Anthropic
) -> None:
    fake.enqueue(
        Reply.thinking("Need the weather.", then=Reply.tool_use("get_weather", {"city": "Paris"}))
    )
    message = client.messages.create(
        model=MODEL,
        max_tokens=2000,
        messages=USER,
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
    )
    assert [b.type for b in message.content] == ["thinking", "tool_use"]
    tool_use = message.content[1]
    assert tool_use.type == "tool_use" and tool_use.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"


def test_messages_stream_get_final_message(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    rich = Reply.thinking(
        "Let me think about ünïcode 🎉.",
        then=Reply.tool_uses(
            [("get_weather", {"city": "Zürich", "days": [1, 2.5]}), ("get_time", {})],
            text="Checking the weather and the time for you now.",
        ),
    )
    fake.enqueue(rich, rich.in_chunks(3).with_pings(4))
    expected = client.messages.create(model=MODEL, max_tokens=2000, messages=USER)
    with client.messages.stream(model=MODEL, max_tokens=2000, messages=USER) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "Checking the weather and the time for you now."
    assert len(texts) > 5
    dumped = final.model_dump(exclude={"id"})
    wanted = expected.model_dump(exclude={"id"})
    for message in (dumped, wanted):
        for block in message["content"]:
            block.pop("id", None)
    assert dumped == wanted


def test_stream_error_event_raises(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(Reply.text("Once upon a time").stream_error_after(4))
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream,
    ):
        stream.get_final_message()
    assert caught.value.type == "overloaded_error"
    assert len(fake.requests) == 1  # in-stream errors are not retried


def test_sdk_retries_scripted_errors(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.enqueue(
        Reply.error(529, "overloaded_error", "Overloaded", headers={"retry-after-ms": "10"}),
        Reply.text("third time lucky"),
    )
    message = client.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert message.content[0].type == "text" and message.content[0].text == "third time lucky"
    assert [r.headers.get("x-stainless-retry-count") for r in fake.requests] == ["0", "1"]


def test_sdk_maps_error_status(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=100, messages=[])
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_fake_")
    assert caught.value.type == "invalid_request_error"


def test_count_tokens(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, system="You are terse.", messages=USER)
    assert counted.input_tokens == 14


def test_models_list_iterates_pages(client: anthropic.Anthropic) -> None:
    ids = [model.id for model in client.models.list(limit=4)]
    assert ids[0] == "claude-opus-5-5"
    assert len(ids) == len(set(ids)) > 4
    assert client.models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5-20251001"


def test_batch_round_trip(fake: FakeClaude, client: anthropic.Anthropic) -> None:
    fake.script_batch_result("greeting-2", "errored")
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": f"greeting-{i}",
                "params": {"model": MODEL, "max_tokens": 100, "messages": USER},
            }
            for i in range(3)
        ]
    )
    status: str = batch.processing_status
    assert status == "in_progress"
    deadline = time.monotonic() + 5
    while status != "ended":
        assert time.monotonic() < deadline
        batch = client.messages.batches.retrieve(batch.id)
        status = batch.processing_status
    assert batch.request_counts.succeeded == 2 and batch.request_counts.errored == 1
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["greeting-0"].type == "succeeded"
    assert results["greeting-0"].message.usage.service_tier == "batch"
    assert results["greeting-2"].type == "errored"
    listed = [b.id for b in client.messages.batches.list()]
    assert listed == [batch.id]
    client.messages.batches.delete(batch.id)


@pytest.mark.anyio
async def test_async_client() -> None:
    async with FakeClaude() as fake:
        fake.enqueue(Reply.text("async hi"))
        async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="test") as sdk:
            message = await sdk.messages.create(model=MODEL, max_tokens=100, messages=USER)
            assert message.content[0].type == "text" and message.content[0].text == "async hi"
            async with sdk.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
                final = await stream.get_final_message()
            assert final.content[0].type == "text"
            assert final.content[0].text == "Echo: Hello, Claude"
