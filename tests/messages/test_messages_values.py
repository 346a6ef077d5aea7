"""Validated values, model limits and enums."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest

from clust.messages import (
    CacheControlType,
    CacheTtl,
    ClaudeModel,
    InvalidParameter,
    MaxTokens,
    Message,
    MessagesRequestBody,
    Metadata,
    ModelLimits,
    Role,
    StopReason,
    StopSequence,
    StreamOption,
    Temperature,
    TopK,
    TopP,
    UserId,
    model_limits,
    register_model,
)


def body(**fields: Any) -> MessagesRequestBody:
    values: dict[str, Any] = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "messages": [Message.user("Hello")],
    }
    values.update(fields)
    return MessagesRequestBody(**values)


def fresh_model_id() -> str:
    return f"test-model-{uuid.uuid4().hex}"


# --- MaxTokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 1024, 128_000])
def test_max_tokens_accepts_zero_up_to_the_model_maximum(value: int) -> None:
    tokens = MaxTokens(value, ClaudeModel.CLAUDE_OPUS_5_5)
    assert tokens == value
    assert isinstance(tokens, int)


def test_max_tokens_zero_is_the_cache_warm_up_value() -> None:
    assert body(max_tokens=0).to_wire()["max_tokens"] == 0


@pytest.mark.parametrize(
    ("value", "model", "allowed"),
    [
        (-1, None, "an integer >= 0"),
        (128_001, "claude-opus-5-5", "0..128000 for model claude-opus-5-5"),
        (64_001, ClaudeModel.CLAUDE_HAIKU_4_5, "0..64000 for model claude-haiku-4-5"),
    ],
)
def test_max_tokens_rejects_values_outside_the_range(
    value: int, model: str | None, allowed: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        MaxTokens(value, model)
    assert info.value.field == "max_tokens"
    assert info.value.value == value
    assert info.value.allowed == allowed
    assert str(value) in str(info.value)


def test_max_tokens_at_the_haiku_limit_is_accepted() -> None:
    assert MaxTokens(64_000, "claude-haiku-4-5-20251001") == 64_000


@pytest.mark.parametrize("value", [True, False, 1.0, "5", None])
def test_max_tokens_rejects_non_integers(value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        MaxTokens(value)
    assert info.value.field == "max_tokens"


def test_max_tokens_without_known_limit_only_checks_the_lower_bound() -> None:
    assert MaxTokens(10_000_000, "some-future-model") == 10_000_000
    assert MaxTokens(10_000_000, ClaudeModel.CLAUDE_MYTHOS_5_2) == 10_000_000
    assert MaxTokens(10_000_000) == 10_000_000


@pytest.mark.parametrize(
    ("model", "value"),
    [("claude-opus-5-5", 128_001), ("claude-haiku-4-5", 64_001), ("claude-sonnet-5-5", -1)],
)
def test_body_checks_plain_max_tokens_against_its_model(model: str, value: int) -> None:
    with pytest.raises(InvalidParameter) as info:
        body(model=model, max_tokens=value)
    assert info.value.field == "max_tokens"
    assert info.value.value == value


def test_body_accepts_max_tokens_at_the_model_limit_and_any_value_for_unknown_models() -> None:
    assert body(model="claude-opus-5-5", max_tokens=128_000).max_tokens == 128_000
    assert body(model="brand-new-model", max_tokens=1_000_000).max_tokens == 1_000_000


def test_body_rejects_bool_max_tokens() -> None:
    with pytest.raises(InvalidParameter):
        body(max_tokens=True)


def test_max_tokens_in_body_is_a_max_tokens_and_dumps_as_a_plain_number() -> None:
    request = body(max_tokens=MaxTokens(77, "claude-sonnet-5-5"))
    assert isinstance(request.max_tokens, MaxTokens)
    assert json.loads(request.to_json())["max_tokens"] == 77
    assert type(request.to_wire()["max_tokens"]) is int


# --- Temperature / TopP ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Temperature, TopP])
@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, 1.0])
def test_unit_interval_values_accept_zero_to_one(cls: type[float], value: float) -> None:
    result = cls(value)
    assert result == value
    assert isinstance(result, float)


@pytest.mark.parametrize(
    ("cls", "field"), [(Temperature, "temperature"), (TopP, "top_p")], ids=["temp", "top_p"]
)
@pytest.mark.parametrize("value", [-0.01, 1.01, 2, math.nan, math.inf, True, False, "0.5", None])
def test_unit_interval_values_reject_everything_else(
    cls: type[float], field: str, value: Any
) -> None:
    with pytest.raises(InvalidParameter) as info:
        cls(value)
    assert info.value.field == field
    assert info.value.allowed == "a number 0.0..1.0"
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(info.value.value)  # type: ignore[arg-type]
    else:
        assert info.value.value == value


@pytest.mark.parametrize("field", ["temperature", "top_p"])
@pytest.mark.parametrize("value", [-0.01, 1.01, True, math.nan])
def test_body_rejects_plain_out_of_range_unit_values(field: str, value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        body(**{field: value})
    assert info.value.field == field
    assert info.value.allowed == "a number 0.0..1.0"


@pytest.mark.parametrize("field", ["temperature", "top_p"])
@pytest.mark.parametrize("value", [0, 0.0, 0.25, 1])
def test_body_accepts_bounds_of_unit_values_and_sends_numbers(field: str, value: float) -> None:
    wire = json.loads(body(**{field: value}).to_json())
    assert wire[field] == value


def test_body_error_is_identical_to_the_value_type_error() -> None:
    with pytest.raises(InvalidParameter) as direct:
        Temperature(1.5)
    with pytest.raises(InvalidParameter) as in_body:
        body(temperature=1.5)
    assert (direct.value.field, direct.value.value, direct.value.allowed) == (
        in_body.value.field,
        in_body.value.value,
        in_body.value.allowed,
    )
    assert str(direct.value) == str(in_body.value)


# --- TopK ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 500])
def test_top_k_accepts_non_negative_integers(value: int) -> None:
    assert TopK(value) == value
    assert body(top_k=value).to_wire()["top_k"] == value


@pytest.mark.parametrize("value", [-1, True, 1.5, "3", None])
def test_top_k_rejects_negative_and_non_integers(value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        TopK(value)
    assert (info.value.field, info.value.allowed) == ("top_k", "an integer >= 0")
    if value is None:
        assert body(top_k=None).to_wire()["top_k"] is None  # an explicit null is sent
        return
    with pytest.raises(InvalidParameter) as in_body:
        body(top_k=value)
    assert in_body.value.field == "top_k"


# --- StopSequence / UserId -------------------------------------------------------------------


def test_stop_sequence_accepts_non_empty_strings() -> None:
    assert StopSequence("\n\nEND") == "\n\nEND"
    assert body(stop_sequences=["a", StopSequence("b")]).to_wire()["stop_sequences"] == ["a", "b"]


@pytest.mark.parametrize("value", ["", None, 3, b"x"])
def test_stop_sequence_rejects_empty_and_non_strings(value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        StopSequence(value)
    assert (info.value.field, info.value.allowed) == ("stop_sequences", "a non-empty string")
    with pytest.raises(InvalidParameter):
        body(stop_sequences=["ok", value])


def test_user_id_and_metadata() -> None:
    assert Metadata(UserId("3f6c")).to_wire() == {"user_id": "3f6c"}
    assert Metadata(user_id="abc").to_wire() == {"user_id": "abc"}
    assert Metadata(None).to_wire() == {"user_id": None}
    assert Metadata().to_wire() == {}
    assert isinstance(Metadata("x").user_id, UserId)
    assert body(metadata={"user_id": "u-1"}).to_wire()["metadata"] == {"user_id": "u-1"}


@pytest.mark.parametrize("value", ["", 7])
def test_user_id_rejects_empty_and_non_strings(value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        UserId(value)
    assert info.value.field == "metadata.user_id"
    with pytest.raises(InvalidParameter):
        Metadata(value)
    with pytest.raises(InvalidParameter):
        body(metadata={"user_id": value})


def test_invalid_parameter_is_a_value_error_with_a_readable_message() -> None:
    with pytest.raises(ValueError, match=r"top_p=1\.5 is invalid: allowed a number 0\.0\.\.1\.0"):
        TopP(1.5)


# --- model limits ----------------------------------------------------------------------------


def test_model_limits_table_has_every_known_model() -> None:
    for model in ClaudeModel:
        assert model_limits(model) is not None
        assert model_limits(model.value) == model.limits


def test_model_limits_values_from_the_reference() -> None:
    assert model_limits("claude-opus-5-5") == ModelLimits(128_000, 1_000_000, None)
    assert model_limits("claude-haiku-4-5") == ModelLimits(64_000, 200_000, 4_096)
    assert model_limits("claude-opus-5") == ModelLimits(128_000, 1_000_000, 512)
    assert model_limits("claude-opus-4-7") == ModelLimits(None, None, 2_048)
    assert model_limits("claude-mythos-5-2") == ModelLimits(None, None, None)
    assert model_limits("not-a-model") is None
    assert ClaudeModel.CLAUDE_SONNET_5_5.max_output_tokens == 128_000
    assert ClaudeModel.CLAUDE_HAIKU_4_5.context_window == 200_000
    assert ClaudeModel.CLAUDE_OPUS_4_6.max_output_tokens is None


def test_register_model_adds_and_refreshes_limits() -> None:
    model = fresh_model_id()
    assert model_limits(model) is None
    assert register_model(model, max_output_tokens=1_000) == ModelLimits(1_000, None, None)
    with pytest.raises(InvalidParameter) as info:
        MaxTokens(1_001, model)
    assert info.value.allowed == f"0..1000 for model {model}"
    with pytest.raises(InvalidParameter):
        body(model=model, max_tokens=1_001)
    # None keeps what is known; a new value replaces it.
    refreshed = register_model(model, context_window=50_000, min_cacheable_tokens=256)
    assert refreshed == ModelLimits(1_000, 50_000, 256)
    assert register_model(model, max_output_tokens=2_000).max_output_tokens == 2_000
    assert body(model=model, max_tokens=2_000).max_tokens == 2_000


@pytest.mark.parametrize(
    "limits", [{"max_output_tokens": 0}, {"context_window": -5}, {"min_cacheable_tokens": True}]
)
def test_register_model_rejects_bad_limits(limits: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        register_model(fresh_model_id(), **limits)


def test_register_model_rejects_an_empty_id() -> None:
    with pytest.raises(InvalidParameter):
        register_model("", max_output_tokens=5)


# --- enums -----------------------------------------------------------------------------------


def test_enums_are_upper_case_str_enums_with_wire_values() -> None:
    pairs: list[tuple[str, str]] = [
        (ClaudeModel.CLAUDE_SONNET_5_5, "claude-sonnet-5-5"),
        (Role.USER, "user"),
        (StopReason.END_TURN, "end_turn"),
        (CacheTtl.ONE_HOUR, "1h"),
        (CacheTtl.FIVE_MINUTES, "5m"),
        (CacheControlType.EPHEMERAL, "ephemeral"),
    ]
    for member, wire in pairs:
        assert member == wire
        assert json.dumps(member) == json.dumps(wire)
    assert str(ClaudeModel.CLAUDE_OPUS_5_5) == "claude-opus-5-5"
    for enum in (ClaudeModel, Role, StopReason, CacheTtl, CacheControlType, StreamOption):
        assert issubclass(enum, str)
        assert all(member.name.isupper() for member in enum)


def test_model_ids_from_the_reference_are_all_members() -> None:
    ids = {
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-fable-5-2",
        "claude-mythos-5-2",
        "claude-fable-5-1",
        "claude-mythos-5-1",
        "claude-sonnet-5",
        "claude-fable-5",
        "claude-mythos-5",
        "claude-opus-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-mythos-preview",
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-5",
        "claude-opus-4-5-20251101",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    }
    assert {member.value for member in ClaudeModel} == ids


def test_body_takes_a_claude_model_or_any_string_and_sends_the_id() -> None:
    assert body(model=ClaudeModel.CLAUDE_OPUS_5_5).to_wire()["model"] == "claude-opus-5-5"
    assert body(model="claude-next-9").to_wire()["model"] == "claude-next-9"
    with pytest.raises(InvalidParameter):
        body(model="")
