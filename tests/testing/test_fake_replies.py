"""Each scripted reply kind, over raw httpx, as JSON and as SSE."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import httpx
import pytest

from clust.testing import FakeClaude, RecordedRequest, Reply

MODEL = "claude-sonnet-5-5"


def body(text: str = "Hello", *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 1000,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """A minimal SSE parser (``event:`` + one ``data:`` line per event)."""
    events = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def accumulate(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Rebuild the final message from SSE events (the rules of streaming.md)."""
    message: dict[str, Any] = {}
    buffers: dict[int, str] = {}
    for name, data in events:
        if name == "message_start":
            message = copy.deepcopy(data["message"])
        elif name == "content_block_start":
            message["content"].append(copy.deepcopy(data["content_block"]))
        elif name == "content_block_delta":
            index, delta = data["index"], data["delta"]
            block = message["content"][index]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "citations_delta":
                if block.get("citations") is None:
                    block["citations"] = []
                block["citations"].append(delta["citation"])
            elif delta["type"] == "input_json_delta":
                buffers[index] = buffers.get(index, "") + delta["partial_json"]
        elif name == "content_block_stop":
            if buffers.get(data["index"]):
                message["content"][data["index"]]["input"] = json.loads(buffers[data["index"]])
        elif name == "message_delta":
            for key in ("stop_reason", "stop_sequence", "stop_details"):
                message[key] = data["delta"].get(key)
            if data["delta"].get("container") is not None:
                message["container"] = data["delta"]["container"]
            message["usage"].update(data["usage"])
    return message


