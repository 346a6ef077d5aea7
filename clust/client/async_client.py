"""``AsyncClient``: the asynchronous API client, a thin loop over :mod:`clust.protocol`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import httpx

from clust.client._base import POOL_LIMITS, BaseClient, failure_text, release_request
from clust.client._settings import TimeoutTypes
from clust.client.batches_api import AsyncBatchesMixin
from clust.client.models_api import AsyncModelsMixin
from clust.messages.errors import ConnectionFailed, RequestTimedOut
from clust.protocol.errors import error_from_response
from clust.protocol.request import RequestSpec, count_tokens_request, message_request
from clust.protocol.response import parse_json_model, parse_message
from clust.protocol.retry import RetryPolicy

if TYPE_CHECKING:
    from clust.client.streaming import AsyncMessageStream
    from clust.messages.request import MessagesRequestBody
    from clust.messages.response import MessagesResponseBody
    from clust.messages.tokens import TokenCount

__all__ = ["AsyncClient"]


class AsyncClient(BaseClient[httpx.AsyncClient], AsyncModelsMixin, AsyncBatchesMixin):
    """Asynchronous client for the Claude Messages API (asyncio or trio, through anyio).

    >>> client = AsyncClient.from_env()                      # doctest: +SKIP
    >>> response = await client.create_a_message(body)        # doctest: +SKIP

    Connections are pooled and kept alive; use the client as a context manager,
    or call :meth:`close`, to release them. A client given an existing
    ``http_client`` leaves closing it to its owner.

    Takes the arguments of :class:`~clust.client._base.BaseClient` (``api_key``,
    ``base_url``, ``timeout``, ``max_retries``, ``retry_policy``, ``default_headers``,
    ``http_client``: an existing ``httpx.AsyncClient``, ``auth_scheme``).

    Beyond single messages: ``count_tokens``, the Models API and Message Batches, with
    the same names as :class:`~clust.Client` (listings and batch results are async
    iterators).
    """

    def _new_http(self, timeout: httpx.Timeout) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout, follow_redirects=False, limits=POOL_LIMITS)

    async def create_a_message(
        self,
        body: MessagesRequestBody,
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessagesResponseBody:
        """Send ``body`` to POST /v1/messages and return the reply.

        Raises:
            StreamOptionMismatch: the body asks for a stream.
            ApiError: (a subclass per error type) the API answered with an error.
            ClientError: connection failure, timeout, or an undecodable reply.
        """
        spec = message_request(body, stream=False, betas=betas, extra_headers=extra_headers)
        return await self._create_from_spec(spec, timeout, max_retries)

    async def _create_from_spec(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> MessagesResponseBody:
        """Send a built message request; the conversation layer sends spliced bodies here."""
        response = await self._call(spec, timeout, max_retries)
        return parse_message(response.headers, response.content)

    async def count_tokens(
        self,
        body: MessagesRequestBody,
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> TokenCount:
        """Count the input tokens of the prompt in ``body`` (POST /v1/messages/count_tokens)."""
        spec = count_tokens_request(body, betas=betas, extra_headers=extra_headers)
        return await self._count_tokens_from_spec(spec, timeout, max_retries)

    async def _count_tokens_from_spec(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> TokenCount:
        """Send a built count_tokens request (the conversation layer counts spliced bodies)."""
        from clust.messages.tokens import TokenCount

        response = await self._call(spec, timeout, max_retries)
        return parse_json_model(TokenCount, response.headers, response.content)

    def create_a_message_stream(
        self,
        body: MessagesRequestBody,
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> AsyncMessageStream:
        """Stream the reply to ``body`` as typed events.

        A body with ``stream`` unset is sent with ``"stream": true``; one with
        ``stream=False`` raises :class:`StreamOptionMismatch` at once. The request is
        sent on the first ``async for``. Opening is retried like any call; a
        stream that fails before its first content is reopened transparently under
        the same retry budget; after that, failures raise with the partial message.
        """
        spec = message_request(body, stream=True, betas=betas, extra_headers=extra_headers)
        return self._stream_from_spec(spec, timeout, max_retries)

    def _stream_from_spec(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> AsyncMessageStream:
        """Stream a built message request (see :meth:`_create_from_spec`)."""
        from clust.client.streaming import AsyncMessageStream

        request = self._build(spec, timeout)
        policy = self._policy(max_retries)
        return AsyncMessageStream(lambda done: self._send(request, True, policy, done), policy)

    async def _call(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> httpx.Response:
        request = self._build(spec, timeout)
        response = (await self._send(request, False, self._policy(max_retries), 0))[0]
        return release_request(response)

    async def _send(
        self, request: httpx.Request, stream: bool, policy: RetryPolicy, retries: int
    ) -> tuple[httpx.Response, int]:
        """Send with retries; return a 2xx response (unread if ``stream``) and the retries
        done so far (``retries`` were done before this call)."""
        while True:
            try:
                response = await self._http.send(request, stream=stream)
                if response.status_code >= 300:
                    try:  # an error body cut short is a connection failure like any other
                        content = await response.aread()
                    finally:
                        await response.aclose()
            except httpx.TimeoutException as exc:
                decision = policy.decide_transport_failure(retries)
                if not decision.retry:
                    raise RequestTimedOut(f"the request timed out ({type(exc).__name__})") from exc
            except httpx.RequestError as exc:  # transport, body decoding, too many redirects
                decision = policy.decide_transport_failure(retries)
                if not decision.retry:
                    raise ConnectionFailed(f"connection failed: {failure_text(exc)}") from exc
            else:
                if response.status_code < 300:
                    return response, retries
                decision = policy.decide_status(retries, response.status_code, response.headers)
                if not decision.retry:
                    raise error_from_response(
                        response.status_code,
                        response.headers,
                        content,
                        retry_after=decision.server_wait,
                    )
            await anyio.sleep(decision.delay)
            retries += 1

    async def close(self) -> None:
        """Release pooled connections (not those of an ``http_client`` passed in)."""
        if self._owns_http and self._http_client is not None:
            await self._http_client.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
