"""Streaming a reply: text as it arrives, then typed events, then the final message.

Run: ``python examples/streaming.py``. Offline against FakeClaude unless
``ANTHROPIC_API_KEY`` is set (then the real API answers).
"""

from __future__ import annotations

from collections import Counter

from _offline import MODEL, connect

from clust.messages import ContentBlockDeltaEvent, Message, MessagesRequestBody, TextDelta
from clust.testing import Reply

POEM = "Rain on the rooftops,\nthe kettle starts to whistle,\na cat stretches, yawns."


def main() -> None:
    with connect(Reply.text(POEM), Reply.text("Stream, flow, arrive.")) as (client, _fake):
        # A body with `stream` unset is sent with "stream": true by the stream methods.
        body = MessagesRequestBody(
            model=MODEL,
            max_tokens=256,
            messages=[Message.user("Write a haiku about a rainy afternoon.")],
        )

        # 1. Just the text: `text_stream` yields each text delta as it arrives.
        print("> Write a haiku about a rainy afternoon.")
        with client.create_a_message_stream(body) as stream:
            for text in stream.text_stream:
                print(text, end="", flush=True)
            message = stream.get_final_message()  # accumulated from the events
        print(
            f"\n  [stop_reason={message.stop_reason}, "
            f"tokens in/out={message.usage.input_tokens}/{message.usage.output_tokens}]"
        )

        # 2. Every typed event (message_start, content_block_delta, message_stop, ...).
        body = MessagesRequestBody(
            model=MODEL,
            max_tokens=64,
            messages=[Message.user("Three words about streams.")],
        )
        kinds: Counter[str] = Counter()
        pieces: list[str] = []
        with client.create_a_message_stream(body) as stream:
            for event in stream:
                kinds[event.type] += 1
                if isinstance(event, ContentBlockDeltaEvent) and isinstance(event.delta, TextDelta):
                    pieces.append(event.delta.text)
            final = stream.get_final_message()
        print("> Three words about streams.")
        print(f"events: {', '.join(f'{kind} x{count}' for kind, count in kinds.items())}")
        joined = "".join(pieces)
        print(
            f"text deltas joined: {joined!r}; same as the final message: {final.text() == joined}"
        )


if __name__ == "__main__":
    main()
