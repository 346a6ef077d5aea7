"""Turn a successful HTTP response into a typed result, or a typed decoding error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from clust.messages.errors import ResponseDecodeError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from clust.messages.response import MessagesResponseBody

__all__ = [
    "check_json_content_type",
    "check_stream_content_type",
    "describe_validation_error",
    "parse_json_model",
    "parse_message",
]

ModelT = TypeVar("ModelT", bound="BaseModel")


def check_json_content_type(headers: Mapping[str, str]) -> None:
    """Reject an event stream where a single JSON reply was asked for."""
    content_type = headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        raise ResponseDecodeError(
            "expected a JSON reply but the server sent an event stream",
            request_id=headers.get("request-id"),
        )


def check_stream_content_type(headers: Mapping[str, str]) -> None:
    """Reject anything but an event stream where a stream was asked for."""
    content_type = headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        raise ResponseDecodeError(
            f"expected an event stream but the server sent {content_type or 'no content type'!r}",
            request_id=headers.get("request-id"),
        )


def parse_json_model(model: type[ModelT], headers: Mapping[str, str], content: bytes) -> ModelT:
    """Parse a 2xx JSON body into ``model``; undecodable bodies raise ResponseDecodeError."""
    from pydantic_core import ValidationError  # here: keeps `import clust` light

    check_json_content_type(headers)
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        raise ResponseDecodeError(
            f"could not decode the {model.__name__} reply: {describe_validation_error(exc)}",
            request_id=headers.get("request-id"),
        ) from exc


def describe_validation_error(exc: Exception) -> str:
    """One line naming where a pydantic ``ValidationError`` failed first, and how."""
    from pydantic_core import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def parse_message(headers: Mapping[str, str], content: bytes) -> MessagesResponseBody:
    """Parse a Messages reply and note its ``request-id`` on it."""
    from clust.messages.response import MessagesResponseBody

    message = parse_json_model(MessagesResponseBody, headers, content)
    message._request_id = headers.get("request-id")
    return message
