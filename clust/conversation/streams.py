"""Streams of a conversation turn: the client's event stream, with the turn around it.

The turn starts (user turn stored, lease taken) on first iteration and the reply is
stored once the stream completes, before iteration ends; leaving early, or a stream
that breaks off, stores no reply and leaves the user turn pending.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from clust.client.streaming import atext_deltas, text_deltas
from clust.messages.errors import ContextWindowExceeded
from clust.messages.events import StreamEvent
from clust.messages.response import MessagesResponseBody

if TYPE_CHECKING:
    from clust.client import AsyncClient, Client
    from clust.client.streaming import AsyncMessageStream, MessageStream
    from clust.conversation.conversation import CallOptions, Conversation
    from clust.conversation.history import RequestHead

__all__ = ["AsyncConversationStream", "ConversationStream"]


def _billed(
    failure: BaseException, stream: MessageStream | AsyncMessageStream | None
) -> MessagesResponseBody | None:
    """What the API billed for a stream that stored no reply: the partial message of
    the failure, or what arrived before the caller left (None before message_start)."""
    partial = getattr(failure, "partial_message", None)
    if isinstance(partial, MessagesResponseBody):
        return partial
    return None if stream is None else stream.current_message


class ConversationStream:
    """The typed events of one streamed turn (sync); the reply is stored when it completes.

    >>> with conv.stream(client, "Hello") as stream:   # doctest: +SKIP
    ...     for text in stream.text_stream:
    ...         print(text, end="")
    ...     reply = stream.get_final_message()
    """

    def __init__(
        self,
        conversation: Conversation,
        client: Client,
        wire: bytes | None,
        head: RequestHead,
        options: CallOptions,
        wait: float,
    ) -> None:
        self._conversation = conversation
        self._client = client
        self._wire = wire
        self._head = head
        self._options = options
        self._wait = wait
        self._stream: MessageStream | None = None
        self._final: MessagesResponseBody | None = None
        self._started = False
        self._events_iterator: Iterator[StreamEvent] | None = None

    @property
    def current_message(self) -> MessagesResponseBody | None:
        """The message accumulated so far (``None`` before ``message_start``)."""
        if self._final is not None:
            return self._final
        return None if self._stream is None else self._stream.current_message

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._events_iterator is None:
            self._events_iterator = self._events()
        try:
            yield from self._events_iterator
        except GeneratorExit:
            # Left early (a `break`): close now, as the client's stream does, so the
            # lease goes back at once rather than when this object is collected.
            self.close()
            raise

    def _events(self) -> Iterator[StreamEvent]:
        if self._started:
            return
        self._started = True
        conversation = self._conversation
        conversation._check_budgets(self._head, self._wire)
        turn = conversation._begin(self._wire, self._wait)
        started = time.monotonic()
        try:
            spec = conversation._prepare(self._client, self._head, self._options, stream=True)
            with self._client._stream_from_spec(
                spec, self._options.timeout, self._options.max_retries
            ) as stream:
                self._stream = stream
                renew_every = conversation._lease.total_seconds() / 2
                renew_at = started + renew_every
                for event in stream:
                    yield event
                    if time.monotonic() >= renew_at:  # a long stream keeps its claim
                        conversation._renew(turn)
                        renew_at = time.monotonic() + renew_every
                final = stream.get_final_message()
        except ContextWindowExceeded:
            conversation._refuse(turn, new_turn=self._wire is not None)
            raise
        except BaseException as failure:
            conversation._abort(turn, _billed(failure, self._stream), started)
            raise
        conversation._finish(turn, final, started)
        self._final = final

    @property
    def text_stream(self) -> Iterator[str]:
        """Only the text of the text deltas, as it arrives."""
        return text_deltas(self)

    def get_final_message(self) -> MessagesResponseBody:
        """Read the rest of the stream, store the reply, and return it.

        Raises:
            StreamInterrupted: the stream broke off (the user turn stays pending).
        """
        for _ in self:
            pass
        if self._final is None:
            from clust.messages.errors import StreamInterrupted

            raise StreamInterrupted("the stream was closed before it completed")
        return self._final

    def close(self) -> None:
        """Stop early: close the HTTP response; no reply is stored."""
        iterator = self._events_iterator
        if iterator is not None and hasattr(iterator, "close"):
            iterator.close()
        if self._stream is not None:
            self._stream.close()

    def __enter__(self) -> ConversationStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncConversationStream:
    """The typed events of one streamed turn (async); see :class:`ConversationStream`."""

    def __init__(
        self,
        conversation: Conversation,
        client: AsyncClient,
        wire: bytes | None,
        head: RequestHead,
        options: CallOptions,
        wait: float,
    ) -> None:
        self._conversation = conversation
        self._client = client
        self._wire = wire
        self._head = head
        self._options = options
        self._wait = wait
        self._stream: AsyncMessageStream | None = None
        self._final: MessagesResponseBody | None = None
        self._started = False
        self._events_iterator: AsyncIterator[StreamEvent] | None = None

    @property
    def current_message(self) -> MessagesResponseBody | None:
        """The message accumulated so far (``None`` before ``message_start``)."""
        if self._final is not None:
            return self._final
        return None if self._stream is None else self._stream.current_message

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        if self._events_iterator is None:
            self._events_iterator = self._events()
        return self._events_iterator

    async def _events(self) -> AsyncIterator[StreamEvent]:
        if self._started:
            return
        self._started = True
        conversation = self._conversation
        await anyio.to_thread.run_sync(conversation._check_budgets, self._head, self._wire)
        turn = await conversation._abegin(self._wire, self._wait)
        started = time.monotonic()
        try:
            spec = await conversation._aprepare(
                self._client, self._head, self._options, stream=True
            )
            async with self._client._stream_from_spec(
                spec, self._options.timeout, self._options.max_retries
            ) as stream:
                self._stream = stream
                renew_every = conversation._lease.total_seconds() / 2
                renew_at = started + renew_every
                async for event in stream:
                    yield event
                    if time.monotonic() >= renew_at:  # a long stream keeps its claim
                        await anyio.to_thread.run_sync(conversation._renew, turn)
                        renew_at = time.monotonic() + renew_every
                final = await stream.get_final_message()
        except ContextWindowExceeded:
            with anyio.CancelScope(shield=True):
                refuse = partial(conversation._refuse, turn, new_turn=self._wire is not None)
                await anyio.to_thread.run_sync(refuse)
            raise
        except BaseException as failure:
            with anyio.CancelScope(shield=True):
                billed = _billed(failure, self._stream)
                await anyio.to_thread.run_sync(conversation._abort, turn, billed, started)
            raise
        await anyio.to_thread.run_sync(partial(conversation._finish, turn, final, started))
        self._final = final

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """Only the text of the text deltas, as it arrives."""
        return atext_deltas(self)

    async def get_final_message(self) -> MessagesResponseBody:
        """Read the rest of the stream, store the reply, and return it."""
        async for _ in self:
            pass
        if self._final is None:
            from clust.messages.errors import StreamInterrupted

            raise StreamInterrupted("the stream was closed before it completed")
        return self._final

    async def close(self) -> None:
        """Stop early: close the HTTP response; no reply is stored."""
        iterator = self._events_iterator
        if iterator is not None and hasattr(iterator, "aclose"):
            await iterator.aclose()
        if self._stream is not None:
            await self._stream.close()

    async def __aenter__(self) -> AsyncConversationStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
