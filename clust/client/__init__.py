"""The HTTP clients: thin sync and async loops over :mod:`clust.protocol`."""

from clust.client.async_client import AsyncClient
from clust.client.sync_client import Client

__all__ = ["AsyncClient", "Client"]
