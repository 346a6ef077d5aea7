"""Id-cursor pagination of GET /v1/models and GET /v1/messages/batches (sans-IO).

A :class:`PageWalk` says which query to send next and learns from each page where the
next one starts: forward with ``after_id=<last_id>``, or, when the walk started with
``before_id``, backwards with ``before_id=<first_id>``. It stops when a page says
``has_more: false`` or gives no cursor id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from clust.messages.errors import InvalidParameter
from clust.protocol.request import RequestSpec, call_headers

if TYPE_CHECKING:
    from clust.messages.pages import Page

__all__ = ["MAX_PAGE_LIMIT", "PageWalk", "QueryValue", "parse_page"]

MAX_PAGE_LIMIT = 1000

ItemT = TypeVar("ItemT")

QueryValue = str | int | Sequence[str]


def _check_cursor(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidParameter(name, value, "a non-empty id or None")


class PageWalk:
    """The pages of one listing, fetched one at a time.

    Args:
        path: the list endpoint, e.g. ``/v1/models``.
        limit: items per page, 1 to 1000 (None: the API's default, 20).
        after_id: start after this id (forward).
        before_id: start before this id (and keep going backwards).
        query: other query parameters sent with every page.
        extra_headers: headers sent with every page.

    Raises:
        InvalidParameter: a bad ``limit``, or both cursors given.
    """

    def __init__(
        self,
        path: str,
        *,
        limit: int | None = None,
        after_id: str | None = None,
        before_id: str | None = None,
        query: Mapping[str, QueryValue] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000
        ):
            raise InvalidParameter("limit", limit, f"an integer 1..{MAX_PAGE_LIMIT} or None")
        _check_cursor("after_id", after_id)
        _check_cursor("before_id", before_id)
        if after_id is not None and before_id is not None:
            raise InvalidParameter("before_id", before_id, "None when after_id is given")
        self._path = path
        self._base: dict[str, QueryValue] = dict(query or {})
        if limit is not None:
            self._base["limit"] = limit
        self._backwards = before_id is not None
        self._cursor = before_id if self._backwards else after_id
        self._headers = call_headers(False, None, extra_headers)
        self._done = False
        self.pages = 0
        """Pages read so far."""

    @property
    def done(self) -> bool:
        """Whether the last page has been read."""
        return self._done

    def next_request(self) -> RequestSpec | None:
        """The GET of the next page, or None once the last page was read."""
        if self._done:
            return None
        params = dict(self._base)
        if self._cursor is not None:
            params["before_id" if self._backwards else "after_id"] = self._cursor
        return RequestSpec("GET", self._path, dict(self._headers), params=params)

    def advance(self, page: Page[Any]) -> None:
        """Note a page just read: where the next one starts, or that there is none."""
        self.pages += 1
        cursor = page.first_id if self._backwards else page.last_id
        if not page.has_more or cursor is None:
            self._done = True
        self._cursor = cursor


def parse_page(
    page_type: type[Page[ItemT]], headers: Mapping[str, str], content: bytes
) -> Page[ItemT]:
    """Parse one page of a listing (``page_type`` is e.g. ``Page[ModelInfo]``)."""
    from clust.protocol.response import parse_json_model

    return parse_json_model(page_type, headers, content)
