"""Validated values: ``MaxTokens``, ``Temperature``, ``TopP``, ``TopK``, ``StopSequence``,
``UserId``.

Each is an ``int`` / ``float`` / ``str`` subclass checked in ``__new__``; a bad value
raises ``InvalidParameter`` naming the field, the value and the allowed range.
They double as pydantic field types (``Annotated[int, MaxTokens]``), so a plain
number given to a model is checked by the same code and dumps as a plain JSON
number or string. Bools are not numbers here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

from clust.messages.claude_models import model_limits
from clust.messages.errors import InvalidParameter

__all__ = ["MaxTokens", "StopSequence", "Temperature", "TopK", "TopP", "UserId"]


def _field_schema(
    validate: Callable[[Any], Any], serialize_as: Any, input_schema: CoreSchema
) -> CoreSchema:
    return core_schema.no_info_plain_validator_function(
        validate,
        json_schema_input_schema=input_schema,
        serialization=core_schema.simple_ser_schema(serialize_as),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class MaxTokens(int):
    """``max_tokens``: 0 (cache warm-up only) up to the model's maximum output, when known."""

    def __new__(cls, value: int, model: str | None = None) -> MaxTokens:
        limit = None
        if model is not None:
            limits = model_limits(model)
            limit = None if limits is None else limits.max_output_tokens
        if not _is_int(value) or value < 0 or (limit is not None and value > limit):
            allowed = "an integer >= 0" if limit is None else f"0..{limit} for model {model}"
            raise InvalidParameter("max_tokens", value, allowed)
        return super().__new__(cls, value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _field_schema(cls, "int", core_schema.int_schema(ge=0))


def _unit_interval(cls: type[float], field: str, value: float) -> float:
    if not _is_real(value) or not 0.0 <= value <= 1.0:  # NaN fails the comparison too
        raise InvalidParameter(field, value, "a number 0.0..1.0")
    return float.__new__(cls, value)


class Temperature(float):
    """``temperature``: 0.0..1.0 (older models only; the newest reject non-default values)."""

    def __new__(cls, value: float) -> Temperature:
        return _unit_interval(cls, "temperature", value)  # type: ignore[return-value]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _field_schema(cls, "float", core_schema.float_schema(ge=0.0, le=1.0))


class TopP(float):
    """``top_p``: 0.0..1.0 (older models only)."""

    def __new__(cls, value: float) -> TopP:
        return _unit_interval(cls, "top_p", value)  # type: ignore[return-value]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _field_schema(cls, "float", core_schema.float_schema(ge=0.0, le=1.0))


class TopK(int):
    """``top_k``: an integer >= 0 (older models only)."""

    def __new__(cls, value: int) -> TopK:
        if not _is_int(value) or value < 0:
            raise InvalidParameter("top_k", value, "an integer >= 0")
        return super().__new__(cls, value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _field_schema(cls, "int", core_schema.int_schema(ge=0))


class StopSequence(str):
    """One entry of ``stop_sequences``: a non-empty string."""

    def __new__(cls, value: str) -> StopSequence:
        if not isinstance(value, str) or not value:
            raise InvalidParameter("stop_sequences", value, "a non-empty string")
        return super().__new__(cls, value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _field_schema(cls, "str", core_schema.str_schema(min_length=1))


class UserId(str):
    """``metadata.user_id``: a non-empty opaque id (a uuid or hash, never personal data)."""

    def __new__(cls, value: str) -> UserId:
        if not isinstance(value, str) or not value:
            raise InvalidParameter("metadata.user_id", value, "a non-empty string")
        return super().__new__(cls, value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return _field_schema(cls, "str", core_schema.str_schema(min_length=1))
