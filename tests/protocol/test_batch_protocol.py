"""Sans-IO pieces of batches and listings: JSONL splitting, result decoding, pages, polling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clust.messages import (
    BatchNotEnded,
    BatchResultsUnavailable,
    BatchWaitTimeout,
    ErroredResult,
    InvalidParameter,
    MessageBatch,
    ModelInfo,
    Page,
    ResponseDecodeError,
    SucceededResult,
    UnknownBatchResult,
)
from clust.protocol.batches import BatchResultsDecoder, batch_results_request
from clust.protocol.jsonl import JsonlSplitter
from clust.protocol.pagination import PageWalk
from clust.protocol.polling import BatchPoller

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api-examples"
RESULTS = (EXAMPLES / "batch-results.jsonl").read_bytes()
BATCHES = json.loads((EXAMPLES / "batch-object.json").read_text())


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    splitter = JsonlSplitter()
    lines: list[bytes] = []
    start = 0
    for cut in sorted(set(cuts)):
        lines += splitter.feed(data[start:cut])
        start = cut
    lines += splitter.feed(data[start:])
    return lines + splitter.end()


LINES = [json.dumps({"n": i, "text": "é\n☃ \\r"}).encode() for i in range(6)]


@given(
    endings=st.lists(st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n"]), min_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=400)),
    bom=st.booleans(),
    final_ending=st.booleans(),
)
def test_any_chunking_and_line_endings_give_the_same_lines(
    endings: list[bytes], cuts: list[int], bom: bool, final_ending: bool
) -> None:
    body = b"".join(line + ending for line, ending in zip(LINES, endings, strict=False))
    if not final_ending:
        body = body.rstrip(b"\r\n")
    if bom:
        body = b"\xef\xbb\xbf" + body
    assert split(body, cuts) == LINES


def test_byte_at_a_time_and_blank_lines() -> None:
    body = b"\n\r\n" + b"\r\n".join(LINES) + b"\r\n  \n"
    assert split(body, list(range(len(body)))) == LINES
    assert split(b"", []) == []
    assert split(b"\xef\xbb", []) == []


def test_buffer_holds_only_the_unfinished_line() -> None:
    splitter = JsonlSplitter()
    assert splitter.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert splitter.has_pending
    assert splitter.feed(b":2}\n") == [b'{"b":2}']
    assert not splitter.has_pending


def decode(data: bytes, chunk: int) -> list[Any]:
    decoder = BatchResultsDecoder("req_1")
    out = []
    for start in range(0, len(data), chunk):
        out += decoder.feed(data[start : start + chunk])
    return out + decoder.end()


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_decoder_types_the_example_results(chunk: int) -> None:
    results = decode(RESULTS, chunk)
    assert [r.result.type for r in results] == ["succeeded", "errored", "canceled", "expired"]
    first = results[0].result
    assert isinstance(first, SucceededResult)
    assert first.message.usage.service_tier == "batch"
    errored = results[1].result
    assert isinstance(errored, ErroredResult)
    assert errored.error_type == "invalid_request_error"
    assert errored.error.request_id is None


def test_unknown_result_types_are_kept_not_rejected() -> None:
    line = {"custom_id": "z", "result": {"type": "deferred", "until": "later", "n": [1]}}
    (result,) = decode(json.dumps(line).encode() + b"\n", 5)
    assert isinstance(result.result, UnknownBatchResult)
    assert result.to_wire() == line
    assert result.message is None


def test_a_broken_line_names_its_number_and_request_id() -> None:
    body = RESULTS + b'{"custom_id": "x", "result": {"type": "succeeded"}}\n'
    with pytest.raises(ResponseDecodeError, match=r"line 5 .*request_id=req_1"):
        decode(body, 50)
    with pytest.raises(ResponseDecodeError, match="line 1"):
        decode(b"not json\n", 3)


def test_results_request_needs_an_ended_batch() -> None:
    ended = MessageBatch.model_validate(BATCHES["ended"])
    spec = batch_results_request(ended)
    assert spec.path == ended.results_url and spec.method == "GET" and spec.stream
    assert spec.headers["accept"] == "application/binary"
    with pytest.raises(BatchNotEnded):
        batch_results_request(MessageBatch.model_validate(BATCHES["in_progress"]))
    archived = MessageBatch.model_validate(
        {**BATCHES["ended"], "results_url": None, "archived_at": "2026-12-20T00:00:00Z"}
    )
    with pytest.raises(BatchResultsUnavailable, match="archived") as caught:
        batch_results_request(archived)
    assert not isinstance(caught.value, BatchNotEnded)


def page(ids: list[str], has_more: bool) -> Page[ModelInfo]:
    data = [{"id": i, "display_name": i, "created_at": "2026-01-01T00:00:00Z"} for i in ids]
    return Page[ModelInfo].model_validate(
        {
            "data": data,
            "has_more": has_more,
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }
    )


def test_page_walk_forward_and_backward() -> None:
    walk = PageWalk("/v1/models", limit=2, query={"lifecycle[]": ["active"]})
    first = walk.next_request()
    assert first is not None and first.params == {"lifecycle[]": ["active"], "limit": 2}
    walk.advance(page(["a", "b"], True))
    second = walk.next_request()
    assert second is not None and second.params is not None
    assert second.params["after_id"] == "b"
    walk.advance(page(["c"], False))
    assert walk.next_request() is None and walk.done and walk.pages == 2

    back = PageWalk("/v1/models", before_id="z")
    spec = back.next_request()
    assert spec is not None and spec.params == {"before_id": "z"}
    back.advance(page(["x", "y"], True))
    spec = back.next_request()
    assert spec is not None and spec.params == {"before_id": "x"}
    back.advance(page([], True))  # no cursor: stop rather than loop
    assert back.next_request() is None


def ended_batch(ended: bool) -> MessageBatch:
    return MessageBatch.model_validate(BATCHES["ended" if ended else "in_progress"])


def test_poller_doubles_caps_and_meets_the_deadline() -> None:
    poller = BatchPoller("b", poll_interval=1, max_interval=5, timeout=20, start=100.0)
    running = ended_batch(False)
    delays = []
    now = 100.0
    with pytest.raises(BatchWaitTimeout) as caught:
        while True:
            delay = poller.next_delay(running, now)
            assert delay is not None
            delays.append(delay)
            now += delay
    assert delays == [1, 2, 4, 5, 5, 3]  # the last one shortened to the deadline
    assert caught.value.batch is running and poller.polls == 7
    assert poller.next_delay(ended_batch(True), now) is None


def test_poller_without_timeout_never_gives_up() -> None:
    poller = BatchPoller("b", poll_interval=2, max_interval=2, timeout=None, start=0.0)
    assert poller.next_delay(ended_batch(False), 10**9) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"poll_interval": 0},
        {"poll_interval": True},
        {"max_interval": float("nan")},
        {"timeout": -1},
        {"poll_interval": 3, "max_interval": 2},
    ],
)
def test_poller_arguments(kwargs: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"poll_interval": 1, "max_interval": 2, "timeout": None}
    with pytest.raises(InvalidParameter):
        BatchPoller("b", **{**settings, **kwargs}, start=0.0)
