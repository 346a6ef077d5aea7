"""``MessagesRequestBuilder``: a fluent way to assemble a ``MessagesRequestBody``."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

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
)
from clust.messages.errors import InvalidParameter
from clust.messages.message import Message, SystemPrompt
from clust.messages.request import MessagesRequestBody
from clust.messages.tools import ServerToolDefinition, ToolChoice, ToolDefinition
from clust.messages.values import MaxTokens, StopSequence, Temperature, TopK, TopP, UserId

__all__ = ["MessagesRequestBuilder"]


class MessagesRequestBuilder:
    """Collects request fields, then ``build()`` validates them into a body.

    ``MessagesRequestBuilder(ClaudeModel.CLAUDE_SONNET_5_5).max_tokens(1024)
    .message(Message.user("Hi")).build()``. Scalar values are checked as they are
    set; ``build()`` checks the whole body. Each ``build()`` returns a new,
    independent body (values are deep-copied), so building twice gives equal bodies.
    Setting a field to None sends it as ``null``.
    """

    def __init__(self, model: str, max_tokens: int | None = None) -> None:
        self._model = model
        self._messages: list[Message] = []
        self._fields: dict[str, Any] = {}
        if max_tokens is not None:
            self.max_tokens(max_tokens)

    def _set(self, name: str, value: Any) -> MessagesRequestBuilder:
        self._fields[name] = value
        return self

    def model(self, model: str) -> MessagesRequestBuilder:
        """Replace the model (any id string or a ``ClaudeModel``)."""
        self._model = model
        return self

    def messages(self, messages: Iterable[Message]) -> MessagesRequestBuilder:
        """Replace the conversation turns."""
        self._messages = list(messages)
        return self

    def message(self, message: Message) -> MessagesRequestBuilder:
        """Append one turn."""
        self._messages.append(message)
        return self

    def system(
        self, system: SystemPrompt | str | Iterable[TextContentBlock] | None
    ) -> MessagesRequestBuilder:
        """The system prompt: a string, text blocks or a ``SystemPrompt``."""
        if system is not None and not isinstance(system, (SystemPrompt, str)):
            system = SystemPrompt.from_content_blocks(system)
        return self._set("system", system)

    def max_tokens(self, max_tokens: int) -> MessagesRequestBuilder:
        """``max_tokens`` (0 = cache warm-up), checked against the model's limit."""
        return self._set("max_tokens", MaxTokens(max_tokens, self._model))

    def metadata(self, metadata: Metadata | UserId | str | None) -> MessagesRequestBuilder:
        """``metadata``, or just its ``user_id``."""
        if isinstance(metadata, str):
            metadata = Metadata(UserId(metadata))
        return self._set("metadata", metadata)

    def stop_sequences(self, stop_sequences: Iterable[str] | None) -> MessagesRequestBuilder:
        """Replace the stop sequences (each a non-empty string)."""
        value = None if stop_sequences is None else [StopSequence(s) for s in stop_sequences]
        return self._set("stop_sequences", value)

    def stop_sequence(self, stop_sequence: str) -> MessagesRequestBuilder:
        """Append one stop sequence."""
        current = self._fields.get("stop_sequences") or []
        return self._set("stop_sequences", [*current, StopSequence(stop_sequence)])

    def stream(self, stream: bool | StreamOption | None = True) -> MessagesRequestBuilder:
        """``stream`` (sent as a JSON bool)."""
        return self._set("stream", stream)

    def temperature(self, temperature: float | None) -> MessagesRequestBuilder:
        """``temperature`` 0..1 (older models only)."""
        return self._set("temperature", None if temperature is None else Temperature(temperature))

    def top_p(self, top_p: float | None) -> MessagesRequestBuilder:
        """``top_p`` 0..1 (older models only)."""
        return self._set("top_p", None if top_p is None else TopP(top_p))

    def top_k(self, top_k: int | None) -> MessagesRequestBuilder:
        """``top_k`` >= 0 (older models only)."""
        return self._set("top_k", None if top_k is None else TopK(top_k))

    def tools(
        self, tools: Iterable[ToolDefinition | ServerToolDefinition] | None
    ) -> MessagesRequestBuilder:
        """Replace the tool definitions."""
        return self._set("tools", None if tools is None else list(tools))

    def tool(self, tool: ToolDefinition | ServerToolDefinition) -> MessagesRequestBuilder:
        """Append one tool definition."""
        current = self._fields.get("tools") or []
        return self._set("tools", [*current, tool])

    def tool_choice(self, tool_choice: ToolChoice | None) -> MessagesRequestBuilder:
        """``tool_choice`` (``ToolChoice.auto()``, ``.any()``, ``.tool(name)``, ``.none()``)."""
        return self._set("tool_choice", tool_choice)

    def thinking(self, thinking: ThinkingConfig | None) -> MessagesRequestBuilder:
        """``thinking`` (``ThinkingConfig.adaptive()``, ``.enabled(budget)``, ...)."""
        return self._set("thinking", thinking)

    def service_tier(self, service_tier: ServiceTier | None) -> MessagesRequestBuilder:
        """``service_tier``."""
        return self._set("service_tier", service_tier)

    def cache_control(self, cache_control: CacheControl | None) -> MessagesRequestBuilder:
        """Top-level ``cache_control`` (the API marks the last cacheable block)."""
        return self._set("cache_control", cache_control)

    def output_config(self, output_config: OutputConfig | None) -> MessagesRequestBuilder:
        """``output_config`` (effort, structured output format)."""
        return self._set("output_config", output_config)

    def container(self, container: str | ContainerParams | None) -> MessagesRequestBuilder:
        """``container``: an id, or an id and skills."""
        return self._set("container", container)

    def inference_geo(self, inference_geo: str | None) -> MessagesRequestBuilder:
        """``inference_geo`` (e.g. ``"global"``, ``"us"``)."""
        return self._set("inference_geo", inference_geo)

    def speed(self, speed: Speed | None) -> MessagesRequestBuilder:
        """``speed``."""
        return self._set("speed", speed)

    def diagnostics(self, diagnostics: DiagnosticsParams | None) -> MessagesRequestBuilder:
        """``diagnostics`` (``previous_message_id`` explains cache misses)."""
        return self._set("diagnostics", diagnostics)

    def extra_body(self, extra_body: dict[str, Any] | None) -> MessagesRequestBuilder:
        """Replace the fields merged as-is at the top level of the wire JSON."""
        return self._set("extra_body", extra_body)

    def build(self) -> MessagesRequestBody:
        """Validate everything and return a new ``MessagesRequestBody``."""
        if "max_tokens" not in self._fields:
            raise InvalidParameter("max_tokens", None, "a value: call .max_tokens(n) first")
        fields = copy.deepcopy(self._fields)
        fields["messages"] = copy.deepcopy(self._messages)
        return MessagesRequestBody(model=self._model, **fields)
