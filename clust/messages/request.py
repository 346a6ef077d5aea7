"""The request body of ``POST /v1/messages``."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from pydantic import ConfigDict, Field, PlainValidator, field_validator, model_validator

from clust.messages._wire import WireModel
from clust.messages.blocks import TextContentBlock
from clust.messages.cache import CacheControl
from clust.messages.config import (
    ContainerParams,
    DiagnosticsParams,
    Metadata,
    OutputConfig,
    ServiceTier,
    Speed,
    StreamOption,
    ThinkingConfig,
    ThinkingType,
)
from clust.messages.errors import InvalidParameter
from clust.messages.message import Message, SystemPrompt
from clust.messages.tools import ToolChoice, ToolUnion
from clust.messages.values import MaxTokens, StopSequence, Temperature, TopK, TopP

__all__ = ["MessagesRequestBody"]


def _stream_flag(value: Any) -> bool:
    if isinstance(value, StreamOption):
        return value.as_bool()
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return StreamOption(value).as_bool()
        except ValueError:
            pass
    raise InvalidParameter("stream", value, "a bool or a StreamOption")


class MessagesRequestBody(WireModel):
    """Everything ``POST /v1/messages`` takes.

    Fields left unset are not sent; a field set to ``None`` is sent as ``null``.
    Unknown keyword arguments are refused (typos fail loudly): pass fields this
    release does not know in ``extra_body``, whose keys are merged at the top level
    of the wire JSON (overriding typed fields of the same name).

    Checked on construction (``InvalidParameter``): ``max_tokens`` within the model's
    maximum when known, ``temperature``/``top_p`` 0..1, ``top_k`` >= 0, non-empty
    ``stop_sequences`` entries and ``messages``, ``thinking.budget_tokens`` >= 1024
    and < ``max_tokens``, a ``tool_choice`` of type ``tool`` names its tool.
    """

    model_config = ConfigDict(extra="forbid")

    model: str
    max_tokens: Annotated[int, MaxTokens]
    messages: list[Message]
    system: Annotated[
        SystemPrompt | str | list[TextContentBlock] | None, Field(union_mode="left_to_right")
    ] = None
    metadata: Metadata | None = None
    stop_sequences: list[Annotated[str, StopSequence]] | None = None
    stream: Annotated[bool | StreamOption, PlainValidator(_stream_flag)] | None = None
    temperature: Annotated[float, Temperature] | None = None
    top_p: Annotated[float, TopP] | None = None
    top_k: Annotated[int, TopK] | None = None
    tools: list[ToolUnion] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    service_tier: ServiceTier | None = None
    cache_control: CacheControl | None = None
    output_config: OutputConfig | None = None
    container: Annotated[str | ContainerParams | None, Field(union_mode="left_to_right")] = None
    inference_geo: str | None = None
    speed: Speed | None = None
    diagnostics: DiagnosticsParams | None = None
    extra_body: dict[str, Any] | None = Field(default=None, exclude=True)

    @field_validator("model")
    @classmethod
    def _check_model(cls, model: str) -> str:
        if not model:
            raise InvalidParameter("model", model, "a non-empty model id")
        return model

    @model_validator(mode="after")
    def _check(self) -> MessagesRequestBody:
        if not self.messages:
            raise InvalidParameter("messages", self.messages, "at least one message")
        MaxTokens(self.max_tokens, self.model)
        thinking = self.thinking
        if (
            thinking is not None
            and thinking.type is ThinkingType.ENABLED
            and thinking.budget_tokens is not None
            and thinking.budget_tokens >= self.max_tokens
        ):
            raise InvalidParameter(
                "thinking.budget_tokens",
                thinking.budget_tokens,
                f"1024..{self.max_tokens - 1} (below max_tokens={self.max_tokens})",
            )
        return self

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready body, ``extra_body`` merged at the top level."""
        wire = self.model_dump(mode="json", exclude_unset=True, by_alias=True)
        if self.extra_body:
            wire.update(pydantic_core.to_jsonable_python(self.extra_body))
        return wire

    def to_json(self) -> bytes:
        """The body as compact UTF-8 JSON bytes, ready to send."""
        if not self.extra_body:
            return self.__pydantic_serializer__.to_json(self, exclude_unset=True, by_alias=True)
        return pydantic_core.to_json(self.to_wire())
