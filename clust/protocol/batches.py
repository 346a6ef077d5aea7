"""Requests of the Message Batches API, and the decoder of its results (sans-IO).

The create body is spliced from each request's ``params`` JSON as bytes
(:func:`spliced_batch_request`), like :func:`~clust.protocol.request.spliced_message_request`
does for a message: the conversation layer hands over params it holds as validated
wire JSON and they are sent byte for byte, never parsed again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from clust.messages.errors import (
    BatchNotEnded,
    BatchResultsUnavailable,
    InvalidParameter,
    ResponseDecodeError,
)
from clust.protocol.jsonl import JsonlSplitter
from clust.protocol.pagination import PageWalk
from clust.protocol.request import (
    RequestSpec,
    call_headers,
    needs_one_hour_ttl_beta,
    wire_has_one_hour,
)

if TYPE_CHECKING:
    from clust.messages.batches import BatchRequest, BatchResult, MessageBatch

__all__ = [
    "BatchResultsDecoder",
    "batch_results_request",
    "cancel_batch_request",
    "create_batch_request",
    "delete_batch_request",
    "get_batch_request",
    "list_batches_walk",
    "spliced_batch_request",
]

_BATCHES = "/v1/messages/batches"


def create_batch_request(
    requests: Iterable[BatchRequest | Mapping[str, Any]],
    *,
    betas: Iterable[str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> RequestSpec:
    """POST /v1/messages/batches for ``requests``, every one validated first.

    The 1-hour cache TTL beta header is added when any request's params use a 1h TTL.

    Raises:
        InvalidParameter: see :func:`~clust.messages.batches.validate_batch_requests`;
            also a body over 256 MB.
    """
    from clust.messages.batches import validate_batch_requests

    items: list[tuple[str, bytes]] = []
    one_hour = False
    for request in validate_batch_requests(requests):
        wire = request.params.to_json()
        one_hour = one_hour or needs_one_hour_ttl_beta(request.params, wire)
        items.append((request.custom_id, wire))
    return spliced_batch_request(
        items, one_hour=one_hour, betas=betas, extra_headers=extra_headers, checked=True
    )


def spliced_batch_request(
    items: Sequence[tuple[str, bytes]],
    *,
    one_hour: bool | None = None,
    betas: Iterable[str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
    checked: bool = False,
) -> RequestSpec:
    """POST /v1/messages/batches from ``(custom_id, params JSON)`` pairs, spliced as bytes.

    Each params text must be one validated, non-streaming Messages body (a JSON
    object). ``one_hour`` says whether any holds a 1-hour cache marker; None: find out
    (only params whose text contains ``"1h"`` are parsed to check). ``checked`` skips
    the id checks when the caller already made them.

    Raises:
        InvalidParameter: no items or too many, a malformed or repeated ``custom_id``,
            params that are not a JSON object, or a body over 256 MB.
    """
    from clust.messages.batches import MAX_BATCH_BYTES, check_custom_ids

    if not checked:
        check_custom_ids([custom_id for custom_id, _ in items])
    # One flat list of pieces and a single join: the params bytes are copied once.
    pieces: list[bytes] = [b'{"requests":[']
    size = len(b'{"requests":[]}')
    for index, (custom_id, params) in enumerate(items):
        if not params.startswith(b"{") or not params.rstrip().endswith(b"}"):
            raise InvalidParameter(
                f"requests[{index}].params", params[:40], "the JSON text of a Messages body"
            )
        head = b'%s{"custom_id":%s,"params":' % (
            b"," if index else b"",
            json.dumps(custom_id).encode(),
        )
        size += len(head) + len(params) + 1
        if size > MAX_BATCH_BYTES:
            raise InvalidParameter(
                "requests",
                f"more than {MAX_BATCH_BYTES:,} bytes of JSON",
                f"a body of at most {MAX_BATCH_BYTES:,} bytes (256 MB); split the batch",
            )
        pieces += (head, params, b"}")
    pieces.append(b"]}")
    if one_hour is None:
        one_hour = any(_wire_one_hour(params) for _, params in items)
    headers = call_headers(one_hour, betas, extra_headers)
    return RequestSpec("POST", _BATCHES, headers, b"".join(pieces))


def _wire_one_hour(params: bytes) -> bool:
    # Cheap test first: parse only the params whose text mentions "1h" at all.
    return b'"1h"' in params and wire_has_one_hour(json.loads(params))


def _batch_path(batch_id: str, suffix: str = "") -> str:
    if not isinstance(batch_id, str) or not batch_id:
        raise InvalidParameter("batch_id", batch_id, "a non-empty message batch id")
    return f"{_BATCHES}/{quote(batch_id, safe='')}{suffix}"


def get_batch_request(
    batch_id: str, *, extra_headers: Mapping[str, str] | None = None
) -> RequestSpec:
    """GET /v1/messages/batches/{id}: the batch's current state (poll this)."""
    return RequestSpec("GET", _batch_path(batch_id), call_headers(False, None, extra_headers))


