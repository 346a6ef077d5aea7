"""What ``Client`` and ``AsyncClient`` share: settings, construction, request building,
and sending with retries (one plan, run by either side)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import httpx

from clust.client._auth import KeyAuth
from clust.client._io import Io
from clust.client._pages import Listing
from clust.client._settings import (
    ClientSettings,
    TimeoutTypes,
    as_timeout,
    settings_from_env,
    user_agent,
)
from clust.client._twins import operation
from clust.messages.errors import ConnectionFailed, RequestTimedOut
from clust.protocol.errors import error_from_response
from clust.protocol.pagination import PageWalk
from clust.protocol.plans import Plan
from clust.protocol.request import AuthScheme, RequestSpec
from clust.protocol.retry import RetryPolicy

if TYPE_CHECKING:
    from clust.messages.pages import Page

__all__ = ["BaseClient", "ClientCore", "Opening", "failure_text", "release_request"]

HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
ClientT = TypeVar("ClientT", bound="BaseClient[Any]")
ItemT = TypeVar("ItemT")

_POOL_CREATION = threading.Lock()

POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)

_READ = httpx.ByteStream(b"")


def failure_text(exc: BaseException) -> str:
    """What went wrong, for an error message (some httpx errors have an empty text)."""
    return str(exc) or type(exc).__name__


def release_request(response: httpx.Response) -> httpx.Response:
    """Let a read response's request (and its body) be freed as soon as it is dropped.

    httpx's response and its body stream refer to each other, so without this the
    request body (up to 256 MB for a batch) lives until the next full garbage
    collection. Only for responses whose body has been read.
    """
    response.stream = _READ
    return response


class Opening(NamedTuple):
    """What a reader of a streamed body (a message stream, batch results) needs to send
    its request when first used, and again to retry."""

    io: Io
    send: Callable[[int], Plan[tuple[httpx.Response, int]]]
    """Send the request with retries (how many were done so far in); the 2xx response,
    its body unread, and the retries done by then."""
    policy: RetryPolicy


class ClientCore:
    """What the API mixins build on: request building and sending with retries."""

    _settings: ClientSettings
    _timeout: httpx.Timeout | None
    _io: Io

    @property
    def _http(self) -> httpx.Client | httpx.AsyncClient:
        raise NotImplementedError

    def _policy(self, max_retries: int | None) -> RetryPolicy:
        policy = self._settings.retry_policy
        return policy if max_retries is None else replace(policy, max_retries=max_retries)

    def _build(self, spec: RequestSpec, timeout: TimeoutTypes | None) -> httpx.Request:
        headers = {**self._settings.headers, **spec.headers}
        if spec.method == "GET":
            headers.pop("content-type", None)  # a GET has no body (as the official SDK sends it)
        path = spec.path
        # A batch's results_url is absolute (the API names the host): used as given.
        url = path if path.startswith(("https://", "http://")) else self._settings.base_url + path
        return self._http.build_request(
            spec.method,
            url,
            headers=headers,
            content=spec.content,
            params=spec.params,
            timeout=as_timeout(timeout) if timeout is not None else self._timeout,
        )

    def _listing(
        self,
        walk: PageWalk,
        page_type: type[Page[ItemT]],
        timeout: TimeoutTypes | None,
        max_retries: int | None,
    ) -> Listing[ItemT]:
        """The items of ``walk``'s pages, each page sent with :meth:`_call`."""
        return Listing(lambda spec: self._call(spec, timeout, max_retries), walk, page_type)

    def _call(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> Plan[httpx.Response]:
        """Send ``spec`` with retries; the 2xx response, read."""
        request = self._build(spec, timeout)
        response, _ = yield from self._send(request, False, self._policy(max_retries), 0)
        return release_request(response)

    def _send(
        self, request: httpx.Request, stream: bool, policy: RetryPolicy, retries: int
    ) -> Plan[tuple[httpx.Response, int]]:
        """Send with retries; return a 2xx response (unread if ``stream``) and the retries
        done so far (``retries`` were done before this call)."""
        io = self._io
        while True:
            try:
                response: httpx.Response = yield io.send(request, stream)
                if response.status_code >= 300:
                    try:  # an error body cut short is a connection failure like any other
                        content: bytes = yield io.read(response)
                    finally:
                        yield io.close(response)
            except httpx.TimeoutException as exc:
                decision = policy.decide_transport_failure(retries)
                if not decision.retry:
                    raise RequestTimedOut(f"the request timed out ({type(exc).__name__})") from exc
            except httpx.LocalProtocolError as exc:
                # h11 refused to write the request: the same on every attempt, and its
                # text may quote a header value, so neither retried nor quoted.
                raise ConnectionFailed(
                    "the request could not be written (an invalid header?): not retried"
                ) from exc
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
            yield io.sleep(decision.delay)
            retries += 1


class BaseClient(ClientCore, Generic[HttpT]):
    """Settings, construction and closing common to the sync and async clients.

    Args:
        api_key: the API key or auth token; by default ``ANTHROPIC_API_KEY`` (else
            ``ANTHROPIC_AUTH_TOKEN``), as the official SDK reads it.
        base_url: API root: ``ANTHROPIC_BASE_URL`` if set, else
            ``https://api.anthropic.com``.
        timeout: seconds, or an ``httpx.Timeout``; default 600 s (5 s to connect).
        max_retries: retries after the first attempt (default 2).
        retry_policy: backoff and the ceiling on server-requested waits.
        default_headers: extra headers sent on every call.
        http_client: an existing httpx client to send through (its owner closes it).
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
        http_client: HttpT | None = None,
        auth_scheme: AuthScheme = "bearer",
    ) -> None:
        if api_key is None or base_url is None:
            found = settings_from_env({"api_key": api_key, "base_url": base_url})
            api_key, base_url = found["api_key"], found["base_url"]
        self._settings = ClientSettings.build(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            default_headers=default_headers,
            auth_scheme=auth_scheme,
            user_agent=user_agent(),
        )
        self._owns_http = http_client is None
        # Created on first request: building httpx's SSL context costs ~20 ms.
        self._http_client: HttpT | None = http_client
        # A given http client keeps its own timeout unless one was passed here.
        self._timeout = self._settings.timeout if (self._owns_http or timeout is not None) else None
        self._io = self._new_io(lambda: self._http, KeyAuth(self._settings.credentials))

    def _new_http(self, timeout: httpx.Timeout) -> HttpT:
        raise NotImplementedError

    def _new_io(self, http: Callable[[], HttpT], auth: httpx.Auth) -> Io:
        raise NotImplementedError

    @property
    def _http(self) -> HttpT:
        client = self._http_client
        if client is None:
            with _POOL_CREATION:  # two threads' first requests must not build two pools
                client = self._http_client
                if client is None:
                    client = self._http_client = self._new_http(self._settings.timeout)
        return client

    @classmethod
    def from_env(
        cls: type[ClientT],
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: Any = None,
        auth_scheme: AuthScheme = "bearer",
    ) -> ClientT:
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
            f"{type(self).__name__}(base_url={self._settings.base_url!r}, "
            f"max_retries={self._settings.retry_policy.max_retries})"
        )

    def _exiting(self) -> Plan[None]:
        """Release pooled connections (not those of an ``http_client`` passed in)."""
        if self._owns_http and self._http_client is not None:
            yield self._io.close_pool(self._http_client)

    close = operation(_exiting)
