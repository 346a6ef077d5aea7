"""Auto-pagination for both clients: walk the pages of a listing, hand out its items.

Each page is fetched only when the items of the previous one are used up, and is read
whole (no response is left open between pages), so dropping an iterator half-way
needs no clean-up. :class:`Listing` holds the rules; :class:`PageIterator` and
:class:`AsyncPageIterator` are its iterator shells, and :func:`paged` makes a listing
method return the one of the client's side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

import httpx

from clust.client._twins import AwaitingItems, BlockingItems, Form, Twin, wrapped_in
from clust.protocol.pagination import PageWalk, parse_page
from clust.protocol.plans import Plan
from clust.protocol.request import RequestSpec

if TYPE_CHECKING:
    from clust.messages.pages import Page

__all__ = ["AsyncPageIterator", "Listing", "PageIterator", "paged"]

ItemT = TypeVar("ItemT")
P = ParamSpec("P")


class Listing(Generic[ItemT]):
    """Every item of every page of one listing; ``fetch`` sends a page's request."""

    def __init__(
        self,
        fetch: Callable[[RequestSpec], Plan[httpx.Response]],
        walk: PageWalk,
        page_type: type[Page[ItemT]],
    ) -> None:
        self._fetch = fetch
        self._walk = walk
        self._page_type = page_type
        self._pending: deque[ItemT] = deque()

    @property
    def pages(self) -> int:
        """Pages fetched so far."""
        return self._walk.pages

    def _fill(self) -> Plan[bool]:
        """Fetch pages until an item is pending; False once the listing is over."""
        while not self._pending:
            spec = self._walk.next_request()
            if spec is None:
                return False
            response = yield from self._fetch(spec)
            page = parse_page(self._page_type, response.headers, response.content)
            self._walk.advance(page)
            self._pending.extend(page.data)
        return True

    def everything(self) -> Plan[list[ItemT]]:
        """The items of all the pages left."""
        items: list[ItemT] = []
        while (yield from self._fill()):
            items.extend(self._pending)
            self._pending.clear()
        return items


class PageIterator(Listing[ItemT], BlockingItems[ItemT]):
    """Every item of every page of one listing (sync)."""


class AsyncPageIterator(Listing[ItemT], AwaitingItems[ItemT]):
    """Every item of every page of one listing (async)."""


def _iterating(shell: type[Listing[Any]]) -> Form:
    return wrapped_in(lambda listing: shell(listing._fetch, listing._walk, listing._page_type))


def paged(
    method: Callable[Concatenate[Any, P], Listing[ItemT]],
) -> Twin[P, Iterator[ItemT], AsyncIterator[ItemT]]:
    """Decorate a method that returns a :class:`Listing`: it returns a
    :class:`PageIterator` on the blocking client, an :class:`AsyncPageIterator` on the
    async one (pages are fetched as iteration needs them)."""
    return Twin(method, _iterating(PageIterator), _iterating(AsyncPageIterator))
