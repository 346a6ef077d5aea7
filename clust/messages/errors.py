"""Every exception clust raises.

``MessagesError`` is the root. Three families hang below it:

- ``InvalidParameter`` / ``StreamOptionMismatch``: bad input, raised before any
  network call.
- ``ApiError`` and its subclasses: the API answered with an error (an HTTP error
  status, or an ``error`` event inside a stream).
- ``ClientError`` and its subclasses: no usable answer came back (connection
  failures, timeouts, undecodable or cut-off responses).

``StoreError`` (the conversation store) and ``ToolError`` (running tools Claude
asked for) each root a family of their own.

No exception here ever holds request headers, so the API key cannot leak through
``str()`` or ``repr()`` of an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clust.messages.response import MessagesResponseBody

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BatchNotEnded",
    "BatchResultsUnavailable",
    "BatchWaitTimeout",
    "BillingError",
    "BudgetExceeded",
    "ClientError",
    "ConflictError",
    "ConnectionFailed",
    "ContextWindowExceeded",
    "ConversationBusy",
    "ConversationNotFound",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidParameter",
    "InvalidRequestError",
    "MessagesError",
    "MissingCredentials",
    "NotFoundError",
    "NothingToRetry",
    "OverloadedError",
    "PendingTurn",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimedOut",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "ResponseDecodeError",
    "ServiceUnavailableError",
    "StoreError",
    "StreamDecodeError",
    "StreamInterrupted",
    "StreamOptionMismatch",
    "ToolError",
    "ToolInputError",
    "ToolTimeout",
    "TurnInBatch",
    "UnknownTool",
]


class MessagesError(Exception):
    """Root of every exception raised by clust."""


class InvalidParameter(MessagesError, ValueError):
    """A value given by the caller is outside what the API accepts.

    Raised before any network call. ``field`` names the parameter, ``value`` is
    what was given and ``allowed`` describes the accepted range.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}={value!r} is invalid: allowed {allowed}")


class MissingCredentials(MessagesError, ValueError):
    """No API key or auth token was given or found in the environment."""


class StreamOptionMismatch(MessagesError, ValueError):
    """The body's ``stream`` field contradicts the method it was given to.

    ``create_a_message`` needs ``stream`` unset or false; ``create_a_message_stream``
    needs it unset or true.
    """


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


class StoreError(MessagesError):
    """The conversation store cannot do what was asked (root of the store's errors)."""


