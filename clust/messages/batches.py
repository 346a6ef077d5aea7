"""Message Batches: the requests of a batch, the batch object, and its results.

Requests: ``BatchRequest(custom_id, params)`` where ``params`` is a full
``MessagesRequestBody`` (validated like a single request; never streamed).
``validate_batch_requests`` checks a whole batch before anything is sent: at least one
request, at most :data:`MAX_BATCH_REQUESTS`, every ``custom_id`` 1-64 characters of
``A-Z a-z 0-9 _ -`` and unique within the batch. Every failure is an
``InvalidParameter`` whose ``field`` names the request (``requests[3].params.max_tokens``).

Results: one ``BatchResult(custom_id, result)`` per line of the results JSONL, where
``result`` is a ``SucceededResult`` (with the ``message``), ``ErroredResult``,
``CanceledResult`` or ``ExpiredResult``; a result type this release does not know
becomes an ``UnknownBatchResult`` that keeps every field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from clust.messages._wire import OpenUnionFallback, WireEnum, WireModel, literal_tags
from clust.messages.errors import InvalidParameter
from clust.messages.events import ErrorDetail
from clust.messages.request import MessagesRequestBody
from clust.messages.response import MessagesResponseBody

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_REQUESTS",
    "BatchErrorResponse",
    "BatchRequest",
    "BatchResult",
    "BatchResultUnion",
    "CanceledResult",
    "DeletedMessageBatch",
    "ErroredResult",
    "ExpiredResult",
    "MessageBatch",
    "MessageBatchRequestCounts",
    "ProcessingStatus",
    "SucceededResult",
    "UnknownBatchResult",
    "check_custom_ids",
    "validate_batch_requests",
]

MAX_BATCH_REQUESTS = 100_000
"""The most requests one batch may hold."""
MAX_BATCH_BYTES = 256 * 1024 * 1024
"""The largest create body (256 MB)."""

# The API states no format beyond "a string" (older references gave 1-64 characters of
# A-Z a-z 0-9 _ -, unverified): the server is left to judge, only emptiness is refused.
_CUSTOM_ID_ALLOWED = "a non-empty string"


def _check_custom_id(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParameter(field, value, _CUSTOM_ID_ALLOWED)
    return value


def _streams(params: MessagesRequestBody) -> bool:
    if params.extra_body and "stream" in params.extra_body:
        return bool(params.extra_body["stream"])
    return bool(params.stream)


class BatchRequest(WireModel):
    """One request of a batch: ``custom_id`` (to match its result) and the Messages ``params``.

    >>> BatchRequest("greeting-1", body)        # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid")

    custom_id: str
    params: MessagesRequestBody

    _wire_positional: ClassVar[tuple[str, ...]] = ("custom_id", "params")

    if TYPE_CHECKING:

        def __init__(
            self,
            custom_id: str = ...,
            params: MessagesRequestBody | Mapping[str, Any] = ...,
            /,
            **fields: Any,
        ) -> None: ...

    @field_validator("custom_id", mode="plain")
    @classmethod
    def _valid_custom_id(cls, value: object) -> str:
        return _check_custom_id("custom_id", value)

    @model_validator(mode="after")
    def _not_streamed(self) -> BatchRequest:
        if _streams(self.params):
            raise InvalidParameter(
                "params.stream", True, "unset or false (batch requests are never streamed)"
            )
        return self

    def to_wire(self) -> dict[str, Any]:
        """``{"custom_id": ..., "params": {...}}`` (``params.extra_body`` merged in)."""
        return {"custom_id": self.custom_id, "params": self.params.to_wire()}


def _from_validation_error(prefix: str, error: ValidationError) -> InvalidParameter:
    detail = error.errors(include_url=False)[0]
    loc = [str(part) for part in detail.get("loc", ())]
    cause = (detail.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidParameter):
        inner = cause.field
        if loc[:1] == ["params"] and not inner.startswith("params"):
            inner = f"params.{inner}"
        return InvalidParameter(f"{prefix}.{inner}", cause.value, cause.allowed)
    where = ".".join([prefix, *loc])
    if detail.get("type") == "missing":
        return InvalidParameter(where, None, "a value (the field is required)")
    return InvalidParameter(where, detail.get("input"), str(detail.get("msg", "a valid value")))


def _coerce(index: int, item: object) -> BatchRequest:
    prefix = f"requests[{index}]"
    if isinstance(item, BatchRequest):
        return item
    if not isinstance(item, Mapping):
        raise InvalidParameter(
            prefix, item, "a BatchRequest or a mapping with 'custom_id' and 'params'"
        )
    try:
        return BatchRequest.model_validate(item)
    except ValidationError as error:
        raise _from_validation_error(prefix, error) from error


