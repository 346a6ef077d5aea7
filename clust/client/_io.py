"""The I/O the client's plans ask for, done the blocking way or the awaitable way.

The client's rules (retries, stream reopening, pagination, batch results) are written
once, as plans (see :mod:`clust.protocol.plans`): generators that ``yield`` each I/O
step and are sent its result. A plan makes each step through its client's ``io``::

    response = yield io.send(request, stream=False)

:class:`SyncIo` does the step at once and returns its result, which the blocking
driver sends straight back; :class:`AsyncIo` returns an awaitable, which the async
driver awaits. So these two classes are the only place where the sync and the async
clients differ in what they do.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

import anyio
import httpx

__all__ = ["AsyncIo", "Io", "SyncIo"]


class Io(Protocol):
    """The steps a plan may yield; each returns the step's result (:class:`SyncIo`) or
    an awaitable of it (:class:`AsyncIo`)."""

    def send(self, request: httpx.Request, stream: bool) -> object:
        """Send ``request`` once; the response (its body unread if ``stream``)."""

    def read(self, response: httpx.Response) -> object:
        """The whole body of ``response``."""

    def close(self, response: httpx.Response) -> object:
        """Close ``response`` (even when the caller is being cancelled)."""

    def close_pool(self, http: Any) -> object:
        """Close an httpx client and its pooled connections."""

    def sleep(self, seconds: float) -> object:
        """Wait ``seconds``."""

    def chunks(self, response: httpx.Response) -> Any:
        """The body of ``response`` as it arrives (no I/O until read by :meth:`next_chunk`)."""

    def next_chunk(self, chunks: Any) -> object:
        """The next chunk of :meth:`chunks`, or ``None`` at the end of the body."""


def _undecoded(response: httpx.Response) -> bool:
    # Without a content-encoding, httpx's decoding layer only adds per-chunk cost.
    encoding: str = response.headers.get("content-encoding", "identity")
    return encoding == "identity"


class SyncIo:
    """Each step done now (the :class:`~clust.Client` side); requests are sent with
    ``auth`` (the API key's header, added as each is sent)."""

    __slots__ = ("_auth", "_http")

    def __init__(self, http: Callable[[], httpx.Client], auth: httpx.Auth) -> None:
        self._http = http
        self._auth = auth

    def send(self, request: httpx.Request, stream: bool) -> httpx.Response:
        return self._http().send(request, stream=stream, auth=self._auth)

    def read(self, response: httpx.Response) -> bytes:
        return response.read()

    def close(self, response: httpx.Response) -> None:
        response.close()

    def close_pool(self, http: httpx.Client) -> None:
        http.close()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def chunks(self, response: httpx.Response) -> Iterator[bytes]:
        return response.iter_raw() if _undecoded(response) else response.iter_bytes()

    def next_chunk(self, chunks: Iterator[bytes]) -> bytes | None:
        return next(chunks, None)


class AsyncIo:
    """Each step as an awaitable (the :class:`~clust.AsyncClient` side, asyncio or trio);
    requests are sent with ``auth``."""

    __slots__ = ("_auth", "_http")

    def __init__(self, http: Callable[[], httpx.AsyncClient], auth: httpx.Auth) -> None:
        self._http = http
        self._auth = auth

    def send(self, request: httpx.Request, stream: bool) -> Awaitable[httpx.Response]:
        return self._http().send(request, stream=stream, auth=self._auth)

    def read(self, response: httpx.Response) -> Awaitable[bytes]:
        return response.aread()

    async def close(self, response: httpx.Response) -> None:
        with anyio.CancelScope(shield=True):  # a cancelled caller still frees the connection
            await response.aclose()

    def close_pool(self, http: httpx.AsyncClient) -> Awaitable[None]:
        return http.aclose()

    def sleep(self, seconds: float) -> Awaitable[None]:
        return anyio.sleep(seconds)

    def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        return response.aiter_raw() if _undecoded(response) else response.aiter_bytes()

    def next_chunk(self, chunks: AsyncIterator[bytes]) -> Awaitable[bytes | None]:
        return anext(chunks, None)
