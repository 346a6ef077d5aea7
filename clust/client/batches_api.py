"""The Message Batches methods of ``Client`` and ``AsyncClient``.

Create (validated like single requests), retrieve, list, cancel, delete, stream the
results, and wait for a batch to end with polling backoff. Every wire rule lives in
:mod:`clust.protocol.batches` and :mod:`clust.protocol.polling`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from clust.client._pages import AsyncPageIterator, PageIterator
from clust.client._settings import TimeoutTypes
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
from clust.protocol.polling import BatchPoller
from clust.protocol.request import RequestSpec
from clust.protocol.retry import RetryPolicy

if TYPE_CHECKING:
    from clust.messages.batches import BatchRequest, DeletedMessageBatch, MessageBatch

__all__ = ["AsyncBatchesMixin", "BatchesMixin"]

DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_INTERVAL = 60.0


def _batch(response: httpx.Response) -> MessageBatch:
    from clust.messages.batches import MessageBatch
    from clust.protocol.response import parse_json_model

    return parse_json_model(MessageBatch, response.headers, response.content)


def _batch_id(batch: str | MessageBatch) -> str:
    return batch if isinstance(batch, str) else batch.id


class BatchesMixin:
    """The Message Batches methods of :class:`~clust.Client`."""

    if TYPE_CHECKING:

        def _call(
            self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
        ) -> httpx.Response:
            raise NotImplementedError

        def _build(self, spec: RequestSpec, timeout: TimeoutTypes | None) -> httpx.Request:
            raise NotImplementedError

        def _send(
            self, request: httpx.Request, stream: bool, policy: RetryPolicy, retries: int
        ) -> tuple[httpx.Response, int]:
            raise NotImplementedError

        def _policy(self, max_retries: int | None) -> RetryPolicy:
            raise NotImplementedError

    def create_message_batch(
        self,
        requests: Iterable[BatchRequest | Mapping[str, Any]],
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
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
        return _batch(self._call(spec, timeout, max_retries))

    def _create_batch_from_wire(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        betas: Iterable[str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
        """Create a batch from ``(custom_id, params JSON)`` pairs whose params are already
        validated wire JSON: spliced into the body as bytes (for the conversation layer)."""
        spec = spliced_batch_request(items, betas=betas)
        return _batch(self._call(spec, timeout, max_retries))

    def get_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
        """The batch's current state (GET /v1/messages/batches/{id}).

        Raises:
            NotFoundError: no such batch.
        """
        spec = get_batch_request(batch_id, extra_headers=extra_headers)
        return _batch(self._call(spec, timeout, max_retries))

    def list_message_batches(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Iterator[MessageBatch]:
        """Every batch of the workspace, newest first, fetching pages as iteration needs them.

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
        return PageIterator(
            lambda spec: self._call(spec, timeout, max_retries), walk, Page[MessageBatch]
        )

    def cancel_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
        """Ask the API to cancel the batch; it returns the batch ``canceling``. Requests not
        yet processed end ``canceled``; the batch then ends as usual."""
        spec = cancel_batch_request(batch_id, extra_headers=extra_headers)
        return _batch(self._call(spec, timeout, max_retries))

    def delete_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> DeletedMessageBatch:
        """Delete an ended batch and its results (cancel a running one first).

        Raises:
            InvalidRequestError: the batch is still processing.
        """
        from clust.messages.batches import DeletedMessageBatch
        from clust.protocol.response import parse_json_model

        spec = delete_batch_request(batch_id, extra_headers=extra_headers)
        response = self._call(spec, timeout, max_retries)
        return parse_json_model(DeletedMessageBatch, response.headers, response.content)

    def message_batch_results(
        self,
        batch_id: str | MessageBatch,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> BatchResults:
        """The results of an ended batch, streamed line by line as typed ``BatchResult``.

        >>> with client.message_batch_results(batch_id) as results:   # doctest: +SKIP
        ...     for item in results:
        ...         ...

        The batch is looked up, then its ``results_url`` read, when the ``with`` block
        is entered or iteration starts (an ended ``MessageBatch`` passed in saves the
        lookup). Memory stays constant however many results there are.

        Raises (on entering / first iteration):
            BatchNotEnded: the batch is still processing.
            ApiError: the lookup or the results request failed.
        """
        get_batch_request(_batch_id(batch_id))  # a bad id fails now, not later

        def open_results() -> httpx.Response:
            batch = batch_id
            if isinstance(batch, str) or not batch.results_url:
                batch = self.get_message_batch(
                    _batch_id(batch),
                    extra_headers=extra_headers,
                    timeout=timeout,
                    max_retries=max_retries,
                )
            request = self._build(
                batch_results_request(batch, extra_headers=extra_headers), timeout
            )
            return self._send(request, True, self._policy(max_retries), 0)[0]

        return BatchResults(open_results)

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
    ) -> MessageBatch:
        """Poll the batch until it has ended; return it (ended).

        Waits ``poll_interval`` seconds after the first poll, doubling each time up to
        ``max_interval``. ``on_progress(batch)`` is called after every poll, the last one
        included (``batch.request_counts`` shows progress).

        Args:
            timeout: give up after this many seconds (None: wait as long as it takes).
            sleep: called to wait between polls (default ``time.sleep``).
            clock: the clock ``timeout`` is measured on (default ``time.monotonic``).
            request_timeout: the HTTP timeout of each poll.

        Raises:
            BatchWaitTimeout: the batch had not ended within ``timeout``.
            InvalidParameter: a non-positive interval or timeout.
        """
        get_batch_request(batch_id)
        now = clock or time.monotonic
        pause = sleep or time.sleep
        poller = BatchPoller(
            batch_id,
            poll_interval=poll_interval,
            max_interval=max_interval,
            timeout=timeout,
            start=now(),
        )
        while True:
            batch = self.get_message_batch(
                batch_id,
                extra_headers=extra_headers,
                timeout=request_timeout,
                max_retries=max_retries,
            )
            if on_progress is not None:
                on_progress(batch)
            delay = poller.next_delay(batch, now())
            if delay is None:
                return batch
            pause(delay)


