"""``Client``: the synchronous API client, a thin loop over :mod:`clust.protocol`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from clust.client._base import POOL_LIMITS, BaseClient, failure_text, release_request
from clust.client._settings import TimeoutTypes
from clust.client.batches_api import BatchesMixin
from clust.client.models_api import ModelsMixin
from clust.messages.errors import ConnectionFailed, RequestTimedOut
from clust.protocol.errors import error_from_response
from clust.protocol.request import RequestSpec, count_tokens_request, message_request
from clust.protocol.response import parse_json_model, parse_message
from clust.protocol.retry import RetryPolicy

if TYPE_CHECKING:
    from clust.client.streaming import MessageStream
    from clust.messages.request import MessagesRequestBody
    from clust.messages.response import MessagesResponseBody
    from clust.messages.tokens import TokenCount

__all__ = ["Client"]


class Client(BaseClient[httpx.Client], ModelsMixin, BatchesMixin):
    """Synchronous client for the Claude Messages API.

    >>> client = Client.from_env()                      # doctest: +SKIP
    >>> response = client.create_a_message(body)        # doctest: +SKIP

    Connections are pooled and kept alive; use the client as a context manager,
    or call :meth:`close`, to release them. A client given an existing
    ``http_client`` leaves closing it to its owner.

    Takes the arguments of :class:`~clust.client._base.BaseClient` (``api_key``,
    ``base_url``, ``timeout``, ``max_retries``, ``retry_policy``, ``default_headers``,
    ``http_client``: an existing ``httpx.Client``, ``auth_scheme``).

    Beyond single messages: ``count_tokens``; the Models API (``list_models``,
    ``get_model``, ``refresh_models``); Message Batches (``create_message_batch``,
    ``get_message_batch``, ``list_message_batches``, ``cancel_message_batch``,
    ``delete_message_batch``, ``message_batch_results``, ``wait_for_message_batch``).
    """

    def _new_http(self, timeout: httpx.Timeout) -> httpx.Client:
        return httpx.Client(timeout=timeout, follow_redirects=False, limits=POOL_LIMITS)

    def create_a_message(
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
        return self._create_from_spec(spec, timeout, max_retries)

    def _create_from_spec(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> MessagesResponseBody:
        """Send a built message request; the conversation layer sends spliced bodies here."""
        response = self._call(spec, timeout, max_retries)
        return parse_message(response.headers, response.content)

    def count_tokens(
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
        return self._count_tokens_from_spec(spec, timeout, max_retries)

    def _count_tokens_from_spec(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> TokenCount:
        """Send a built count_tokens request (the conversation layer counts spliced bodies)."""
        from clust.messages.tokens import TokenCount

        response = self._call(spec, timeout, max_retries)
        return parse_json_model(TokenCount, response.headers, response.content)

    def create_a_message_stream(
        self,
        body: MessagesRequestBody,
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessageStream:
        """Stream the reply to ``body`` as typed events.

        A body with ``stream`` unset is sent with ``"stream": true``; one with
        ``stream=False`` raises :class:`StreamOptionMismatch` at once. The request is
        sent when the stream is first iterated. Opening is retried like any call; a
        stream that fails before its first content is reopened transparently under
        the same retry budget; after that, failures raise with the partial message.
        """
        spec = message_request(body, stream=True, betas=betas, extra_headers=extra_headers)
        return self._stream_from_spec(spec, timeout, max_retries)

    def _stream_from_spec(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> MessageStream:
        """Stream a built message request (see :meth:`_create_from_spec`)."""
        from clust.client.streaming import MessageStream

        request = self._build(spec, timeout)
        policy = self._policy(max_retries)
        return MessageStream(lambda done: self._send(request, True, policy, done), policy)

    def _call(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> httpx.Response:
        request = self._build(spec, timeout)
        return release_request(self._send(request, False, self._policy(max_retries), 0)[0])

    def _send(
        self, request: httpx.Request, stream: bool, policy: RetryPolicy, retries: int
    ) -> tuple[httpx.Response, int]:
        """Send with retries; return a 2xx response (unread if ``stream``) and the retries
        done so far (``retries`` were done before this call)."""
        while True:
            try:
                response = self._http.send(request, stream=stream)
                if response.status_code >= 300:
                    try:  # an error body cut short is a connection failure like any other
                        content = response.read()
                    finally:
                        response.close()
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
            time.sleep(decision.delay)
            retries += 1

    def close(self) -> None:
        """Release pooled connections (not those of an ``http_client`` passed in)."""
        if self._owns_http and self._http_client is not None:
            self._http_client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
