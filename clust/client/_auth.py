"""``KeyAuth``: the API key's header, put on each request as it is sent.

No long-lived mapping holds the key: not the client's settings, not its httpx
client's default headers. The header is set when httpx sends the request and taken
off again once the response (or failure) is back, so the ``httpx.Request`` kept by
a response or an exception no longer carries it.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from clust.protocol.request import Credentials

__all__ = ["KeyAuth"]


class KeyAuth(httpx.Auth):
    """An httpx auth flow adding ``credentials``' header, unless the request already
    has one (a per-call ``extra_headers`` entry wins, as with the official SDK)."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def __repr__(self) -> str:
        return f"KeyAuth({self._credentials!r})"

    def _add(self, request: httpx.Request) -> str | None:
        name, value = self._credentials.header()
        if name in request.headers:
            return None
        request.headers[name] = value
        return name

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # One flow: httpx drives it for the sync and the async client alike.
        added = self._add(request)
        try:
            yield request
        finally:
            if added is not None:
                del request.headers[added]
