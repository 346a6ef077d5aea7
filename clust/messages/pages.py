"""One page of a list endpoint (GET /v1/models, GET /v1/messages/batches)."""

from __future__ import annotations

from typing import Generic, TypeVar

from clust.messages._wire import WireModel

__all__ = ["Page"]

ItemT = TypeVar("ItemT")


class Page(WireModel, Generic[ItemT]):
    """``{"data": [...], "has_more", "first_id", "last_id"}``: items newest first.

    The next page (going forward) starts after ``last_id``; going backwards, before
    ``first_id``. ``has_more`` false (or a null cursor id) means there is none.
    """

    data: list[ItemT]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None
