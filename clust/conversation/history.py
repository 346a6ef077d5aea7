"""A conversation's history held in memory as wire JSON, and the request built from it.

Turns are kept as the JSON text they were sent as; the next request splices them
into the body, so sending turn N costs the new turn's encoding plus one string join,
never N pydantic objects or a re-read of the stored history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from clust.conversation.caching import CachePolicy
from clust.messages.errors import InvalidParameter
from clust.messages.message import Message, MessageContent
from clust.messages.request import MessagesRequestBody
from clust.messages.response import MessagesResponseBody
from clust.messages.storable import VALID_TEXT, lone_surrogate
from clust.protocol.markers import parse_stored_ttls, stored_ttls
from clust.protocol.request import RequestSpec, spliced_message_request, wire_has_one_hour

__all__ = [
    "History",
    "RequestHead",
    "assistant_wire",
    "merged_user_wire",
    "stored_params",
    "user_wire",
]

# Fields the conversation decides itself: never taken from defaults or overrides.
_RESERVED = frozenset({"messages", "stream"})


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_CONTENT_ALLOWED = "a non-empty string, a content block or a list of them, or a user Message"


def user_wire(content: MessageContent | Message) -> bytes:
    """The wire JSON of a user turn, validated: bad or empty content fails with
    :class:`InvalidParameter` before any I/O (the API refuses empty text, whitespace
    only, and an empty list of blocks)."""
    if not isinstance(content, (str, list, tuple, Mapping, BaseModel)):
        raise InvalidParameter("content", content, _CONTENT_ALLOWED)
    try:
        message = content if isinstance(content, Message) else Message.user(content)
    except ValidationError as error:
        detail = _deepest(error)
        where = ".".join(str(part) for part in detail.get("loc", ()))
        raise InvalidParameter("content", content, f"{detail['msg']} (at {where})") from error
    if message.role.value != "user":
        raise InvalidParameter("content", message.role.value, "a user turn")
    _check_not_empty(message.content)
    try:
        return message.__pydantic_serializer__.to_json(message, exclude_unset=True, by_alias=True)
    except PydanticSerializationError as error:
        raise _unencodable("content", content, message.model_dump()["content"]) from error


def _unencodable(field: str, value: object, dumped: object) -> InvalidParameter:
    """The error of a value that cannot be written as UTF-8 JSON (a lone surrogate)."""
    where = lone_surrogate(dumped)
    if where is None:  # pragma: no cover (serialising validated content fails on text only)
        return InvalidParameter(field, value, "a value that can be written as JSON")
    return InvalidParameter(field + where, value, VALID_TEXT)


def _check_not_empty(content: Any) -> None:
    if isinstance(content, str):
        if not content.strip():
            raise InvalidParameter("content", content, "text with non-whitespace characters")
        return
    if not content:
        raise InvalidParameter("content", content, "at least one content block")
    for index, block in enumerate(content):
        text = getattr(block, "text", None)
        if getattr(block, "type", None) == "text" and isinstance(text, str) and not text.strip():
            raise InvalidParameter(
                f"content[{index}].text", text, "text with non-whitespace characters"
            )


def assistant_wire(response: MessagesResponseBody) -> bytes:
    """The wire JSON of the assistant turn a reply becomes (unknown blocks kept)."""
    blocks = b",".join(
        block.__pydantic_serializer__.to_json(block, exclude_unset=True, by_alias=True)
        for block in response.content
    )
    return b'{"role":"assistant","content":[' + blocks + b"]}"


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content) if isinstance(content, list) else []


def merged_user_wire(lead: bytes, wire: bytes) -> bytes:
    """One user message: the blocks of ``lead`` then those of ``wire`` (both user turns;
    string content becomes a text block). The API would merge two consecutive user
    turns the same way; one message keeps the request's turns alternating."""
    first = json.loads(lead)
    second = json.loads(wire)
    merged = {**second, "content": _blocks(first.get("content")) + _blocks(second.get("content"))}
    return _dumps(merged).encode()


def one_hour_in(wire: bytes) -> bool:
    """Whether a turn's JSON holds a 1-hour cache marker (parsed only if it may)."""
    return b'"1h"' in wire and wire_has_one_hour(json.loads(wire))


