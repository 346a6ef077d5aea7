"""One attempt at reading a streamed reply, sans-IO: bytes in, events for the caller out.

The clients read chunks from the socket and feed them to a :class:`StreamSession`;
it decodes server-sent events, types them, accumulates the message and decides
which events the caller may see yet.

Events are held back until content starts (the first content delta, a
non-empty block start, or the end of the message). A stream that fails before
that point can be reopened without the caller seeing two ``message_start``
events; once content was delivered a failure is final and carries the partial
message.
"""

from __future__ import annotations

from collections.abc import Iterator

from clust.messages.errors import (
    ApiError,
    MessagesError,
    StreamDecodeError,
    StreamInterrupted,
)
from clust.messages.events import (
    ErrorEvent,
    MessageDeltaEvent,
    MessageStopEvent,
    StreamEvent,
    parse_event,
)
from clust.messages.response import MessagesResponseBody
from clust.protocol.accumulator import MessageAccumulator, error_from_event
from clust.protocol.response import describe_validation_error
from clust.protocol.retry import NO_RETRY, RetryDecision, RetryPolicy
from clust.protocol.sse import ServerSentEvent, SseDecoder

__all__ = ["StreamSession"]

_ENDS_HOLD = (MessageDeltaEvent, MessageStopEvent)


class StreamSession:
    """Decode, type and accumulate one HTTP response's event stream.

    Push body bytes with :meth:`feed` (and :meth:`end` when the body is over) and
    iterate the events each returns. Frames are typed one at a time as they are
    iterated, so a caller that drops each event after use keeps memory flat (typing
    a whole chunk's events at once would keep thousands of objects alive for the
    garbage collector to rescan).

    Iterating those events raises the typed failure of the stream: an :class:`ApiError`
    subclass for an ``error`` event, :class:`StreamDecodeError` for undecodable
    data, :class:`StreamInterrupted` when the body ended before ``message_stop``.
    """

    __slots__ = ("_decoder", "_held", "accumulator", "request_id")

    def __init__(self, request_id: str | None = None) -> None:
        self.request_id = request_id
        self.accumulator = MessageAccumulator(request_id=request_id)
        self._decoder = SseDecoder()
        self._held: list[StreamEvent] | None = []

    @property
    def delivered(self) -> bool:
        """Whether events were released to the caller (then the stream is not retried)."""
        return self._held is None

    @property
    def done(self) -> bool:
        """Whether ``message_stop`` arrived (the bytes after it are not read)."""
        return self.accumulator.is_complete

    def feed(self, chunk: bytes) -> Iterator[StreamEvent]:
        """Add a chunk of the body; iterate the events the caller may see now.

        The chunk is decoded at once; its frames are typed as the result is
        iterated, which must be done fully before the next :meth:`feed`.
        """
        return self._release(self._decoder.feed(chunk))

    def end(self) -> Iterator[StreamEvent]:
        """The body is over: iterate the last events, then raise
        :class:`StreamInterrupted` if ``message_stop`` never came (a frame cut
        short without its blank line is dropped)."""
        yield from self._release(self._decoder.close())
        if not self.accumulator.is_complete:
            raise self.interrupted("the stream ended before message_stop")

    def _release(self, frames: list[ServerSentEvent]) -> Iterator[StreamEvent]:
        accumulator = self.accumulator
        if accumulator.is_complete:
            return
        for name, data, _, _ in frames:
            if name is None:
                continue  # as the official SDK does: frames without `event:` are not API events
            try:
                event = parse_event(name, data)
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                raise StreamDecodeError(
                    f"undecodable {name!r} event: {describe_validation_error(exc)}",
                    request_id=self.request_id,
                ) from exc
            accumulator.feed(event)
            if type(event) is ErrorEvent:
                raise self._api_error(event)
            held = self._held
            if held is None:
                yield event
            else:
                held.append(event)
                if accumulator.content_started or isinstance(event, _ENDS_HOLD):
                    self._held = None
                    yield from held
            if type(event) is MessageStopEvent:
                return  # anything after message_stop is ignored

    def interrupted(self, reason: str) -> StreamInterrupted:
        """The error for a stream that broke off, with the partial message."""
        return StreamInterrupted(
            reason, partial_message=self.partial_message(), request_id=self.request_id
        )

    def partial_message(self) -> MessagesResponseBody | None:
        """What arrived so far (``None`` before ``message_start``)."""
        return self.accumulator.partial_message()

    def retry_decision(
        self, failure: MessagesError, policy: RetryPolicy, retries_done: int
    ) -> RetryDecision:
        """Whether a failed stream may be reopened transparently."""
        if self.delivered:
            return NO_RETRY
        if isinstance(failure, ApiError):
            return policy.decide_stream_error(retries_done, failure.error_type)
        if isinstance(failure, StreamInterrupted):
            return policy.decide_transport_failure(retries_done)
        return NO_RETRY

    def _api_error(self, event: ErrorEvent) -> ApiError:
        error = error_from_event(event, request_id=self.request_id)
        error.partial_message = self.partial_message()
        return error
