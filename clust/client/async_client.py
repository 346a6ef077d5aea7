"""``AsyncClient``: the asynchronous API client (asyncio or trio, through anyio).

Its methods are written once for both clients (:mod:`clust.client.messages_api`,
:mod:`~clust.client.models_api`, :mod:`~clust.client.batches_api`); as an
:class:`~clust.client._twins.Awaiting` class, ``AsyncClient`` awaits each.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from clust.client._base import POOL_LIMITS, BaseClient
from clust.client._io import AsyncIo
from clust.client._shards import ShardedAsyncTransport
from clust.client._twins import Awaiting
from clust.client.batches_api import BatchesApi
from clust.client.messages_api import MessagesApi
from clust.client.models_api import ModelsApi

__all__ = ["AsyncClient"]


class AsyncClient(MessagesApi, ModelsApi, BatchesApi, BaseClient[httpx.AsyncClient], Awaiting):
    """Asynchronous client for the Claude Messages API (asyncio or trio, through anyio).

    >>> client = AsyncClient.from_env()                      # doctest: +SKIP
    >>> response = await client.create_a_message(body)        # doctest: +SKIP

    Connections are pooled and kept alive (in several small pools, so that hundreds of
    requests in flight keep the event loop responsive); use the client as an async context
    manager, or call :meth:`close`, to release them. A client given an existing
    ``http_client`` leaves closing it to its owner.

    Takes the arguments of :class:`~clust.client._base.BaseClient`, with an existing
    ``httpx.AsyncClient`` as ``http_client``. The methods are :class:`~clust.Client`'s,
    awaited; listings and batch results are async iterators, streams
    ``AsyncMessageStream``.
    """

    def _new_http(self, timeout: httpx.Timeout) -> httpx.AsyncClient:
        # Several small pools (see clust.client._shards); limits= still applies to the
        # pools of any proxy httpx mounts from the environment.
        return httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            limits=POOL_LIMITS,
            transport=ShardedAsyncTransport(POOL_LIMITS),
        )

    def _new_io(self, http: Callable[[], httpx.AsyncClient], auth: httpx.Auth) -> AsyncIo:
        return AsyncIo(http, auth)
