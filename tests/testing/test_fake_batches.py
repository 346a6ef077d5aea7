"""Message Batches: create, poll, results, cancel, delete, list, scripted outcomes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from clust.testing import FakeClaude, Reply

HEADERS = {"x-api-key": "k", "anthropic-version": "1"}


def params(text: str = "Say hello.", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def create(http: httpx.Client, n: int = 2, prefix: str = "req") -> dict[str, Any]:
    requests = [{"custom_id": f"{prefix}-{i}", "params": params(f"hello {i}")} for i in range(n)]
    response = http.post("/v1/messages/batches", json={"requests": requests})
    assert response.status_code == 200, response.text
    batch: dict[str, Any] = response.json()
    return batch


def results(http: httpx.Client, batch: dict[str, Any]) -> list[dict[str, Any]]:
    response = http.get(batch["results_url"], headers={"accept": "application/binary"})
    assert response.status_code == 200
    text = response.text
    assert text.endswith("\n") and "\n\n" not in text
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def slow_fake() -> Iterator[FakeClaude]:
    with FakeClaude(batch_processing_seconds=60) as fake:
        yield fake


@pytest.fixture
def slow_http(slow_fake: FakeClaude) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=slow_fake.base_url, headers=HEADERS, verify=False) as client:
        yield client


def test_round_trip(fake: FakeClaude, http: httpx.Client) -> None:
    batch = create(http)
    assert batch["id"] == "msgbatch_fake_0001"
    assert batch["type"] == "message_batch"
    assert batch["processing_status"] == "in_progress"
    assert batch["request_counts"] == {
        "processing": 2,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert batch["results_url"] is None and batch["ended_at"] is None
    assert batch["expires_at"] > batch["created_at"]
    ended = http.get(f"/v1/messages/batches/{batch['id']}").json()
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"]["succeeded"] == 2
    assert ended["results_url"] == f"{fake.base_url}/v1/messages/batches/{batch['id']}/results"
    lines = results(http, ended)
    assert [line["custom_id"] for line in lines] == ["req-0", "req-1"]
    message = lines[0]["result"]["message"]
    assert lines[0]["result"]["type"] == "succeeded"
    assert message["content"] == [{"type": "text", "text": "Echo: hello 0"}]
    assert message["usage"]["service_tier"] == "batch"


def test_processing_delay_and_advance_time(slow_fake: FakeClaude, slow_http: httpx.Client) -> None:
    batch = create(slow_http)
    url = f"/v1/messages/batches/{batch['id']}"
    assert slow_http.get(url).json()["processing_status"] == "in_progress"
    response = slow_http.get(f"{url}/results")
    assert response.status_code == 400
    slow_fake.advance_time(60)
    assert slow_http.get(url).json()["processing_status"] == "ended"


def test_real_time_delay() -> None:
    with (
        FakeClaude(batch_processing_seconds=0.2) as fake,
        httpx.Client(base_url=fake.base_url, headers=HEADERS, verify=False) as http,
    ):
        batch = create(http)
        url = f"/v1/messages/batches/{batch['id']}"
        assert http.get(url).json()["processing_status"] == "in_progress"
        time.sleep(0.25)
        assert http.get(url).json()["processing_status"] == "ended"


def test_cancel_then_delete(slow_fake: FakeClaude, slow_http: httpx.Client) -> None:
    batch = create(slow_http, 3)
    url = f"/v1/messages/batches/{batch['id']}"
    refused = slow_http.delete(url)
    assert refused.status_code == 400
    canceling = slow_http.post(f"{url}/cancel").json()
    assert canceling["processing_status"] == "canceling"
    assert canceling["cancel_initiated_at"] is not None
    ended = slow_http.get(url).json()
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"]["canceled"] == 3
    assert {line["result"]["type"] for line in results(slow_http, ended)} == {"canceled"}
    assert slow_http.delete(url).json() == {"id": batch["id"], "type": "message_batch_deleted"}
    assert slow_http.get(url).status_code == 404


def test_scripted_outcomes(fake: FakeClaude, http: httpx.Client) -> None:
    fake.script_batch_result("req-0", "errored")
    fake.script_batch_result("req-1", "expired")
    fake.script_batch_result("req-2", "canceled")
    fake.script_batch_result("req-3", Reply.text("custom"))
    fake.script_batch_result("req-4", Reply.error(500, "api_error", "boom"))
    fake.set_batch_resolver(
        lambda cid, p: Reply.tool_use("t", {"id": cid}) if cid == "req-5" else None
    )
    batch = create(http, 7)
    ended = http.get(f"/v1/messages/batches/{batch['id']}").json()
    assert ended["request_counts"] == {
        "processing": 0,
        "succeeded": 3,
        "errored": 2,
        "canceled": 1,
        "expired": 1,
    }
    by_id = {line["custom_id"]: line["result"] for line in results(http, ended)}
    assert by_id["req-0"]["error"]["type"] == "error"
    assert by_id["req-0"]["error"]["request_id"] is None
    assert by_id["req-1"] == {"type": "expired"}
    assert by_id["req-2"] == {"type": "canceled"}
    assert by_id["req-3"]["message"]["content"][0]["text"] == "custom"
    assert by_id["req-4"]["error"]["error"] == {"type": "api_error", "message": "boom"}
    assert by_id["req-5"]["message"]["content"][0]["input"] == {"id": "req-5"}
    assert by_id["req-6"]["message"]["content"][0]["text"] == "Echo: hello 6"
    with pytest.raises(ValueError):
        fake.script_batch_result("x", "exploded")


def test_invalid_params_become_errored_results(http: httpx.Client) -> None:
    requests = [
        {"custom_id": "good", "params": params()},
        {"custom_id": "bad", "params": {**params(), "max_tokens": -1}},
    ]
    batch = http.post("/v1/messages/batches", json={"requests": requests}).json()
    ended = http.get(f"/v1/messages/batches/{batch['id']}").json()
    by_id = {line["custom_id"]: line["result"] for line in results(http, ended)}
    assert by_id["good"]["type"] == "succeeded"
    assert by_id["bad"]["type"] == "errored"
    assert by_id["bad"]["error"]["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("requests", "fragment"),
    [
        ([], "at least 1"),
        ([{"custom_id": "a b", "params": params()}], "custom_id"),
        ([{"custom_id": "a", "params": params()}] * 2, "unique"),
        ([{"custom_id": "a", "params": params(stream=True)}], "stream"),
        ([{"custom_id": "a"}], "params"),
    ],
    ids=["empty", "bad custom_id", "duplicate custom_id", "stream", "no params"],
)
def test_create_is_validated(http: httpx.Client, requests: list[Any], fragment: str) -> None:
    response = http.post("/v1/messages/batches", json={"requests": requests})
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


def test_unknown_batch_is_404(http: httpx.Client) -> None:
    for response in (
        http.get("/v1/messages/batches/msgbatch_nope"),
        http.post("/v1/messages/batches/msgbatch_nope/cancel"),
        http.delete("/v1/messages/batches/msgbatch_nope"),
        http.get("/v1/messages/batches/msgbatch_nope/results"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"


def test_list_newest_first_with_pagination(http: httpx.Client) -> None:
    ids = [create(http, 1, prefix=f"b{i}")["id"] for i in range(5)]
    page = http.get("/v1/messages/batches", params={"limit": "2"}).json()
    assert [b["id"] for b in page["data"]] == ids[::-1][:2]
    assert page["has_more"] is True
    rest = http.get("/v1/messages/batches", params={"after_id": page["last_id"]}).json()
    assert [b["id"] for b in rest["data"]] == ids[::-1][2:]
    assert rest["has_more"] is False


def test_thousand_request_batch_is_quick(http: httpx.Client) -> None:
    started = time.perf_counter()
    batch = create(http, 1000)
    ended = http.get(f"/v1/messages/batches/{batch['id']}").json()
    lines = results(http, ended)
    assert len(lines) == 1000
    assert ended["request_counts"]["succeeded"] == 1000
    assert time.perf_counter() - started < 5
