"""What is read from the store or imported is checked before it is trusted.

A stored turn is spliced into requests byte for byte, so a row that does not hold
what clust wrote (a turn whose JSON does not decode, is not a message, or whose role
disagrees with its ``role`` column; a request head without ``model``) raises
:class:`~clust.messages.CorruptConversation`, naming the conversation and the
position. ``history`` and ``export`` decode every turn, so they find any such row.
A send checks the turns it reads in O(1) each (:func:`check_turns`: the object and
role clust writes, ``{"role":"<role>",... }``), which refuses a turn of the wrong
role, a truncated one and any other text before anything is sent; decoding them all
there would double the cost of reading a long history (60 -> 124 ms at 10,000
turns). A turn broken only inside is refused by the API; that refusal is then
explained (:func:`corrupt_turn`) and raised as ``CorruptConversation``.

A document given to ``import_conversation`` is checked as strictly as what a send
stores: every turn a message clust could have stored (role ``user`` or
``assistant``, content the message model accepts, a user turn first, no two user
turns in a row, ``tool_use`` only from the assistant and ``tool_result`` only from the
user), re-encoded compactly with ``role`` first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic_core
from pydantic import ValidationError

from clust.conversation.history import History, RequestHead
from clust.messages.errors import CorruptConversation, InvalidParameter
from clust.messages.message import Message

__all__ = [
    "check_turns",
    "corrupt_turn",
    "imported_turn",
    "stored_head",
    "stored_turn",
    "typed_messages",
]

_ROLES = ("user", "assistant")
# Blocks only one side of the conversation may send.
_ASSISTANT_ONLY = frozenset({"tool_use", "server_tool_use", "thinking", "redacted_thinking"})
_USER_ONLY = frozenset({"tool_result"})


def _problem(message: Any, role: str) -> str | None:
    """What is wrong with a decoded stored turn, or ``None``."""
    if not isinstance(message, dict):
        return "is not a JSON object"
    if role not in _ROLES:
        return f"has role {role!r} (allowed: 'user' or 'assistant')"
    if message.get("role") != role:
        return f"says role {message.get('role')!r} in its JSON but {role!r} in its row"
    content = message.get("content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list) or not all(
        isinstance(block, dict) and isinstance(block.get("type"), str) for block in content
    ):
        return "has content that is neither a string nor a list of content blocks"
    return None


def stored_turn(conversation_id: str, position: int, role: str, wire: bytes) -> dict[str, Any]:
    """The stored turn at ``position`` decoded, after checking it is a message of
    ``role`` (its ``role`` column).

    Raises:
        CorruptConversation: it is not.
    """
    try:
        message = pydantic_core.from_json(wire)
    except ValueError as exc:
        raise CorruptConversation(conversation_id, position, f"is not valid JSON ({exc})") from exc
    problem = _problem(message, role)
    if problem is not None:
        raise CorruptConversation(conversation_id, position, problem)
    return message  # type: ignore[no-any-return]


_PREFIXES = {role: b'{"role":"' + role.encode() + b'",' for role in _ROLES}


def check_turns(
    conversation_id: str, start: int, roles: Sequence[str], wires: Sequence[bytes]
) -> None:
    """Check stored turns read from position ``start`` on, in O(1) each: a turn that
    does not begin and end as clust writes one of its role (``{"role":"user",`` ...
    ``}``) is decoded and checked in full (:func:`stored_turn`), which raises
    :class:`~clust.messages.CorruptConversation` if it is corrupt."""
    for offset, wire in enumerate(wires):
        role = roles[offset]
        prefix = _PREFIXES.get(role)
        if prefix is None or not wire.startswith(prefix) or not wire.endswith(b"}"):
            stored_turn(conversation_id, start + offset, role, wire)


def corrupt_turn(
    conversation_id: str, roles: Sequence[str], wires: Sequence[bytes]
) -> CorruptConversation | None:
    """The error for the first of these turns (from position 0) that is corrupt,
    decoding each in full; ``None`` if none is. Asked when the API refuses a request
    (:class:`~clust.messages.InvalidRequestError`): a turn broken inside its JSON
    passes :func:`check_turns`."""
    for position, wire in enumerate(wires):
        try:
            stored_turn(conversation_id, position, roles[position], wire)
            Message.model_validate_json(wire)
        except CorruptConversation as corrupt:
            return corrupt
        except ValidationError as exc:
            detail = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in detail["loc"])
            invalid = CorruptConversation(
                conversation_id, position, f"is not a valid message ({detail['msg']} at {where})"
            )
            invalid.__cause__ = exc
            return invalid
    return None


def stored_head(conversation_id: str, text: str) -> RequestHead:
    """A conversation's stored request head, checked: a JSON object with a ``model``
    (a non-empty string) and ``max_tokens`` (an integer >= 1).

    Raises:
        CorruptConversation: it is not (position ``None``).
    """
    try:
        head = RequestHead(text)  # decodes it, once
    except (TypeError, ValueError) as exc:
        raise CorruptConversation(conversation_id, None, "is not valid JSON") from exc
    wire: Any = head.wire
    if not isinstance(wire, dict):
        raise CorruptConversation(conversation_id, None, "is not a JSON object")
    model = wire.get("model")
    if not isinstance(model, str) or not model:
        raise CorruptConversation(conversation_id, None, f"has no model (model={model!r})")
    max_tokens = wire.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise CorruptConversation(
            conversation_id, None, f"has no valid max_tokens (max_tokens={max_tokens!r})"
        )
    return head


def typed_messages(conversation_id: str, history: History) -> list[Message]:
    """The turns of ``history`` as typed messages.

    Raises:
        CorruptConversation: a turn the message model refuses (naming its position).
    """
    found = []
    for position, wire in enumerate(history.wires):
        try:
            found.append(Message.model_validate_json(wire))
        except ValidationError as exc:
            detail = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in detail["loc"])
            raise CorruptConversation(
                conversation_id, position, f"is not a valid message ({detail['msg']} at {where})"
            ) from exc
    return found


def _block_types(content: Any) -> set[Any]:
    if not isinstance(content, list):
        return set()
    return {block.get("type") for block in content if isinstance(block, dict)}


def _not_empty(field: str, content: Any) -> None:
    """The API refuses an empty user turn: no text, whitespace only, or no blocks."""
    if isinstance(content, str):
        if not content.strip():
            raise InvalidParameter(field, content, "text with non-whitespace characters")
        return
    if not content:
        raise InvalidParameter(field, content, "at least one content block")
    for index, block in enumerate(content):
        text = block.get("text") if isinstance(block, dict) else None
        if block.get("type") == "text" and isinstance(text, str) and not text.strip():
            raise InvalidParameter(
                f"{field}[{index}].text", text, "text with non-whitespace characters"
            )


def imported_turn(index: int, message: Any, previous: str | None) -> tuple[str, bytes]:
    """``messages[index]`` of an imported document, checked, as ``(role, wire JSON)``;
    ``previous``: the role of the turn before it (``None``: it is the first).

    Raises:
        InvalidParameter: naming the field and what is allowed.
    """
    field = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise InvalidParameter(field, message, "a message object {'role': ..., 'content': ...}")
    role = message.get("role")
    if role not in _ROLES:
        raise InvalidParameter(f"{field}.role", role, "'user' or 'assistant'")
    unknown = sorted(str(key) for key in message if key not in ("role", "content"))
    if unknown:
        raise InvalidParameter(
            f"{field}.{unknown[0]}", message[unknown[0]], "only role and content"
        )
    if previous is None and role != "user":
        raise InvalidParameter(f"{field}.role", role, "'user' (a conversation starts with one)")
    if previous == "user" and role == "user":
        raise InvalidParameter(f"{field}.role", role, "'assistant' (a user turn was before it)")
    content = message.get("content")
    try:
        Message.model_validate({"role": role, "content": content})
    except ValidationError as exc:
        raise InvalidParameter(
            f"{field}.content", content, "a string or a list of content blocks"
        ) from exc
    types = _block_types(content)
    misplaced = types & (_ASSISTANT_ONLY if role == "user" else _USER_ONLY)
    if misplaced:
        raise InvalidParameter(
            f"{field}.content", content, f"no {sorted(misplaced)[0]} block in a {role} turn"
        )
    if role == "user":
        _not_empty(f"{field}.content", content)
    try:
        wire = json.dumps(
            {"role": role, "content": content},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        return role, wire.encode()
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError: a lone surrogate
        raise InvalidParameter(
            f"{field}.content", content, "JSON values only, text encodable as UTF-8"
        ) from exc
