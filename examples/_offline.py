"""What the examples share: FakeClaude by default, the real API when a key is set.

``connect(*replies)`` yields ``(client, fake)``: with ``ANTHROPIC_API_KEY`` unset, a
client pointed at a local :class:`~clust.testing.FakeClaude` with ``replies`` queued
(the answers the example needs, in order) and the fake itself, to inspect what was
sent; with the key set, ``Client.from_env()`` and ``None`` (the replies are ignored:
the real model answers for itself). ``CLUST_EXAMPLE_MODEL`` picks the model.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clust import Client
from clust.testing import FakeClaude, Reply

MODEL = os.environ.get("CLUST_EXAMPLE_MODEL", "claude-sonnet-5-5")


def online() -> bool:
    """Whether the examples talk to the real API (``ANTHROPIC_API_KEY`` is set)."""
    return bool(os.environ.get("ANTHROPIC_API_KEY"))


@contextmanager
def connect(*replies: Reply) -> Iterator[tuple[Client, FakeClaude | None]]:
    """``(client, fake)`` offline, ``(client, None)`` against the real API."""
    if online():
        with Client.from_env() as client:
            print(f"[real API at {client.base_url}, model {MODEL}]")
            yield client, None
        return
    with FakeClaude() as fake, Client(api_key="offline", base_url=fake.base_url) as client:
        fake.enqueue(*replies)
        print(f"[offline: FakeClaude at {fake.base_url}; set ANTHROPIC_API_KEY for the real API]")
        yield client, fake


@contextmanager
def database() -> Iterator[str]:
    """The store URL: ``sys.argv[1]`` if given, else an SQLite file in a temporary
    directory (removed afterwards, so the examples leave nothing behind)."""
    if len(sys.argv) > 1:
        yield sys.argv[1]
        return
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite:///{Path(directory) / 'examples.db'}"


def reference_document() -> str:
    """A long system prompt text: prompt caching only applies to prefixes of at least
    1,024 tokens on most models (4,096 on some), so short prompts are never cached."""
    topics = ["returns", "shipping", "warranty", "invoices", "accounts", "privacy"]
    rules = [
        f"Rule {number} ({topics[number % len(topics)]}): answer in at most three sentences, "
        f"quote the policy section you rely on, and never promise a refund or a delivery date "
        f"that the policy does not state; escalate case type {number} to a human agent."
        for number in range(1, 41)
    ]
    return "Support policy of the Example Shop.\n" + "\n".join(rules)
