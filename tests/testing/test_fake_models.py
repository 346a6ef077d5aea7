"""GET /v1/models (pagination, lifecycle filter) and GET /v1/models/{id}."""

from __future__ import annotations

import httpx
import pytest

from clust.testing import DEFAULT_MODELS, FakeClaude, ModelInfo


def listed_ids() -> list[str]:
    return [m.id for m in DEFAULT_MODELS if m.lifecycle != "retired"]


def test_first_page_newest_first(http: httpx.Client) -> None:
    page = http.get("/v1/models").json()
    ids = listed_ids()
    assert [m["id"] for m in page["data"]] == ids[:20]
    assert page["first_id"] == ids[0] == "claude-opus-5-5"
    assert page["has_more"] is (len(ids) > 20)
    created = [m["created_at"] for m in page["data"]]
    assert created == sorted(created, reverse=True)


def test_model_info_shape(http: httpx.Client) -> None:
    info = http.get("/v1/models/claude-opus-5-5").json()
    assert info["type"] == "model"
    assert info["display_name"] == "Claude Opus 5.5"
    assert (info["max_input_tokens"], info["max_tokens"]) == (1_000_000, 128_000)
    assert info["lifecycle"] == "active"
    capabilities = info["capabilities"]
    assert set(capabilities) == {
        "batch",
        "citations",
        "code_execution",
        "context_management",
        "effort",
        "image_input",
        "pdf_input",
        "server_tools",
        "structured_outputs",
        "thinking",
    }
    assert set(capabilities["thinking"]["types"]) == {
        "adaptive",
        "between_tools",
        "disabled",
        "enabled",
    }


def test_paging_forward_with_after_id(http: httpx.Client) -> None:
    seen: list[str] = []
    after: str | None = None
    while True:
        params = {"limit": "5", **({"after_id": after} if after else {})}
        page = http.get("/v1/models", params=params).json()
        seen += [m["id"] for m in page["data"]]
        assert len(page["data"]) <= 5
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == listed_ids()


def test_paging_backward_with_before_id(http: httpx.Client) -> None:
    ids = listed_ids()
    page = http.get("/v1/models", params={"limit": "3", "before_id": ids[7]}).json()
    assert [m["id"] for m in page["data"]] == ids[4:7]
    assert page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (ids[4], ids[6])
    first = http.get("/v1/models", params={"limit": "3", "before_id": ids[2]}).json()
    assert [m["id"] for m in first["data"]] == ids[:2]
    assert first["has_more"] is False


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_bad_limit(http: httpx.Client, limit: str) -> None:
    response = http.get("/v1/models", params={"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_lifecycle_filter(http: httpx.Client) -> None:
    retired = http.get("/v1/models", params={"lifecycle[]": "retired"}).json()["data"]
    assert [m["id"] for m in retired] == ["claude-mythos-preview"]
    default = [m["id"] for m in http.get("/v1/models", params={"limit": "100"}).json()["data"]]
    assert "claude-mythos-preview" not in default
    assert "claude-sonnet-4-5-20250929" in default  # deprecated models are listed


def test_retrieve_by_alias_and_unknown_id(http: httpx.Client) -> None:
    assert http.get("/v1/models/claude-haiku-4-5").json()["id"] == "claude-haiku-4-5-20251001"
    response = http.get("/v1/models/claude-nonexistent")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert response.headers["request-id"] == response.json()["request_id"]


def test_custom_model_list() -> None:
    models: list[ModelInfo | str] = [ModelInfo("my-model", "Mine", max_tokens=10), "plain-id"]
    with FakeClaude(models=models) as fake:
        headers = {"x-api-key": "k", "anthropic-version": "1"}
        page = httpx.get(f"{fake.base_url}/v1/models", headers=headers).json()
        assert [m["id"] for m in page["data"]] == ["my-model", "plain-id"]
        too_many = {
            "model": "my-model",
            "max_tokens": 11,
            "messages": [{"role": "user", "content": "x"}],
        }
        response = httpx.post(f"{fake.base_url}/v1/messages", json=too_many, headers=headers)
        assert response.status_code == 400