def check_custom_ids(custom_ids: Sequence[str]) -> None:
    """Check the ids of a whole batch: 1 to :data:`MAX_BATCH_REQUESTS` of them, each
    a non-empty string used once. Raises ``InvalidParameter`` naming the first bad one."""
    if not custom_ids:
        raise InvalidParameter("requests", [], f"1 to {MAX_BATCH_REQUESTS:,} requests")
    if len(custom_ids) > MAX_BATCH_REQUESTS:
        raise InvalidParameter(
            "requests", f"{len(custom_ids):,} requests", f"1 to {MAX_BATCH_REQUESTS:,} requests"
        )
    first_use: dict[str, int] = {}
    for index, custom_id in enumerate(custom_ids):
        field = f"requests[{index}].custom_id"
        _check_custom_id(field, custom_id)
        earlier = first_use.setdefault(custom_id, index)
        if earlier != index:
            raise InvalidParameter(
                field,
                custom_id,
                f"an id unique within the batch (requests[{earlier}] already uses it)",
            )


def validate_batch_requests(
    requests: Iterable[BatchRequest | Mapping[str, Any]],
) -> list[BatchRequest]:
    """Every request of a batch as a validated ``BatchRequest`` (mappings are converted).

    Raises:
        InvalidParameter: a request is malformed (``field`` says which, e.g.
            ``requests[2].params.max_tokens``), an id is malformed or repeated, or there
            are no requests or more than :data:`MAX_BATCH_REQUESTS`.
    """
    if isinstance(requests, (str, bytes, Mapping)):
        raise InvalidParameter("requests", requests, "an iterable of requests")
    checked: list[BatchRequest] = []
    for index, item in enumerate(requests):
        if index >= MAX_BATCH_REQUESTS:
            raise InvalidParameter(
                "requests", f"more than {MAX_BATCH_REQUESTS:,} requests", "fewer requests"
            )
        checked.append(_coerce(index, item))
    check_custom_ids([request.custom_id for request in checked])
    return checked


class ProcessingStatus(WireEnum):
    """Where a batch is. Unknown values are kept as plain strings."""

    IN_PROGRESS = "in_progress"
    CANCELING = "canceling"
    ENDED = "ended"


class MessageBatchRequestCounts(WireModel):
    """How many requests are in each state. The last four stay 0 until the batch ends;
    the five always add up to the number of requests."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        """The number of requests in the batch."""
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired


class MessageBatch(WireModel):
    """A Message Batch: its status, request counts and (once ended) its ``results_url``."""

    id: str
    type: Literal["message_batch"] = "message_batch"
    processing_status: Annotated[ProcessingStatus | str, Field(union_mode="left_to_right")]
    request_counts: MessageBatchRequestCounts
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    archived_at: datetime | None = None
    results_url: str | None = None

    @property
    def ended(self) -> bool:
        """Whether processing has ended (results can then be read)."""
        return self.processing_status == ProcessingStatus.ENDED


class DeletedMessageBatch(WireModel):
    """The reply of DELETE /v1/messages/batches/{id}."""

    id: str
    type: Literal["message_batch_deleted"] = "message_batch_deleted"


class BatchErrorResponse(WireModel):
    """The error of an errored request: ``{"type": "error", "error": {...}, "request_id"}``."""

    type: str = "error"
    error: ErrorDetail
    request_id: str | None = None


class SucceededResult(WireModel):
    """The request succeeded: ``message`` is the reply (usage ``service_tier`` ``"batch"``)."""

    type: Literal["succeeded"] = "succeeded"
    message: MessagesResponseBody


class ErroredResult(WireModel):
    """The request failed (invalid params, or a server error): ``error`` says why."""

    type: Literal["errored"] = "errored"
    error: BatchErrorResponse

    @property
    def error_type(self) -> str:
        """``error.error.type``, e.g. ``"invalid_request_error"``."""
        return self.error.error.type

    @property
    def error_message(self) -> str:
        """``error.error.message`` (``""`` when the API sent none)."""
        return self.error.error.message or ""


class CanceledResult(WireModel):
    """The batch was canceled before this request was processed."""

    type: Literal["canceled"] = "canceled"


class ExpiredResult(WireModel):
    """The batch reached its 24-hour expiry before this request was processed."""

    type: Literal["expired"] = "expired"


class UnknownBatchResult(OpenUnionFallback):
    """A result type this release does not know; every field is kept."""

    _known_types: ClassVar[frozenset[str]] = literal_tags(
        SucceededResult, ErroredResult, CanceledResult, ExpiredResult
    )


BatchResultUnion = Annotated[
    Annotated[
        SucceededResult | ErroredResult | CanceledResult | ExpiredResult,
        Field(discriminator="type"),
    ]
    | UnknownBatchResult,
    Field(union_mode="left_to_right"),
]
"""Any result; unknown types become ``UnknownBatchResult``."""


class BatchResult(WireModel):
    """One line of the results: the request's ``custom_id`` and its ``result``.

    Results come in no particular order: match them to requests by ``custom_id``.
    """

    custom_id: str
    result: BatchResultUnion

    @property
    def message(self) -> MessagesResponseBody | None:
        """The reply, for a succeeded request (None otherwise)."""
        result = self.result
        return result.message if isinstance(result, SucceededResult) else None
