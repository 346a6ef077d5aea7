"""The shipped model table: what GET /v1/models answers and the per-model cache minimums.

Ids, lines and limits follow ``models.md`` of the wire reference; ``created_at`` dates are
placeholders that only keep the list in its documented newest-first order. ``None`` limits are
the ones the reference marks as unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_MIN_CACHEABLE_TOKENS", "DEFAULT_MODELS", "ModelInfo", "ModelTable"]

DEFAULT_MIN_CACHEABLE_TOKENS = 1024


def _support(value: bool) -> dict[str, bool]:
    return {"supported": value}


def default_capabilities(*, new_thinking: bool) -> dict[str, Any]:
    """A complete ``capabilities`` object (every key present, as the Models API sends it)."""
    yes = _support(True)
    return {
        "batch": yes,
        "citations": yes,
        "code_execution": yes,
        "context_management": {
            "supported": True,
            "clear_thinking_20251015": yes,
            "clear_tool_uses_20250919": yes,
            "compact_20260112": _support(new_thinking),
        },
        "effort": {
            "supported": True,
            "low": yes,
            "medium": yes,
            "high": yes,
            "max": yes,
            "xhigh": _support(new_thinking),
        },
        "image_input": yes,
        "pdf_input": yes,
        "server_tools": {"supported": True, "code_execution": yes, "web_search": yes},
        "structured_outputs": yes,
        "thinking": {
            "supported": True,
            "types": {
                "adaptive": yes,
                "between_tools": _support(new_thinking),
                "disabled": _support(not new_thinking),
                "enabled": _support(not new_thinking),
            },
        },
    }


@dataclass(frozen=True)
class ModelInfo:
    """One model as GET /v1/models describes it, plus the fake's cache minimum for it."""

    id: str
    display_name: str
    created_at: str = "1970-01-01T00:00:00Z"
    line: str | None = None
    max_input_tokens: int | None = None
    max_tokens: int | None = None
    lifecycle: str = "active"
    deprecated_at: str | None = None
    retires_at: str | None = None
    aliases: tuple[str, ...] = ()
    """Other ids that GET /v1/models/{id} and the cache table resolve to this model."""
    min_cacheable_tokens: int = DEFAULT_MIN_CACHEABLE_TOKENS
    """Shortest prefix (in fake tokens) that a breakpoint can cache for this model."""
    capabilities: Mapping[str, Any] = field(
        default_factory=lambda: default_capabilities(new_thinking=True)
    )

    def to_json(self) -> dict[str, Any]:
        """The ModelInfo wire object."""
        return {
            "type": "model",
            "id": self.id,
            "display_name": self.display_name,
            "created_at": self.created_at,
            "lifecycle": self.lifecycle,
            "deprecated_at": self.deprecated_at,
            "retires_at": self.retires_at,
            "line": self.line,
            "max_input_tokens": self.max_input_tokens,
            "max_tokens": self.max_tokens,
            "capabilities": dict(self.capabilities),
        }


_M = 1_000_000
_K128 = 128_000
_OLD = default_capabilities(new_thinking=False)

