"""The prompt-cache simulation: writes, reads, TTL expiry, 5m vs 1h, minimum length, identity,
automatic placement, and cache-miss diagnostics."""

from __future__ import annotations

from typing import Any

import httpx

from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"  # minimum cacheable prefix: 1024 fake tokens
BIG = "x" * 8000  # 2000 tokens
HELLO = {"role": "user", "content": "Hello"}  # 2 tokens + 3 per message


def marker(ttl: str = "5m") -> dict[str, Any]:
    return {"type": "ephemeral", "ttl": ttl}


def system(text: str = BIG, ttl: str | None = "5m") -> list[dict[str, Any]]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if ttl:
        block["cache_control"] = marker(ttl)
    return [block]


def usage_of(http: httpx.Client, **body: Any) -> dict[str, Any]:
    payload = {"model": MODEL, "max_tokens": 50, "messages": [HELLO], **body}
    response = http.post("/v1/messages", json=payload)
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()["usage"]
    return usage


def counts(usage: dict[str, Any]) -> tuple[int, int, int, int]:
    """(input, cache read, 5m written, 1h written)."""
    creation = usage["cache_creation"]
    assert usage["cache_creation_input_tokens"] == (
        creation["ephemeral_5m_input_tokens"] + creation["ephemeral_1h_input_tokens"]
    )
    return (
        usage["input_tokens"],
        usage["cache_read_input_tokens"],
        creation["ephemeral_5m_input_tokens"],
        creation["ephemeral_1h_input_tokens"],
    )


def test_write_then_read_then_expire(fake: FakeClaude, http: httpx.Client) -> None:
    assert counts(usage_of(http, system=system())) == (8, 0, 2000, 0)
    assert counts(usage_of(http, system=system())) == (8, 2000, 0, 0)
    assert fake.cached_prefixes == 1
    fake.advance_time(301)
    assert fake.cached_prefixes == 0
    assert counts(usage_of(http, system=system())) == (8, 0, 2000, 0)


def test_reading_refreshes_the_ttl(fake: FakeClaude, http: httpx.Client) -> None:
    usage_of(http, system=system())
    for _ in range(3):
        fake.advance_time(250)  # 750 s in all, but each read restarts the 5 minutes
        assert counts(usage_of(http, system=system())) == (8, 2000, 0, 0)


def test_one_hour_and_five_minute_accounting(fake: FakeClaude, http: httpx.Client) -> None:
    blocks = [
        {"type": "text", "text": "a" * 8000, "cache_control": marker("1h")},  # 2000 tokens
        {"type": "text", "text": "b" * 4000, "cache_control": marker("5m")},  # 1000 tokens
    ]
    assert counts(usage_of(http, system=blocks)) == (8, 0, 1000, 2000)
    fake.advance_time(301)  # the 5m entry is gone, the 1h one is not
    assert counts(usage_of(http, system=blocks)) == (8, 2000, 1000, 0)
    fake.advance_time(3601)
    assert counts(usage_of(http, system=blocks)) == (8, 0, 1000, 2000)


def test_below_the_minimum_nothing_is_cached(fake: FakeClaude, http: httpx.Client) -> None:
    short = system("x" * 4000)  # 1000 tokens < 1024
    assert counts(usage_of(http, system=short)) == (1008, 0, 0, 0)
    assert counts(usage_of(http, system=short)) == (1008, 0, 0, 0)
    # a later breakpoint whose prefix is long enough caches the whole prefix
    blocks = [*short, {"type": "text", "text": "y" * 400, "cache_control": marker()}]
    assert counts(usage_of(http, system=blocks)) == (8, 0, 1100, 0)


def test_minimum_depends_on_the_model(http: httpx.Client) -> None:
    haiku = usage_of(http, system=system(), model="claude-haiku-4-5")  # needs 4096
    assert counts(haiku) == (2008, 0, 0, 0)
    opus5 = usage_of(http, system=system("z" * 2400), model="claude-opus-5")  # needs 512
    assert counts(opus5) == (8, 0, 600, 0)
    unknown = usage_of(http, system=system(), model="claude-future-9")  # default 1024
    assert counts(unknown) == (8, 0, 2000, 0)


def test_minimum_can_be_overridden() -> None:
    with (
        FakeClaude(min_cache_tokens=5) as fake,
        httpx.Client(
            base_url=fake.base_url,
            headers={"x-api-key": "k", "anthropic-version": "1"},
            verify=False,
        ) as http,
    ):
        assert counts(usage_of(http, system=system("tiny prompt text here"))) == (8, 0, 6, 0)


