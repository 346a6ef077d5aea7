"""The root of clust's exceptions and the errors of bad input, raised before any
network call. Import them from :mod:`clust.messages.errors`, which holds every
exception clust raises."""

from __future__ import annotations

__all__ = [
    "REDACTED",
    "CredentialsNotSerializable",
    "InvalidApiKey",
    "InvalidFields",
    "InvalidHeaderValue",
    "InvalidParameter",
    "MessagesError",
    "MissingCredentials",
    "StreamOptionMismatch",
]

REDACTED = "<redacted>"
"""What stands for a value an error must not show (an API key, a header value)."""


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


class InvalidHeaderValue(InvalidParameter):
    """A header name or value that cannot be sent (a control character, a newline,
    non-ASCII text, whitespace at either end), refused before any network call.

    The value is never part of the error, since it may be a key: ``value`` is
    ``"<redacted>"`` and the message says what is wrong and where (a position).
    """

    def __init__(self, field: str, problem: str, allowed: str = "") -> None:
        self.field = field
        self.value = REDACTED
        self.allowed = allowed or (
            "printable ASCII without control characters or whitespace at either end"
        )
        self.problem = problem
        Exception.__init__(self, f"{field}: {problem}")

    def __reduce__(self) -> tuple[type[InvalidHeaderValue], tuple[str, str, str]]:
        return type(self), (self.field, self.problem, self.allowed)


class InvalidApiKey(InvalidHeaderValue):
    """The API key or auth token cannot be sent as given (e.g. the trailing newline of
    a key read from a file): refused when the client is built, never sent nor
    retried. The message names the problem and its position, never the key."""


class CredentialsNotSerializable(MessagesError, TypeError):
    """The object holding the API key refuses to be pickled: pass the key to another
    process through its environment (``ANTHROPIC_API_KEY``) instead."""


class InvalidFields(InvalidParameter):
    """A model built by keyword failed validation: an unknown field (a typo such as
    ``temprature=``), a missing one or a value of the wrong type.

    ``field`` is the path of the first failing field (``messages[0].role``), ``value``
    what was given there (``None`` when missing), ``allowed`` what was expected;
    ``problems`` lists every failure as ``"path: what is wrong"``, the message the
    first three. The pydantic error is the ``__cause__``; what the models raise is
    also a pydantic ``ValidationError``, so code catching that keeps working.
    """

    def __init__(
        self, field: str, value: object, allowed: str, problems: tuple[str, ...] = ()
    ) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.problems = problems or (f"{field}: {allowed}",)
        shown = "; ".join(self.problems[:3])
        if len(self.problems) > 3:
            shown += f"; and {len(self.problems) - 3} more"
        Exception.__init__(self, shown)

    def __reduce__(self) -> tuple[type[InvalidFields], tuple[str, object, str, tuple[str, ...]]]:
        return InvalidFields, (self.field, self.value, self.allowed, self.problems)


class StreamOptionMismatch(MessagesError, ValueError):
    """The body's ``stream`` field contradicts the method it was given to.

    ``create_a_message`` needs ``stream`` unset or false; ``create_a_message_stream``
    needs it unset or true.
    """
