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

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from clust.conversation.history import RequestHead, stored_params
from clust.messages.errors import InvalidParameter, StoreError
from clust.store import repository as rows

if TYPE_CHECKING:
    from clust.conversation.conversation import Conversation

__all__ = ["FORMAT", "VERSION", "Imported", "already_there", "export_document", "import_document"]

FORMAT = "clust.conversation"
VERSION = 1

_USAGE_SKIPPED = ("id", "conversation_id")


def export_document(engine: Engine, conversation: Conversation) -> dict[str, Any]:
    """The document of ``conversation`` (read in one transaction)."""
    with engine.connect() as connection, connection.begin():
        wires = rows.load_turns(connection, conversation.id).wires
        usage = rows.load_usage(connection, conversation.id)
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
        "messages": [json.loads(wire) for wire in wires],
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
    """Read and check ``document`` (see the module docstring); nothing is written."""
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise InvalidParameter(
            "document", document.get("format"), f"a {FORMAT!r} document of version {VERSION}"
        )
    head = RequestHead.validated(
        model=document["model"],
        max_tokens=document["max_tokens"],
        system=document.get("system"),
        tools=document.get("tools"),
        params=stored_params(document.get("params") or {}),
    )
    turns = []
    for index, message in enumerate(document.get("messages", [])):
        role = message.get("role") if isinstance(message, Mapping) else None
        if role not in ("user", "assistant", "system"):
            raise InvalidParameter(f"messages[{index}].role", role, "'user' or 'assistant'")
        wire = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        turns.append((role, wire))
    usage = [_usage_values(index, entry) for index, entry in enumerate(document.get("usage") or [])]
    return Imported(
        head,
        metadata=document.get("metadata"),
        title=document.get("title"),
        fork_position=document.get("fork_position"),
        turns=turns,
        conversation_id=document["id"] if keep_id else None,
        usage=usage,
    )


def already_there(document: Mapping[str, Any], error: IntegrityError) -> StoreError:
    """The error of an import refused by the database."""
    return StoreError(
        f"conversation {document.get('id')!r} already exists, or a usage row does not "
        f"match its turns: {error.orig}"
    )


def _usage_values(index: int, entry: Any) -> dict[str, Any]:
    """One exported usage row as column values, checked before anything is written."""
    if not isinstance(entry, Mapping):
        raise InvalidParameter(f"usage[{index}]", entry, "a usage row (an object)")
    values = dict(entry)
    values.pop("conversation_id", None)
    values.setdefault("outcome", "reply")
    missing = rows.missing_usage_columns(values)
    if missing:
        raise InvalidParameter(f"usage[{index}]", entry, f"a usage row with {', '.join(missing)}")
    for key in ("started_at", "finished_at"):
        try:
            values[key] = datetime.fromisoformat(str(values[key]))
        except ValueError as exc:
            raise InvalidParameter(
                f"usage[{index}].{key}", values[key], "an ISO 8601 time"
            ) from exc
    return values
