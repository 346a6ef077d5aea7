"""Id-cursor pagination shared by GET /v1/models and GET /v1/messages/batches."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .errors import invalid_request

__all__ = ["paginate"]

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def paginate(
    items: Sequence[T],
    item_id: Callable[[T], str],
    to_json: Callable[[T], dict[str, Any]],
    query: Mapping[str, list[str]],
) -> dict[str, Any]:
    """One page ``{"data", "has_more", "first_id", "last_id"}`` of ``items`` (already newest first).

    ``after_id`` gives the ``limit`` items after that id; ``before_id`` the ``limit`` items just
    before it (``has_more`` then says whether more precede the page). An unknown cursor id gives
    an empty page.
    """
    limit = _limit(query)
    after = _single(query, "after_id")
    before = _single(query, "before_id")
    if after is not None and before is not None:
        raise invalid_request("Only one of before_id and after_id may be given.")
    ids = [item_id(item) for item in items]
    if after is not None:
        if after not in ids:
            page: Sequence[T] = []
            has_more = False
        else:
            start = ids.index(after) + 1
            page = items[start : start + limit]
            has_more = start + limit < len(items)
    elif before is not None:
        if before not in ids:
            page = []
            has_more = False
        else:
            end = ids.index(before)
            start = max(0, end - limit)
            page = items[start:end]
            has_more = start > 0
    else:
        page = items[:limit]
        has_more = limit < len(items)
    return {
        "data": [to_json(item) for item in page],
        "has_more": has_more,
        "first_id": item_id(page[0]) if page else None,
        "last_id": item_id(page[-1]) if page else None,
    }


def _single(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _limit(query: Mapping[str, list[str]]) -> int:
    raw = _single(query, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise invalid_request(f"limit: Input should be a valid integer, got {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid_request(f"limit: Input should be between 1 and {MAX_LIMIT}, got {limit}")
    return limit
