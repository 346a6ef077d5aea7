"""``BatchResults`` and ``AsyncBatchResults``: the results of a Message Batch, streamed.

The results JSONL is read chunk by chunk and decoded line by line by
:class:`clust.protocol.batches.BatchResultsDecoder`, so a results file of any size is
read in constant memory: only the results of the chunk at hand are held.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import httpx

from clust.client._base import failure_text
from clust.client._chunks import abody_chunks, body_chunks
from clust.messages.errors import ConnectionFailed, MessagesError, RequestTimedOut
from clust.protocol.batches import BatchResultsDecoder

if TYPE_CHECKING:
    from clust.messages.batches import BatchResult

__all__ = ["AsyncBatchResults", "BatchResults"]

OpenResults = Callable[[], httpx.Response]
"""Look the batch up, then send the GET of its results; return the unread 2xx response."""
AsyncOpenResults = Callable[[], Awaitable[httpx.Response]]


def _broken(exc: httpx.RequestError, count: int) -> MessagesError:
    where = f"after {count} results"
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimedOut(f"reading the batch results timed out {where}")
    return ConnectionFailed(
        f"the connection broke while reading the batch results {where}: {failure_text(exc)}"
    )


class BatchResults:
    """The results of one batch (sync): an iterator of typed :class:`BatchResult`.

    >>> with client.message_batch_results(batch_id) as results:   # doctest: +SKIP
    ...     for item in results:
    ...         print(item.custom_id, item.result.type)

    Nothing is sent until the ``with`` block is entered or iteration starts (that is
    when :class:`~clust.messages.errors.BatchNotEnded` is raised for a batch still
    running). The HTTP response is closed at the end of the results, on error, on
    leaving the ``with`` block, or by :meth:`close`.
    """

    def __init__(self, open_results: OpenResults) -> None:
        self._open_results = open_results
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._decoder: BatchResultsDecoder | None = None
        self._pending: deque[BatchResult] = deque()
        self._finished = False
        self._request_id: str | None = None

    @property
    def request_id(self) -> str | None:
        """The ``request-id`` of the results response (None before it is opened)."""
        return self._request_id

    @property
    def count(self) -> int:
        """How many results have been decoded so far."""
        return 0 if self._decoder is None else self._decoder.count

    def _open(self) -> None:
        response = self._open_results()
        self._response = response
        self._request_id = response.headers.get("request-id")
        self._decoder = BatchResultsDecoder(self._request_id)
        self._chunks = body_chunks(response)

    def __iter__(self) -> BatchResults:
        return self

    def __next__(self) -> BatchResult:
        pending = self._pending
        while not pending:
            if self._finished:
                raise StopIteration
            try:
                if self._chunks is None:
                    self._open()
                assert self._chunks is not None and self._decoder is not None
                chunk = next(self._chunks, None)
                if chunk is None:
                    pending.extend(self._decoder.end())
                    self._release()
                else:
                    pending.extend(self._decoder.feed(chunk))
            except httpx.RequestError as exc:  # transport or body decoding
                self.close()
                raise _broken(exc, self.count) from exc
            except BaseException:
                self.close()
                raise
        return pending.popleft()

    def close(self) -> None:
        """Stop reading and close the HTTP response (results not yet taken are dropped)."""
        self._pending.clear()
        self._release()

    def _release(self) -> None:
        self._finished = True
        response, self._response = self._response, None
        if response is not None:
            response.close()

    def __enter__(self) -> BatchResults:
        if self._chunks is None and not self._finished:
            try:
                self._open()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncBatchResults:
    """The results of one batch (async; asyncio or trio): an async iterator of
    typed :class:`BatchResult`.

    >>> async with client.message_batch_results(batch_id) as results:   # doctest: +SKIP
    ...     async for item in results:
    ...         print(item.custom_id, item.result.type)

    Nothing is sent until the ``async with`` block is entered or iteration starts.
    The HTTP response is closed at the end of the results, on error, on leaving the
    ``async with`` block, or by :meth:`close`.
    """

    def __init__(self, open_results: AsyncOpenResults) -> None:
        self._open_results = open_results
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._decoder: BatchResultsDecoder | None = None
        self._pending: deque[BatchResult] = deque()
        self._finished = False
        self._request_id: str | None = None

    @property
    def request_id(self) -> str | None:
        """The ``request-id`` of the results response (None before it is opened)."""
        return self._request_id

    @property
    def count(self) -> int:
        """How many results have been decoded so far."""
        return 0 if self._decoder is None else self._decoder.count

    async def _open(self) -> None:
        response = await self._open_results()
        self._response = response
        self._request_id = response.headers.get("request-id")
        self._decoder = BatchResultsDecoder(self._request_id)
        self._chunks = abody_chunks(response)

    def __aiter__(self) -> AsyncBatchResults:
        return self

    async def __anext__(self) -> BatchResult:
        pending = self._pending
        while not pending:
            if self._finished:
                raise StopAsyncIteration
            try:
                if self._chunks is None:
                    await self._open()
                assert self._chunks is not None and self._decoder is not None
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    pending.extend(self._decoder.end())
                    await self._release()
                else:
                    pending.extend(self._decoder.feed(chunk))
            except httpx.RequestError as exc:  # transport or body decoding
                await self.close()
                raise _broken(exc, self.count) from exc
            except BaseException:
                await self.close()
                raise
        return pending.popleft()

    async def close(self) -> None:
        """Stop reading and close the HTTP response (results not yet taken are dropped)."""
        self._pending.clear()
        await self._release()

    async def _release(self) -> None:
        self._finished = True
        response, self._response = self._response, None
        if response is not None:
            with anyio.CancelScope(shield=True):  # closed even when the caller is cancelled
                await response.aclose()

    async def __aenter__(self) -> AsyncBatchResults:
        if self._chunks is None and not self._finished:
            try:
                await self._open()
            except BaseException:
                await self.close()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