def test_cache_is_keyed_by_model_and_content(http: httpx.Client) -> None:
    usage_of(http, system=system())
    assert counts(usage_of(http, system=system(), model="claude-opus-5-5")) == (8, 0, 2000, 0)
    assert counts(usage_of(http, system=system("w" * 8000))) == (8, 0, 2000, 0)


def test_moving_a_marker_keeps_the_cached_prefix(http: httpx.Client) -> None:
    usage_of(http, system=system())
    moved = [
        {"role": "user", "content": [{"type": "text", "text": "Hello", "cache_control": marker()}]}
    ]
    # the system prefix is read back through the lookback; only the message is written
    assert counts(usage_of(http, system=system(ttl=None), messages=moved)) == (3, 2000, 5, 0)


def test_top_level_cache_control_follows_a_growing_conversation(http: httpx.Client) -> None:
    first = [{"role": "user", "content": "y" * 8000}]  # 2000 + 3 tokens
    auto = {"cache_control": {"type": "ephemeral"}}
    assert counts(usage_of(http, messages=first, **auto)) == (3, 0, 2003, 0)
    grown = [*first, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]
    assert counts(usage_of(http, messages=grown, **auto)) == (3, 2003, 8, 0)
    assert counts(usage_of(http, messages=grown, **auto)) == (3, 2011, 0, 0)


def test_usage_totals_match_count_tokens(http: httpx.Client) -> None:
    body = {"system": system(), "messages": [HELLO]}
    counted = http.post("/v1/messages/count_tokens", json={"model": MODEL, **body}).json()
    for _ in range(2):
        usage = usage_of(http, **body)
        total = (
            usage["input_tokens"]
            + usage["cache_read_input_tokens"]
            + usage["cache_creation_input_tokens"]
        )
        assert total == counted["input_tokens"] == 2008


def test_streamed_usage_reports_the_cache(fake: FakeClaude, http: httpx.Client) -> None:
    payload = {
        "model": MODEL,
        "max_tokens": 50,
        "stream": True,
        "system": system(),
        "messages": [HELLO],
    }
    with http.stream("POST", "/v1/messages", json=payload) as response:
        text = response.read().decode()
    start = text.split("\n\n")[0]
    assert '"cache_creation_input_tokens":2000' in start
    assert '"ephemeral_5m_input_tokens":2000' in start
    delta = next(frame for frame in text.split("\n\n") if frame.startswith("event: message_delta"))
    assert '"cache_creation_input_tokens":2000' in delta


def test_clear_cache(fake: FakeClaude, http: httpx.Client) -> None:
    usage_of(http, system=system())
    fake.clear_cache()
    assert counts(usage_of(http, system=system())) == (8, 0, 2000, 0)


def post(http: httpx.Client, **body: Any) -> dict[str, Any]:
    payload = {"model": MODEL, "max_tokens": 50, "messages": [HELLO], **body}
    message: dict[str, Any] = http.post("/v1/messages", json=payload).json()
    return message


def test_diagnostics(http: httpx.Client) -> None:
    assert post(http, system=system())["diagnostics"] is None  # not asked for
    first = post(http, system=system(), diagnostics={"previous_message_id": None})
    assert first["diagnostics"] == {"cache_miss_reason": None}
    grown = [HELLO, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "More"}]
    second = post(
        http, system=system(), messages=grown, diagnostics={"previous_message_id": first["id"]}
    )
    assert second["diagnostics"] == {"cache_miss_reason": None}

    def reason(**body: Any) -> Any:
        return post(http, **body)["diagnostics"]["cache_miss_reason"]

    changed = reason(system=system("q" * 8000), diagnostics={"previous_message_id": second["id"]})
    assert changed == {"type": "system_changed", "cache_missed_input_tokens": 2000}
    assert reason(
        system=system(), model="claude-opus-5-5", diagnostics={"previous_message_id": first["id"]}
    ) == {"type": "model_changed", "cache_missed_input_tokens": 2000}
    tools = [{"name": "t", "input_schema": {"type": "object"}}]
    assert reason(
        system=system(), tools=tools, diagnostics={"previous_message_id": first["id"]}
    ) == {"type": "tools_changed", "cache_missed_input_tokens": 2000}  # tools come first
    other = [{"role": "user", "content": "Different"}]
    assert reason(
        system=system(), messages=other, diagnostics={"previous_message_id": second["id"]}
    ) == {"type": "messages_changed", "cache_missed_input_tokens": 0}  # system still read
    assert reason(diagnostics={"previous_message_id": "msg_unknown"}) == {
        "type": "previous_message_not_found"
    }
