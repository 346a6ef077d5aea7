"""``AsyncClient``: the asynchronous API client, a thin loop over :mod:`clust.protocol`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import httpx

from clust.client._settings import ClientSettings, TimeoutTypes, as_timeout, settings_from_env
from clust.client._settings import user_agent as _user_agent
from clust.messages.errors import ConnectionFailed, RequestTimedOut
from clust.protocol.errors import error_from_response
from clust.protocol.request import AuthScheme, RequestSpec, count_tokens_request, message_request
from clust.protocol.response import parse_json_model
from clust.protocol.retry import RetryPolicy

if TYPE_CHECKING:
    from clust.client.streaming import AsyncMessageStream
    from clust.messages.request import MessagesRequestBody
    from clust.messages.response import MessagesResponseBody
    from clust.messages.tokens import TokenCount

__all__ = ["AsyncClient"]


class AsyncClient:
    """Asynchronous client for the Claude Messages API (asyncio or trio, through anyio).

    >>> client = AsyncClient.from_env()                      # doctest: +SKIP
    >>> response = await client.create_a_message(body)        # doctest: +SKIP

    Connections are pooled and kept alive; use the client as a context manager,
    or call :meth:`close`, to release them. A client given an existing
    ``http_client`` leaves closing it to its owner.

    Args:
        api_key: the API key or auth token.
        base_url: API root, ``https://api.anthropic.com`` by default.
        timeout: seconds, or an ``httpx.Timeout``; default 600 s (5 s to connect).
        max_retries: retries after the first attempt (default 2).
        retry_policy: backoff and the ceiling on server-requested waits.
        default_headers: extra headers sent on every call.
        http_client: an existing ``httpx.AsyncClient`` to send through.
        auth_scheme: ``"bearer"`` (``authorization: Bearer``, what the API documents)
            or ``"x-api-key"`` for gateways that expect the older header.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        auth_scheme: AuthScheme = "bearer",
    ) -> None:
        self._settings = ClientSettings.build(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            default_headers=default_headers,
            auth_scheme=auth_scheme,
            user_agent=_user_agent("async"),
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=self._settings.timeout,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )
        # A given http client keeps its own timeout unless one was passed here.
        self._timeout: httpx.Timeout | None = (
            self._settings.timeout if (self._owns_http or timeout is not None) else None
        )

    @classmethod
    def from_env(
        cls,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        auth_scheme: AuthScheme = "bearer",
    ) -> AsyncClient:
        """A client configured from ``ANTHROPIC_API_KEY`` (or ``ANTHROPIC_AUTH_TOKEN``),
        ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_CUSTOM_HEADERS``; arguments win."""
        arguments = settings_from_env({"api_key": api_key, "base_url": base_url})
        return cls(
            arguments["api_key"],
            base_url=arguments["base_url"],
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            default_headers={**arguments.get("default_headers", {}), **(default_headers or {})},
            http_client=http_client,
            auth_scheme=auth_scheme,
        )

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._settings.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry rules this client applies."""
        return self._settings.retry_policy

    def __repr__(self) -> str:
        return (
            f"AsyncClient(base_url={self._settings.base_url!r}, "
            f"max_retries={self._settings.retry_policy.max_retries})"
        )

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
        from clust.messages.response import MessagesResponseBody

        spec = message_request(body, stream=False, betas=betas, extra_headers=extra_headers)
        response = await self._call(spec, timeout, max_retries)
        return parse_json_model(MessagesResponseBody, response.headers, response.content)

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
        from clust.messages.tokens import TokenCount

        spec = count_tokens_request(body, betas=betas, extra_headers=extra_headers)
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
        from clust.client.streaming import AsyncMessageStream

        spec = message_request(body, stream=True, betas=betas, extra_headers=extra_headers)
        request = self._build(spec, timeout)
        policy = self._policy(max_retries)
        return AsyncMessageStream(lambda done: self._send(request, True, policy, done), policy)

    def _policy(self, max_retries: int | None) -> RetryPolicy:
        policy = self._settings.retry_policy
        return policy if max_retries is None else replace(policy, max_retries=max_retries)

    def _build(self, spec: RequestSpec, timeout: TimeoutTypes | None) -> httpx.Request:
        return self._http.build_request(
            spec.method,
            self._settings.base_url + spec.path,
            headers={**self._settings.headers, **spec.headers},
            content=spec.content,
            params=spec.params,
            timeout=as_timeout(timeout) if timeout is not None else self._timeout,
        )

    async def _call(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> httpx.Response:
        request = self._build(spec, timeout)
        return (await self._send(request, False, self._policy(max_retries), 0))[0]

    async def _send(
        self, request: httpx.Request, stream: bool, policy: RetryPolicy, retries: int
    ) -> tuple[httpx.Response, int]:
        """Send with retries; return a 2xx response (unread if ``stream``) and the retries
        done so far (``retries`` were done before this call)."""
        while True:
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                decision = policy.decide_transport_failure(retries)
                if not decision.retry:
                    raise RequestTimedOut(f"the request timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                decision = policy.decide_transport_failure(retries)
                if not decision.retry:
                    raise ConnectionFailed(f"connection failed: {exc}") from exc
            else:
                if response.status_code < 300:
                    return response, retries
                content = await response.aread()
                await response.aclose()
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
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
