"""``MessageStream`` and ``AsyncMessageStream``: typed events of one streamed reply.

Both are thin shells over :class:`StreamReader`, which holds every rule as plans
(see :mod:`clust.client._io`): read chunks from the HTTP response, hand them to a
:class:`clust.protocol.stream.StreamSession`, and reopen the stream when the session
says a failure may be retried (only before any event reached the caller).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

import httpx

from clust.client._base import Opening, failure_text
from clust.client._twins import Awaiting, Blocking, operation, same
from clust.messages.errors import MessagesError
from clust.messages.events import ContentBlockDeltaEvent, StreamEvent, TextDelta
from clust.messages.response import MessagesResponseBody
from clust.protocol.plans import Plan, arun_plan, run_plan
from clust.protocol.response import check_stream_content_type
from clust.protocol.stream import StreamSession

__all__ = [
    "AsyncMessageStream",
    "MessageStream",
    "StreamReader",
    "atext_deltas",
    "text_deltas",
]


def _interrupted(session: StreamSession, exc: httpx.RequestError) -> MessagesError:
    if isinstance(exc, httpx.TimeoutException):
        return session.interrupted(f"the stream timed out ({type(exc).__name__})")
    return session.interrupted(f"the connection broke during the stream: {failure_text(exc)}")


def _text(event: StreamEvent) -> str | None:
    if type(event) is ContentBlockDeltaEvent:
        delta = event.delta
        if type(delta) is TextDelta:
            return delta.text
    return None


def text_deltas(events: Iterable[StreamEvent]) -> Iterator[str]:
    """Only the text of the text deltas of ``events``, as it arrives."""
    return (text for event in events if (text := _text(event)) is not None)


async def atext_deltas(events: AsyncIterable[StreamEvent]) -> AsyncIterator[str]:
    """:func:`text_deltas` of an async stream."""
    async for event in events:
        text = _text(event)
        if text is not None:
            yield text


class StreamReader:
    """The rules of a streamed reply, for both stream classes.

    :meth:`_step` reads until there are events for the caller, and returns them as an
    iterator the caller drains (a failure raised while decoding them is kept, and
    handled by the next step); ``None`` once the stream is over.
    """

    def __init__(self, opening: Opening) -> None:
        self._io = opening.io
        self._send = opening.send
        self._policy = opening.policy
        self._retries = 0
        self._response: httpx.Response | None = None
        self._chunks: Any = None
        self._ended = False  # the body of the current response is all read
        self._failure: MessagesError | None = None
        self._session = StreamSession()
        self._finished = False
        self._discarded: list[MessagesResponseBody] = []

    @property
    def request_id(self) -> str | None:
        """The ``request-id`` of the response being read (None before it is opened)."""
        return self._session.request_id

    @property
    def current_message(self) -> MessagesResponseBody | None:
        """A snapshot of the message accumulated so far (None before ``message_start``)."""
        return self._session.accumulator.current_message

    @property
    def discarded_attempts(self) -> list[MessagesResponseBody]:
        """The partial message (with its usage) of each attempt that failed after its
        ``message_start`` (so it may be billed) and was reopened transparently, oldest
        first. Attempts that failed before ``message_start`` are not listed."""
        return list(self._discarded)

    def _step(self) -> Plan[Iterator[StreamEvent] | None]:
        while not self._finished:
            failure, self._failure = self._failure, None
            if failure is not None:
                yield from self._recover(failure, None)
            elif self._chunks is None:
                yield from self._open()
            elif self._ended or self._session.done:
                yield from self._exiting()
            else:
                try:
                    chunk: bytes | None = yield self._io.next_chunk(self._chunks)
                except httpx.RequestError as exc:  # transport or body decoding
                    yield from self._recover(_interrupted(self._session, exc), exc)
                    continue
                if chunk is None:
                    self._ended = True
                    return self._kept(self._session.end())
                return self._kept(self._session.feed(chunk))
        return None

    def _kept(self, events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
        try:
            yield from events
        except MessagesError as failure:
            self._failure = failure

    def _open(self) -> Plan[None]:
        try:
            response, self._retries = yield from self._send(self._retries)
        except BaseException:
            self._finished = True  # the open was retried already; never send it again
            raise
        self._response = response
        self._session = StreamSession(response.headers.get("request-id"))
        try:
            check_stream_content_type(response.headers)
        except MessagesError:
            yield from self._exiting()
            raise
        self._chunks = self._io.chunks(response)
        self._ended = False

    def _recover(self, failure: MessagesError, cause: BaseException | None) -> Plan[None]:
        session = self._session
        decision = session.retry_decision(failure, self._policy, self._retries)
        yield from self._close_response()
        if not decision.retry:
            self._finished = True
            raise failure from cause
        billed = session.partial_message()
        if billed is not None:  # message_start came: the attempt may be billed
            self._discarded.append(billed)
        yield self._io.sleep(decision.delay)
        self._retries += 1
        self._chunks = None

    def _close_response(self) -> Plan[None]:
        response, self._response = self._response, None
        if response is not None:
            yield self._io.close(response)

    def _exiting(self) -> Plan[None]:
        """Stop reading and close the HTTP response; events not yet taken are dropped."""
        self._finished = True
        yield from self._close_response()

    close = operation(_exiting)

    @operation
    def get_final_message(self) -> Plan[MessagesResponseBody]:
        """Read the rest of the stream and return the accumulated message.

        Raises:
            StreamInterrupted: the stream ended (or was closed) before ``message_stop``.
        """
        while (events := (yield from self._step())) is not None:
            for _ in events:
                pass
        return self._session.accumulator.final_message()


class MessageStream(StreamReader, Blocking):
    """The events of one streamed reply (sync).

    Iterate it for typed events; the request is sent on first use. Use it in a
    ``with`` block, or break out of a ``for`` loop, and the HTTP response is closed.

    >>> with client.create_a_message_stream(body) as stream:   # doctest: +SKIP
    ...     for text in stream.text_stream:
    ...         print(text, end="")
    ...     message = stream.get_final_message()
    """

    def __iter__(self) -> Iterator[StreamEvent]:
        try:
            while (events := run_plan(self._step(), same)) is not None:
                yield from events
        except GeneratorExit:
            self.close()
            raise

    @property
    def text_stream(self) -> Iterator[str]:
        """Only the text of the text deltas, as it arrives."""
        return text_deltas(self)


class AsyncMessageStream(StreamReader, Awaiting):
    """The events of one streamed reply (async; asyncio or trio).

    ``async for`` it for typed events; the request is sent on first use. Use it in
    an ``async with`` block so the HTTP response is closed however you leave.

    >>> async with client.create_a_message_stream(body) as stream:   # doctest: +SKIP
    ...     async for text in stream.text_stream:
    ...         print(text, end="")
    ...     message = await stream.get_final_message()
    """

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        try:
            while (events := await arun_plan(self._step(), same)) is not None:
                for event in events:  # handed out without any await
                    yield event
        except GeneratorExit:
            await self.close()
            raise

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """Only the text of the text deltas, as it arrives."""
        return atext_deltas(self)
