"""``Client``: the synchronous API client.

Its methods are written once for both clients (:mod:`clust.client.messages_api`,
:mod:`~clust.client.models_api`, :mod:`~clust.client.batches_api`); as a
:class:`~clust.client._twins.Blocking` class, ``Client`` runs each to its end.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from clust.client._base import POOL_LIMITS, BaseClient
from clust.client._io import SyncIo
from clust.client._twins import Blocking
from clust.client.batches_api import BatchesApi
from clust.client.messages_api import MessagesApi
from clust.client.models_api import ModelsApi

__all__ = ["Client"]


class Client(MessagesApi, ModelsApi, BatchesApi, BaseClient[httpx.Client], Blocking):
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
    ``delete_message_batch``, ``message_batch_results``, ``wait_for_message_batch``);
    and the lower-level ``create_from_spec``, ``stream_from_spec``,
    ``count_tokens_from_spec`` and ``create_message_batch_from_wire``, which send
    prepared requests.
    """

    def _new_http(self, timeout: httpx.Timeout) -> httpx.Client:
        return httpx.Client(timeout=timeout, follow_redirects=False, limits=POOL_LIMITS)

    def _new_io(self, http: Callable[[], httpx.Client], auth: httpx.Auth) -> SyncIo:
        return SyncIo(http, auth)
