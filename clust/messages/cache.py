"""Prompt-cache markers: ``{"type": "ephemeral"}`` with an optional ``"ttl": "5m" | "1h"``."""

from __future__ import annotations

from typing import ClassVar

from clust.messages._wire import WireEnum, WireModel

__all__ = ["CacheControl", "CacheControlType", "CacheTtl"]


class CacheControlType(WireEnum):
    """The kind of cache breakpoint (only ``ephemeral`` exists)."""

    EPHEMERAL = "ephemeral"


class CacheTtl(WireEnum):
    """How long a cache entry lives. The API default (no ``ttl``) is five minutes."""

    FIVE_MINUTES = "5m"
    ONE_HOUR = "1h"


class CacheControl(WireModel):
    """A cache breakpoint, on a block, a tool, a system block or the whole request.

    ``CacheControl()`` -> ``{"type": "ephemeral"}``;
    ``CacheControl(ttl=CacheTtl.ONE_HOUR)`` -> ``{"type": "ephemeral", "ttl": "1h"}``.
    ``ttl=None`` leaves ``ttl`` out (the API has no null TTL).
    """

    type: CacheControlType = CacheControlType.EPHEMERAL
    ttl: CacheTtl | None = None

    _wire_omit_none: ClassVar[frozenset[str]] = frozenset({"ttl"})

    @classmethod
    def ephemeral(cls, ttl: CacheTtl | None = None) -> CacheControl:
        """An ephemeral breakpoint with an optional TTL."""
        return cls(ttl=ttl)

    @classmethod
    def five_minutes(cls) -> CacheControl:
        """``{"type": "ephemeral", "ttl": "5m"}``."""
        return cls(ttl=CacheTtl.FIVE_MINUTES)

    @classmethod
    def one_hour(cls) -> CacheControl:
        """``{"type": "ephemeral", "ttl": "1h"}``."""
        return cls(ttl=CacheTtl.ONE_HOUR)
