"""Map an API error (HTTP error response or in-stream ``error`` event) to its exception."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from clust.messages.errors import (
    ApiError,
    AuthenticationError,
    BillingError,
    ConflictError,
    GatewayTimeoutError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    RequestTooLargeError,
    ServiceUnavailableError,
)

__all__ = ["api_error_class", "error_from_envelope", "error_from_response"]

_CLASS_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: BillingError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    413: RequestTooLargeError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
    529: OverloadedError,
}

_CLASS_BY_TYPE: dict[str, type[ApiError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "billing_error": BillingError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "conflict_error": ConflictError,
    "request_too_large": RequestTooLargeError,
    "rate_limit_error": RateLimitError,
    "api_error": InternalServerError,
    "timeout_error": GatewayTimeoutError,
    "overloaded_error": OverloadedError,
}


def api_error_class(status_code: int, error_type: str | None) -> type[ApiError]:
    """The exception class for an error status and ``error.type``.

    The HTTP status decides when it is an error status with a class of its own
    (as the official SDK does); otherwise (an in-stream error arrives with status
    200, or an unusual status) the error type decides; otherwise any 5xx is an
    ``InternalServerError`` and anything else the generic ``ApiError``.
    """
    cls = _CLASS_BY_STATUS.get(status_code)
    if cls is not None:
        return cls
    if error_type is not None:
        cls = _CLASS_BY_TYPE.get(error_type)
        if cls is not None:
            return cls
    return InternalServerError if status_code >= 500 else ApiError


def error_from_envelope(
    status_code: int,
    envelope: object,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> ApiError:
    """Build the typed error for a parsed error envelope (or any other JSON body).

    ``request_id`` from the response header wins over the one in the body.
    """
    error_type: str | None = None
    message: str | None = None
    error_code: str | None = None
    if isinstance(envelope, Mapping):
        detail = envelope.get("error")
        if isinstance(detail, Mapping):
            raw_type = detail.get("type")
            error_type = raw_type if isinstance(raw_type, str) else None
            raw_message = detail.get("message")
            message = raw_message if isinstance(raw_message, str) else None
            details = detail.get("details")
            if isinstance(details, Mapping):
                code = details.get("error_code")
                error_code = code if isinstance(code, str) else None
        body_request_id = envelope.get("request_id")
        if request_id is None and isinstance(body_request_id, str):
            request_id = body_request_id
    if message is None:
        message = _short(json.dumps(envelope)) if envelope is not None else "(empty body)"
    cls = api_error_class(status_code, error_type)
    return cls(
        status_code=status_code,
        error_type=error_type,
        message=message,
        request_id=request_id,
        retry_after=retry_after,
        error_code=error_code,
        body=envelope,
    )


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    retry_after: float | None = None,
) -> ApiError:
    """Build the typed error for an HTTP error response.

    A body that is not JSON (a proxy's HTML page, say) is kept as text: it becomes
    both ``body`` and ``message``.
    """
    request_id = headers.get("request-id")
    body: Any
    try:
        body = json.loads(content) if content else None
    except ValueError:
        text = content.decode("utf-8", errors="replace")
        cls = api_error_class(status_code, None)
        return cls(
            status_code=status_code,
            error_type=None,
            message=_short(text) or "(empty body)",
            request_id=request_id,
            retry_after=retry_after,
            body=text,
        )
    return error_from_envelope(status_code, body, request_id=request_id, retry_after=retry_after)


def _short(text: str, limit: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."
