"""API errors as the fake server answers them: status, ``error.type`` and the JSON envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FakeApiError", "error_envelope"]


class FakeApiError(Exception):
    """An error answer: raised inside the fake, turned into an HTTP error response."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
        self.details: dict[str, Any] | None = dict(details) if details is not None else None

    def envelope(self, request_id: str | None) -> dict[str, Any]:
        """The JSON error body with the given request id."""
        return error_envelope(self.error_type, self.message, request_id, self.details)


def invalid_request(message: str) -> FakeApiError:
    """A 400 ``invalid_request_error``."""
    return FakeApiError(400, "invalid_request_error", message)


def not_found(message: str) -> FakeApiError:
    """A 404 ``not_found_error``."""
    return FakeApiError(404, "not_found_error", message)


def error_envelope(
    error_type: str,
    message: str,
    request_id: str | None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"type":"error","error":{"type","message"[,"details"]},"request_id"}``."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if details is not None:
        error["details"] = dict(details)
    return {"type": "error", "error": error, "request_id": request_id}
