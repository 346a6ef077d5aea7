"""The reply of POST /v1/messages/count_tokens."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["TokenCount"]


class TokenCount(BaseModel):
    """``{"input_tokens": N}``: the tokens the prompt would use as input."""

    model_config = ConfigDict(extra="allow")

    input_tokens: int
