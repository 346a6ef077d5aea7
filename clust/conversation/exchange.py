"""Export and import of one conversation as a JSON document.

The document holds the defaults, metadata and fork origin, every turn as its wire
JSON object, and the usage rows::

    {"format": "clust.conversation", "version": 1, "id": ..., "title": ..., "model": ...,
     "params": {...}, "system": ..., "tools": [...], "metadata": {...},
     "parent_id": ..., "fork_position": ..., "created_at": "...",
     "messages": [{"role": "user", "content": ...}, ...],
     "usage": [{"message_position": 1, "input_tokens": ..., ...}, ...]}

Turns are re-encoded compactly on import, as clust encodes them when it sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from clust.conversation.history import RequestHead, stored_params
from clust.conversation.integrity import imported_turn, stored_turn
from clust.messages.errors import InvalidParameter, StoreError
from clust.messages.storable import check_text
from clust.store import repository as rows
from clust.store.usage_rows import TOKEN_COLUMNS, USAGE_COLUMNS

if TYPE_CHECKING:
    from clust.conversation.conversation import Conversation

__all__ = ["FORMAT", "VERSION", "Imported", "already_there", "export_document", "import_document"]

FORMAT = "clust.conversation"
VERSION = 1

# Not exported: the row's own ids, and a budget's reservation (bookkeeping of
# requests in flight, not usage).
_USAGE_SKIPPED = ("id", "conversation_id", "reserved_input_tokens", "reserved_output_tokens")


def export_document(engine: Engine, conversation: Conversation) -> dict[str, Any]:
    """The document of ``conversation`` (read in one transaction)."""
    with engine.connect() as connection, connection.begin():
        roles, wires, _ = rows.load_turns(connection, conversation.id)
        usage = rows.load_usage(connection, conversation.id)
    messages = [
        stored_turn(conversation.id, position, role, wire)
        for position, (role, wire) in enumerate(zip(roles, wires, strict=True))
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "id": conversation.id,
        "title": conversation.title,
        "model": conversation.model,
        "max_tokens": conversation.max_tokens,
        "params": {k: v for k, v in conversation.params.items() if k != "max_tokens"},
        "system": conversation.system,
        "tools": conversation.tools,
        "metadata": conversation.metadata,
        "parent_id": conversation.parent_id,
        "fork_position": conversation.fork_position,
        "created_at": conversation.created_at.isoformat(),
        "messages": messages,
        "usage": [
            {
                key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in row._mapping.items()
                if key not in _USAGE_SKIPPED
            }
            for row in usage
        ],
    }


@dataclass(frozen=True)
class Imported:
    """A conversation read from a document, checked and ready to be written."""

    head: RequestHead
    metadata: Mapping[str, Any] | None
    title: str | None
    fork_position: int | None
    turns: list[tuple[str, bytes]]
    conversation_id: str | None
    usage: list[dict[str, Any]]


def import_document(document: Mapping[str, Any], *, keep_id: bool) -> Imported:
    """Read and check ``document`` (see the module docstring); nothing is written.

    Every turn must be a message clust could have stored
    (:func:`~clust.conversation.integrity.imported_turn`) and every usage row hold
    the ledger's columns only, token counts as non-negative integers.

    Raises:
        InvalidParameter: naming the field (``messages[3].role``,
            ``usage[0].input_tokens``) and what is allowed.
    """
    if not isinstance(document, Mapping):
        raise InvalidParameter("document", document, f"a {FORMAT!r} document (a mapping)")
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise InvalidParameter(
            "document", document.get("format"), f"a {FORMAT!r} document of version {VERSION}"
        )
    params = document.get("params") or {}
    if not isinstance(params, Mapping):
        raise InvalidParameter("params", params, "an object of request fields")
    # Checked by the body model (InvalidParameter names the field), missing ones too.
    model: Any = document.get("model")
    max_tokens: Any = document.get("max_tokens")
    head = RequestHead.validated(
        model=model,
        max_tokens=max_tokens,
        system=document.get("system"),
        tools=document.get("tools"),
        params=stored_params(params),
    )
    turns: list[tuple[str, bytes]] = []
    for index, message in enumerate(_listed(document, "messages")):
        turns.append(imported_turn(index, message, turns[-1][0] if turns else None))
    roles = [role for role, _ in turns]
    usage = [
        _usage_values(index, entry, roles) for index, entry in enumerate(_listed(document, "usage"))
    ]
    fork_position = document.get("fork_position")
    if fork_position is not None and not _count(fork_position):
        raise InvalidParameter("fork_position", fork_position, "None or an integer >= 0")
    conversation_id = document.get("id")
    if keep_id and not isinstance(conversation_id, str):
        raise InvalidParameter("id", conversation_id, "a conversation id (with keep_id=True)")
    return Imported(
        head,
        metadata=document.get("metadata"),
        title=document.get("title"),
        fork_position=fork_position,
        turns=turns,
        conversation_id=conversation_id if keep_id else None,
        usage=usage,
    )


def _listed(document: Mapping[str, Any], field: str) -> list[Any]:
    found = document.get(field)
    if found is None:
        return []
    if not isinstance(found, list):
        raise InvalidParameter(field, found, "a list")
    return found


def already_there(document: Mapping[str, Any], error: IntegrityError) -> StoreError:
    """The error of an import refused by the database."""
    return StoreError(
        f"conversation {document.get('id')!r} already exists, or a usage row does not "
        f"match its turns: {error.orig}"
    )


# The ledger's columns as an import takes them (``conversation_id`` is the new one's).
_MAX_INT = 2**31 - 1  # the Integer columns' range on PostgreSQL
_COUNTS = frozenset({*TOKEN_COLUMNS, "latency_ms"})
_OPTIONAL_COUNTS = frozenset({"cache_missed_input_tokens"})
_TEXTS = {  # column: (longest, may be null)
    "model": (200, False),
    "request_id": (200, True),
    "stop_reason": (64, True),
    "service_tier": (64, True),
    "message_id": (200, True),
    "cache_miss_reason": (64, True),
    "holder": (64, True),
}
_OUTCOMES = ("reply", "interrupted", "summary", "failed", "unknown")
_COUNT_RANGE = f"an integer 0..{_MAX_INT}"


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_INT


def _usage_values(index: int, entry: Any, roles: list[str]) -> dict[str, Any]:
    """One exported usage row as column values, checked before anything is written:
    known columns only, counts as integers >= 0, texts as strings that fit, a
    ``message_position`` that is an assistant turn of the document."""
    field = f"usage[{index}]"
    if not isinstance(entry, Mapping):
        raise InvalidParameter(field, entry, "a usage row (an object)")
    values = dict(entry)
    values.pop("conversation_id", None)
    values.setdefault("outcome", "reply")
    for key in values:
        if key not in USAGE_COLUMNS:
            raise InvalidParameter(
                f"{field}.{key}", values[key], f"a usage column: {', '.join(USAGE_COLUMNS)}"
            )
    missing = rows.missing_usage_columns(values)
    if missing:
        raise InvalidParameter(field, entry, f"a usage row with {', '.join(missing)}")
    for key, value in values.items():
        optional = key in _OPTIONAL_COUNTS
        if (key in _COUNTS or optional) and not (_count(value) or (optional and value is None)):
            allowed = _COUNT_RANGE + (" or None" if optional else "")
            raise InvalidParameter(f"{field}.{key}", value, allowed)
        if key in _TEXTS:
            longest, nullable = _TEXTS[key]
            if not (value is None and nullable) and not (
                isinstance(value, str)
                and (0 if nullable else 1) <= len(value) <= longest
                and "\x00" not in value
            ):
                allowed = f"a string of at most {longest} characters without NUL"
                raise InvalidParameter(
                    f"{field}.{key}", value, allowed + (" or None" if nullable else "")
                )
            check_text(f"{field}.{key}", value, optional=nullable)
    if values["outcome"] not in _OUTCOMES:
        raise InvalidParameter(f"{field}.outcome", values["outcome"], f"one of {_OUTCOMES}")
    position = values.get("message_position")
    if position is not None and not (
        _count(position) and position < len(roles) and roles[position] == "assistant"
    ):
        raise InvalidParameter(
            f"{field}.message_position", position, "None or the position of an assistant turn"
        )
    for key in ("started_at", "finished_at"):
        value = values[key]
        if isinstance(value, datetime):
            continue
        try:
            values[key] = datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise InvalidParameter(f"{field}.{key}", value, "an ISO 8601 time") from exc
    return values
