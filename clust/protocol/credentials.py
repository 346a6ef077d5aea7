"""The API key, held in one object that never shows it, and the checks every header
name and value passes before a request is built.

A header value with a newline, a control character or non-ASCII text would fail
inside httpx or h11 with the value in the error text (and in httpcore's DEBUG log),
as the same failure on every retry. These checks refuse it first, saying what is
wrong and where, never quoting the value: it may be a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NoReturn

from clust.messages.errors import (
    CredentialsNotSerializable,
    InvalidApiKey,
    InvalidHeaderValue,
    InvalidParameter,
    MissingCredentials,
)

__all__ = [
    "AuthScheme",
    "Credentials",
    "check_header",
    "check_secret",
    "checked_headers",
    "value_problem",
]

AuthScheme = Literal["bearer", "x-api-key"]

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NAMED = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}


def _character(char: str) -> str:
    named = _NAMED.get(char)
    code = f"U+{ord(char):04X}"
    return f"{named} ({code})" if named else code


def value_problem(value: str, *, tab_inside: bool = True) -> str | None:
    """What makes ``value`` unsendable as a header value, without quoting it; ``None``
    when it is fine. Allowed: printable ASCII (and tabs inside, unless not
    ``tab_inside``), no whitespace at either end."""
    if value.isascii() and value.isprintable() and value == value.strip():
        return None  # the common case, in C
    if not value.strip():
        return "is blank (only whitespace)"
    last = len(value) - 1
    if value[last].isspace():
        return f"ends with {_character(value[last])} at position {last}; strip it"
    if value[0].isspace():
        return f"starts with {_character(value[0])} at position 0; strip it"
    for position, char in enumerate(value):
        if char == "\t" and tab_inside:
            continue
        if not char.isascii():
            return f"contains a non-ASCII character, {_character(char)}, at position {position}"
        if not char.isprintable():
            return f"contains a control character, {_character(char)}, at position {position}"
    return None


def check_header(name: object, value: object) -> None:
    """Raise :class:`~clust.messages.errors.InvalidHeaderValue` unless ``name`` is an
    HTTP token and ``value`` a sendable header value (see :func:`value_problem`)."""
    if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
        shown = "?"  # a long or unreadable name is not quoted: it could be a key by mistake
        if isinstance(name, str) and name.isascii() and name.isprintable() and len(name) <= 40:
            shown = name
        raise InvalidHeaderValue(
            f"headers[{shown!r}]",
            "is not a valid header name",
            "letters, digits and !#$%&'*+-.^_`|~",
        )
    if not isinstance(value, str):
        raise InvalidHeaderValue(f"headers[{name!r}]", f"is a {type(value).__name__}, not a str")
    problem = value_problem(value)
    if problem is not None:
        raise InvalidHeaderValue(f"headers[{name!r}]", problem)


def checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with lower-cased names, each checked by :func:`check_header`."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        check_header(name, value)
        checked[name.lower()] = value
    return checked


def check_secret(secret: object, field: str = "api_key") -> None:
    """Raise :class:`~clust.messages.errors.MissingCredentials` when ``secret`` is
    empty, :class:`~clust.messages.errors.InvalidApiKey` when it could not be sent as
    a header value; ``field`` names where it came from. Neither error holds the key."""
    if not isinstance(secret, str):
        raise InvalidApiKey(field, f"is a {type(secret).__name__}, not a str")
    if not secret:
        raise MissingCredentials(f"{field}: the API key is empty")
    problem = value_problem(secret, tab_inside=False)
    if problem is not None:
        raise InvalidApiKey(
            field, problem, "ASCII without control characters or whitespace at either end"
        )


class Credentials:
    """An API key or bearer token, and how to send it: the one object holding the key.

    Checked when made (:class:`~clust.messages.errors.MissingCredentials` when empty,
    :class:`~clust.messages.errors.InvalidApiKey` when it could not be sent as a
    header, neither naming the key). The secret is only ever exposed through
    :meth:`header`, called as each request is sent; ``repr`` and ``str`` show a
    redacted form and pickling is refused
    (:class:`~clust.messages.errors.CredentialsNotSerializable`).
    """

    __slots__ = ("_scheme", "_secret")

    def __init__(self, secret: str, scheme: AuthScheme = "bearer", *, field: str = "api_key"):
        check_secret(secret, field)
        if scheme not in ("bearer", "x-api-key"):
            raise InvalidParameter("auth_scheme", scheme, "'bearer' or 'x-api-key'")
        self._secret = secret
        self._scheme: AuthScheme = scheme

    @property
    def scheme(self) -> AuthScheme:
        """``"bearer"`` (``authorization: Bearer <key>``) or ``"x-api-key"``."""
        return self._scheme

    @property
    def header_name(self) -> str:
        """The name of the header carrying the secret (lower case)."""
        return "authorization" if self._scheme == "bearer" else "x-api-key"

    def header(self) -> tuple[str, str]:
        """The header name and value carrying the secret."""
        if self._scheme == "bearer":
            return "authorization", f"Bearer {self._secret}"
        return "x-api-key", self._secret

    def __repr__(self) -> str:
        return f"Credentials(scheme={self._scheme!r}, secret='***')"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise CredentialsNotSerializable(
            "the API key is not pickled: give the other process its own "
            "(ANTHROPIC_API_KEY in its environment)"
        )

    def __copy__(self) -> Credentials:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> Credentials:
        return self
