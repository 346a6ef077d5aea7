"""Text PostgreSQL cannot store as is: the NUL character (U+0000), kept losslessly.

PostgreSQL refuses U+0000 in ``text`` and ``varchar`` values, and in ``jsonb`` even
as the JSON escape ``\\u0000``. SQLite stores it, but its JSON functions cut a path
or an object key at it. So every string that holds a NUL is stored in another form,
the same on both databases, and turned back when read:

- a string with no NUL that does not begin with :data:`MARK` is stored unchanged
  (nearly every string: stored rows stay readable by plain SQL);
- any other string is stored as :data:`MARK` followed by the string with each
  backslash doubled and each NUL written ``\\0``.

``MARK`` is U+FDD0, a Unicode noncharacter: reserved for a program's internal use,
never part of interchanged text. The mapping is one to one, so keys and values match
in queries once the wanted ones are encoded alike (:func:`encode_json`).

Columns holding wire JSON as text (``clust_messages.wire``, ``request_head``,
``clust_tool_calls.result``) need none of this: JSON text writes a NUL as the escape
``\\u0000``, six ASCII characters. The JSON columns (``jsonb`` on PostgreSQL) and the
plain text columns that may hold one (a title, a tool's error text, a tool call's id
and name) use the types below, which encode on the way in and decode on the way out.
Statements run as fixed SQL decode what they read with :func:`decode_text` /
:func:`decode_json`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import JSON, String, Text, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

__all__ = [
    "MARK",
    "NulSafeJson",
    "NulSafeString",
    "NulSafeText",
    "decode_json",
    "decode_text",
    "encode_json",
    "encode_text",
]

MARK = "\ufdd0"
"""The first character of a string stored in encoded form."""

_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def encode_text(text: str) -> str:
    """``text`` as stored: unchanged unless it holds a NUL or begins with :data:`MARK`."""
    if "\x00" not in text and not text.startswith(MARK):
        return text
    return MARK + text.replace("\\", "\\\\").replace("\x00", "\\0")


def _unescape(found: re.Match[str]) -> str:
    return "\x00" if found.group(1) == "0" else found.group(1)


def decode_text(text: str) -> str:
    """The string :func:`encode_text` stored as ``text``."""
    if not text.startswith(MARK):
        return text
    return _ESCAPE.sub(_unescape, text[1:])


def encode_json(value: Any) -> Any:
    """A copy of a JSON value with every string in it (object keys too) encoded."""
    if isinstance(value, str):
        return encode_text(value)
    if isinstance(value, dict):
        return {encode_text(key): encode_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode_json(item) for item in value]
    return value


def decode_json(value: Any) -> Any:
    """The JSON value :func:`encode_json` stored as ``value``."""
    if isinstance(value, str):
        return decode_text(value)
    if isinstance(value, dict):
        return {decode_text(key): decode_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_json(item) for item in value]
    return value


class NulSafeJson(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL (indexable, ``@>`` for metadata filters),
    its strings encoded by :func:`encode_json`."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else encode_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else decode_json(value)


class NulSafeText(TypeDecorator[str]):
    """``text``, its value encoded by :func:`encode_text`."""

    impl: type[String] = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return encode_text(value) if isinstance(value, str) else value

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return decode_text(value) if isinstance(value, str) else value


class NulSafeString(NulSafeText):
    """``varchar(length)``, its value encoded by :func:`encode_text`."""

    impl = String
    cache_ok = True
