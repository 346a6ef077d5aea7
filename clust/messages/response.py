"""The response of ``POST /v1/messages`` (a Message object) and its usage.

Every model here keeps unknown fields, and ``stop_reason`` keeps a value this
release does not know as its plain string, so a response from a newer API parses
and dumps back unchanged. ``MessagesResponseBody.model_validate_json`` is the
client's hot path: it runs entirely in pydantic's Rust core for known blocks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PrivateAttr

from clust.messages._wire import WireEnum, WireModel
from clust.messages.blocks import ContentBlock, TextContentBlock, ToolUseContentBlock
from clust.messages.message import Message, Role

__all__ = [
    "CacheCreation",
    "CacheMissReason",
    "Container",
    "ContainerSkill",
    "Diagnostics",
    "MessagesResponseBody",
    "OutputTokensDetails",
    "ServerToolUsage",
    "StopDetails",
    "StopReason",
    "StopReasonValue",
    "Usage",
]


class StopReason(WireEnum):
    """Why the model stopped. Unknown values are kept as plain strings."""

    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    PAUSE_TURN = "pause_turn"
    REFUSAL = "refusal"
    MODEL_CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"
    COMPACTION = "compaction"


StopReasonValue = Annotated[StopReason | str, Field(union_mode="left_to_right")]
"""A ``StopReason``, or the raw string of a value this release does not know."""


class StopDetails(WireModel):
    """``stop_details``: ``{"type": "refusal", "category": ..., "explanation": ...}``."""

    type: str
    category: str | None = None
    explanation: str | None = None


class ContainerSkill(WireModel):
    """A skill loaded in the container."""

    skill_id: str
    type: str
    version: str


class Container(WireModel):
    """The code-execution container used by the request.

    ``expires_at`` is kept as the RFC 3339 string received.
    """

    id: str
    expires_at: str
    skills: list[ContainerSkill] | None = None


class CacheMissReason(WireModel):
    """Why the prompt cache missed (``model_changed``, ``system_changed``, ...)."""

    type: str
    cache_missed_input_tokens: int | None = None


class Diagnostics(WireModel):
    """``diagnostics`` (when the request asked for it)."""

    cache_miss_reason: CacheMissReason | None = None


class CacheCreation(WireModel):
    """Cache writes split by TTL."""

    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class ServerToolUsage(WireModel):
    """Server tool calls billed for this request."""

    web_search_requests: int = 0
    web_fetch_requests: int = 0


class OutputTokensDetails(WireModel):
    """Breakdown of ``output_tokens``."""

    thinking_tokens: int = 0


class Usage(WireModel):
    """Token usage. The full prompt size is ``total_input_tokens``."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: CacheCreation | None = None
    server_tool_use: ServerToolUsage | None = None
    service_tier: str | None = None
    output_tokens_details: OutputTokensDetails | None = None
    inference_geo: str | None = None
    speed: str | None = None

    @property
    def total_input_tokens(self) -> int:
        """``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``."""
        return (
            self.input_tokens
            + (self.cache_creation_input_tokens or 0)
            + (self.cache_read_input_tokens or 0)
        )


class MessagesResponseBody(WireModel):
    """A Message object: the reply of ``POST /v1/messages``.

    ``content[i]`` are typed blocks (``response.content[0].text`` for a text block);
    ``text()`` joins every text block. ``request_id`` is the ``request-id`` header of
    the HTTP response that carried it (not part of the wire JSON).
    """

    id: str
    type: Literal["message"] = "message"
    role: Role
    model: str
    content: list[ContentBlock]
    stop_reason: StopReasonValue | None = None
    stop_sequence: str | None = None
    stop_details: StopDetails | None = None
    container: Container | None = None
    diagnostics: Diagnostics | None = None
    usage: Usage

    _request_id: str | None = PrivateAttr(default=None)

    @property
    def request_id(self) -> str | None:
        """The ``request-id`` response header, when the message came from the API."""
        return self._request_id

    def text(self) -> str:
        """All text blocks joined, in order, with no separator."""
        return "".join(block.text for block in self.content if isinstance(block, TextContentBlock))

    def tool_uses(self) -> list[ToolUseContentBlock]:
        """The client tool calls the model asked for, in order."""
        return [block for block in self.content if isinstance(block, ToolUseContentBlock)]

    def to_message(self) -> Message:
        """This reply as an assistant turn, to append to the conversation history."""
        return Message(role=self.role, content=list(self.content))
