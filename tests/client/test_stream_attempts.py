"""``stream.discarded_attempts``: the billed attempts of a stream reopened transparently.

An attempt that failed after its ``message_start`` (so the API may bill it) and was
reopened is listed with its partial message and usage; an attempt that failed before
``message_start`` (an HTTP error, a connection cut before any event) is not. Over
real sockets against FakeClaude's fault injection, sync and async.
"""

from __future__ import annotations

import pytest
from support import simple_body

from clust import AsyncClient, Client
from clust.messages import errors
from clust.messages.events import MessageStartEvent
from clust.testing import FakeClaude, Reply


def _faulty_attempts(fake: FakeClaude) -> None:
    """Five attempts: two failures before message_start, two after, then the reply."""
    fake.enqueue(
        Reply.error(529, "overloaded_error", "Overloaded"),  # refused on open
        Reply.text("never started").cut_after(0),  # cut before any event
        Reply.text("lost one").with_usage(input_tokens=11).cut_after(1),  # after message_start
        Reply.text("lost two").with_usage(input_tokens=12).stream_error_after(2),
        Reply.text("whole"),
    )


def test_reopened_billed_attempts_are_listed(client: Client, fake: FakeClaude) -> None:
    _faulty_attempts(fake)
    stream = client.create_a_message_stream(simple_body(), max_retries=4)
    assert stream.discarded_attempts == []
    events = list(stream)
    assert [type(event) for event in events].count(MessageStartEvent) == 1
    assert stream.get_final_message().text() == "whole"
    assert len(fake.requests) == 5
    discarded = stream.discarded_attempts
    assert [attempt.usage.input_tokens for attempt in discarded] == [11, 12]
    assert all(attempt.content == [] and attempt.stop_reason is None for attempt in discarded)
    final_id = stream.current_message.id if stream.current_message else None
    assert len({attempt.id for attempt in discarded} | {final_id}) == 3
    discarded.clear()  # a copy: the stream's own list is untouched
    assert len(stream.discarded_attempts) == 2


@pytest.mark.anyio
async def test_async_reopened_billed_attempts_are_listed(
    aclient: AsyncClient, fake: FakeClaude
) -> None:
    _faulty_attempts(fake)
    async with aclient.create_a_message_stream(simple_body(), max_retries=4) as stream:
        assert (await stream.get_final_message()).text() == "whole"
    assert len(fake.requests) == 5
    assert [attempt.usage.input_tokens for attempt in stream.discarded_attempts] == [11, 12]


def test_an_attempt_that_raises_is_not_discarded(client: Client, fake: FakeClaude) -> None:
    """The last attempt's partial message is on the error, not in the list."""
    fake.enqueue(
        Reply.text("lost").with_usage(input_tokens=7).cut_after(1),
        Reply.text("Once upon a time there was").with_usage(input_tokens=8).cut_after(5),
    )
    stream = client.create_a_message_stream(simple_body())
    with pytest.raises(errors.StreamInterrupted) as caught:
        stream.get_final_message()
    assert caught.value.partial_message is not None
    assert caught.value.partial_message.usage.input_tokens == 8
    assert [attempt.usage.input_tokens for attempt in stream.discarded_attempts] == [7]


@pytest.mark.anyio
async def test_async_stream_without_failures_discards_nothing(
    aclient: AsyncClient, fake: FakeClaude
) -> None:
    fake.enqueue(Reply.text("one go"))
    stream = aclient.create_a_message_stream(simple_body())
    assert "".join([text async for text in stream.text_stream]) == "one go"
    assert (await stream.get_final_message()).text() == "one go"
    assert stream.discarded_attempts == []
