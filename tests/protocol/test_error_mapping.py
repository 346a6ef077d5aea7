"""HTTP error responses and error envelopes map to the typed exceptions."""

from __future__ import annotations

import json
import pickle

import pytest

from clust.messages import errors
from clust.protocol.errors import error_from_envelope, error_from_response

CASES = [
    (400, "invalid_request_error", errors.InvalidRequestError),
    (401, "authentication_error", errors.AuthenticationError),
    (402, "billing_error", errors.BillingError),
    (403, "permission_error", errors.PermissionDeniedError),
    (404, "not_found_error", errors.NotFoundError),
    (408, "request_timeout", errors.RequestTimeoutError),
    (409, "conflict_error", errors.ConflictError),
    (413, "request_too_large", errors.RequestTooLargeError),
    (429, "rate_limit_error", errors.RateLimitError),
    (500, "api_error", errors.InternalServerError),
    (503, "api_error", errors.ServiceUnavailableError),
    (504, "timeout_error", errors.GatewayTimeoutError),
    (529, "overloaded_error", errors.OverloadedError),
    (502, "api_error", errors.InternalServerError),
    (418, "teapot_error", errors.ApiError),
]


def _envelope(error_type: str, message: str = "boom", **details: str) -> bytes:
    error: dict[str, object] = {"type": error_type, "message": message}
    if details:
        error["details"] = details
    return json.dumps({"type": "error", "error": error, "request_id": "req_body"}).encode()


@pytest.mark.parametrize(("status", "error_type", "cls"), CASES)
def test_status_maps_to_class(status: int, error_type: str, cls: type[errors.ApiError]) -> None:
    error = error_from_response(status, {"request-id": "req_header"}, _envelope(error_type))
    assert type(error) is cls
    assert isinstance(error, errors.ApiError)
    assert isinstance(error, errors.MessagesError)
    assert error.status_code == status
    assert error.error_type == error_type
    assert error.message == "boom"
    assert error.request_id == "req_header"  # the header wins over the body
    assert "req_header" in str(error) and str(status) in str(error)


def test_request_id_falls_back_to_body() -> None:
    error = error_from_response(400, {}, _envelope("invalid_request_error"))
    assert error.request_id == "req_body"


def test_error_code_from_details() -> None:
    body = _envelope("invalid_request_error", "taken", error_code="tool_name_conflict")
    error = error_from_response(400, {}, body)
    assert error.error_code == "tool_name_conflict"
    assert "tool_name_conflict" in str(error)


def test_non_json_body_is_kept_as_text() -> None:
    error = error_from_response(502, {"request-id": "r"}, b"<html>Bad gateway</html>")
    assert type(error) is errors.InternalServerError
    assert error.message == "<html>Bad gateway</html>"
    assert error.body == "<html>Bad gateway</html>"
    assert error.error_type is None


def test_empty_body() -> None:
    error = error_from_response(500, {}, b"")
    assert error.message == "(empty body)"


def test_in_stream_error_maps_by_type() -> None:
    envelope = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    error = error_from_envelope(200, envelope, request_id="req_x")
    assert type(error) is errors.OverloadedError
    assert error.status_code == 200 and error.request_id == "req_x"


def test_retry_after_is_carried() -> None:
    error = error_from_response(429, {}, _envelope("rate_limit_error"), retry_after=12.0)
    assert error.retry_after == 12.0
    assert "retry after 12s" in str(error)


def test_errors_pickle_round_trip() -> None:
    error = error_from_response(429, {"request-id": "req_1"}, _envelope("rate_limit_error"))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is errors.RateLimitError
    assert copy.request_id == "req_1" and str(copy) == str(error)