class AsyncBatchesMixin:
    """The Message Batches methods of :class:`~clust.AsyncClient`."""

    if TYPE_CHECKING:

        async def _call(
            self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
        ) -> httpx.Response:
            raise NotImplementedError

        def _build(self, spec: RequestSpec, timeout: TimeoutTypes | None) -> httpx.Request:
            raise NotImplementedError

        async def _send(
            self, request: httpx.Request, stream: bool, policy: RetryPolicy, retries: int
        ) -> tuple[httpx.Response, int]:
            raise NotImplementedError

        def _policy(self, max_retries: int | None) -> RetryPolicy:
            raise NotImplementedError

    async def create_message_batch(
        self,
        requests: Iterable[BatchRequest | Mapping[str, Any]],
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
        """Create a batch (see :meth:`clust.Client.create_message_batch`)."""
        spec = create_batch_request(requests, betas=betas, extra_headers=extra_headers)
        return _batch(await self._call(spec, timeout, max_retries))

    async def _create_batch_from_wire(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        betas: Iterable[str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
        """Create a batch from ``(custom_id, params JSON)`` pairs spliced as bytes."""
        spec = spliced_batch_request(items, betas=betas)
        return _batch(await self._call(spec, timeout, max_retries))

    async def get_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
        """The batch's current state (GET /v1/messages/batches/{id})."""
        spec = get_batch_request(batch_id, extra_headers=extra_headers)
        return _batch(await self._call(spec, timeout, max_retries))

    def list_message_batches(
        self,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[MessageBatch]:
        """Every batch, newest first: ``async for batch in client.list_message_batches()``."""
        from clust.messages.batches import MessageBatch
        from clust.messages.pages import Page

        walk = list_batches_walk(
            limit=limit, after_id=after_id, before_id=before_id, extra_headers=extra_headers
        )
        return AsyncPageIterator(
            lambda spec: self._call(spec, timeout, max_retries), walk, Page[MessageBatch]
        )

    async def cancel_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
        """Ask the API to cancel the batch; it returns the batch ``canceling``."""
        spec = cancel_batch_request(batch_id, extra_headers=extra_headers)
        return _batch(await self._call(spec, timeout, max_retries))

    async def delete_message_batch(
        self,
        batch_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> DeletedMessageBatch:
        """Delete an ended batch and its results (cancel a running one first)."""
        from clust.messages.batches import DeletedMessageBatch
        from clust.protocol.response import parse_json_model

        spec = delete_batch_request(batch_id, extra_headers=extra_headers)
        response = await self._call(spec, timeout, max_retries)
        return parse_json_model(DeletedMessageBatch, response.headers, response.content)

    def message_batch_results(
        self,
        batch_id: str | MessageBatch,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> AsyncBatchResults:
        """The results of an ended batch, streamed:
        ``async with client.message_batch_results(batch_id) as results: async for ...``.

        See :meth:`clust.Client.message_batch_results`.
        """
        get_batch_request(_batch_id(batch_id))

        async def open_results() -> httpx.Response:
            batch = batch_id
            if isinstance(batch, str) or not batch.results_url:
                batch = await self.get_message_batch(
                    _batch_id(batch),
                    extra_headers=extra_headers,
                    timeout=timeout,
                    max_retries=max_retries,
                )
            request = self._build(
                batch_results_request(batch, extra_headers=extra_headers), timeout
            )
            return (await self._send(request, True, self._policy(max_retries), 0))[0]

        return AsyncBatchResults(open_results)

    async def wait_for_message_batch(
        self,
        batch_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_interval: float = DEFAULT_MAX_INTERVAL,
        timeout: float | None = None,
        on_progress: Callable[[MessageBatch], object] | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        clock: Callable[[], float] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        request_timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageBatch:
        """Poll the batch until it has ended; return it (see
        :meth:`clust.Client.wait_for_message_batch`). ``on_progress`` may be a coroutine
        function; ``sleep`` is awaited (default ``anyio.sleep``)."""
        get_batch_request(batch_id)
        now = clock or time.monotonic
        pause = sleep or anyio.sleep
        poller = BatchPoller(
            batch_id,
            poll_interval=poll_interval,
            max_interval=max_interval,
            timeout=timeout,
            start=now(),
        )
        while True:
            batch = await self.get_message_batch(
                batch_id,
                extra_headers=extra_headers,
                timeout=request_timeout,
                max_retries=max_retries,
            )
            if on_progress is not None:
                outcome = on_progress(batch)
                if inspect.isawaitable(outcome):
                    await outcome
            delay = poller.next_delay(batch, now())
            if delay is None:
                return batch
            await pause(delay)
