"""Checks of values the conversation store keeps, made before anything is stored or
sent: text that can be encoded (no lone surrogates), JSON metadata, conversation ids.

A lone surrogate (a code point U+D800..U+DFFF on its own, e.g. ``"\\ud800"``, which
Python strings may hold) has no UTF-8 encoding: no database stores it and the API
refuses it, so it is refused here with :class:`InvalidParameter` naming the field.
NUL characters are fine (the store keeps them, see :mod:`clust.store.nul_text`),
except in a conversation id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from clust.messages.errors import InvalidConversationId, InvalidParameter

__all__ = [
    "MAX_JSON_DEPTH",
    "VALID_TEXT",
    "check_text",
    "checked_conversation_id",
    "checked_metadata",
    "checked_new_id",
    "lone_surrogate",
]

MAX_JSON_DEPTH = 100
"""How deep metadata may nest (objects and arrays within each other)."""

VALID_TEXT = "text without lone surrogates such as '\\ud800' (it cannot be encoded as UTF-8)"

_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def check_text(field: str, value: object, *, optional: bool = False) -> None:
    """Raise :class:`InvalidParameter` unless ``value`` is a string that can be encoded
    (or ``None``, when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidParameter(field, value, "a string" + (" or None" if optional else ""))
    if _has_surrogate(value):
        raise InvalidParameter(field, value, VALID_TEXT)


def lone_surrogate(value: Any) -> str | None:
    """Where the first string (value or object key) holding a lone surrogate is in a
    JSON-like value: ``""`` for ``value`` itself, ``"[0]['text']"`` below it; ``None``
    when there is none."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return path
        elif isinstance(item, Mapping):
            for key, inner in reversed(list(item.items())):
                if isinstance(key, str) and _has_surrogate(key):
                    return path
                stack.append((f"{path}[{key!r}]", inner))
        elif isinstance(item, list | tuple):
            stack.extend(
                (f"{path}[{index}]", inner) for index, inner in reversed(list(enumerate(item)))
            )
    return None


def checked_metadata(metadata: object) -> dict[str, Any]:
    """Conversation metadata checked (a mapping of string keys to JSON values: strings
    that can be encoded, finite numbers, bools, None, lists and dicts with string
    keys, at most :data:`MAX_JSON_DEPTH` deep), as a dict.

    Raises:
        InvalidParameter: naming the field (``metadata['user']``) and what is allowed.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidParameter("metadata", metadata, "a mapping of string keys to JSON values")
    stack: list[tuple[str, object, int]] = [("metadata", metadata, 1)]
    while stack:
        field, value, depth = stack.pop()
        if isinstance(value, Mapping | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise InvalidParameter(
                    field, "<nested deeper>", f"JSON nested at most {MAX_JSON_DEPTH} deep"
                )
            if isinstance(value, list | tuple):
                stack.extend((f"{field}[{n}]", item, depth + 1) for n, item in enumerate(value))
                continue
            for key, item in value.items():
                if not isinstance(key, str) or _has_surrogate(key):
                    allowed = "string keys" if not isinstance(key, str) else VALID_TEXT
                    raise InvalidParameter(f"{field} key", key, allowed)
                stack.append((f"{field}[{key!r}]", item, depth + 1))
        elif isinstance(value, str):
            if _has_surrogate(value):
                raise InvalidParameter(field, value, VALID_TEXT)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidParameter(
                    field, value, "a finite number (JSON has no NaN or infinity)"
                )
        elif not isinstance(value, int | bool) and value is not None:
            raise InvalidParameter(
                field, value, "a JSON value: str, int, float, bool, None, list or dict"
            )
    return dict(metadata)


def checked_conversation_id(conversation_id: object, field: str = "conversation_id") -> str:
    """A conversation id to look up: a string without NUL characters or lone surrogates.

    Raises:
        InvalidConversationId: it is not (no conversation can have it); both a
            :class:`~clust.messages.ConversationNotFound` and an
            :class:`InvalidParameter` naming ``field``.
    """
    if (
        not isinstance(conversation_id, str)
        or "\x00" in conversation_id
        or _has_surrogate(conversation_id)
    ):
        raise InvalidConversationId(field, conversation_id)
    return conversation_id


def checked_new_id(conversation_id: object) -> str:
    """The id of a conversation about to be stored (an import keeping its id): 1..36
    characters, none of them NUL or a lone surrogate.

    Raises:
        InvalidParameter: naming ``id``.
    """
    if not isinstance(conversation_id, str) or not 0 < len(conversation_id) <= 36:
        raise InvalidParameter("id", conversation_id, "a string of 1..36 characters")
    if "\x00" in conversation_id or _has_surrogate(conversation_id):
        raise InvalidParameter("id", conversation_id, "an id without NUL or lone surrogates")
    return conversation_id