class RequestHead:
    """The body fields other than ``messages``: model, max_tokens, system, tools and the
    rest, validated once and kept as the JSON text that is sent (and stored: reopened
    in another process, a conversation sends the same bytes)."""

    __slots__ = ("json", "one_hour", "wire")

    def __init__(self, text: str) -> None:
        self.json = text.encode()
        self.wire: dict[str, Any] = json.loads(text)
        self.one_hour = one_hour_in(self.json)

    @classmethod
    def validated(
        cls,
        *,
        model: str,
        max_tokens: int,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RequestHead:
        """Check the fields as :class:`MessagesRequestBody` would (``InvalidParameter``
        names the field) and keep their wire form."""
        params = dict(params or {})
        for name in _RESERVED & params.keys():
            raise InvalidParameter(
                name, params[name], "no value: the conversation sets messages and stream itself"
            )
        for name in ("model", "max_tokens", "system", "tools"):
            if name in params:
                raise InvalidParameter(name, params[name], f"the {name}= argument, not params")
        fields: dict[str, Any] = {"model": model, "max_tokens": max_tokens, **params}
        if system is not None:
            fields["system"] = system
        if tools is not None:
            fields["tools"] = list(tools)
        # A placeholder turn: the body model checks every field but needs one message.
        try:
            body = MessagesRequestBody(messages=[Message.user(".")], **fields)
        except ValidationError as error:
            raise _invalid_field(error, fields) from error
        wire = body.to_wire()
        del wire["messages"]
        model = wire["model"]
        if "\x00" in model or len(model) > 200:
            raise InvalidParameter("model", model, "a model id of 1..200 characters without NUL")
        text = _dumps(wire)
        try:
            return cls(text)
        except UnicodeEncodeError as error:
            field = next(name for name in wire if lone_surrogate(wire[name]) is not None)
            raise _unencodable(field, fields.get(field), wire[field]) from error

    def with_overrides(self, overrides: Mapping[str, Any]) -> RequestHead:
        """This head with some fields replaced for one call (validated again; the
        fields it sends through ``extra_body`` stay there, and an override's own
        ``extra_body`` is merged over them)."""
        stored = stored_params(self.wire)
        merged = {**stored, **overrides}
        if "extra_body" in stored and "extra_body" in overrides:
            merged["extra_body"] = {**stored["extra_body"], **(overrides["extra_body"] or {})}
        model = merged.pop("model")
        max_tokens = merged.pop("max_tokens")
        system = merged.pop("system", None)
        tools = merged.pop("tools", None)
        return RequestHead.validated(
            model=model, max_tokens=max_tokens, system=system, tools=tools, params=merged
        )


_BODY_FIELDS = frozenset(MessagesRequestBody.model_fields) - {"extra_body"}


def stored_params(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Request fields as a head stores them (``extra_body`` merged at the top level),
    ready to be validated again: the ones the typed body does not know go back into
    ``extra_body``, where they came from."""
    known = {name: value for name, value in fields.items() if name in _BODY_FIELDS}
    extra = {name: value for name, value in fields.items() if name not in _BODY_FIELDS}
    if extra:
        known["extra_body"] = extra
    return known


def _deepest(error: ValidationError) -> Any:
    """The most specific failure of ``error`` (union branches fail at several depths)."""
    return max(error.errors(include_url=False, include_input=False), key=lambda d: len(d["loc"]))


def _invalid_field(error: ValidationError, fields: Mapping[str, Any]) -> InvalidParameter:
    """The ``InvalidParameter`` of a structural failure (unknown field, malformed block)."""
    detail = _deepest(error)
    location = [str(part) for part in detail["loc"]]
    name = location[0] if location else "params"
    if detail["type"] == "extra_forbidden" and len(location) == 1:
        return InvalidParameter(name, fields.get(name), "a request field the API knows")
    where = f" (at {'.'.join(location)})" if len(location) > 1 else ""
    return InvalidParameter(name, fields.get(name), f"{detail['msg']}{where}")


class History:
    """The turns of one conversation as wire JSON (UTF-8 bytes), in position order."""

    __slots__ = ("_markers", "_one_hour_turns", "last_reply", "roles", "wires")

    def __init__(self) -> None:
        self.wires: list[bytes] = []
        self.roles: list[str] = []
        self._one_hour_turns = 0
        # The TTLs of the user's own cache markers in each turn (for the cache policy).
        self._markers: list[tuple[str, ...]] = []
        self.last_reply: tuple[int, str | None] | None = None
        """(position, message id) of the newest assistant turn whose id is known: the
        next request's ``diagnostics.previous_message_id``."""

    def __len__(self) -> int:
        return len(self.wires)

    def extend(
        self,
        roles: Sequence[str],
        wires: Sequence[bytes],
        ttls: Sequence[str | None] | None = None,
    ) -> None:
        """Append turns: their roles, their wire JSON and, when read from the store, the
        TTLs of their cache markers as stored beside them (else found in the JSON)."""
        self.wires.extend(wires)
        self.roles.extend(roles)
        if ttls is None:
            ttls = [stored_ttls(wire) for wire in wires]
        # Histories run to tens of thousands of turns and few hold a marker.
        if ttls.count(None) == len(ttls):
            self._markers.extend(repeat((), len(ttls)))
            return
        added = [parse_stored_ttls(text) for text in ttls]
        self._markers.extend(added)
        self._one_hour_turns += sum(1 for found in added if "1h" in found)

    def append(self, role: str, wire: bytes) -> None:
        """Append one turn."""
        self.extend((role,), (wire,))

    def truncate(self, length: int) -> None:
        """Forget the turns from ``length`` on."""
        del self.wires[length:]
        del self.roles[length:]
        del self._markers[length:]
        if self.last_reply is not None and self.last_reply[0] >= length:
            self.last_reply = None
        self._one_hour_turns = sum(1 for found in self._markers if "1h" in found)

    @property
    def newest_reply(self) -> int | None:
        """The position of the newest assistant turn, or ``None``."""
        roles = self.roles
        for position in range(len(roles) - 1, -1, -1):
            if roles[position] == "assistant":
                return position
        return None

    def _previous_id(self) -> str | None:
        """The newest reply's message id, if it is known (see :attr:`last_reply`)."""
        known = self.last_reply
        if known is None or known[1] is None:
            return None
        return known[1] if known[0] == self.newest_reply else None

    @property
    def last_role(self) -> str | None:
        """The role of the newest turn (``"user"``: a turn waiting for its reply)."""
        return self.roles[-1] if self.roles else None

    def messages(self) -> list[Message]:
        """The turns as typed messages (parsed on each call)."""
        return [Message.model_validate_json(wire) for wire in self.wires]

    def window(self, start: int, lead: bytes | None = None, then: bytes | None = None) -> History:
        """The turns from position ``start`` on, as a history of their own: what a
        context-window strategy sends (:mod:`clust.conversation.window`).

        ``lead`` (a user message's JSON: a summary of the turns before ``start``) is
        merged into the first of them, a user turn, as one user message; ``then`` is a
        user turn appended (not stored: to count a request before sending it). The
        turns' bytes are shared; only the first is re-encoded, and only when merged.
        """
        if start == 0 and lead is None and then is None:
            return self
        view = History()
        view.wires = self.wires[start:]
        view.roles = self.roles[start:]
        view._markers = self._markers[start:]
        view._one_hour_turns = sum(1 for ttls in view._markers if "1h" in ttls)
        if self.last_reply is not None and self.last_reply[0] >= start:
            view.last_reply = (self.last_reply[0] - start, self.last_reply[1])
        if lead is not None and view.wires:
            view.wires[0] = merged_user_wire(lead, view.wires[0])
        if then is not None:
            view.append("user", then)
        return view

    def request(
        self,
        head: RequestHead,
        *,
        stream: bool,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        cache: CachePolicy | None = None,
    ) -> RequestSpec:
        """The request for the next reply: ``head`` with every turn spliced in, and the
        automatic breakpoints of ``cache`` added to the request only (never stored).

        When ``cache`` explains misses and the newest reply's id is known, the request
        asks for ``diagnostics`` (``previous_message_id``), unless the head sets them.
        """
        one_hour = head.one_hour or self._one_hour_turns > 0
        head_json: bytes = head.json
        wires: Sequence[bytes] = self.wires
        if cache is not None:
            placement = cache.place(head.wire, head.json, self.wires, self._markers)
            if placement is not None:
                head_json = placement.head
                wires = [*self.wires[:-1], placement.last]
                one_hour = one_hour or placement.one_hour
            if cache.explain_misses and "diagnostics" not in head.wire:
                previous = self._previous_id()
                if previous is not None:
                    head_json = _with_diagnostics(head_json, previous)
        return spliced_message_request(
            head_json,
            wires,
            one_hour=one_hour,
            stream=stream,
            betas=betas,
            extra_headers=extra_headers,
        )


def _with_diagnostics(head_json: bytes, previous_id: str) -> bytes:
    """``head_json`` asking why the cache missed since the reply ``previous_id``."""
    field = b',"diagnostics":{"previous_message_id":%s}}' % _dumps(previous_id).encode()
    return head_json[:-1] + field
