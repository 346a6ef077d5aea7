"""The Message Batches methods of ``Client`` and ``AsyncClient``.

Create (validated like single requests), retrieve, list, cancel, delete, stream the
results, and wait for a batch to end with polling backoff. Every wire rule lives in
:mod:`clust.protocol.batches` and :mod:`clust.protocol.polling`; each method is
written once for both clients (see :mod:`clust.client._twins`).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from clust.client._base import ClientCore, Opening
from clust.client._pages import Listing, paged
from clust.client._settings import TimeoutTypes
from clust.client._twins import operation, shelled
from clust.client.batch_results import AsyncBatchResults, BatchResults
from clust.protocol.batches import (
    batch_results_request,
    cancel_batch_request,
    create_batch_request,
    delete_batch_request,
    get_batch_request,
    list_batches_walk,
    spliced_batch_request,
)
from clust.protocol.plans import Plan
from clust.protocol.polling import BatchPoller
from clust.protocol.request import RequestSpec

if TYPE_CHECKING:
    from clust.messages.batches import BatchRequest, DeletedMessageBatch, MessageBatch

__all__ = ["BatchesApi"]

DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_INTERVAL = 60.0


def _parse_batch(response: httpx.Response) -> MessageBatch:
    from clust.messages.batches import MessageBatch
    from clust.protocol.response import parse_json_model

    return parse_json_model(MessageBatch, response.headers, response.content)


def _batch_id(batch: str | MessageBatch) -> str:
    return batch if isinstance(batch, str) else batch.id


class BatchesApi(ClientCore):
    """The Message Batches methods of both clients."""

    @operation
    def create_message_batch(
        self,
        requests: Iterable[BatchRequest | Mapping[str, Any]],
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[MessageBatch]:
        """Create a batch (POST /v1/messages/batches); it is processed asynchronously.

        ``requests`` are :class:`~clust.messages.batches.BatchRequest` objects or mappings
        ``{"custom_id": ..., "params": MessagesRequestBody | dict}``. All are validated
        before anything is sent; a 1-hour cache TTL anywhere adds its beta header.

        Raises:
            InvalidParameter: a bad request (``field`` names it, e.g.
                ``requests[3].params.max_tokens``), a malformed or repeated ``custom_id``,
                no requests, more than 100,000, or over 256 MB of JSON.
            ApiError: the API refused the batch.
        """
        spec = create_batch_request(requests, betas=betas, extra_headers=extra_headers)
        return self._batch(spec, timeout, max_retries)

    @operation
    def create_message_batch_from_wire(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        betas: Iterable[str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[MessageBatch]:
        """Create a batch from ``(custom_id, params JSON)`` pairs whose params are already
        validated wire JSON, spliced into the body as bytes (lower-level API: the
        conversation layer sends its stored requests so).

        Raises:
            InvalidParameter: a malformed or repeated ``custom_id``, params that are not a
                JSON object, no items, more than 100,000, or over 256 MB of JSON.
        """
        spec = spliced_batch_request(items, betas=betas)
        return self._batch(spec, timeout, max_retries)

    @operation
    def get_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[MessageBatch]:
        """The batch's current state (GET /v1/messages/batches/{id}).

        Raises:
            NotFoundError: no such batch.
        """
        spec = get_batch_request(batch_id, extra_headers=extra_headers)
        return self._batch(spec, timeout, max_retries)

    @paged
    def list_message_batches(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Listing[MessageBatch]:
        """Every batch of the workspace, newest first, fetching pages as iteration needs
        them (``async for batch in client.list_message_batches()`` on the async client).

        Args:
            limit: batches per page, 1..1000 (default: the API's, 20).
            after_id: start after this batch id.
            before_id: start before this batch id, and page backwards.

        Raises:
            InvalidParameter: a bad ``limit``, or both cursors (at once, before any request).
        """
        from clust.messages.batches import MessageBatch
        from clust.messages.pages import Page

        walk = list_batches_walk(
            limit=limit, after_id=after_id, before_id=before_id, extra_headers=extra_headers
        )
        return self._listing(walk, Page[MessageBatch], timeout, max_retries)

    @operation
    def cancel_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[MessageBatch]:
        """Ask the API to cancel the batch; it returns the batch ``canceling``. Requests not
        yet processed end ``canceled``; the batch then ends as usual."""
        spec = cancel_batch_request(batch_id, extra_headers=extra_headers)
        return self._batch(spec, timeout, max_retries)

    @operation
    def delete_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[DeletedMessageBatch]:
        """Delete an ended batch and its results (cancel a running one first).

        Raises:
            InvalidRequestError: the batch is still processing.
        """
        from clust.messages.batches import DeletedMessageBatch
        from clust.protocol.response import parse_json_model

        spec = delete_batch_request(batch_id, extra_headers=extra_headers)
        response = yield from self._call(spec, timeout, max_retries)
        return parse_json_model(DeletedMessageBatch, response.headers, response.content)

    @shelled(BatchResults, AsyncBatchResults)
    def message_batch_results(
        self,
        batch_id: str | MessageBatch,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Opening:
        """The results of an ended batch, streamed line by line as typed ``BatchResult``.

        >>> with client.message_batch_results(batch_id) as results:   # doctest: +SKIP
        ...     for item in results:
        ...         ...

        (``async with`` and ``async for`` on the async client.) The batch is looked up,
        then its ``results_url`` read, when the ``with`` block is entered or iteration
        starts (an ended ``MessageBatch`` passed in saves the lookup). Memory stays
        constant however many results there are.

        Raises (on entering / first iteration):
            BatchNotEnded: the batch is still processing.
            ApiError: the lookup or the results request failed.
        """
        get_batch_request(_batch_id(batch_id))  # a bad id fails now, not later
        policy = self._policy(max_retries)

        def open_results(retries: int) -> Plan[tuple[httpx.Response, int]]:
            batch = batch_id
            if isinstance(batch, str) or not batch.results_url:
                spec = get_batch_request(_batch_id(batch), extra_headers=extra_headers)
                batch = yield from self._batch(spec, timeout, max_retries)
            request = self._build(
                batch_results_request(batch, extra_headers=extra_headers), timeout
            )
            return (yield from self._send(request, True, policy, retries))

        return Opening(self._io, open_results, policy)

    @operation
    def wait_for_message_batch(
        self,
        batch_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_interval: float = DEFAULT_MAX_INTERVAL,
        timeout: float | None = None,
        on_progress: Callable[[MessageBatch], object] | None = None,
        sleep: Callable[[float], object] | None = None,
        clock: Callable[[], float] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        request_timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[MessageBatch]:
        """Poll the batch until it has ended; return it (ended).

        Waits ``poll_interval`` seconds after the first poll, doubling each time up to
        ``max_interval``. ``on_progress(batch)`` is called after every poll, the last one
        included (``batch.request_counts`` shows progress); on the async client it may
        be a coroutine function.

        Args:
            timeout: give up after this many seconds (None: wait as long as it takes).
            sleep: called to wait between polls (default ``time.sleep``; on the async
                client it is awaited, default ``anyio.sleep``).
            clock: the clock ``timeout`` is measured on (default ``time.monotonic``).
            request_timeout: the HTTP timeout of each poll.

        Raises:
            BatchWaitTimeout: the batch had not ended within ``timeout``.
            InvalidParameter: a non-positive interval or timeout.
        """
        spec = get_batch_request(batch_id, extra_headers=extra_headers)
        now = clock or time.monotonic
        pause = sleep or self._io.sleep
        poller = BatchPoller(
            batch_id,
            poll_interval=poll_interval,
            max_interval=max_interval,
            timeout=timeout,
            start=now(),
        )
        while True:
            batch = yield from self._batch(spec, request_timeout, max_retries)
            if on_progress is not None:
                outcome = on_progress(batch)
                if inspect.isawaitable(outcome):
                    yield outcome  # awaited on the async client
            delay = poller.next_delay(batch, now())
            if delay is None:
                return batch
            yield pause(delay)

    def _batch(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> Plan[MessageBatch]:
        response = yield from self._call(spec, timeout, max_retries)
        return _parse_batch(response)