class ConversationNotFound(StoreError, LookupError):
    """No conversation has the given id."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        super().__init__(f"no conversation with id {conversation_id!r}")


class ConversationBusy(StoreError):
    """Another send is in flight on this conversation (in this or another process).

    ``holder`` names the lease holder and ``expires_at`` when its claim runs out
    (a crashed sender's lease simply expires).
    """

    def __init__(self, conversation_id: str, *, expires_at: object = None) -> None:
        self.conversation_id = conversation_id
        self.expires_at = expires_at
        until = "" if expires_at is None else f" (its lease runs until {expires_at})"
        super().__init__(f"conversation {conversation_id!r} has a send in flight{until}")


class PendingTurn(StoreError):
    """The conversation's last turn is a user turn that got no reply yet.

    Happens after a failed or interrupted send: call ``retry(client)`` to send it
    again, or ``discard_pending()`` to drop it.
    """

    def __init__(self, conversation_id: str, position: int) -> None:
        self.conversation_id = conversation_id
        self.position = position
        super().__init__(
            f"conversation {conversation_id!r} has a pending user turn at position {position}: "
            "call retry(client) to resend it or discard_pending() to drop it"
        )


class TurnInBatch(PendingTurn):
    """The conversation's pending user turn was sent in a Message Batch still open.

    Its reply arrives when the batch is collected (``store.collect_batch(client,
    batch_id)``); ``retry``, ``discard_pending`` and new turns wait until then. An
    errored, expired or canceled item leaves the turn pending for ``retry``.
    ``batch_id`` is the API's batch id (the store's own id while it is being submitted).
    """

    def __init__(self, conversation_id: str, position: int, batch_id: str) -> None:
        super().__init__(conversation_id, position)
        self.batch_id = batch_id
        StoreError.__init__(
            self,
            f"conversation {conversation_id!r}: the user turn at position {position} waits "
            f"in message batch {batch_id!r}; collect the batch (store.collect_batch or "
            "`clust batches collect`) before sending, retrying or discarding",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.conversation_id, self.position, self.batch_id))


class NothingToRetry(StoreError):
    """``retry`` was called on a conversation whose last turn already has its reply."""


class ToolError(MessagesError):
    """A tool call Claude asked for could not be carried out (root of the tool errors).

    ``tool_name`` names the tool. ``str()`` of a tool error is written for the model:
    a tool loop sends it back as the text of an ``is_error`` tool result.
    """

    def __init__(self, tool_name: str, message: str) -> None:
        self.tool_name = tool_name
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool_name, str(self)))


class ToolInputError(ToolError, ValueError):
    """Claude's input for a tool does not match the tool's parameters.

    ``problems`` holds one ``"<field>: <what is wrong>"`` line per error, e.g.
    ``"city: Field required"``; the message joins them with ``"; "``.
    """

    def __init__(self, tool_name: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            tool_name, f"invalid input for tool {tool_name!r}: " + "; ".join(self.problems)
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool_name, self.problems))


class ToolTimeout(ToolError):
    """A tool did not finish within its ``timeout`` (seconds)."""

    def __init__(self, tool_name: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(tool_name, f"tool {tool_name!r} did not finish within {timeout:g} seconds")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool_name, self.timeout))


class UnknownTool(ToolError, LookupError):
    """Claude asked for a tool that is not among the tools given to the loop.

    ``available`` lists the names that are.
    """

    def __init__(self, tool_name: str, available: Sequence[str] = ()) -> None:
        self.available = tuple(available)
        known = ", ".join(repr(name) for name in self.available) or "none"
        super().__init__(tool_name, f"unknown tool {tool_name!r}; available tools: {known}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tool_name, self.available))


class BudgetExceeded(StoreError):
    """A request would take spending past a budget; it was not sent and nothing was stored.

    ``scope`` names the budget (``"conversation <id>"`` or ``"metadata user=u-42"``);
    ``limit``, ``spent`` (from the usage ledger) and ``estimate`` (this request at most)
    are USD ``Decimal`` amounts.
    """

    def __init__(self, scope: str, *, limit: object, spent: object, estimate: object) -> None:
        self.scope = scope
        self.limit = limit
        self.spent = spent
        self.estimate = estimate
        super().__init__(
            f"budget of {scope} exceeded: limit ${limit}, spent ${spent}, "
            f"this request up to ${estimate}; nothing was sent"
        )


class ContextWindowExceeded(StoreError):
    """A conversation's next request would not fit the model's context window, and its
    truncation strategy could not (or may not) make it fit: nothing was sent, and the
    new user turn given to the send was not stored (a pending turn being resent stays
    pending).

    Attributes:
        model: the model of the request.
        tokens: the input tokens of the request (``counted``: by the count_tokens
            endpoint; otherwise an estimate).
        counted: whether ``tokens`` is an exact count.
        context_window: the model's context window (input tokens).
        reserved: tokens kept free for the reply (the request's ``max_tokens`` when the
            strategy reserves it, else 0).
        limit: ``context_window - reserved``, the most input tokens allowed.
        detail: what the strategy tried, if anything.
    """

    def __init__(
        self,
        *,
        model: str,
        tokens: int,
        counted: bool,
        context_window: int,
        reserved: int = 0,
        detail: str | None = None,
    ) -> None:
        self.model = model
        self.tokens = tokens
        self.counted = counted
        self.context_window = context_window
        self.reserved = reserved
        self.limit = context_window - reserved
        self.detail = detail
        how = "counted" if counted else "estimated"
        room = f"the context window of {model} is {context_window:,} tokens" + (
            f", {reserved:,} of them reserved for max_tokens: at most {self.limit:,} fit"
            if reserved
            else ""
        )
        text = f"the request needs {tokens:,} input tokens ({how}) but {room}"
        if detail:
            text += f"; {detail}"
        super().__init__(f"{text}; nothing was sent")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_window_error, (self.__dict__.copy(), str(self)))


def _rebuild_window_error(state: dict[str, Any], message: str) -> ContextWindowExceeded:
    error = ContextWindowExceeded.__new__(ContextWindowExceeded)
    error.__dict__.update(state)
    Exception.__init__(error, message)
    return error
