"""The incremental SSE decoder: WHATWG framing rules, one case at a time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clust.messages.errors import StreamDecodeError
from clust.protocol.sse import ServerSentEvent, SseDecoder, decode_sse

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api-examples"
SSE_FILES = sorted(EXAMPLES.glob("*.sse"))


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    events, _pending = decode_sse(chunks)
    return events


def ev(
    data: bytes, event: str | None = None, id: str | None = None, retry: int | None = None
) -> ServerSentEvent:
    return ServerSentEvent(event, data, id, retry)


def test_examples_exist() -> None:
    assert len(SSE_FILES) >= 3


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.name)
def test_examples_match_official_sdk_decoder(path: Path) -> None:
    from anthropic._streaming import SSEDecoder as SdkDecoder

    raw = path.read_bytes()
    ours = decode(raw)
    theirs = list(SdkDecoder().iter_bytes(iter([raw])))
    assert [(e.event, e.data.decode(), e.id, e.retry) for e in ours] == [
        (e.event, e.data, e.id, e.retry) for e in theirs
    ]
    assert ours[0].event == "message_start"
    assert all(type(e.data) is bytes for e in ours)


def test_basic_framing() -> None:
    assert decode(b"event: ping\ndata: {}\n\n") == [ev(b"{}", "ping")]
    assert decode(b"data: {}\n\n") == [ev(b"{}")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    stream = eol.join([b"event: a", b"data: 1", b"", b"data: 2", b"data: 3", b"", b""])
    assert decode(stream) == [ev(b"1", "a"), ev(b"2\n3")]


def test_cr_at_chunk_end_and_lf_at_next_start_is_one_line_ending() -> None:
    # Taken as two endings, the LF would be a blank line and dispatch "a" early.
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [ev(b"a\nb")]
    assert decode(b"data: a\r", b"\n", b"\r", b"\n") == [ev(b"a")]
    # A lone CR followed by a chunk starting with something else.
    assert decode(b"data: a\r", b"\r") == [ev(b"a")]
    assert decode(b"data: a\r", b"", b"\n", b"\n") == [ev(b"a")]
    # CR CR is a line ending plus a blank line.
    assert decode(b"data: a\r\r") == [ev(b"a")]
    assert decode(b"data: a\r\r\ndata: b\r\r") == [ev(b"a"), ev(b"b")]


def test_mixed_line_endings_in_one_stream() -> None:
    assert decode(b"event: x\r\ndata: 1\rdata: 2\n\r\ndata: 3\r\r") == [
        ev(b"1\n2", "x"),
        ev(b"3"),
    ]


def test_comments_are_ignored() -> None:
    stream = b": hello\nevent: a\n:\ndata: 1\n: between\n\n: alone\n\n"
    assert decode(stream) == [ev(b"1", "a")]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    assert decode(b"data:x\n\n") == [ev(b"x")]
    assert decode(b"data:  x \n\n") == [ev(b" x ")]
    assert decode(b"event:  a\ndata:\tx\n\n") == [ev(b"\tx", " a")]
    assert decode(b"data: a: b\n\n") == [ev(b"a: b")]


def test_field_without_colon_has_an_empty_value() -> None:
    assert decode(b"data\n\n") == [ev(b"")]
    assert decode(b"data\ndata\n\n") == [ev(b"\n")]
    assert decode(b"event\ndata: x\n\n") == [ev(b"x")]
    assert decode(b"nonsense\ndata: x\n\n") == [ev(b"x")]


def test_empty_data_field_still_dispatches() -> None:
    assert decode(b"data:\n\n") == [ev(b"")]
    assert decode(b"event: e\ndata: \n\n") == [ev(b"", "e")]


def test_block_without_data_is_not_an_event() -> None:
    assert decode(b"event: a\n\ndata: 1\n\n") == [ev(b"1")]
    assert decode(b"id: 7\n\n: x\n\nretry: 5\n\n") == []


def test_event_name_is_per_event() -> None:
    assert decode(b"event: a\ndata: 1\n\ndata: 2\n\n") == [ev(b"1", "a"), ev(b"2")]
    assert decode(b"event: a\nevent: b\ndata: 1\n\n") == [ev(b"1", "b")]
    assert decode(b"event:\ndata: 1\n\n") == [ev(b"1")]


def test_unknown_fields_are_ignored() -> None:
    assert decode(b"foo: bar\ndata: 1\nDATA: 2\n data: 3\n\n") == [ev(b"1")]


def test_id_is_kept_across_events_and_nul_ids_are_ignored() -> None:
    decoder = SseDecoder()
    events = decoder.feed(b"id: 1\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["1", "1", "1", ""]
    assert decoder.last_event_id == ""


def test_retry_needs_ascii_digits() -> None:
    decoder = SseDecoder()
    events = decoder.feed(b"retry: 1500\ndata: a\n\nretry: 15x\ndata: b\n\nretry: -1\ndata: c\n\n")
    assert [e.retry for e in events] == [1500, None, None]
    assert decoder.retry == 1500
    assert decoder.feed(b"retry: 20\n\n") == []  # no data: no event, but the time is taken
    assert decoder.retry == 20
    assert decode(b"retry: \xd9\xa1\ndata: a\n\n") == [ev(b"a")]  # Arabic-Indic digit
    assert decode(b"retry: " + b"9" * 40 + b"\ndata: a\n\n") == [ev(b"a")]


def test_bom_at_stream_start_is_skipped_once() -> None:
    bom = b"\xef\xbb\xbf"
    assert decode(bom + b"data: a\n\n") == [ev(b"a")]
    for cut in range(1, 4):
        stream = bom + b"event: e\ndata: a\n\n"
        assert decode(stream[:cut], stream[cut:]) == [ev(b"a", "e")]
        assert decode(*[stream[i : i + 1] for i in range(len(stream))]) == [ev(b"a", "e")]
    # a second BOM belongs to the field name, which is then unknown
    assert decode(bom + bom + b"data: a\n\ndata: b\n\n") == [ev(b"b")]
    # a BOM later in the stream is data
    assert decode(b"data: " + bom + b"\n\n") == [ev(bom)]
    # the first bytes only look like a BOM
    assert decode(b"\xef", b"\xbbdata: a\n\ndata: b\n\n") == [ev(b"b")]


def test_multibyte_utf8_split_at_every_byte() -> None:
    text = "h\u00e9llo \u2713 \U0001f600 \u65e5\u672c".encode()
    stream = b"event: caf\xc3\xa9\ndata: " + text + b"\n\n"
    expected = [ev(text, "caf\u00e9")]
    for cut in range(len(stream) + 1):
        assert decode(stream[:cut], stream[cut:]) == expected
    assert decode(*[stream[i : i + 1] for i in range(len(stream))]) == expected


def test_data_is_raw_bytes_even_when_not_utf8() -> None:
    assert decode(b"data: \xff\xfe\n\n") == [ev(b"\xff\xfe")]


@pytest.mark.parametrize(
    "stream",
    [
        b"event: \xff\ndata: x\n\n",  # fast path
        b": c\nevent: \xc3\ndata: x\n\n",  # general path
        b"event: \xe2\x82\ndata: x\ndata: y\n\n",
        b"id: \xff\ndata: x\n\n",
    ],
)
def test_invalid_utf8_in_event_name_or_id_raises(stream: bytes) -> None:
    with pytest.raises(StreamDecodeError):
        decode(stream)
    with pytest.raises(StreamDecodeError):
        decode(*[stream[i : i + 1] for i in range(len(stream))])


def test_close_reports_an_event_cut_short() -> None:
    for stream, pending in [
        (b"event: a\ndata: 1\n\n", False),
        (b"event: a\ndata: 1\n\n: keepalive\n", False),
        (b"event: a\ndata: 1\n\n\n", False),
        (b'event: a\ndata: 1\n\nevent: b\ndata: {"x', True),
        (b"event: a\ndata: 1\n\nevent: b\ndata: 2\n", True),
        (b"event: a\ndata: 1\n\nevent: b\n", True),
        (b"event: a\ndata: 1\n\nevent: b\ndata: 2\r", True),
        (b"event: a\ndata: 1\n\nev", True),
        (b"\xef\xbb", True),
        (b"", False),
    ]:
        decoder = SseDecoder()
        events = decoder.feed(stream)
        assert decoder.close() == []
        assert decoder.has_pending is pending, stream
        assert events == ([ev(b"1", "a")] if stream.startswith(b"event") else [])


def test_has_pending_before_close() -> None:
    decoder = SseDecoder()
    assert not decoder.has_pending
    decoder.feed(b"data: 1")
    assert decoder.has_pending
    assert decoder.feed(b"\n\n") == [ev(b"1")]
    assert not decoder.has_pending


def test_feed_after_close_raises_and_close_is_idempotent() -> None:
    decoder = SseDecoder()
    decoder.close()
    assert decoder.close() == []
    with pytest.raises(RuntimeError):
        decoder.feed(b"data: 1\n\n")


def test_accepts_bytes_like_chunks() -> None:
    decoder = SseDecoder()
    assert decoder.feed(bytearray(b"data: 1\n")) == []
    assert decoder.feed(memoryview(b"\ndata: 2\n\n")) == [ev(b"1"), ev(b"2")]


def test_many_frames_mixed_with_other_framing() -> None:
    frames = b"event: a\ndata: 1\n\n" * 3
    stream = frames + b": c\n" + frames + b"data: x\n\n" + b"xevent: z\ndata: 9\n\n" + frames
    expected = (
        [ev(b"1", "a")] * 3
        + [ev(b"1", "a")] * 3
        + [ev(b"x")]
        + [ev(b"9")]  # "xevent" is an unknown field
        + [ev(b"1", "a")] * 3
    )
    assert decode(stream) == expected
    assert decode(*[stream[i : i + 5] for i in range(0, len(stream), 5)]) == expected
    # A field line before a frame joins that frame's event.
    assert decode(b"data: 0\nevent: a\ndata: 1\n\n") == [ev(b"0\n1", "a")]
    assert decode(b"id: 3\nevent: a\ndata: 1\n\n") == [ev(b"1", "a", id="3")]


def test_large_event_in_small_chunks_is_linear() -> None:
    payload = b"x" * 4_000_000
    stream = b"event: big\ndata: " + payload + b"\n\n"
    chunks = [stream[i : i + 256] for i in range(0, len(stream), 256)]
    decoder = SseDecoder()
    start = time.process_time()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    elapsed = time.process_time() - start
    assert events == [ev(payload, "big")]
    # Quadratic buffering would copy ~30 GB here; linear takes a few ms.
    assert elapsed < 2.0


@pytest.mark.parametrize(
    "line",
    [b"event: " * 150_000, b"event: x\ndata: " * 100_000, b"data: " * 150_000, b":" * 1_000_000],
    ids=["event-repeated", "event-data-repeated", "data-repeated", "colons"],
)
def test_hostile_long_lines_decode_in_linear_time(line: bytes) -> None:
    stream = line + b"\n\nevent: e\ndata: ok\n\n"
    for chunks in ([stream], [stream[i : i + 4096] for i in range(0, len(stream), 4096)]):
        start = time.process_time()
        events = decode(*chunks)
        elapsed = time.process_time() - start
        assert events[-1] == ev(b"ok", "e")
        assert elapsed < 2.0, elapsed  # a quadratic scan takes minutes here
