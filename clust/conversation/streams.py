"""Streams of a conversation turn: the client's event stream, with the turn around it.

The turn starts (user turn stored, lease taken) on first iteration and the reply is
stored once the stream completes, before iteration ends; leaving early (``break``,
``close()``, leaving the ``with`` block), or a stream that breaks off, stores no
reply and leaves the user turn pending. Both classes are shells over one plan of
the turn engine, run by :func:`~clust.conversation.drivers.stream_events` or
:func:`~clust.conversation.drivers.astream_events`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from clust.client import AsyncClient, Client
from clust.client.streaming import atext_deltas, text_deltas
from clust.conversation.drivers import Offloading, astream_events, expect_client, stream_events
from clust.conversation.effects import StreamProgress
from clust.messages.errors import StreamInterrupted
from clust.protocol.plans import Plan, Stepper

if TYPE_CHECKING:
    from clust.conversation.engine import Exchanged
    from clust.conversation.offload import Offload
    from clust.messages.events import StreamEvent
    from clust.messages.response import MessagesResponseBody

__all__ = [
    "AsyncConversationStream",
    "ConversationStream",
    "StreamingTurn",
    "async_stream",
    "blocking_stream",
]

P = ParamSpec("P")
S = TypeVar("S", bound=Offloading)


@dataclass(frozen=True)
class StreamingTurn:
    """A streamed turn's plan and where it puts the client stream once open."""

    plan: Plan[Exchanged]
    progress: StreamProgress


class _TurnStream:
    """What the sync and the async stream share: the plan, and the reply once stored."""

    def __init__(self, turn: StreamingTurn) -> None:
        self._stepper = Stepper(turn.plan)
        self._progress = turn.progress
        self._final: MessagesResponseBody | None = None

    @property
    def current_message(self) -> MessagesResponseBody | None:
        """The message accumulated so far (``None`` before ``message_start``)."""
        return self._final if self._final is not None else self._progress.billed()

    def _completed(self) -> None:
        """The plan returned: the reply is stored."""
        exchanged = self._stepper.result
        if exchanged is not None:
            self._final = exchanged.response

    def _final_message(self) -> MessagesResponseBody:
        if self._final is None:
            raise StreamInterrupted("the stream was closed before it completed")
        return self._final


class ConversationStream(_TurnStream):
    """The typed events of one streamed turn (sync); the reply is stored when it completes.

    >>> with conv.stream(client, "Hello") as stream:   # doctest: +SKIP
    ...     for text in stream.text_stream:
    ...         print(text, end="")
    ...     reply = stream.get_final_message()
    """

    def __init__(self, turn: StreamingTurn, client: Client) -> None:
        super().__init__(turn)
        self._events: Generator[StreamEvent, None, None] = stream_events(self._stepper, client)

    def __iter__(self) -> Iterator[StreamEvent]:
        try:
            yield from self._events
        except GeneratorExit:
            self.close()  # a `break`: the turn goes back now, not when collected
            raise
        self._completed()

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
        return self._final_message()

    def close(self) -> None:
        """Stop early: close the HTTP response; no reply is stored."""
        self._events.close()

    def __enter__(self) -> ConversationStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncConversationStream(_TurnStream):
    """The typed events of one streamed turn (async); see :class:`ConversationStream`.
    A ``break`` out of ``async for`` gives the turn back too (when the event loop
    finalizes the loop's iterator: at once under asyncio)."""

    def __init__(self, turn: StreamingTurn, client: AsyncClient, offload: Offload) -> None:
        super().__init__(turn)
        self._events: AsyncGenerator[StreamEvent, None] = astream_events(
            self._stepper, client, offload
        )
        self._closing = False

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        try:
            async for event in self._events:
                yield event
        except GeneratorExit:
            await self.close()
            raise
        self._completed()

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """Only the text of the text deltas, as it arrives."""
        return atext_deltas(self)

    async def get_final_message(self) -> MessagesResponseBody:
        """Read the rest of the stream, store the reply, and return it."""
        async for _ in self:
            pass
        return self._final_message()

    async def close(self) -> None:
        """Stop early: close the HTTP response; no reply is stored."""
        if not self._closing:  # once: a loop left by `break` may be finalized later
            self._closing = True
            await self._events.aclose()

    async def __aenter__(self) -> AsyncConversationStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def blocking_stream(
    build: Callable[Concatenate[S, Any, P], StreamingTurn],
) -> Callable[Concatenate[S, Client, P], ConversationStream]:
    """The ``stream`` method of a streamed-turn-building function."""
    name = build.__name__.lstrip("_")

    @functools.wraps(build)
    def method(self: S, client: Client, /, *args: P.args, **kwargs: P.kwargs) -> ConversationStream:
        expect_client(client, Client, name)
        return ConversationStream(build(self, client, *args, **kwargs), client)

    method.__name__ = method.__qualname__ = name
    return method


def async_stream(
    build: Callable[Concatenate[S, Any, P], StreamingTurn],
) -> Callable[Concatenate[S, AsyncClient, P], AsyncConversationStream]:
    """The ``astream`` method (``async with`` / ``async for``) of the same function."""
    name = "a" + build.__name__.lstrip("_")

    @functools.wraps(build)
    def method(
        self: S, client: AsyncClient, /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncConversationStream:
        expect_client(client, AsyncClient, name)
        return AsyncConversationStream(build(self, client, *args, **kwargs), client, self.offload)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"The ``async with`` / ``async for`` form of ``{name[1:]}``.\n\n" + (
        build.__doc__ or ""
    )
    return method