def cancel_batch_request(
    batch_id: str, *, extra_headers: Mapping[str, str] | None = None
) -> RequestSpec:
    """POST /v1/messages/batches/{id}/cancel (an empty body)."""
    path = _batch_path(batch_id, "/cancel")
    return RequestSpec("POST", path, call_headers(False, None, extra_headers), b"")


def delete_batch_request(
    batch_id: str, *, extra_headers: Mapping[str, str] | None = None
) -> RequestSpec:
    """DELETE /v1/messages/batches/{id} (only once the batch has ended)."""
    return RequestSpec("DELETE", _batch_path(batch_id), call_headers(False, None, extra_headers))


def list_batches_walk(
    *,
    limit: int | None = None,
    after_id: str | None = None,
    before_id: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> PageWalk:
    """The pages of GET /v1/messages/batches, newest batch first."""
    return PageWalk(
        _BATCHES, limit=limit, after_id=after_id, before_id=before_id, extra_headers=extra_headers
    )


def batch_results_request(
    batch: MessageBatch, *, extra_headers: Mapping[str, str] | None = None
) -> RequestSpec:
    """GET of the batch's ``results_url`` (an absolute URL, used as given), streamed.

    Raises:
        BatchNotEnded: the batch has not ended (it has no ``results_url`` yet).
        BatchResultsUnavailable: it ended but gives no ``results_url`` (archived).
    """
    url = batch.results_url
    if not url:
        status = str(batch.processing_status)
        if not batch.ended:
            raise BatchNotEnded(batch.id, status)
        raise BatchResultsUnavailable(
            batch.id,
            status,
            f"message batch {batch.id!r} has ended but has no results_url"
            + (f" (archived at {batch.archived_at})" if batch.archived_at else ""),
        )
    headers = {"accept": "application/binary", **call_headers(False, None, extra_headers)}
    return RequestSpec("GET", url, headers, stream=True)


class BatchResultsDecoder:
    """Bytes of the results JSONL in, typed :class:`BatchResult` objects out.

    Holds at most one unfinished line between feeds, so a results file of any size is
    read in constant memory. ``count`` is the number of results decoded so far.
    """

    __slots__ = ("_lines", "_request_id", "_validate", "count")

    def __init__(self, request_id: str | None = None) -> None:
        from clust.messages.batches import BatchResult

        self._lines = JsonlSplitter()
        self._request_id = request_id
        self._validate = BatchResult.model_validate_json
        self.count = 0

    def feed(self, chunk: bytes) -> list[BatchResult]:
        """The results completed by ``chunk``."""
        return [self._parse(line) for line in self._lines.feed(chunk)]

    def end(self) -> list[BatchResult]:
        """The last result, if the body did not end with a line ending."""
        return [self._parse(line) for line in self._lines.end()]

    def _parse(self, line: bytes) -> BatchResult:
        from pydantic import ValidationError

        self.count += 1
        try:
            return self._validate(line)
        except ValidationError as exc:
            from clust.protocol.response import describe_validation_error

            raise ResponseDecodeError(
                f"could not decode line {self.count} of the batch results: "
                f"{describe_validation_error(exc)}",
                request_id=self._request_id,
            ) from exc
