"""The recorder: method, path, query, headers, parsed body and raw bytes of every request."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from clust.testing import FakeClaude, Reply


def test_records_every_request(fake: FakeClaude, http: httpx.Client) -> None:
    with pytest.raises(LookupError):
        _ = fake.last_request
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    http.post("/v1/messages", json=body, headers={"anthropic-beta": "a-1,b-2", "X-Custom": "v"})
    http.get("/v1/models", params={"limit": "2", "lifecycle[]": ["active", "retired"]})
    http.post("/v1/messages", json={"model": "m"})  # invalid: still recorded
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", "/v1/messages"),
        ("GET", "/v1/models"),
        ("POST", "/v1/messages"),
    ]
    first = fake.requests[0]
    assert first.body == body
    assert first.raw.startswith(b"{")
    assert first.headers["anthropic-beta"] == "a-1,b-2"
    assert first.headers["x-custom"] == "v"
    assert first.header("X-API-KEY") == "test"
    assert first.headers["content-type"] == "application/json"
    listing = fake.requests[1]
    assert listing.query == {"limit": ["2"], "lifecycle[]": ["active", "retired"]}
    assert listing.body is None and listing.raw == b""
    assert fake.last_request.body == {"model": "m"}


def test_clear_and_reset(fake: FakeClaude, http: httpx.Client) -> None:
    http.get("/v1/models")
    fake.clear()
    assert fake.requests == []
    fake.enqueue(Reply.text("queued"))
    fake.reset()
    assert fake.pending == 0 and fake.requests == []


def test_non_json_body_is_kept_raw(fake: FakeClaude, http: httpx.Client) -> None:
    http.post("/v1/messages", content=b"\xff not json", headers={"content-type": "text/plain"})
    assert fake.last_request.body is None
    assert fake.last_request.raw == b"\xff not json"


def test_chunked_request_body(fake: FakeClaude, http: httpx.Client) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"model": "m", "max_tokens": 5, '
        yield b'"messages": [{"role": "user", "content": "hi"}]}'

    response = http.post("/v1/messages", content=parts())
    assert response.status_code == 200
    assert fake.last_request.headers["transfer-encoding"] == "chunked"
    assert fake.last_request.body["messages"][0]["content"] == "hi"


def test_enqueue_rejects_non_replies(fake: FakeClaude) -> None:
    with pytest.raises(TypeError):
        fake.enqueue("hello")  # type: ignore[arg-type]
