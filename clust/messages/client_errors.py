"""The client's errors: what the API answered with (``ApiError`` and its subclasses),
answers that never came or could not be read (``ClientError`` and its subclasses),
and Message Batch results not there to read. Import them from
:mod:`clust.messages.errors`, which holds every exception clust raises."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clust.messages.base_errors import MessagesError

if TYPE_CHECKING:
    from clust.messages.response import MessagesResponseBody

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BatchNotEnded",
    "BatchResultsUnavailable",
    "BatchWaitTimeout",
    "BillingError",
    "ClientError",
    "ConflictError",
    "ConnectionFailed",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimedOut",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "ResponseDecodeError",
    "ServiceUnavailableError",
    "StreamDecodeError",
    "StreamInterrupted",
]


class ApiError(MessagesError):
    """The API answered with an error.

    Subclasses exist per error type (``RateLimitError``, ``OverloadedError``, ...).
    An error type or status clust does not know is raised as ``ApiError`` itself
    (4xx) or ``InternalServerError`` (5xx).

    Attributes:
        status_code: HTTP status (200 for an ``error`` event inside a stream).
        error_type: ``error.type`` from the envelope, e.g. ``"rate_limit_error"``.
        message: ``error.message`` from the envelope, or the raw body text.
        request_id: the ``request-id`` response header (else the body's).
        retry_after: seconds the server asked to wait, if it said so.
        error_code: ``error.details.error_code`` when present.
        body: the parsed JSON body, or the raw text when it was not JSON.
        partial_message: for an ``error`` event inside a stream, the message
            accumulated before it (``None`` otherwise).
    """

    partial_message: MessagesResponseBody | None = None

    def __init__(
        self,
        *,
        status_code: int,
        error_type: str | None,
        message: str,
        request_id: str | None = None,
        retry_after: float | None = None,
        error_code: str | None = None,
        body: object = None,
    ) -> None:
        self.status_code = status_code
        self.error_type = error_type
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.error_code = error_code
        self.body = body
        super().__init__(self._describe())

    def _describe(self) -> str:
        kind = self.error_type or "error"
        text = f"{self.status_code} {kind}: {self.message}"
        if self.error_code:
            text += f" [{self.error_code}]"
        if self.request_id:
            text += f" (request_id={self.request_id})"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g}s)"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_api_error, (type(self), self.__dict__.copy()))


def _rebuild_api_error(cls: type[ApiError], state: dict[str, Any]) -> ApiError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._describe())
    return error


class InvalidRequestError(ApiError):
    """400 ``invalid_request_error``."""


class AuthenticationError(ApiError):
    """401 ``authentication_error``."""


class BillingError(ApiError):
    """402 ``billing_error``."""


class PermissionDeniedError(ApiError):
    """403 ``permission_error``."""


class NotFoundError(ApiError):
    """404 ``not_found_error``."""


class RequestTimeoutError(ApiError):
    """408: the server timed out waiting for the request."""


class ConflictError(ApiError):
    """409 ``conflict_error``."""


class RequestTooLargeError(ApiError):
    """413 ``request_too_large``."""


class RateLimitError(ApiError):
    """429 ``rate_limit_error``."""


class InternalServerError(ApiError):
    """500 ``api_error``, and any 5xx status without a class of its own."""


class ServiceUnavailableError(InternalServerError):
    """503."""


class GatewayTimeoutError(InternalServerError):
    """504 ``timeout_error``."""


class OverloadedError(InternalServerError):
    """529 ``overloaded_error``."""


class ClientError(MessagesError):
    """No usable answer came back from the API."""


class ConnectionFailed(ClientError):
    """The connection could not be made or broke before a response arrived."""


class RequestTimedOut(ClientError):
    """The request did not complete within the configured timeout."""


class ResponseDecodeError(ClientError):
    """The response could not be decoded (bad JSON, wrong content type, bad UTF-8).

    ``request_id`` is the ``request-id`` header of that response, if any.
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message if request_id is None else f"{message} (request_id={request_id})")


class StreamDecodeError(ResponseDecodeError):
    """A server-sent event could not be decoded (bad UTF-8 or JSON in a data line)."""


class StreamInterrupted(ClientError):
    """A stream ended before ``message_stop``.

    ``partial_message`` holds what was accumulated so far (``None`` when not even
    ``message_start`` arrived); its billed input and output tokens so far are in
    ``partial_message.usage``.
    """

    def __init__(
        self,
        message: str,
        *,
        partial_message: MessagesResponseBody | None = None,
        request_id: str | None = None,
    ) -> None:
        self.partial_message = partial_message
        self.request_id = request_id
        super().__init__(message if request_id is None else f"{message} (request_id={request_id})")


class BatchResultsUnavailable(MessagesError):
    """A Message Batch has no results to read (its ``results_url`` is null).

    ``batch_id`` names the batch and ``processing_status`` is the status it had when
    asked (``"in_progress"``, ``"canceling"`` or ``"ended"``).
    """

    def __init__(self, batch_id: str, processing_status: str, reason: str | None = None) -> None:
        self.batch_id = batch_id
        self.processing_status = processing_status
        super().__init__(
            reason
            or f"message batch {batch_id!r} has no results (processing_status={processing_status})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.batch_id, self.processing_status, str(self)))


class BatchNotEnded(BatchResultsUnavailable):
    """The results of a Message Batch were asked for before it ended.

    Wait for it first (``client.wait_for_message_batch(batch_id)``).
    """

    def __init__(self, batch_id: str, processing_status: str, reason: str | None = None) -> None:
        super().__init__(
            batch_id,
            processing_status,
            reason
            or (
                f"message batch {batch_id!r} has not ended yet "
                f"(processing_status={processing_status}): its results are available once "
                "processing_status is 'ended'; see wait_for_message_batch()"
            ),
        )


class BatchWaitTimeout(MessagesError, TimeoutError):
    """``wait_for_message_batch`` gave up: the batch had not ended within ``timeout`` seconds.

    ``batch`` is the last ``MessageBatch`` seen (its ``request_counts`` show progress); the
    batch itself keeps processing on the server.
    """

    def __init__(self, batch_id: str, timeout: float, batch: object = None) -> None:
        self.batch_id = batch_id
        self.timeout = timeout
        self.batch = batch
        super().__init__(
            f"message batch {batch_id!r} did not end within {timeout:g} seconds "
            "(it keeps processing on the server)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.batch_id, self.timeout, self.batch))
