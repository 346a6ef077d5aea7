"""Prompt caching with the 1-hour TTL, and the beta header it needs.

A 1-hour TTL anywhere in a request (system, tools, messages) makes clust add the
``anthropic-beta: extended-cache-ttl-2025-04-11`` header, merged with any betas you
pass. 1-hour writes cost 2x input (5-minute writes 1.25x); reads cost 0.1x either way.

Run: ``python examples/one_hour_cache.py``. Offline against FakeClaude unless
``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from _offline import MODEL, connect, reference_document

from clust.messages import CacheControl, CacheTtl, Message, MessagesRequestBody, SystemPrompt
from clust.testing import Reply


def main() -> None:
    system = SystemPrompt.from_text_blocks_with_cache_control(
        [
            ("You are the Example Shop's support assistant.", None),
            (reference_document(), CacheControl(ttl=CacheTtl.ONE_HOUR)),
        ]
    )
    with connect(
        Reply.text("Warranty claims go through Rule 3."),
        Reply.text("Privacy requests go through Rule 6."),
    ) as (client, fake):
        body = MessagesRequestBody(
            model=MODEL,
            max_tokens=300,
            system=system,
            messages=[Message.user("How do I claim the warranty?")],
        )
        first = client.create_a_message(body)
        written = first.usage.cache_creation
        print(f"> How do I claim the warranty?\n{first.text()}")
        print(
            f"  first call: cache_creation={first.usage.cache_creation_input_tokens} "
            f"(1h={written.ephemeral_1h_input_tokens if written else 0}, "
            f"5m={written.ephemeral_5m_input_tokens if written else 0})"
        )

        if fake is not None:
            # What went over the wire: the beta header clust added on its own.
            print(f"  sent anthropic-beta: {fake.last_request.headers.get('anthropic-beta')}")
            # Forty minutes later (on the fake's clock) a 5-minute entry would be long gone;
            # the 1-hour one is still there.
            fake.advance_time(40 * 60)
            print("  (40 minutes later)")
        else:
            print("  clust added the header anthropic-beta: extended-cache-ttl-2025-04-11")

        body = MessagesRequestBody(
            model=MODEL,
            max_tokens=300,
            system=system,
            messages=[Message.user("How do I ask for my data to be deleted?")],
        )
        # Betas you pass are merged with the automatic one, without duplicates.
        second = client.create_a_message(body, betas=["extended-cache-ttl-2025-04-11"])
        print(f"> How do I ask for my data to be deleted?\n{second.text()}")
        print(f"  second call: cache_read={second.usage.cache_read_input_tokens}")
        if fake is not None:
            print(f"  sent anthropic-beta: {fake.last_request.headers.get('anthropic-beta')}")


if __name__ == "__main__":
    main()
