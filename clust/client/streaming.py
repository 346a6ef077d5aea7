"""``MessageStream`` and ``AsyncMessageStream``: typed events of one streamed reply.

Both are thin shells over :class:`clust.protocol.stream.StreamSession`: they read
chunks from the HTTP response, hand them to the session, and reopen the stream
when the session says a failure may be retried (only before any event reached
the caller).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import TracebackType

import anyio
import httpx

from clust.client._base import failure_text
from clust.client._chunks import abody_chunks as _abody_chunks
from clust.client._chunks import body_chunks as _body_chunks
from clust.messages.errors import MessagesError
from clust.messages.events import ContentBlockDeltaEvent, StreamEvent, TextDelta
from clust.messages.response import MessagesResponseBody
from clust.protocol.response import check_stream_content_type
from clust.protocol.retry import RetryPolicy
from clust.protocol.stream import StreamSession

__all__ = ["AsyncMessageStream", "MessageStream", "atext_deltas", "text_deltas"]

OpenResponse = Callable[[int], tuple[httpx.Response, int]]
"""Send the request (retries done so far in); return the 2xx response and retries used."""

AsyncOpenResponse = Callable[[int], Awaitable[tuple[httpx.Response, int]]]


def _interrupted(session: StreamSession, exc: httpx.RequestError) -> MessagesError:
    if isinstance(exc, httpx.TimeoutException):
        error = session.interrupted(f"the stream timed out ({type(exc).__name__})")
    else:
        error = session.interrupted(f"the connection broke during the stream: {failure_text(exc)}")
    return error


def text_deltas(events: Iterable[StreamEvent]) -> Iterator[str]:
    """Only the text of the text deltas of ``events``, as it arrives."""
    for event in events:
        if type(event) is ContentBlockDeltaEvent:
            delta = event.delta
            if type(delta) is TextDelta:
                yield delta.text


async def atext_deltas(events: AsyncIterable[StreamEvent]) -> AsyncIterator[str]:
    """:func:`text_deltas` of an async stream."""
    async for event in events:
        if type(event) is ContentBlockDeltaEvent:
            delta = event.delta
            if type(delta) is TextDelta:
                yield delta.text


class MessageStream:
    """The events of one streamed reply (sync).

    Iterate it for typed events; the request is sent on first use. Use it in a
    ``with`` block, or break out of a ``for`` loop, and the HTTP response is closed.

    >>> with client.create_a_message_stream(body) as stream:   # doctest: +SKIP
    ...     for text in stream.text_stream:
    ...         print(text, end="")
    ...     message = stream.get_final_message()
    """

    def __init__(self, open_response: OpenResponse, policy: RetryPolicy) -> None:
        self._open_response = open_response
        self._policy = policy
        self._retries = 0
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._session = StreamSession()
        self._finished = False

    @property
    def request_id(self) -> str | None:
        """The ``request-id`` of the response being read (None before it is opened)."""
        return self._session.request_id

    @property
    def current_message(self) -> MessagesResponseBody | None:
        """A snapshot of the message accumulated so far (None before ``message_start``)."""
        return self._session.accumulator.current_message

    def __iter__(self) -> Iterator[StreamEvent]:
        try:
            while not self._finished:
                if self._chunks is None:
                    self._open()
                    continue
                session = self._session
                try:
                    for chunk in self._chunks:
                        yield from session.feed(chunk)
                        if session.done:
                            break
                    else:
                        yield from session.end()
                except httpx.RequestError as exc:  # transport or body decoding
                    self._recover(_interrupted(session, exc), exc)
                except MessagesError as failure:
                    self._recover(failure, None)
                else:
                    self._finish()
        except GeneratorExit:
            self.close()
            raise

    @property
    def text_stream(self) -> Iterator[str]:
        """Only the text of the text deltas, as it arrives."""
        return text_deltas(self)

    def get_final_message(self) -> MessagesResponseBody:
        """Read the rest of the stream and return the accumulated message.

        Raises:
            StreamInterrupted: the stream ended (or was closed) before ``message_stop``.
        """
        for _ in self:
            pass
        return self._session.accumulator.final_message()

    def _open(self) -> None:
        try:
            response, self._retries = self._open_response(self._retries)
        except BaseException:
            self._finished = True  # the open was retried already; never send it again
            raise
        self._response = response
        self._session = StreamSession(response.headers.get("request-id"))
        try:
            check_stream_content_type(response.headers)
        except MessagesError:
            self._finish()
            raise
        self._chunks = _body_chunks(response)

    def _recover(self, failure: MessagesError, cause: BaseException | None) -> None:
        decision = self._session.retry_decision(failure, self._policy, self._retries)
        self._close_response()
        if not decision.retry:
            self._finished = True
            raise failure from cause
        time.sleep(decision.delay)
        self._retries += 1
        self._chunks = None

    def _finish(self) -> None:
        self._finished = True
        self._close_response()

    def _close_response(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.close()

    def close(self) -> None:
        """Stop reading and close the HTTP response; events not yet taken are dropped."""
        self._finished = True
        self._close_response()

    def __enter__(self) -> MessageStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncMessageStream:
    """The events of one streamed reply (async; asyncio or trio).

    ``async for`` it for typed events; the request is sent on first use. Use it in
    an ``async with`` block so the HTTP response is closed however you leave.

    >>> async with client.create_a_message_stream(body) as stream:   # doctest: +SKIP
    ...     async for text in stream.text_stream:
    ...         print(text, end="")
    ...     message = await stream.get_final_message()
    """

    def __init__(self, open_response: AsyncOpenResponse, policy: RetryPolicy) -> None:
        self._open_response = open_response
        self._policy = policy
        self._retries = 0
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._session = StreamSession()
        self._finished = False

    @property
    def request_id(self) -> str | None:
        """The ``request-id`` of the response being read (None before it is opened)."""
        return self._session.request_id

    @property
    def current_message(self) -> MessagesResponseBody | None:
        """A snapshot of the message accumulated so far (None before ``message_start``)."""
        return self._session.accumulator.current_message

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        try:
            while not self._finished:
                if self._chunks is None:
                    await self._open()
                    continue
                session = self._session
                try:
                    # Decoded events are handed out without any await.
                    async for chunk in self._chunks:
                        for event in session.feed(chunk):
                            yield event
                        if session.done:
                            break
                    else:
                        for event in session.end():
                            yield event
                except httpx.RequestError as exc:  # transport or body decoding
                    await self._recover(_interrupted(session, exc), exc)
                except MessagesError as failure:
                    await self._recover(failure, None)
                else:
                    await self._finish()
        except GeneratorExit:
            self._finished = True
            raise
        finally:
            if self._finished:
                await self._close_response()

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """Only the text of the text deltas, as it arrives."""
        return atext_deltas(self)

    async def get_final_message(self) -> MessagesResponseBody:
        """Read the rest of the stream and return the accumulated message.

        Raises:
            StreamInterrupted: the stream ended (or was closed) before ``message_stop``.
        """
        async for _ in self:
            pass
        return self._session.accumulator.final_message()

    async def _open(self) -> None:
        try:
            response, self._retries = await self._open_response(self._retries)
        except BaseException:
            self._finished = True  # the open was retried already; never send it again
            raise
        self._response = response
        self._session = StreamSession(response.headers.get("request-id"))
        try:
            check_stream_content_type(response.headers)
        except MessagesError:
            await self._finish()
            raise
        self._chunks = _abody_chunks(response)

    async def _recover(self, failure: MessagesError, cause: BaseException | None) -> None:
        decision = self._session.retry_decision(failure, self._policy, self._retries)
        await self._close_response()
        if not decision.retry:
            self._finished = True
            raise failure from cause
        await anyio.sleep(decision.delay)
        self._retries += 1
        self._chunks = None

    async def _finish(self) -> None:
        self._finished = True
        await self._close_response()

    async def _close_response(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()

    async def close(self) -> None:
        """Stop reading and close the HTTP response; events not yet taken are dropped."""
        self._finished = True
        await self._close_response()

    async def __aenter__(self) -> AsyncMessageStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
