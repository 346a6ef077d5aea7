"""Property tests: the SSE decoder agrees with a plain line-by-line WHATWG reference
for any stream and any way of cutting it into chunks."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clust.messages.errors import StreamDecodeError
from clust.protocol.sse import ServerSentEvent, SseDecoder

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api-examples"
EXAMPLE_STREAMS = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.sse"))]

Outcome = tuple[list[ServerSentEvent], bool] | type[StreamDecodeError]


def reference_decode(stream: bytes) -> tuple[list[ServerSentEvent], bool]:
    """The WHATWG algorithm written out line by line, as slowly and plainly as possible."""
    if stream.startswith(b"\xef\xbb\xbf"):
        stream = stream[3:]
    *lines, partial = re.split(rb"\r\n|\r|\n", stream)
    events: list[ServerSentEvent] = []
    last_id: str | None = None
    event: str | None = None
    data: list[bytes] = []
    retry: int | None = None
    fields_seen = False

    def text(value: bytes) -> str:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StreamDecodeError("bad utf-8") from exc

    for line in lines:
        if line == b"":
            if data:
                events.append(ServerSentEvent(event, b"\n".join(data), last_id, retry))
            event, data, retry, fields_seen = None, [], None, False
            continue
        if line.startswith(b":"):
            continue
        if b":" in line:
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
        else:
            name, value = line, b""
        if name == b"event":
            event = text(value) or None
            fields_seen = True
        elif name == b"data":
            data.append(value)
            fields_seen = True
        elif name == b"id":
            if b"\x00" not in value:
                last_id = text(value)
        # clust ignores digit strings too long to be a sane number of ms
        elif name == b"retry" and value and all(48 <= c <= 57 for c in value) and len(value) <= 18:
            retry = int(value)
            fields_seen = True
    return events, bool(partial) or fields_seen


def outcome_of(decode: object, *args: object) -> Outcome:
    try:
        return decode(*args)  # type: ignore[operator, no-any-return]
    except StreamDecodeError:
        return StreamDecodeError


def chunked_decode(chunks: list[bytes]) -> tuple[list[ServerSentEvent], bool]:
    decoder = SseDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events, decoder.has_pending


@st.composite
def splits(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    """``stream`` cut at arbitrary byte offsets (empty chunks included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=40)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def stream_and_chunks(
    draw: st.DrawFn, streams: st.SearchStrategy[bytes]
) -> tuple[bytes, list[bytes]]:
    stream = draw(streams)
    return stream, draw(splits(stream))


EOLS = st.sampled_from([b"\n", b"\r\n", b"\r"])
VALUE_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('ab :{}"\\\t\x00\ufeff\u00e9\u2713\U0001f600\u65e5')),
        st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]),
    ),
    max_size=12,
).map(lambda s: s.encode("utf-8"))
FIELD_NAMES = st.sampled_from([b"data", b"event", b"id", b"retry", b"x", b"", b"Data", b" data"])
SEPARATORS = st.sampled_from([b":", b": ", b":  "])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "field", "bare", "comment", "blank", "retry"]))
    if kind == "blank":
        return b""
    if kind == "comment":
        return b":" + draw(VALUE_TEXT)
    if kind == "bare":
        return draw(FIELD_NAMES)
    if kind == "retry":
        return b"retry: " + draw(st.sampled_from([b"10", b"0", b"1500", b"12x", b"-3", b""]))
    return draw(FIELD_NAMES) + draw(SEPARATORS) + draw(VALUE_TEXT)


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    """Streams of SSE-like lines: fields, comments, blank lines, mixed line endings,
    multi-byte UTF-8, an optional BOM, an optional unterminated last line."""
    out = [b"\xef\xbb\xbf"] if draw(st.booleans()) else []
    for line in draw(st.lists(lines(), max_size=30)):
        out.append(line + draw(EOLS))
    if draw(st.booleans()):
        out.append(draw(lines()))
    return b"".join(out)


@st.composite
def api_like_streams(draw: st.DrawFn) -> bytes:
    """Well-formed ``event:``/``data:`` frames (the API's own framing), with
    multi-line data and comments sprinkled in and a line-ending style per line."""
    out = []
    for _ in range(draw(st.integers(0, 8))):
        block = [
            b"event: " + draw(st.sampled_from([b"content_block_delta", b"ping", b"x\xc3\xa9"]))
        ]
        block += [b"data: " + draw(VALUE_TEXT) for _ in range(draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            block.insert(draw(st.integers(0, len(block))), b": keep-alive")
        block.append(b"")
        eol = draw(EOLS)
        out.append(b"".join(line + (eol if draw(st.booleans()) else draw(EOLS)) for line in block))
    return b"".join(out)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(stream_and_chunks(sse_streams()))
def test_generated_streams_match_reference_for_any_chunking(
    case: tuple[bytes, list[bytes]],
) -> None:
    stream, chunks = case
    assert outcome_of(chunked_decode, chunks) == outcome_of(reference_decode, stream)


@settings(max_examples=150)
@given(stream_and_chunks(api_like_streams()))
def test_api_framing_matches_reference_for_any_chunking(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    expected = outcome_of(reference_decode, stream)
    assert outcome_of(chunked_decode, chunks) == expected
    assert outcome_of(chunked_decode, [stream]) == expected


@settings(max_examples=150)
@given(st.data())
def test_examples_any_chunking_and_line_endings_give_the_same_events(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(EXAMPLE_STREAMS))
    expected, pending = chunked_decode([original])
    assert not pending
    # Rewrite each line ending as LF, CRLF or CR, independently (except that a
    # CR followed by an LF-terminated empty line would read as one CRLF).
    out, previous = [], b""
    for line in original.split(b"\n")[:-1]:
        choices = [b"\r\n", b"\r"] if previous == b"\r" and not line else [b"\n", b"\r\n", b"\r"]
        previous = data.draw(st.sampled_from(choices))
        out.append(line + previous)
    rewritten = b"".join(out)
    chunks = data.draw(splits(rewritten))
    assert chunked_decode(chunks) == (expected, False)


@settings(max_examples=300)
@given(st.data())
def test_example_cut_anywhere_reports_pending_or_a_clean_boundary(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(EXAMPLE_STREAMS))
    cut = data.draw(st.integers(0, len(original)))
    events, pending = chunked_decode(data.draw(splits(original[:cut])))
    full, _ = chunked_decode([original])
    assert events == full[: len(events)]
    at_boundary = original[:cut].endswith(b"\n\n") or cut == 0
    assert pending is not at_boundary


@settings(max_examples=500)
@given(stream_and_chunks(st.binary(max_size=300)))
def test_random_bytes_raise_only_stream_decode_error(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    assert outcome_of(chunked_decode, chunks) == outcome_of(reference_decode, stream)


@settings(max_examples=300)
@given(
    stream_and_chunks(
        st.lists(
            st.sampled_from(
                [
                    b"event: ",
                    b"data: ",
                    b"id: ",
                    b"retry: 5",
                    b":",
                    b"\n",
                    b"\r",
                    b"\r\n",
                    b"\xef\xbb\xbf",
                    b"\xff",
                    b"\xc3",
                    b"\xa9",
                    b"x",
                    b" ",
                    b"\x00",
                ]
            ),
            max_size=60,
        ).map(b"".join)
    )
)
def test_adversarial_token_soup_matches_reference(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    assert outcome_of(chunked_decode, chunks) == outcome_of(reference_decode, stream)
