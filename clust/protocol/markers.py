"""The ``cache_control`` markers a piece of wire JSON holds: their TTLs, in document order.

A stored turn keeps the TTLs of its markers beside its JSON (``clust_messages.cache_ttls``,
written with the turn), so loading a history of tens of thousands of turns needs no
scan of their text to find the few that hold a marker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["cache_ttls", "marker_ttl", "parse_stored_ttls", "stored_ttls"]


def marker_ttl(marker: Mapping[str, object]) -> str:
    """The TTL of one ``cache_control`` marker (``"5m"`` when it names none)."""
    ttl = marker.get("ttl")
    return ttl if isinstance(ttl, str) else "5m"


def cache_ttls(value: object) -> tuple[str, ...]:
    """The TTLs of every ``cache_control`` in JSON data, in document order (a marker
    after the markers nested in its own block); a marker without a ttl is ``"5m"``."""
    found: list[str] = []

    def walk(item: object) -> None:
        if isinstance(item, Mapping):
            for key, child in item.items():
                if key != "cache_control":
                    walk(child)
            marker = item.get("cache_control")
            if isinstance(marker, Mapping):
                found.append(marker_ttl(marker))
        elif isinstance(item, list):
            for child in item:
                walk(child)

    walk(value)
    return tuple(found)


def stored_ttls(wire: bytes) -> str | None:
    """What a turn's ``cache_ttls`` column holds: the TTLs of the markers in its JSON,
    comma-separated (``"5m,1h"``), or ``None`` when it holds none (the JSON is parsed
    only when it may hold one)."""
    if b'"cache_control"' not in wire:
        return None
    return ",".join(cache_ttls(json.loads(wire))) or None


def parse_stored_ttls(text: str | None) -> tuple[str, ...]:
    """The TTLs a ``cache_ttls`` column value lists (``None``: none)."""
    return tuple(text.split(",")) if text else ()