DEFAULT_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("claude-opus-5-5", "Claude Opus 5.5", "2026-10-07T00:00:00Z", "opus", _M, _K128),
    ModelInfo(
        "claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-10-06T00:00:00Z", "sonnet", _M, _K128
    ),
    ModelInfo("claude-haiku-5-5", "Claude Haiku 5.5", "2026-10-05T00:00:00Z", "haiku", _M, _K128),
    ModelInfo("claude-fable-5-2", "Claude Fable 5.2", "2026-09-01T00:00:00Z", "fable", _M, _K128),
    ModelInfo("claude-mythos-5-2", "Claude Mythos 5.2", "2026-08-31T00:00:00Z", "mythos"),
    ModelInfo("claude-fable-5-1", "Claude Fable 5.1", "2026-07-15T00:00:00Z", "fable", _M, _K128),
    ModelInfo("claude-mythos-5-1", "Claude Mythos 5.1", "2026-07-14T00:00:00Z", "mythos"),
    ModelInfo("claude-sonnet-5", "Claude Sonnet 5", "2026-05-20T00:00:00Z", "sonnet", _M, _K128),
    ModelInfo(
        "claude-fable-5",
        "Claude Fable 5",
        "2026-05-19T00:00:00Z",
        "fable",
        min_cacheable_tokens=512,
    ),
    ModelInfo(
        "claude-mythos-5",
        "Claude Mythos 5",
        "2026-05-18T00:00:00Z",
        "mythos",
        min_cacheable_tokens=512,
    ),
    ModelInfo(
        "claude-opus-5",
        "Claude Opus 5",
        "2026-05-17T00:00:00Z",
        "opus",
        _M,
        _K128,
        min_cacheable_tokens=512,
    ),
    ModelInfo("claude-opus-4-8", "Claude Opus 4.8", "2026-03-10T00:00:00Z", "opus", _M, _K128),
    ModelInfo(
        "claude-opus-4-7",
        "Claude Opus 4.7",
        "2026-02-16T00:00:00Z",
        "opus",
        min_cacheable_tokens=2048,
    ),
    ModelInfo(
        "claude-mythos-preview",
        "Claude Mythos Preview",
        "2026-01-20T00:00:00Z",
        "mythos",
        lifecycle="retired",
        deprecated_at="2026-03-30T00:00:00Z",
        retires_at="2026-06-30T00:00:00Z",
    ),
    ModelInfo(
        "claude-opus-4-6",
        "Claude Opus 4.6",
        "2026-01-05T00:00:00Z",
        "opus",
        min_cacheable_tokens=4096,
        capabilities=_OLD,
    ),
    ModelInfo(
        "claude-sonnet-4-6",
        "Claude Sonnet 4.6",
        "2025-12-15T00:00:00Z",
        "sonnet",
        _M,
        _K128,
        capabilities=_OLD,
    ),
    ModelInfo(
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        "2025-11-01T00:00:00Z",
        "opus",
        aliases=("claude-opus-4-5",),
        min_cacheable_tokens=4096,
        capabilities=_OLD,
    ),
    ModelInfo(
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-01T00:00:00Z",
        "haiku",
        200_000,
        64_000,
        aliases=("claude-haiku-4-5",),
        min_cacheable_tokens=4096,
        capabilities=_OLD,
    ),
    ModelInfo(
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
        "sonnet",
        lifecycle="deprecated",
        deprecated_at="2026-08-01T00:00:00Z",
        retires_at="2026-11-30T00:00:00Z",
        aliases=("claude-sonnet-4-5",),
        capabilities=_OLD,
    ),
)


class ModelTable:
    """Lookup by id or alias, lifecycle-filtered listing, and cache minimums."""

    def __init__(
        self,
        models: Iterable[ModelInfo | str] | None = None,
        min_cacheable_tokens: int | Mapping[str, int] | None = None,
    ) -> None:
        infos = DEFAULT_MODELS if models is None else models
        self.models: tuple[ModelInfo, ...] = tuple(
            m if isinstance(m, ModelInfo) else ModelInfo(m, m) for m in infos
        )
        self._by_id: dict[str, ModelInfo] = {}
        for info in self.models:
            for name in (info.id, *info.aliases):
                self._by_id.setdefault(name, info)
        self._override = min_cacheable_tokens

    def get(self, model_id: str) -> ModelInfo | None:
        """The model with this id or alias, if known."""
        return self._by_id.get(model_id)

    def listing(self, lifecycles: Iterable[str] | None = None) -> list[ModelInfo]:
        """Models in table order (newest first); by default active and deprecated ones."""
        wanted = set(lifecycles) if lifecycles else {"active", "deprecated"}
        return [m for m in self.models if m.lifecycle in wanted]

    def min_cacheable_tokens(self, model_id: str) -> int:
        """Shortest cacheable prefix for ``model_id`` (overrides first, then the table)."""
        if isinstance(self._override, int):
            return self._override
        info = self.get(model_id)
        if isinstance(self._override, Mapping):
            for name in (model_id, *((info.id, *info.aliases) if info else ())):
                if name in self._override:
                    return self._override[name]
        return info.min_cacheable_tokens if info else DEFAULT_MIN_CACHEABLE_TOKENS
