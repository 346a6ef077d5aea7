"""The HTTP clients: each method written once (see :mod:`clust.client._twins`), run
to its end by :class:`Client` or awaited on :class:`AsyncClient`."""

from clust.client._settings import TimeoutTypes
from clust.client.async_client import AsyncClient
from clust.client.batch_results import AsyncBatchResults, BatchResults
from clust.client.sync_client import Client

__all__ = ["AsyncBatchResults", "AsyncClient", "BatchResults", "Client", "TimeoutTypes"]
