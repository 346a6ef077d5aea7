"""The body of a streamed HTTP response as raw chunks (shared by streams and batch results)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx

__all__ = ["abody_chunks", "body_chunks"]


def body_chunks(response: httpx.Response) -> Iterator[bytes]:
    """The response body as it arrives, decoded only if it has a content encoding."""
    # Without a content-encoding, httpx's decoding layer only adds per-chunk cost.
    if response.headers.get("content-encoding", "identity") == "identity":
        return response.iter_raw()
    return response.iter_bytes()


def abody_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """:func:`body_chunks` of an async response."""
    if response.headers.get("content-encoding", "identity") == "identity":
        return response.aiter_raw()
    return response.aiter_bytes()
