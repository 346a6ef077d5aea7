"""``BatchResults`` and ``AsyncBatchResults``: the results of a Message Batch, streamed.

The results JSONL is read chunk by chunk and decoded line by line by
:class:`clust.protocol.batches.BatchResultsDecoder`, so a results file of any size is
read in constant memory: only the results of the chunk at hand are held. The rules
are written once, in :class:`ResultsReader`; the two classes are its sync and async
iterator shells.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import httpx

from clust.client._base import Opening, failure_text
from clust.client._twins import Awaiting, AwaitingItems, Blocking, BlockingItems, operation
from clust.messages.errors import ConnectionFailed, MessagesError, RequestTimedOut
from clust.protocol.batches import BatchResultsDecoder
from clust.protocol.plans import Plan

if TYPE_CHECKING:
    from clust.messages.batches import BatchResult

__all__ = ["AsyncBatchResults", "BatchResults", "ResultsReader"]


def _broken(exc: httpx.RequestError, count: int) -> MessagesError:
    where = f"after {count} results"
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimedOut(f"reading the batch results timed out {where}")
    return ConnectionFailed(
        f"the connection broke while reading the batch results {where}: {failure_text(exc)}"
    )


class ResultsReader:
    """The rules of reading one batch's results, for both results classes.

    ``opening.send`` looks the batch up, then sends the GET of its results. The HTTP
    response is closed at the end of the results, on error, on leaving the ``with``
    block, or by ``close()``.
    """

    def __init__(self, opening: Opening) -> None:
        self._io = opening.io
        self._send = opening.send
        self._response: httpx.Response | None = None
        self._chunks: Any = None
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

    def _open(self) -> Plan[None]:
        response, _ = yield from self._send(0)
        self._response = response
        self._request_id = response.headers.get("request-id")
        self._decoder = BatchResultsDecoder(self._request_id)
        self._chunks = self._io.chunks(response)

    def _fill(self) -> Plan[bool]:
        """Read until a result is pending; False once the results are over."""
        pending = self._pending
        while not pending:
            if self._finished:
                return False
            try:
                if self._chunks is None:
                    yield from self._open()
                assert self._decoder is not None
                chunk: bytes | None = yield self._io.next_chunk(self._chunks)
                if chunk is None:
                    pending.extend(self._decoder.end())
                    yield from self._release()
                else:
                    pending.extend(self._decoder.feed(chunk))
            except httpx.RequestError as exc:  # transport or body decoding
                yield from self._exiting()
                raise _broken(exc, self.count) from exc
            except BaseException:
                yield from self._exiting()
                raise
        return True

    def _entering(self) -> Plan[None]:
        if self._chunks is None and not self._finished:
            try:
                yield from self._open()
            except BaseException:
                yield from self._exiting()
                raise

    def _exiting(self) -> Plan[None]:
        """Stop reading and close the HTTP response (results not yet taken are dropped)."""
        self._pending.clear()
        yield from self._release()

    close = operation(_exiting)

    def _release(self) -> Plan[None]:
        self._finished = True
        response, self._response = self._response, None
        if response is not None:
            yield self._io.close(response)


class BatchResults(ResultsReader, BlockingItems["BatchResult"], Blocking):
    """The results of one batch (sync): an iterator of typed :class:`BatchResult`.

    >>> with client.message_batch_results(batch_id) as results:   # doctest: +SKIP
    ...     for item in results:
    ...         print(item.custom_id, item.result.type)

    Nothing is sent until the ``with`` block is entered or iteration starts (that is
    when :class:`~clust.messages.errors.BatchNotEnded` is raised for a batch still
    running). The HTTP response is closed at the end of the results, on error, on
    leaving the ``with`` block, or by :meth:`close`.
    """


class AsyncBatchResults(ResultsReader, AwaitingItems["BatchResult"], Awaiting):
    """The results of one batch (async; asyncio or trio): an async iterator of
    typed :class:`BatchResult`.

    >>> async with client.message_batch_results(batch_id) as results:   # doctest: +SKIP
    ...     async for item in results:
    ...         print(item.custom_id, item.result.type)

    Nothing is sent until the ``async with`` block is entered or iteration starts.
    The HTTP response is closed at the end of the results, on error, on leaving the
    ``async with`` block, or by :meth:`close`.
    """
