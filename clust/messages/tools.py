"""Tool definitions (custom and server tools) and ``tool_choice``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Discriminator, StrictBool, Tag, field_validator, model_validator

from clust.messages._wire import WireEnum, WireModel
from clust.messages.cache import CacheControl
from clust.messages.errors import InvalidParameter

__all__ = [
    "ServerToolDefinition",
    "ToolChoice",
    "ToolChoiceType",
    "ToolDefinition",
    "ToolUnion",
]

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")


class ToolDefinition(WireModel):
    """A custom (client-executed) tool.

    ``input_schema`` is a JSON Schema object (``"type": "object"``). The name must
    be 1..128 of ``a-z A-Z 0-9 _ -`` (older models allow 64).
    """

    name: str
    description: str | None = None
    input_schema: dict[str, Any]
    cache_control: CacheControl | None = None
    type: str | None = None
    strict: StrictBool | None = None
    defer_loading: StrictBool | None = None
    allowed_callers: list[str] | None = None
    eager_input_streaming: StrictBool | None = None
    input_examples: list[dict[str, Any]] | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _TOOL_NAME.fullmatch(name):
            raise InvalidParameter("tools.name", name, "1..128 characters of a-z A-Z 0-9 _ -")
        return name

    @classmethod
    def new(
        cls,
        name: str,
        description: str | None = None,
        input_schema: dict[str, Any] | None = None,
        *,
        cache_control: CacheControl | None = None,
    ) -> ToolDefinition:
        """A custom tool; the schema defaults to ``{"type": "object", "properties": {}}``."""
        schema = {"type": "object", "properties": {}} if input_schema is None else input_schema
        fields: dict[str, Any] = {"name": name, "input_schema": schema}
        if description is not None:
            fields["description"] = description
        if cache_control is not None:
            fields["cache_control"] = cache_control
        return cls(**fields)


class ServerToolDefinition(WireModel):
    """A server or built-in tool: ``{"type": "<name>_<yyyymmdd>", "name": ..., **options}``.

    Options (``max_uses``, ``allowed_domains``, ``user_location``, ...) are passed as
    extra keywords and sent as given: ``ServerToolDefinition(type="web_search_20260318",
    name="web_search", max_uses=3)``. Toolsets have no ``name``.
    """

    type: str
    name: str | None = None
    cache_control: CacheControl | None = None

    @classmethod
    def new(cls, type: str, name: str | None = None, **options: Any) -> ServerToolDefinition:
        """A server tool of ``type`` with its fixed ``name`` and options."""
        if name is not None:
            options["name"] = name
        return cls(type=type, **options)


def _tool_kind(value: Any) -> str:
    if isinstance(value, ToolDefinition):
        return "custom"
    if isinstance(value, ServerToolDefinition):
        return "server"
    kind = value.get("type") if isinstance(value, dict) else None
    return "custom" if kind is None or kind == "custom" else "server"


ToolUnion = Annotated[
    Annotated[ToolDefinition, Tag("custom")] | Annotated[ServerToolDefinition, Tag("server")],
    Discriminator(_tool_kind),
]
"""An entry of ``tools``: a custom tool (no ``type`` or ``"custom"``) or a server tool."""


class ToolChoiceType(WireEnum):
    """How the model may use tools."""

    AUTO = "auto"
    ANY = "any"
    TOOL = "tool"
    NONE = "none"


class ToolChoice(WireModel):
    """``tool_choice``: ``auto`` | ``any`` | ``tool`` (with ``name``) | ``none``.

    ``disable_parallel_tool_use=True`` (not with ``none``) allows at most one tool call.
    """

    type: ToolChoiceType
    name: str | None = None
    disable_parallel_tool_use: StrictBool | None = None

    @model_validator(mode="after")
    def _check(self) -> ToolChoice:
        if self.type is ToolChoiceType.TOOL:
            if not self.name:
                raise InvalidParameter(
                    "tool_choice.name", self.name, "a tool name when tool_choice.type is 'tool'"
                )
        elif self.name is not None:
            raise InvalidParameter("tool_choice.name", self.name, "only with type 'tool'")
        if self.type is ToolChoiceType.NONE and self.disable_parallel_tool_use is not None:
            raise InvalidParameter(
                "tool_choice.disable_parallel_tool_use",
                self.disable_parallel_tool_use,
                "only with type 'auto', 'any' or 'tool'",
            )
        return self

    @classmethod
    def _make(
        cls, type: ToolChoiceType, name: str | None, disable_parallel_tool_use: bool | None
    ) -> ToolChoice:
        fields: dict[str, Any] = {"type": type}
        if name is not None:
            fields["name"] = name
        if disable_parallel_tool_use is not None:
            fields["disable_parallel_tool_use"] = disable_parallel_tool_use
        return cls(**fields)

    @classmethod
    def auto(cls, *, disable_parallel_tool_use: bool | None = None) -> ToolChoice:
        """The model decides whether to call tools (the default when tools are given)."""
        return cls._make(ToolChoiceType.AUTO, None, disable_parallel_tool_use)

    @classmethod
    def any(cls, *, disable_parallel_tool_use: bool | None = None) -> ToolChoice:
        """The model must call some tool."""
        return cls._make(ToolChoiceType.ANY, None, disable_parallel_tool_use)

    @classmethod
    def tool(cls, name: str, *, disable_parallel_tool_use: bool | None = None) -> ToolChoice:
        """The model must call the tool ``name``."""
        return cls._make(ToolChoiceType.TOOL, name, disable_parallel_tool_use)

    @classmethod
    def none(cls) -> ToolChoice:
        """The model must not call tools."""
        return cls._make(ToolChoiceType.NONE, None, None)
