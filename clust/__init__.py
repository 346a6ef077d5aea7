"""clust: a typed Claude Messages API client with persisted conversations.

``import clust`` stays light: the clients load on first use, and SQLAlchemy and
Alembic only when the conversation store is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clust._version import __version__

__all__ = ["AsyncClient", "Client", "Conversation", "Store", "__version__"]

if TYPE_CHECKING:
    from clust.client import AsyncClient, Client
    from clust.conversation import Conversation, Store

_LAZY = {
    "Client": "clust.client",
    "AsyncClient": "clust.client",
    "Store": "clust.conversation",
    "Conversation": "clust.conversation",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'clust' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
