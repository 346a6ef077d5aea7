"""Auto-pagination for both clients: walk the pages of a listing, hand out its items.

Each page is fetched only when the items of the previous one are used up, and is read
whole (no response is left open between pages), so dropping an iterator half-way
needs no clean-up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

from clust.protocol.pagination import PageWalk, parse_page
from clust.protocol.request import RequestSpec

if TYPE_CHECKING:
    from clust.messages.pages import Page

__all__ = ["AsyncPageIterator", "PageIterator"]

ItemT = TypeVar("ItemT")


class PageIterator(Iterator[ItemT], Generic[ItemT]):
    """Every item of every page of one listing (sync)."""

    def __init__(
        self,
        call: Callable[[RequestSpec], httpx.Response],
        walk: PageWalk,
        page_type: type[Page[ItemT]],
    ) -> None:
        self._call = call
        self._walk = walk
        self._page_type = page_type
        self._items: deque[ItemT] = deque()

    @property
    def pages(self) -> int:
        """Pages fetched so far."""
        return self._walk.pages

    def __iter__(self) -> PageIterator[ItemT]:
        return self

    def __next__(self) -> ItemT:
        while not self._items:
            spec = self._walk.next_request()
            if spec is None:
                raise StopIteration
            response = self._call(spec)
            page = parse_page(self._page_type, response.headers, response.content)
            self._walk.advance(page)
            self._items.extend(page.data)
        return self._items.popleft()


class AsyncPageIterator(AsyncIterator[ItemT], Generic[ItemT]):
    """Every item of every page of one listing (async)."""

    def __init__(
        self,
        call: Callable[[RequestSpec], Awaitable[httpx.Response]],
        walk: PageWalk,
        page_type: type[Page[ItemT]],
    ) -> None:
        self._call = call
        self._walk = walk
        self._page_type = page_type
        self._items: deque[ItemT] = deque()

    @property
    def pages(self) -> int:
        """Pages fetched so far."""
        return self._walk.pages

    def __aiter__(self) -> AsyncPageIterator[ItemT]:
        return self

    async def __anext__(self) -> ItemT:
        while not self._items:
            spec = self._walk.next_request()
            if spec is None:
                raise StopAsyncIteration
            response = await self._call(spec)
            page = parse_page(self._page_type, response.headers, response.content)
            self._walk.advance(page)
            self._items.extend(page.data)
        return self._items.popleft()
