"""What the Models API says about a model (``ModelInfo``), and refreshing the limits table.

``refresh_models_table`` records each listed model's ``max_tokens`` (the highest
``max_tokens`` a request may ask for) and ``max_input_tokens`` (its context window) in
the table of :mod:`clust.messages.claude_models`, so ``MaxTokens`` validation knows
models released after this version of clust. It takes ``ModelInfo`` objects and does
no I/O: ``client.refresh_models()`` lists them and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from clust.messages._wire import WireEnum, WireModel
from clust.messages.claude_models import ModelLimits, register_model

__all__ = [
    "CapabilitySupport",
    "ModelCapabilities",
    "ModelInfo",
    "ModelLifecycle",
    "refresh_models_table",
]


class ModelLifecycle(WireEnum):
    """Where a model is in its life. Unknown values are kept as plain strings."""

    ACTIVE = "active"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class CapabilitySupport(WireModel):
    """``{"supported": bool, ...}``: one capability, with its sub-features kept as extras.

    ``effort``, ``thinking``, ``server_tools`` and ``context_management`` carry sub-features
    (``effort.low``, ``thinking.types.adaptive``, ...); read them with :meth:`feature`.
    """

    supported: bool

    def feature(self, *path: str) -> bool | None:
        """Whether a sub-feature is supported, e.g. ``feature("types", "adaptive")`` of
        ``thinking``; None when the API did not mention it."""
        node: Any = self.model_extra or {}
        for name in path:
            if not isinstance(node, dict) or name not in node:
                return None
            node = node[name]
        if isinstance(node, dict):
            node = node.get("supported")
        return node if isinstance(node, bool) else None


class ModelCapabilities(WireModel):
    """Which features a model supports (every key the API sends is kept)."""

    batch: CapabilitySupport | None = None
    citations: CapabilitySupport | None = None
    code_execution: CapabilitySupport | None = None
    context_management: CapabilitySupport | None = None
    effort: CapabilitySupport | None = None
    image_input: CapabilitySupport | None = None
    pdf_input: CapabilitySupport | None = None
    server_tools: CapabilitySupport | None = None
    structured_outputs: CapabilitySupport | None = None
    thinking: CapabilitySupport | None = None


class ModelInfo(WireModel):
    """One model, as GET /v1/models and GET /v1/models/{id} describe it.

    ``max_tokens`` is the highest ``max_tokens`` a request may ask for and
    ``max_input_tokens`` the context window (also readable as ``max_output_tokens`` and
    ``context_window``); either is None when the API does not say.
    """

    type: Literal["model"] = "model"
    id: str
    display_name: str
    created_at: datetime
    lifecycle: Annotated[ModelLifecycle | str, Field(union_mode="left_to_right")] = (
        ModelLifecycle.ACTIVE
    )
    deprecated_at: datetime | None = None
    retires_at: datetime | None = None
    line: str | None = None
    max_input_tokens: int | None = None
    max_tokens: int | None = None
    capabilities: ModelCapabilities | None = None

    @property
    def max_output_tokens(self) -> int | None:
        """The highest ``max_tokens`` this model accepts (the wire's ``max_tokens``)."""
        return self.max_tokens

    @property
    def context_window(self) -> int | None:
        """The most input tokens this model accepts (the wire's ``max_input_tokens``)."""
        return self.max_input_tokens

    def limits(self) -> ModelLimits:
        """These limits as an entry of the models table (cache minimum unknown)."""
        return ModelLimits(
            max_output_tokens=_positive(self.max_tokens),
            context_window=_positive(self.max_input_tokens),
        )


def _positive(value: int | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def refresh_models_table(models: Iterable[ModelInfo]) -> dict[str, ModelLimits]:
    """Record the limits of every model in ``models`` in the table ``MaxTokens`` reads.

    A limit the API leaves null keeps the value already known (the shipped table's, if
    any). Returns each model id with its entry after the refresh.
    """
    refreshed: dict[str, ModelLimits] = {}
    for info in models:
        limits = info.limits()
        refreshed[info.id] = register_model(
            info.id,
            max_output_tokens=limits.max_output_tokens,
            context_window=limits.context_window,
        )
    return refreshed
