"""Known Claude model ids and an offline table of their limits.

Every place that takes a model also takes any string id: new models appear faster
than releases. The limits table ships the numbers published for each model (None
where they are not known) and can be refreshed at run time with
``register_model``, e.g. from the Models API (``max_tokens`` ->
``max_output_tokens``, ``max_input_tokens`` -> ``context_window``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from clust.messages._wire import WireEnum
from clust.messages.errors import InvalidParameter

__all__ = ["ClaudeModel", "ModelLimits", "model_limits", "register_model"]


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """Limits of one model; ``None`` where unknown.

    Attributes:
        max_output_tokens: the highest ``max_tokens`` the model accepts.
        context_window: the most input tokens (the Models API's ``max_input_tokens``).
        min_cacheable_tokens: the shortest prompt prefix the model caches.
    """

    max_output_tokens: int | None = None
    context_window: int | None = None
    min_cacheable_tokens: int | None = None


# id, max output tokens, context window, minimum cacheable prefix.
# Sources: ../shared/api/models.md and content-blocks.md (Nov 2026); None = not published.
_SHIPPED: tuple[tuple[str, int | None, int | None, int | None], ...] = (
    ("claude-fable-5-2", 128_000, 1_000_000, None),
    ("claude-mythos-5-2", None, None, None),
    ("claude-haiku-5-5", 128_000, 1_000_000, None),
    ("claude-sonnet-5-5", 128_000, 1_000_000, None),
    ("claude-fable-5-1", 128_000, 1_000_000, None),
    ("claude-opus-5-5", 128_000, 1_000_000, None),
    ("claude-mythos-5-1", None, None, None),
    ("claude-sonnet-5", 128_000, 1_000_000, 1_024),
    ("claude-fable-5", None, None, 512),
    ("claude-mythos-5", None, None, 512),
    ("claude-opus-5", 128_000, 1_000_000, 512),
    ("claude-opus-4-8", 128_000, 1_000_000, 1_024),
    ("claude-opus-4-7", None, None, 2_048),
    ("claude-mythos-preview", None, None, None),
    ("claude-opus-4-6", None, None, 4_096),
    ("claude-sonnet-4-6", 128_000, 1_000_000, 1_024),
    ("claude-haiku-4-5", 64_000, 200_000, 4_096),
    ("claude-haiku-4-5-20251001", 64_000, 200_000, 4_096),
    ("claude-opus-4-5", None, None, 4_096),
    ("claude-opus-4-5-20251101", None, None, 4_096),
    ("claude-sonnet-4-5", None, None, 1_024),
    ("claude-sonnet-4-5-20250929", None, None, 1_024),
)

_LIMITS: dict[str, ModelLimits] = {
    model_id: ModelLimits(max_output, context, min_cacheable)
    for model_id, max_output, context, min_cacheable in _SHIPPED
}


def _key(model: str) -> str:
    # A str enum member hashes by its name, not its value: look it up by value.
    return str(model.value) if isinstance(model, enum.Enum) else model


def model_limits(model: str) -> ModelLimits | None:
    """The limits of ``model`` (an id or a ``ClaudeModel``), or None for an unknown id."""
    return _LIMITS.get(_key(model))


def _check_positive(field: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidParameter(field, value, "a positive integer or None")


def register_model(
    model_id: str,
    *,
    max_output_tokens: int | None = None,
    context_window: int | None = None,
    min_cacheable_tokens: int | None = None,
) -> ModelLimits:
    """Add or refresh the limits of ``model_id`` and return its new entry.

    A limit given as None keeps the value already known (the Models API, for
    instance, does not report the minimum cacheable prefix).
    """
    key = _key(model_id)
    if not isinstance(key, str) or not key:
        raise InvalidParameter("model_id", model_id, "a non-empty model id")
    _check_positive("max_output_tokens", max_output_tokens)
    _check_positive("context_window", context_window)
    _check_positive("min_cacheable_tokens", min_cacheable_tokens)
    old = _LIMITS.get(key, ModelLimits())
    new = ModelLimits(
        max_output_tokens=old.max_output_tokens if max_output_tokens is None else max_output_tokens,
        context_window=old.context_window if context_window is None else context_window,
        min_cacheable_tokens=(
            old.min_cacheable_tokens if min_cacheable_tokens is None else min_cacheable_tokens
        ),
    )
    _LIMITS[key] = new
    return new


class ClaudeModel(WireEnum):
    """Model ids known to this release. Any other id string is accepted too."""

    CLAUDE_FABLE_5_2 = "claude-fable-5-2"
    CLAUDE_MYTHOS_5_2 = "claude-mythos-5-2"
    CLAUDE_HAIKU_5_5 = "claude-haiku-5-5"
    CLAUDE_SONNET_5_5 = "claude-sonnet-5-5"
    CLAUDE_FABLE_5_1 = "claude-fable-5-1"
    CLAUDE_OPUS_5_5 = "claude-opus-5-5"
    CLAUDE_MYTHOS_5_1 = "claude-mythos-5-1"
    CLAUDE_SONNET_5 = "claude-sonnet-5"
    CLAUDE_FABLE_5 = "claude-fable-5"
    CLAUDE_MYTHOS_5 = "claude-mythos-5"
    CLAUDE_OPUS_5 = "claude-opus-5"
    CLAUDE_OPUS_4_8 = "claude-opus-4-8"
    CLAUDE_OPUS_4_7 = "claude-opus-4-7"
    CLAUDE_MYTHOS_PREVIEW = "claude-mythos-preview"
    CLAUDE_OPUS_4_6 = "claude-opus-4-6"
    CLAUDE_SONNET_4_6 = "claude-sonnet-4-6"
    CLAUDE_HAIKU_4_5 = "claude-haiku-4-5"
    CLAUDE_HAIKU_4_5_20251001 = "claude-haiku-4-5-20251001"
    CLAUDE_OPUS_4_5 = "claude-opus-4-5"
    CLAUDE_OPUS_4_5_20251101 = "claude-opus-4-5-20251101"
    CLAUDE_SONNET_4_5 = "claude-sonnet-4-5"
    CLAUDE_SONNET_4_5_20250929 = "claude-sonnet-4-5-20250929"

    @property
    def limits(self) -> ModelLimits:
        """This model's entry in the limits table (all None where unknown)."""
        return model_limits(self.value) or ModelLimits()

    @property
    def max_output_tokens(self) -> int | None:
        """The highest ``max_tokens`` this model accepts, if known."""
        return self.limits.max_output_tokens

    @property
    def context_window(self) -> int | None:
        """The most input tokens this model accepts, if known."""
        return self.limits.context_window
