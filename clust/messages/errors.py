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

The root and the bad-input errors are defined in :mod:`clust.messages.base_errors`,
the API's and the client's in :mod:`clust.messages.client_errors`, the store's and
the tools' here; every one of them is importable from this module.

No exception here ever holds request headers, so the API key cannot leak through
``str()`` or ``repr()`` of an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clust.messages.base_errors import (
    CredentialsNotSerializable,
    InvalidApiKey,
    InvalidFields,
    InvalidHeaderValue,
    InvalidParameter,
    MessagesError,
    MissingCredentials,
    StreamOptionMismatch,
)
from clust.messages.client_errors import (
    ApiError,
    AuthenticationError,
    BatchNotEnded,
    BatchResultsUnavailable,
    BatchWaitTimeout,
    BillingError,
    ClientError,
    ConflictError,
    ConnectionFailed,
    GatewayTimeoutError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimedOut,
    RequestTimeoutError,
    RequestTooLargeError,
    ResponseDecodeError,
    ServiceUnavailableError,
    StreamDecodeError,
    StreamInterrupted,
)

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
    "ConversationDeleted",
    "ConversationNotFound",
    "CorruptConversation",
    "CredentialsNotSerializable",
    "DatabaseDriverMissing",
    "DatabaseFull",
    "DatabaseReadOnly",
    "DatabaseUnavailable",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidApiKey",
    "InvalidConversationId",
    "InvalidFields",
    "InvalidHeaderValue",
    "InvalidParameter",
    "InvalidRequestError",
    "LeaseLost",
    "MessagesError",
    "MissingCredentials",
    "NotFoundError",
    "NothingToRetry",
    "OverloadedError",
    "PendingTurn",
    "PermissionDeniedError",
    "RateLimitError",
    "ReplyNotStored",
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
    "UnansweredToolCalls",
    "UnknownTool",
    "WrongClient",
]


class StoreError(MessagesError):
    """The conversation store cannot do what was asked (root of the store's errors)."""


class ConversationNotFound(StoreError, LookupError):
    """No conversation has the given id."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        super().__init__(f"no conversation with id {conversation_id!r}")


class InvalidConversationId(ConversationNotFound, InvalidParameter):
    """The id given cannot name a conversation: not a string, or holding a NUL character
    or a lone surrogate. No conversation has it (a :class:`ConversationNotFound`), and
    it is bad input (an :class:`InvalidParameter` naming ``field``); nothing is read."""

    def __init__(self, field: str, conversation_id: Any) -> None:
        self.conversation_id = conversation_id
        self.field = field
        self.value = conversation_id
        self.allowed = "a conversation id: a string without NUL characters or lone surrogates"
        MessagesError.__init__(
            self, f"{field}={conversation_id!r} is invalid: allowed {self.allowed}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.conversation_id))


class ConversationBusy(StoreError):
    """Another send is in flight on this conversation (in this or another process), or
    a sender of another process waits for it and has reserved the next turn.

    ``holder`` names the lease holder (``None`` when not known) and ``expires_at``
    when its claim runs out unless its holder renews it; a holder that died stops
    renewing, so its lease runs out within the store's ``lease_seconds``. An operator
    can break it at once: ``store.break_lease(id)`` or ``clust conversations
    break-lease ID``.
    """

    def __init__(
        self, conversation_id: str, *, expires_at: object = None, holder: str | None = None
    ) -> None:
        self.conversation_id = conversation_id
        self.expires_at = expires_at
        self.holder = holder
        who = "" if holder is None else f" by {holder}"
        until = "" if expires_at is None else f" (its lease runs until {expires_at})"
        super().__init__(f"conversation {conversation_id!r} has a send in flight{who}{until}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_busy, (self.conversation_id, self.expires_at, self.holder))


def _busy(conversation_id: str, expires_at: object, holder: str | None) -> ConversationBusy:
    return ConversationBusy(conversation_id, expires_at=expires_at, holder=holder)


class LeaseLost(StoreError):
    """This send's lease on the conversation was lost before its reply was stored (it
    ran out, or an operator broke it, and another send may have taken the conversation).

    Nothing of the reply is stored as a turn; what the API billed for it is in the
    ledger. The conversation is not stuck: ``refresh()`` and send again (or
    ``retry``, if the user turn is still pending).
    """

    def __init__(self, conversation_id: str, detail: str = "") -> None:
        self.conversation_id = conversation_id
        self.detail = detail
        more = f": {detail}" if detail else ""
        super().__init__(
            f"conversation {conversation_id!r}: this send lost its lease before the reply "
            f"was stored{more}; the reply is not stored (its usage is recorded)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.conversation_id, self.detail))


class ConversationDeleted(ConversationNotFound):
    """The conversation was deleted while a send was in flight: the reply is not stored
    (its usage is recorded, as usage rows outlive their conversation)."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        StoreError.__init__(
            self,
            f"conversation {conversation_id!r} was deleted while a send was in flight; "
            "the reply is not stored (its usage is recorded)",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.conversation_id,))


