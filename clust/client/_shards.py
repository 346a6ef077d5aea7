"""``ShardedAsyncTransport``: the async client's connection pool, split into shards.

httpcore's connection pool (1.0.x) walks every pooled connection, with a
``getpeername`` and a ``poll`` per idle one, each time a request starts and each time
a response is closed (encode/httpcore#928). With hundreds of requests in flight on one
pool that is work quadratic in the number of connections, all of it on the event loop,
which then stalls for hundreds of milliseconds. Several small pools, each given the
request only when it is the least busy, keep every walk short while the totals (the
connection limits) stay those of one pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial

import anyio
import httpx

__all__ = ["DEFAULT_SHARDS", "ShardedAsyncTransport", "split_limits"]

DEFAULT_SHARDS = 32
"""Shards of the async client's default pool: with its limits (1,000 connections, 100
kept alive) a pool walk passes at most 32 connections, at most 4 of them kept idle."""


def _share(total: int | None, shards: int, index: int) -> int | None:
    if total is None:
        return None
    base, extra = divmod(total, shards)
    return base + (1 if index < extra else 0)


def split_limits(limits: httpx.Limits, shards: int) -> list[httpx.Limits]:
    """``limits`` shared out over ``shards`` pools: their connection counts add up to
    the given ones (unlimited stays unlimited); the keep-alive expiry is the same."""
    if shards < 1:
        raise ValueError(f"shards={shards!r} is invalid: allowed a number >= 1")
    return [
        httpx.Limits(
            max_connections=_share(limits.max_connections, shards, index),
            max_keepalive_connections=_share(limits.max_keepalive_connections, shards, index),
            keepalive_expiry=limits.keepalive_expiry,
        )
        for index in range(shards)
    ]


class _Released(httpx.AsyncByteStream):
    """A response body that calls ``release`` once, when the body is closed."""

    __slots__ = ("_release", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ShardedAsyncTransport(httpx.AsyncBaseTransport):
    """Sends each request through the shard (an ``httpx.AsyncHTTPTransport``) with the
    fewest requests in flight, the first such on a tie, so that a lone caller keeps
    reusing one shard's kept-alive connections.

    A request is in flight from the moment it is sent until its response is closed.
    The shards share ``limits`` (see :func:`split_limits`) and one SSL context, built
    as ``httpx.AsyncHTTPTransport`` builds its own (certifi's roots, or
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``). Closing the transport closes every shard.
    Meant for one event loop (as an ``httpx.AsyncClient`` is).
    """

    def __init__(self, limits: httpx.Limits, *, shards: int = DEFAULT_SHARDS) -> None:
        ssl_context = httpx.create_ssl_context()
        self._shards = [
            httpx.AsyncHTTPTransport(verify=ssl_context, limits=share)
            for share in split_limits(limits, shards)
        ]
        self._in_flight = [0] * len(self._shards)

    @property
    def in_flight(self) -> list[int]:
        """Requests in flight, per shard."""
        return list(self._in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        counts = self._in_flight
        index = counts.index(min(counts))
        counts[index] += 1
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            counts[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Released(response.stream, partial(self._release, index))
        return response

    def _release(self, index: int) -> None:
        self._in_flight[index] -= 1

    async def aclose(self) -> None:
        """Close every shard's pooled connections (all of them, even if one fails)."""
        with anyio.CancelScope(shield=True):
            failure: BaseException | None = None
            for shard in self._shards:
                try:
                    await shard.aclose()
                except BaseException as exc:  # the other shards are closed first
                    failure = failure or exc
            if failure is not None:
                raise failure
