"""The root of clust's exceptions and the errors of bad input, raised before any
network call. Import them from :mod:`clust.messages.errors`, which holds every
exception clust raises."""

from __future__ import annotations

__all__ = ["InvalidParameter", "MessagesError", "MissingCredentials", "StreamOptionMismatch"]


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