def stream_events(http: httpx.Client, payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    with http.stream("POST", "/v1/messages", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["request-id"].startswith("req_fake_")
        return parse_sse(response.read().decode("utf-8"))


def without_ids(message: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(message)
    out.pop("id")
    for block in out["content"]:
        if block.get("type") in ("tool_use", "server_tool_use"):
            block.pop("id")
    return out


RICH = Reply(
    content=[
        {"type": "thinking", "thinking": "Thinking about ünïcode 🎉 " * 5, "signature": "sig=="},
        {"type": "redacted_thinking", "data": "opaque-bytes"},
        {
            "type": "text",
            "text": "The answer, with a citation: 42. Café ☕ " * 4,
            "citations": [
                {
                    "type": "char_location",
                    "cited_text": "42",
                    "document_index": 0,
                    "document_title": "Guide",
                    "start_char_index": 0,
                    "end_char_index": 2,
                }
            ],
        },
        {"type": "server_tool_use", "name": "web_search", "input": {"query": "weather paris"}},
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_x",
            "content": [{"type": "web_search_result", "url": "https://x", "title": "X"}],
        },
        {
            "type": "tool_use",
            "name": "get_weather",
            "input": {"city": 'Zürich "q" \\ 🎉', "days": [1, 2.5, -3e-7], "deep": {"a": None}},
        },
    ],
    stop_reason="tool_use",
)


def test_default_reply_is_a_deterministic_echo(http: httpx.Client) -> None:
    first = http.post("/v1/messages", json=body("Hello, Claude")).json()
    second = http.post("/v1/messages", json=body("Hello, Claude")).json()
    assert first["content"] == [{"type": "text", "text": "Echo: Hello, Claude"}]
    assert first["stop_reason"] == "end_turn"
    assert first["id"] == "msg_fake_000001"
    assert second["id"] == "msg_fake_000002"
    assert first["usage"] == second["usage"]
    assert first["usage"]["output_tokens"] == 5  # ceil(len("Echo: Hello, Claude") / 4)
    assert first["usage"]["input_tokens"] == 10  # ceil(13 / 4) + 3 per message + 3 per request


def test_echo_honours_stop_sequences_and_max_tokens(http: httpx.Client) -> None:
    stopped = http.post("/v1/messages", json=body("one two three", stop_sequences=["two"])).json()
    assert stopped["content"][0]["text"] == "Echo: one "
    assert (stopped["stop_reason"], stopped["stop_sequence"]) == ("stop_sequence", "two")
    short = http.post("/v1/messages", json={**body("a long sentence here"), "max_tokens": 2}).json()
    assert short["content"][0]["text"] == "Echo: a "  # 2 tokens = 8 bytes
    assert short["stop_reason"] == "max_tokens"
    warm = http.post("/v1/messages", json={**body("x"), "max_tokens": 0}).json()
    assert warm["content"] == []
    assert warm["stop_reason"] == "max_tokens"
    assert warm["usage"]["output_tokens"] == 0


def test_queue_is_fifo_then_falls_back_to_echo(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("one"), Reply.text("two"))
    assert fake.pending == 2
    texts = [http.post("/v1/messages", json=body()).json()["content"][0]["text"] for _ in range(3)]
    assert texts == ["one", "two", "Echo: Hello"]
    assert fake.pending == 0


def test_invalid_request_does_not_consume_the_queue(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("kept"))
    assert http.post("/v1/messages", json={"model": MODEL, "messages": []}).status_code == 400
    assert http.post("/v1/messages", json=body()).json()["content"][0]["text"] == "kept"


def test_responder_answers_when_queue_is_empty(fake: FakeClaude, http: httpx.Client) -> None:
    def responder(request: RecordedRequest) -> Reply:
        return Reply.text(f"you sent {len(request.body['messages'])} message(s)")

    fake.set_responder(responder)
    fake.enqueue(Reply.text("queued first"))
    assert http.post("/v1/messages", json=body()).json()["content"][0]["text"] == "queued first"
    assert http.post("/v1/messages", json=body()).json()["content"][0]["text"] == (
        "you sent 1 message(s)"
    )
    fake.enqueue(lambda request: Reply.text(request.body["model"]))
    assert http.post("/v1/messages", json=body()).json()["content"][0]["text"] == MODEL


def test_text_reply_json_and_sse(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("Hi there, how can I help you today?", stop_reason="end_turn"))
    message = http.post("/v1/messages", json=body()).json()
    assert message["content"] == [{"type": "text", "text": "Hi there, how can I help you today?"}]
    assert message["type"] == "message" and message["role"] == "assistant"
    fake.enqueue(Reply.text("Hi there, how can I help you today?"))
    events = stream_events(http, body(stream=True))
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert len(deltas) > 5 and max(len(d) for d in deltas) < 10
    assert "".join(deltas) == "Hi there, how can I help you today?"
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["output_tokens"] == 1
    assert events[-2][1]["usage"]["output_tokens"] == message["usage"]["output_tokens"]


def test_tool_use_reply(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Paris"}))
    message = http.post("/v1/messages", json=body()).json()
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [
        {
            "type": "tool_use",
            "id": "toolu_fake_0001",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
    ]
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Paris"}, id="toolu_given"))
    events = stream_events(http, body(stream=True))
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert deltas[0] == {"type": "input_json_delta", "partial_json": ""}
    assert len(deltas) > 3
    assert json.loads("".join(d["partial_json"] for d in deltas)) == {"city": "Paris"}
    start = next(d for n, d in events if n == "content_block_start")["content_block"]
    assert start == {"type": "tool_use", "name": "get_weather", "input": {}, "id": "toolu_given"}


def test_parallel_tool_uses_with_text(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(
        Reply.tool_uses([("a", {"x": 1}), ("b", {"y": [2]})], text="Let me check"),
    )
    message = http.post("/v1/messages", json=body()).json()
    assert [b["type"] for b in message["content"]] == ["text", "tool_use", "tool_use"]
    assert [b.get("id") for b in message["content"][1:]] == ["toolu_fake_0001", "toolu_fake_0002"]
    assert message["stop_reason"] == "tool_use"


def test_thinking_reply(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.thinking("Let me think.", signature="abc", then=Reply.text("Done")))
    message = http.post("/v1/messages", json=body()).json()
    assert message["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "abc"},
        {"type": "text", "text": "Done"},
    ]
    assert message["usage"]["output_tokens_details"] == {"thinking_tokens": 4}
    fake.enqueue(Reply.thinking("Let me think.", signature="abc", then=Reply.text("Done")))
    events = stream_events(http, body(stream=True))
    start = next(d for n, d in events if n == "content_block_start")["content_block"]
    assert start == {"type": "thinking", "thinking": "", "signature": ""}
    kinds = [
        d["delta"]["type"] for n, d in events if n == "content_block_delta" and d["index"] == 0
    ]
    assert kinds[-1] == "signature_delta" and set(kinds[:-1]) == {"thinking_delta"}


def test_thinking_then_echo(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.thinking("hmm", then=Reply.echo()))
    content = http.post("/v1/messages", json=body("ping")).json()["content"]
    assert [b["type"] for b in content] == ["thinking", "text"]
    assert content[1]["text"] == "Echo: ping"


def test_stop_reason_and_sequence_are_scriptable(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("partial", stop_reason="stop_sequence", stop_sequence="END"))
    message = http.post("/v1/messages", json=body()).json()
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")
    fake.enqueue(Reply.text("no", stop_reason="refusal").with_usage(output_tokens=99))
    events = stream_events(http, body(stream=True))
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "refusal"
    assert delta["usage"]["output_tokens"] == 99


@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_accumulated_sse_equals_json(chunk_size: int | None) -> None:
    with (
        FakeClaude(chunk_size=chunk_size) as fake,
        httpx.Client(
            base_url=fake.base_url,
            headers={"x-api-key": "k", "anthropic-version": "1"},
            verify=False,
        ) as http,
    ):
        fake.enqueue(RICH, RICH)
        as_json = http.post("/v1/messages", json=body()).json()
        events = stream_events(http, body(stream=True))
    assert without_ids(accumulate(events)) == without_ids(as_json)
    citations = [d for n, d in events if n == "content_block_delta" and d["index"] == 2]
    assert citations[0]["delta"]["type"] == "citations_delta"
    result_start = [d for n, d in events if n == "content_block_start"][4]["content_block"]
    assert result_start == RICH.content[4]  # server tool results arrive whole


def test_tool_input_fragments_split_inside_strings_and_escapes(
    fake: FakeClaude, http: httpx.Client
) -> None:
    fake.enqueue(Reply.tool_use("t", {"s": 'é🎉 "quoted"', "n": 12345.678}))
    events = stream_events(http, body(stream=True))
    fragments = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    joined = "".join(fragments)
    assert json.loads(joined) == {"s": 'é🎉 "quoted"', "n": 12345.678}
    bad = 0
    for fragment in fragments[1:]:
        try:
            json.loads(fragment)
        except ValueError:
            bad += 1
    assert bad > len(fragments) // 2  # fragments are cut at arbitrary points


def test_tiny_tcp_chunks_still_decode(http: httpx.Client, fake: FakeClaude) -> None:
    text = "Grüße aus Zürich 🎉 — ünïcödé everywhere"
    fake.enqueue(Reply.text(text).in_chunks(1))
    with http.stream("POST", "/v1/messages", json=body(stream=True)) as response:
        pieces = list(response.iter_raw())
    raw = b"".join(pieces).decode("utf-8")
    deltas = [d["delta"]["text"] for n, d in parse_sse(raw) if n == "content_block_delta"]
    assert "".join(deltas) == text


def test_cut_after_k_events(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("This stream will be cut short").cut_after(4))
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/v1/messages", json=body(stream=True)) as response,
    ):
        for piece in response.iter_raw():
            received += piece
    assert [n for n, _ in parse_sse(received.decode())] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
    ]
    # the server is fine afterwards
    assert http.post("/v1/messages", json=body()).status_code == 200


def test_cut_json_response_drops_mid_body(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("cut").cut_after(0))
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/messages", json=body())


def test_end_without_stop(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("unfinished").end_without_stop())
    events = stream_events(http, body(stream=True))
    assert events[-1][0] == "content_block_stop"
    assert not {"message_delta", "message_stop"} & {n for n, _ in events}


def test_in_stream_error_event(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("Once upon a time").stream_error_after(3, "overloaded_error"))
    events = stream_events(http, body(stream=True))
    assert [n for n, _ in events] == ["message_start", "ping", "content_block_start", "error"]
    error = events[-1][1]
    assert error["type"] == "error"
    assert error["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert error["request_id"].startswith("req_fake_")


def test_slow_stream_paces_events(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("Hi").slow(0.03))
    started = time.perf_counter()
    events = stream_events(http, body(stream=True))
    assert time.perf_counter() - started >= 0.03 * len(events) * 0.9


def test_delayed_reply_triggers_client_timeout(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("late").delayed(5))
    with pytest.raises(httpx.ReadTimeout):
        http.post("/v1/messages", json=body(), timeout=0.2)
    # closing the fake does not wait for the 5 s delay (checked by the fixture's teardown)


def test_with_pings(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.text("a fairly long answer with many small deltas").with_pings(2))
    events = stream_events(http, body(stream=True))
    pings = sum(1 for n, _ in events if n == "ping")
    assert pings > 5
    assert accumulate(events)["content"][0]["text"] == "a fairly long answer with many small deltas"


@pytest.mark.parametrize("stream", [False, True])
def test_error_reply_with_headers(fake: FakeClaude, http: httpx.Client, stream: bool) -> None:
    fake.enqueue(
        Reply.error(
            529,
            "overloaded_error",
            "Overloaded",
            headers={"retry-after": "2", "x-should-retry": "true"},
        )
    )
    response = http.post("/v1/messages", json=body(stream=stream))
    assert response.status_code == 529
    assert response.headers["retry-after"] == "2"
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["content-type"] == "application/json"
    request_id = response.headers["request-id"]
    assert response.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": request_id,
    }


def test_error_reply_with_details(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(
        Reply.error(429, "rate_limit_error", "Slow down", details={"error_code": "ramp_limit"})
    )
    error = http.post("/v1/messages", json=body()).json()["error"]
    assert error == {
        "type": "rate_limit_error",
        "message": "Slow down",
        "details": {"error_code": "ramp_limit"},
    }


def test_malformed_json_body(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.malformed())
    response = http.post("/v1/messages", json=body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_malformed_stream_and_wrong_content_type(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.malformed())
    with http.stream("POST", "/v1/messages", json=body(stream=True)) as response:
        text = response.read().decode()
    assert text.startswith("event: message_start\ndata: {")
    assert "{not json" in text
    fake.enqueue(Reply.malformed("<html>proxy error</html>", content_type="text/html"))
    response = http.post("/v1/messages", json=body())
    assert response.headers["content-type"] == "text/html"
    assert response.text == "<html>proxy error</html>"


def test_raw_body_is_sent_verbatim(fake: FakeClaude, http: httpx.Client) -> None:
    raw = 'event: ping\r\ndata: {"type":"ping"}\r\n\r\n: a comment\n\n'
    fake.enqueue(Reply.raw(raw, content_type="text/event-stream"))
    with http.stream("POST", "/v1/messages", json=body(stream=True)) as response:
        assert response.read().decode() == raw


def test_disconnect_without_response(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.disconnect())
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/v1/messages", json=body())
    assert http.post("/v1/messages", json=body()).status_code == 200


def test_extra_fields_and_model_override(fake: FakeClaude, http: httpx.Client) -> None:
    container = {"id": "cntr_1", "expires_at": "2026-11-20T00:00:00Z", "skills": None}
    fake.enqueue(
        Reply(
            content=[{"type": "text", "text": "x"}],
            model="claude-opus-5-5",
            extra={"container": container},
        ),
    )
    message = http.post("/v1/messages", json=body()).json()
    assert message["model"] == "claude-opus-5-5"
    assert message["container"] == container
    fake.enqueue(Reply(content=[{"type": "text", "text": "x"}], extra={"container": container}))
    events = stream_events(http, body(stream=True))
    assert accumulate(events)["container"] == container


def test_reply_modifier_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Reply.text("x").cut_after(-1)
    with pytest.raises(ValueError):
        Reply.text("x").slow(-0.1)
    with pytest.raises(ValueError):
        Reply.text("x").in_chunks(0)
    with pytest.raises(ValueError):
        Reply.text("x").with_pings(0)
