"""The HTTP clients: thin sync and async loops over :mod:`clust.protocol`."""

from clust.client.async_client import AsyncClient
from clust.client.batch_results import AsyncBatchResults, BatchResults
from clust.client.sync_client import Client

__all__ = ["AsyncBatchResults", "AsyncClient", "BatchResults", "Client"]
