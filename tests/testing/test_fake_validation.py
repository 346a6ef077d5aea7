"""Each validation rule: the right status, error type, envelope and request-id header."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"
LONG = "x" * 8000


def ok_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hello"}],
        **extra,
    }


def assert_error(response: httpx.Response, status: int, error_type: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    request_id = response.headers["request-id"]
    assert request_id.startswith("req_fake_")
    assert payload["type"] == "error"
    assert payload["request_id"] == request_id
    assert payload["error"]["type"] == error_type
    assert fragment in payload["error"]["message"], payload["error"]["message"]


def tool_turns(use_id: str = "toolu_1", result_id: str = "toolu_1") -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": use_id, "name": "w", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": result_id, "content": "sunny"}],
        },
    ]


def marked(ttl: str | None = None) -> dict[str, Any]:
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl:
        control["ttl"] = ttl
    return control


def system_blocks(*ttls: str) -> list[dict[str, Any]]:
    return [
        {"type": "text", "text": f"part {i}", "cache_control": marked(ttl)}
        for i, ttl in enumerate(ttls)
    ]


def test_missing_credentials_is_401(fake: FakeClaude) -> None:
    response = httpx.post(
        f"{fake.base_url}/v1/messages", json=ok_body(), headers={"anthropic-version": "1"}
    )
    assert_error(response, 401, "authentication_error", "x-api-key")


@pytest.mark.parametrize(
    "credentials", [{"x-api-key": "k"}, {"authorization": "Bearer sk-test"}], ids=["key", "bearer"]
)
def test_either_credential_is_accepted(fake: FakeClaude, credentials: dict[str, str]) -> None:
    headers = {"anthropic-version": "2026-10-21", **credentials}
    response = httpx.post(f"{fake.base_url}/v1/messages", json=ok_body(), headers=headers)
    assert response.status_code == 200


def test_wrong_key_when_a_key_is_required() -> None:
    with FakeClaude(api_key="right") as fake:
        url = f"{fake.base_url}/v1/messages"
        wrong = httpx.post(
            url, json=ok_body(), headers={"x-api-key": "w", "anthropic-version": "1"}
        )
        assert_error(wrong, 401, "authentication_error", "invalid")
        right = httpx.post(
            url, json=ok_body(), headers={"x-api-key": "right", "anthropic-version": "1"}
        )
        assert right.status_code == 200


def test_missing_anthropic_version_is_400(fake: FakeClaude) -> None:
    response = httpx.post(
        f"{fake.base_url}/v1/messages", json=ok_body(), headers={"x-api-key": "k"}
    )
    assert_error(response, 400, "invalid_request_error", "anthropic-version")


def test_every_endpoint_checks_headers(fake: FakeClaude) -> None:
    assert httpx.get(f"{fake.base_url}/v1/models").status_code == 401
    assert httpx.get(f"{fake.base_url}/v1/messages/batches").status_code == 401


def test_invalid_json_body(http: httpx.Client) -> None:
    response = http.post(
        "/v1/messages", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_request_error", "JSON")


def test_unknown_path_is_404(http: httpx.Client) -> None:
    assert_error(http.get("/v1/nothing"), 404, "not_found_error", "/v1/nothing")
    assert_error(http.get("/v1/messages"), 404, "not_found_error", "GET")


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("no model", {"model": None}, "model"),
    ("no max_tokens", {"max_tokens": None}, "max_tokens: Field required"),
    ("negative max_tokens", {"max_tokens": -1}, "greater than or equal to 0"),
    ("string max_tokens", {"max_tokens": "10"}, "valid integer"),
    ("max_tokens over the model limit", {"max_tokens": 10**6}, "maximum allowed"),
    ("no messages", {"messages": None}, "messages: Field required"),
    ("empty messages", {"messages": []}, "at least one message"),
    ("unknown role", {"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ("no content", {"messages": [{"role": "user"}]}, "messages.0.content"),
    (
        "empty user content",
        {"messages": [{"role": "user", "content": []}]},
        "non-empty content",
    ),
    (
        "empty text block",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
        "non-empty",
    ),
    (
        "block without type",
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        "messages.0.content.0.type",
    ),
    (
        "tool_result without matching tool_use",
        {"messages": tool_turns(result_id="toolu_other")},
        "unexpected `tool_use_id`",
    ),
    (
        "tool_result in the first turn",
        {
            "messages": [
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}
            ]
        },
        "unexpected `tool_use_id`",
    ),
    (
        "tool_use without tool_result",
        {"messages": [*tool_turns()[:2], {"role": "user", "content": "never mind"}]},
        "without `tool_result`",
    ),
    ("bad system", {"system": 42}, "system"),
    ("tool without input_schema", {"tools": [{"name": "t"}]}, "tools.0.input_schema"),
    (
        "duplicate tool names",
        {"tools": [{"name": "t", "input_schema": {"type": "object"}}] * 2},
        "more than once",
    ),
    ("bad tool_choice", {"tool_choice": {"type": "sometimes"}}, "tool_choice"),
    (
        "thinking budget too small",
        {"thinking": {"type": "enabled", "budget_tokens": 100}},
        "budget_tokens",
    ),
    (
        "five cache breakpoints",
        {"system": system_blocks("5m", "5m", "5m", "5m", "5m")},
        "maximum of 4 blocks with cache_control",
    ),
    (
        "four markers plus top-level cache_control",
        {
            "system": system_blocks("5m", "5m", "5m", "5m"),
            "messages": [{"role": "user", "content": "hi"}],
            "cache_control": marked(),
        },
        "Found 5",
    ),
    ("1h after 5m", {"system": system_blocks("5m", "1h")}, "ttl='1h'"),
    (
        "1h in messages after 5m tool",
        {
            "tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": marked()}],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "hi", "cache_control": marked("1h")}],
                }
            ],
        },
        "ttl='1h'",
    ),
    ("bad ttl", {"system": system_blocks("10m")}, "ttl"),
    (
        "bad cache_control type",
        {"system": [{"type": "text", "text": "x", "cache_control": {"type": "forever"}}]},
        "ephemeral",
    ),
    (
        "cache_control on thinking",
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "thinking",
                            "thinking": "t",
                            "signature": "s",
                            "cache_control": marked(),
                        }
                    ],
                },
            ]
        },
        "thinking blocks cannot be cached",
    ),
    ("stream not a bool", {"stream": "yes"}, "stream"),
]


@pytest.mark.parametrize(
    ("change", "fragment"), [(c, f) for _, c, f in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES]
)
def test_bad_bodies_get_400(http: httpx.Client, change: dict[str, Any], fragment: str) -> None:
    payload = ok_body(**change)
    for key in [k for k, v in change.items() if v is None]:
        del payload[key]
    assert_error(http.post("/v1/messages", json=payload), 400, "invalid_request_error", fragment)


def test_duplicate_tool_names_carry_an_error_code(http: httpx.Client) -> None:
    tools = [{"name": "t", "input_schema": {"type": "object"}}] * 2
    error = http.post("/v1/messages", json=ok_body(tools=tools)).json()["error"]
    assert error["details"] == {"error_code": "tool_name_conflict"}


GOOD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("max_tokens 0 warms the cache", {"max_tokens": 0}),
    (
        "consecutive user turns are merged",
        {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
    ),
    ("matching tool_use/tool_result", {"messages": tool_turns()}),
    (
        "tool_result split over merged user turns",
        {
            "messages": [
                *tool_turns()[:2],
                {"role": "user", "content": [{"type": "text", "text": "first"}]},
                tool_turns()[2],
            ]
        },
    ),
    (
        "final assistant prefill may be empty",
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
    ),
    ("four breakpoints", {"system": system_blocks("1h", "1h", "5m", "5m")}),
    ("1h needs no beta header by default", {"system": system_blocks("1h")}),
    (
        "system role inside messages",
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
            ]
        },
    ),
    ("top-level cache_control", {"cache_control": marked("1h")}),
]


@pytest.mark.parametrize("change", [c for _, c in GOOD_BODIES], ids=[n for n, _ in GOOD_BODIES])
def test_valid_bodies_are_accepted(http: httpx.Client, change: dict[str, Any]) -> None:
    response = http.post("/v1/messages", json=ok_body(**change))
    assert response.status_code == 200, response.text


def test_ttl_beta_can_be_required() -> None:
    with FakeClaude(require_ttl_beta=True) as fake:
        headers = {"x-api-key": "k", "anthropic-version": "1"}
        url = f"{fake.base_url}/v1/messages"
        payload = ok_body(system=system_blocks("1h"))
        refused = httpx.post(url, json=payload, headers=headers)
        assert_error(refused, 400, "invalid_request_error", "extended-cache-ttl-2025-04-11")
        beta = {**headers, "anthropic-beta": "other-beta,extended-cache-ttl-2025-04-11"}
        assert httpx.post(url, json=payload, headers=beta).status_code == 200
        assert httpx.post(url, json=ok_body(system=system_blocks("5m")), headers=headers).is_success


def test_count_tokens_is_validated_without_max_tokens(http: httpx.Client) -> None:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert http.post("/v1/messages/count_tokens", json=payload).status_code == 200
    payload["messages"] = []
    assert_error(
        http.post("/v1/messages/count_tokens", json=payload),
        400,
        "invalid_request_error",
        "messages",
    )
