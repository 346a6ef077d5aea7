"""Request options: thinking, output, metadata, container, diagnostics, tier, speed, stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from clust.messages._wire import WireEnum, WireModel
from clust.messages.errors import InvalidParameter
from clust.messages.values import UserId

__all__ = [
    "ContainerParams",
    "DiagnosticsParams",
    "Effort",
    "Metadata",
    "OutputConfig",
    "OutputFormat",
    "ServiceTier",
    "SkillParams",
    "Speed",
    "StreamOption",
    "ThinkingConfig",
    "ThinkingDisplay",
    "ThinkingType",
]

MIN_THINKING_BUDGET = 1024


class StreamOption(WireEnum):
    """Whether the response comes back at once or as a stream.

    The body's ``stream`` field accepts a bool or a ``StreamOption`` and is always
    sent as a JSON bool.
    """

    RETURN_ONCE = "return_once"
    RETURN_STREAM = "return_stream"

    def as_bool(self) -> bool:
        """The wire value of ``stream``."""
        return self is StreamOption.RETURN_STREAM


class ServiceTier(WireEnum):
    """``service_tier``: priority capacity when available, or standard only."""

    AUTO = "auto"
    STANDARD_ONLY = "standard_only"


class Speed(WireEnum):
    """``speed``: ``fast`` is high output-tokens-per-second inference (some models need a beta)."""

    STANDARD = "standard"
    FAST = "fast"


class Effort(WireEnum):
    """``output_config.effort``."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    XHIGH = "xhigh"
    MAX = "max"


class ThinkingType(WireEnum):
    """``thinking.type``; which ones a model accepts is in its Models API capabilities."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    ADAPTIVE = "adaptive"
    BETWEEN_TOOLS = "between_tools"


class ThinkingDisplay(WireEnum):
    """``thinking.display``: ``omitted`` withholds the thinking text but keeps the signature."""

    SUMMARIZED = "summarized"
    OMITTED = "omitted"


class ThinkingConfig(WireModel):
    """``thinking``: build it with ``enabled(budget)``, ``disabled()``, ``adaptive()``
    or ``between_tools()``.

    ``budget_tokens`` (enabled only) must be >= 1024 and below the request's
    ``max_tokens`` (checked by the request body).
    """

    type: ThinkingType
    budget_tokens: int | None = None
    display: ThinkingDisplay | None = None

    @model_validator(mode="after")
    def _check(self) -> ThinkingConfig:
        budget = self.budget_tokens
        if self.type is ThinkingType.ENABLED:
            if budget is None or isinstance(budget, bool) or budget < MIN_THINKING_BUDGET:
                raise InvalidParameter(
                    "thinking.budget_tokens",
                    budget,
                    f"an integer >= {MIN_THINKING_BUDGET} and < max_tokens",
                )
        elif budget is not None:
            raise InvalidParameter("thinking.budget_tokens", budget, "only with type 'enabled'")
        if self.display is not None and self.type not in (
            ThinkingType.ENABLED,
            ThinkingType.ADAPTIVE,
        ):
            raise InvalidParameter(
                "thinking.display", self.display, "only with type 'enabled' or 'adaptive'"
            )
        return self

    @classmethod
    def enabled(
        cls, budget_tokens: int, *, display: ThinkingDisplay | None = None
    ) -> ThinkingConfig:
        """Manual extended thinking with a token budget (>= 1024, < max_tokens)."""
        if display is None:
            return cls(type=ThinkingType.ENABLED, budget_tokens=budget_tokens)
        return cls(type=ThinkingType.ENABLED, budget_tokens=budget_tokens, display=display)

    @classmethod
    def disabled(cls) -> ThinkingConfig:
        """No thinking."""
        return cls(type=ThinkingType.DISABLED)

    @classmethod
    def adaptive(cls, display: ThinkingDisplay | None = None) -> ThinkingConfig:
        """The model decides when and how much to think (recommended on new models)."""
        if display is None:
            return cls(type=ThinkingType.ADAPTIVE)
        return cls(type=ThinkingType.ADAPTIVE, display=display)

    @classmethod
    def between_tools(cls) -> ThinkingConfig:
        """No thinking, but short progress notes between tool calls arrive as thinking blocks."""
        return cls(type=ThinkingType.BETWEEN_TOOLS)


class OutputFormat(WireModel):
    """``output_config.format``: ``{"type": "json_schema", "schema": {...}}`` (structured output).

    The Python attribute is ``json_schema`` (``schema`` is taken by pydantic); it is
    sent as ``schema``.
    """

    type: Literal["json_schema"] = "json_schema"
    json_schema: dict[str, Any] = Field(alias="schema")


class OutputConfig(WireModel):
    """``output_config``: ``effort`` and/or a structured-output ``format``."""

    effort: Effort | None = None
    format: OutputFormat | None = None

    @classmethod
    def with_json_schema(
        cls, schema: dict[str, Any], *, effort: Effort | None = None
    ) -> OutputConfig:
        """Structured output: the reply text is JSON matching ``schema``."""
        if effort is None:
            return cls(format=OutputFormat(json_schema=schema))
        return cls(format=OutputFormat(json_schema=schema), effort=effort)


class Metadata(WireModel):
    """``metadata``: ``Metadata(UserId("..."))`` or ``Metadata(user_id="...")``."""

    user_id: Annotated[str, UserId] | None = None

    _wire_positional: ClassVar[tuple[str, ...]] = ("user_id",)

    if TYPE_CHECKING:

        def __init__(self, user_id: str | None = ..., /, **data: Any) -> None: ...


class SkillParams(WireModel):
    """A skill to load into the container."""

    skill_id: str
    type: str
    version: str | None = None


class ContainerParams(WireModel):
    """``container`` as an object: an optional container ``id`` and ``skills`` to load."""

    id: str | None = None
    skills: list[SkillParams] | None = None


class DiagnosticsParams(WireModel):
    """``diagnostics``: with ``previous_message_id`` the response explains prompt-cache misses."""

    previous_message_id: str | None = None
