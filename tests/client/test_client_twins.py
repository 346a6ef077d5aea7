"""One method, two clients: the blocking and awaitable forms of every client method,
and the lower-level ``*_from_spec`` entry points that send prepared requests."""

from __future__ import annotations

import inspect
import json

import pytest
from support import simple_body

from clust import AsyncClient, Client
from clust.client import AsyncBatchResults, BatchResults
from clust.client.streaming import AsyncMessageStream, MessageStream
from clust.messages import InvalidParameter, StreamOptionMismatch, errors
from clust.protocol.request import count_tokens_request, message_request
from clust.testing import FakeClaude, Reply

PUBLIC = [
    name
    for name in dir(Client)
    if not name.startswith("_") and callable(getattr(Client, name)) and name != "from_env"
]
AWAITED = [
    "close",
    "create_a_message",
    "count_tokens",
    "create_from_spec",
    "count_tokens_from_spec",
    "create_message_batch",
    "create_message_batch_from_wire",
    "get_message_batch",
    "cancel_message_batch",
    "delete_message_batch",
    "wait_for_message_batch",
    "get_model",
    "refresh_models",
]


def test_both_clients_have_the_same_methods() -> None:
    assert set(PUBLIC) - set(AWAITED) == {
        "create_a_message_stream",
        "stream_from_spec",
        "list_models",
        "list_message_batches",
        "message_batch_results",
    }
    for name in PUBLIC:
        blocking, awaiting = getattr(Client, name), getattr(AsyncClient, name)
        assert not inspect.iscoroutinefunction(blocking), name
        assert inspect.iscoroutinefunction(awaiting) == (name in AWAITED), name
        assert inspect.signature(blocking) == inspect.signature(awaiting), name
        assert blocking.__doc__ and blocking.__doc__ == awaiting.__doc__, name
        assert blocking.__name__ == awaiting.__name__ == name
        assert blocking.__qualname__ == f"Client.{name}"


def test_stream_and_results_classes_have_twin_methods() -> None:
    for blocking, awaiting in (
        (MessageStream, AsyncMessageStream),
        (BatchResults, AsyncBatchResults),
    ):
        assert not inspect.iscoroutinefunction(blocking.close)
        assert inspect.iscoroutinefunction(awaiting.close)
        assert blocking.close.__doc__ == awaiting.close.__doc__
    assert inspect.iscoroutinefunction(AsyncMessageStream.get_final_message)
    assert "StreamInterrupted" in (MessageStream.get_final_message.__doc__ or "")


@pytest.mark.anyio
async def test_async_arguments_are_checked_when_awaited(aclient: AsyncClient) -> None:
    """As with any ``async def``: nothing runs until the call is awaited."""
    pending = aclient.create_a_message(simple_body(stream=True))
    with pytest.raises(StreamOptionMismatch):
        await pending
    with pytest.raises(InvalidParameter):  # not awaited: raised at the call
        aclient.list_message_batches(limit=0)


def test_spec_entry_points(client: Client, fake: FakeClaude) -> None:
    body = simple_body()
    reply = client.create_from_spec(message_request(body, stream=False, betas=["b-1"]))
    assert reply.text().startswith("Echo:")
    assert fake.last_request.headers["anthropic-beta"] == "b-1"
    with client.stream_from_spec(message_request(body, stream=True)) as stream:
        assert isinstance(stream, MessageStream)
        assert stream.get_final_message().text() == reply.text()
    assert fake.last_request.body["stream"] is True
    counted = client.count_tokens_from_spec(count_tokens_request(body))
    assert counted.input_tokens > 0
    assert fake.last_request.path == "/v1/messages/count_tokens"
    batch = client.create_message_batch_from_wire([("w-1", body.to_json())], betas=["b-2"])
    assert batch.request_counts.processing == 1
    assert json.loads(fake.last_request.raw)["requests"][0]["custom_id"] == "w-1"
    assert fake.last_request.headers["anthropic-beta"] == "b-2"


def test_spec_entry_points_take_per_call_options(client: Client, fake: FakeClaude) -> None:
    spec = message_request(simple_body(), stream=False)
    with pytest.raises(TypeError):
        client.create_from_spec(spec, 5.0)  # type: ignore[call-arg]
    fake.enqueue(Reply.error(529, "overloaded_error", "Overloaded"))
    with pytest.raises(errors.OverloadedError):
        client.create_from_spec(spec, max_retries=0)
    assert len(fake.requests) == 1
    fake.enqueue(Reply.text("late").delayed(0.5))
    with pytest.raises(errors.RequestTimedOut):
        client.create_from_spec(spec, timeout=0.1, max_retries=0)
    assert len(fake.requests) == 2


@pytest.mark.anyio
async def test_async_spec_entry_points(aclient: AsyncClient, fake: FakeClaude) -> None:
    body = simple_body()
    reply = await aclient.create_from_spec(message_request(body, stream=False))
    assert reply.text().startswith("Echo:")
    fake.enqueue(Reply.text("cut").cut_after(1), Reply.text("streamed"))
    async with aclient.stream_from_spec(message_request(body, stream=True)) as stream:
        assert isinstance(stream, AsyncMessageStream)
        assert (await stream.get_final_message()).text() == "streamed"
    assert len(stream.discarded_attempts) == 1
    counted = await aclient.count_tokens_from_spec(count_tokens_request(body), max_retries=0)
    assert counted.input_tokens > 0
    batch = await aclient.create_message_batch_from_wire([("a-1", body.to_json())])
    assert batch.request_counts.processing == 1