class CorruptConversation(StoreError):
    """A stored conversation's rows do not hold what clust wrote: a turn whose JSON
    does not decode, is not a message, or whose role disagrees with its ``role``
    column, or a request head without its fields. No request is built from it (a
    turn broken only inside its JSON is found when the API refuses the request).

    ``position`` is the turn's (``None``: the conversation's request head).
    """

    def __init__(self, conversation_id: str, position: int | None, detail: str) -> None:
        self.conversation_id = conversation_id
        self.position = position
        self.detail = detail
        if position is None:
            where, fix = "its request head", "repair that row"
        else:
            where = f"the turn at position {position}"
            fix = f"repair that row, or fork the turns before it: store.fork(conv, {position})"
        super().__init__(
            f"conversation {conversation_id!r} is corrupt: {where} {detail}; "
            f"it cannot be sent: {fix}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.conversation_id, self.position, self.detail))


class WrongClient(MessagesError, TypeError):
    """A sync ``Client`` was given to an async method (``asend``, ``astream``, ...) or an
    ``AsyncClient`` to a sync one; raised before anything is stored or sent."""

    def __init__(self, method: str, given: str, expected: str) -> None:
        self.method = method
        self.given = given
        self.expected = expected
        super().__init__(f"{method}() needs {expected}, got {given}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.method, self.given, self.expected))


class UnansweredToolCalls(InvalidParameter, StoreError):
    """The last reply asked for tool calls that have no ``tool_result`` yet, so a new
    user turn without their results would be refused by the API.

    ``tool_use_ids`` lists them. Go on with ``run(client, tools=...)`` (runs them),
    send their ``tool_result`` blocks as the content, or pass
    ``abandon_tool_calls=True`` to ``send``/``stream``, which answers them with error
    results saying they were not run.
    """

    def __init__(self, conversation_id: str, tool_use_ids: Sequence[str]) -> None:
        self.conversation_id = conversation_id
        self.tool_use_ids = list(tool_use_ids)
        # An InvalidParameter of ``content`` too: the content given is what is refused.
        self.field = "content"
        self.value = None
        self.allowed = "the tool_result blocks of the last reply's tool calls"
        MessagesError.__init__(
            self,
            f"conversation {conversation_id!r}: the last reply's tool calls "
            f"({', '.join(self.tool_use_ids)}) have no results; call run(client, tools=...) "
            "to run them, send their tool_result blocks, or send with "
            "abandon_tool_calls=True to answer them as not run",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.conversation_id, self.tool_use_ids))


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


class DatabaseUnavailable(StoreError):
    """The database cannot be reached: connecting failed (the server is stopped or
    restarting, a wrong host or port, refused credentials, an SQLite file that cannot
    be opened) or an open connection was lost.

    ``in_doubt``: the connection was lost after a write was sent, so it may have been
    applied. A turn's database steps are tried again over reconnects for
    ``reconnect_seconds`` (``Store(reconnect_seconds=...)``) before this is raised
    (those in doubt only when they can tell whether they were applied).
    """

    def __init__(self, message: str, in_doubt: bool = False, reconnect_seconds: float = 0.0):
        self.in_doubt = in_doubt
        self.reconnect_seconds = reconnect_seconds
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.in_doubt, self.reconnect_seconds))


class DatabaseReadOnly(StoreError):
    """A write was refused because the database is read-only for this process (an
    SQLite file or directory without write permission, a PostgreSQL standby).
    Reading still works."""


class DatabaseFull(StoreError):
    """The database's disk is full: the write was not applied."""


class DatabaseDriverMissing(StoreError):
    """The database driver the URL names is not installed (for PostgreSQL:
    ``pip install 'psycopg[binary]'`` and a ``postgresql+psycopg://`` URL)."""


class ReplyNotStored(StoreError):
    """A reply the API billed could not be stored: the database stayed away past
    ``reconnect_seconds``, or refused the write. Nothing of it is lost: ``reply`` is
    the reply (a ``MessagesResponseBody``), ``usage`` what it was billed, and
    ``advice`` (part of the message) says how the conversation goes on.

    ``position`` is where the reply belongs in conversation ``conversation_id``.
    """

    def __init__(self, conversation_id: str, position: int, reply: Any, advice: str) -> None:
        self.conversation_id = conversation_id
        self.position = position
        self.reply = reply
        self.advice = advice
        super().__init__(
            f"conversation {conversation_id!r}: the reply for position {position} was "
            f"billed but is not stored ({advice}); it is kept in this error's .reply "
            "and .usage"
        )

    @property
    def usage(self) -> Any:
        """The reply's usage (what the API billed for it)."""
        return getattr(self.reply, "usage", None)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.conversation_id, self.position, self.reply, self.advice))


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
