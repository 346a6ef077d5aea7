"""Prompt caching of a long system prompt with the default 5-minute TTL.

The first request writes the system prompt to the cache (``cache_creation_input_tokens``,
billed at 1.25x input); the next one, within 5 minutes, reads it back
(``cache_read_input_tokens``, billed at 0.1x input).

Run: ``python examples/system_prompt_cache.py``. Offline against FakeClaude (whose
cache simulation reports usage as the API does) unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from _offline import MODEL, connect, reference_document

from clust import Client
from clust.messages import (
    CacheControl,
    CacheTtl,
    Message,
    MessagesRequestBody,
    MessagesResponseBody,
    SystemPrompt,
)
from clust.testing import Reply

# Two system blocks: a short instruction, then the long policy marked as a cache
# breakpoint: everything up to and including that block is cached. CacheTtl.FIVE_MINUTES
# is also what a marker without a ttl means (`CacheControl()`).
SYSTEM = SystemPrompt.from_text_blocks_with_cache_control(
    [
        ("You are the Example Shop's support assistant.", None),
        (reference_document(), CacheControl(ttl=CacheTtl.FIVE_MINUTES)),
    ]
)


def ask(client: Client, question: str) -> MessagesResponseBody:
    body = MessagesRequestBody(
        model=MODEL, max_tokens=300, system=SYSTEM, messages=[Message.user(question)]
    )
    response = client.create_a_message(body)
    usage = response.usage
    split = usage.cache_creation
    print(f"> {question}\n{response.text()}")
    print(
        f"  usage: input={usage.input_tokens} "
        f"cache_creation={usage.cache_creation_input_tokens} "
        f"(5m={split.ephemeral_5m_input_tokens if split else 0}, "
        f"1h={split.ephemeral_1h_input_tokens if split else 0}) "
        f"cache_read={usage.cache_read_input_tokens} output={usage.output_tokens}"
    )
    return response


def main() -> None:
    with connect(
        Reply.text("Returns are accepted within 30 days (Rule 1)."),
        Reply.text("Standard shipping takes 3 to 5 days (Rule 2)."),
        Reply.text("Invoices are in your account page (Rule 4)."),
    ) as (client, fake):
        first = ask(client, "Can I return a jacket?")
        second = ask(client, "How long does shipping take?")
        print(
            f"first call wrote {first.usage.cache_creation_input_tokens} tokens to the cache; "
            f"second call read {second.usage.cache_read_input_tokens} from it"
        )
        if fake is not None:
            # FakeClaude's clock can jump: after 6 minutes the 5-minute entry is gone,
            # so the prefix is written again (as the real API would do after a pause).
            fake.advance_time(6 * 60)
            third = ask(client, "Where are my invoices?")
            print(
                f"after 6 minutes: cache_read={third.usage.cache_read_input_tokens}, "
                f"written again={third.usage.cache_creation_input_tokens}"
            )


if __name__ == "__main__":
    main()
