"""Offline testing for Claude apps: ``FakeClaude``, a local server speaking the Messages API.

Quick start::

    from clust.testing import FakeClaude, Reply

    with FakeClaude() as fake:                      # or: async with FakeClaude() as fake:
        fake.enqueue(
            Reply.tool_use("get_weather", {"city": "Paris"}),
            Reply.text("It is sunny in Paris."),
        )
        client = Client(base_url=fake.base_url, api_key="test")   # any client, any key
        ...                                         # your code under test
        assert fake.last_request.body["tools"][0]["name"] == "get_weather"

- Endpoints: POST /v1/messages (JSON or SSE), POST /v1/messages/count_tokens, GET /v1/models
  and /v1/models/{id}, and the Message Batches endpoints.
- With nothing queued, POST /v1/messages answers ``"Echo: <last user text>"``.
- Replies: :class:`Reply` (text, tool uses, thinking, errors with headers, malformed bodies,
  dropped connections) with stream modifiers (``cut_after``, ``stream_error_after``,
  ``end_without_stop``, ``slow``, ``with_pings``, ``in_chunks``).
- Usage is computed by a documented, deterministic token rule (:mod:`clust.testing.tokens`)
  with a prompt-cache simulation (:mod:`clust.testing.caching`); ``fake.advance_time(s)``
  expires cache entries and finishes batches.
- Every request is recorded: ``fake.requests``, ``fake.last_request``.
- ``python -m clust.testing --port 8765`` runs it by hand.

``clust.testing`` imports nothing else from ``clust``: it works on raw JSON, so it is an
independent witness of the wire protocol (the official SDK works against it too).
"""

from __future__ import annotations

from .app import BatchOutcome, BatchResolver
from .fake import FakeClaude
from .models import DEFAULT_MIN_CACHEABLE_TOKENS, DEFAULT_MODELS, ModelInfo
from .prompt import count_tokens
from .recorder import RecordedRequest
from .replies import Reply, Responder
from .tokens import output_tokens, text_tokens

__all__ = [
    "DEFAULT_MIN_CACHEABLE_TOKENS",
    "DEFAULT_MODELS",
    "BatchOutcome",
    "BatchResolver",
    "FakeClaude",
    "ModelInfo",
    "RecordedRequest",
    "Reply",
    "Responder",
    "count_tokens",
    "output_tokens",
    "text_tokens",
]
